using System.Diagnostics;
using System.Text;
using VmPortal.Core.CloudInit;

namespace VmPortal.Core.Tests.CloudInit;

/// <summary>
/// The NoCloud seed: SHA-512 crypt against openssl/mkpasswd, the ISO read back by isoinfo and blkid (what the guest
/// uses), and the user-data read by the Debian image's own first-boot parser (scripts/debian-image/vmportal-firstboot).
/// </summary>
public sealed class NoCloudSeedTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmportal-seed-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Code, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, StandardOutputEncoding = Encoding.UTF8 };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VmPortal.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    [Theory]
    [InlineData("debian", "saltsalt")]
    [InlineData("", "abc")]
    [InlineData("pässwörd with spaces and ünïcode", "0123456789abcdef")]
    [InlineData("a-very-long-password-that-is-longer-than-one-sha512-block-of-sixty-four-bytes-0123456789", "x./Y")]
    [InlineData("p", "")]
    public void Sha512CryptMatchesGlibcCrypt(string password, string salt)
    {
        // glibc's crypt(3) through perl (perl-base is essential in Debian): what the guest's chpasswd -e and login use.
        var (code, stdout, stderr) = Run("perl", "-e", "binmode STDOUT; print crypt($ARGV[0], $ARGV[1])", password, "$6$" + salt + "$");
        Assert.True(code == 0, stderr);
        Assert.Equal(stdout, Sha512Crypt.Hash(password, salt));
        Assert.True(Sha512Crypt.Verify(password, stdout));
        Assert.False(Sha512Crypt.Verify(password + "x", stdout));
    }

    [Theory]
    [InlineData("debian", "saltsalt")]
    [InlineData("pässwörd", "0123456789abcdef")]
    public void Sha512CryptMatchesOpenssl(string password, string salt)
    {
        var (code, stdout, stderr) = Run("openssl", "passwd", "-6", "-salt", salt, password);
        Assert.True(code == 0, stderr);
        Assert.Equal(stdout.Trim(), Sha512Crypt.Hash(password, salt));
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(12345)]
    public void Sha512CryptRoundsMatchMkpasswd(int rounds)
    {
        var (code, stdout, stderr) = Run("mkpasswd", "-m", "sha-512", "-R", rounds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-S", "sixteencharsalt.", "secret");
        Assert.True(code == 0, stderr);
        Assert.Equal(stdout.Trim(), Sha512Crypt.Hash("secret", "sixteencharsalt.", rounds));
        Assert.StartsWith($"$6$rounds={rounds}$", stdout.Trim());
        Assert.True(Sha512Crypt.Verify("secret", stdout.Trim()));
    }

    [Fact]
    public void RandomSaltsDifferAndVerify()
    {
        var a = Sha512Crypt.Hash("pw");
        var b = Sha512Crypt.Hash("pw");
        Assert.NotEqual(a, b);
        Assert.True(Sha512Crypt.IsHash(a));
        Assert.True(Sha512Crypt.Verify("pw", a));
        Assert.False(Sha512Crypt.Verify("pw", "$6$bad"));
        Assert.Throws<ArgumentException>(() => Sha512Crypt.Hash("pw", "bad salt"));
    }

    private static NoCloudConfig Config(string? key = null) => new(
        "vm-0f3a", "web-1", "alice", Sha512Crypt.Hash("s3cret", "abcdefgh"),
        [key ?? "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBzP alice@laptop"]);

    [Fact]
    public void TheIsoCarriesBothFilesUnderTheCidataLabel()
    {
        var config = Config();
        var iso = Path.Combine(_dir, "seed.iso");
        NoCloudSeed.WriteIso(config, iso);
        Assert.Equal(0, new FileInfo(iso).Length % 2048);
        Assert.True(new FileInfo(iso).Length < 64 * 1024);

        var (code, info, err) = Run("isoinfo", "-d", "-i", iso);
        Assert.True(code == 0, err);
        Assert.Contains("Volume id: cidata", info);
        Assert.Contains("Joliet with UCS level 3 found", info);

        // blkid probes the label the way the guest's first-boot script finds the seed.
        var (bcode, label, berr) = Run("blkid", "-p", "-o", "value", "-s", "LABEL", iso);
        Assert.True(bcode == 0, berr);
        Assert.Equal("cidata", label.Trim());
        var (_, type, _) = Run("blkid", "-p", "-o", "value", "-s", "TYPE", iso);
        Assert.Equal("iso9660", type.Trim());

        var (_, jlist, _) = Run("isoinfo", "-J", "-f", "-i", iso);
        Assert.Equal(["/meta-data", "/user-data"], jlist.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var (_, plist, _) = Run("isoinfo", "-f", "-i", iso);
        Assert.Equal(["/META_DATA.;1", "/USER_DATA.;1"], plist.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        Assert.Equal(NoCloudSeed.MetaData(config), Run("isoinfo", "-J", "-x", "/meta-data", "-i", iso).Out);
        Assert.Equal(NoCloudSeed.UserData(config), Run("isoinfo", "-J", "-x", "/user-data", "-i", iso).Out);
        Assert.Equal(NoCloudSeed.UserData(config), Run("isoinfo", "-x", "/USER_DATA.;1", "-i", iso).Out);
    }

    [Fact]
    public void XorrisoReadsTheImageWithoutComplaint()
    {
        var iso = Path.Combine(_dir, "seed.iso");
        NoCloudSeed.WriteIso(Config(), iso);
        var (code, stdout, stderr) = Run("xorriso", "-indev", iso, "-ls", "/");
        Assert.True(code == 0, stderr);
        Assert.Contains("meta-data", stdout + stderr);
        Assert.Contains("user-data", stdout + stderr);
        Assert.DoesNotContain("FAILURE", stderr);
        Assert.DoesNotContain("SORRY", stderr);
    }

    private Dictionary<string, List<string>> ParseInGuest(string text)
    {
        var file = Path.Combine(_dir, "data-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(file, text);
        var script = Path.Combine(RepoRoot(), "scripts", "debian-image", "vmportal-firstboot");
        var (code, stdout, stderr) = Run("sh", script, "--parse", file);
        Assert.True(code == 0, stderr);
        var records = new Dictionary<string, List<string>>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var tab = line.IndexOf('\t');
            Assert.True(tab > 0, $"malformed record: {line}");
            var k = line[..tab];
            if (!records.TryGetValue(k, out var list)) records[k] = list = [];
            list.Add(line[(tab + 1)..]);
        }
        return records;
    }

    [Fact]
    public void TheGuestsFirstBootParserReadsWhatWeWrite()
    {
        var config = Config();
        var meta = ParseInGuest(NoCloudSeed.MetaData(config));
        Assert.Equal(["vm-0f3a"], meta["instance-id"]);
        Assert.Equal(["web-1"], meta["local-hostname"]);

        var user = ParseInGuest(NoCloudSeed.UserData(config));
        Assert.Equal(["web-1"], user["hostname"]);
        Assert.Equal(["alice"], user["user"]);
        Assert.Equal([config.PasswordHash!], user["passwd"]);
        Assert.Equal(["false"], user["lock"]);
        Assert.Equal(["sudo", "adm"], user["group"]);
        Assert.Equal(["ALL=(ALL) NOPASSWD:ALL"], user["sudo"]);
        Assert.Equal([config.SshAuthorizedKeys![0]], user["key"]);
        Assert.Equal(["true"], user["ssh_pwauth"]);
        Assert.True(Sha512Crypt.Verify("s3cret", user["passwd"][0]));
    }

    [Fact]
    public void AKeyCommentWithQuotesAndBackslashesCannotAddYaml()
    {
        // A comment that would close the scalar and start a new key if it were pasted unquoted.
        var key = "ssh-ed25519 AAAAC3Nz evil\" \\\" ssh_pwauth: true # \\";
        var config = Config(key) with { PasswordHash = null };
        var text = NoCloudSeed.UserData(config);
        Assert.Single(text.Split('\n'), l => l.StartsWith("ssh_pwauth:", StringComparison.Ordinal));
        var user = ParseInGuest(text);
        Assert.Equal([key], user["key"]);
        Assert.Equal(["false"], user["ssh_pwauth"]);
        Assert.False(user.ContainsKey("passwd"));
    }

    [Theory]
    [InlineData("web_1", "alice", "hostname")]
    [InlineData("-web", "alice", "hostname")]
    [InlineData("web\nssh_pwauth: true", "alice", "hostname")]
    [InlineData("web", "Alice", "user")]
    [InlineData("web", "root", "user")]
    [InlineData("web", "al\"ice", "user")]
    public void BadNamesAreRefusedWithTheFieldNamed(string hostname, string user, string field)
    {
        var config = new NoCloudConfig("i-1", hostname, user);
        Assert.Contains(NoCloudSeed.Validate(config), p => p.StartsWith(field, StringComparison.Ordinal));
        var e = Assert.Throws<ArgumentException>(() => NoCloudSeed.UserData(config));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void BadKeysAndHashesAreRefused()
    {
        Assert.NotEmpty(NoCloudSeed.Validate(Config("ssh-ed25519 AAAA line\nssh_pwauth: true")));
        Assert.NotEmpty(NoCloudSeed.Validate(Config("not a key")));
        Assert.NotEmpty(NoCloudSeed.Validate(Config() with { PasswordHash = "s3cret" }));
        Assert.NotEmpty(NoCloudSeed.Validate(Config() with { User = null }));
        Assert.NotEmpty(NoCloudSeed.Validate(Config() with { InstanceId = "a b" }));
        Assert.Empty(NoCloudSeed.Validate(new NoCloudConfig("i-1", "web")));
    }
}

using System.Text;
using System.Text.RegularExpressions;

namespace VmPortal.Core.CloudInit;

/// <summary>
/// What a VM's first boot configures: the cloud-init NoCloud convention (Proxmox, OpenStack and cloud images use
/// it). <see cref="PasswordHash"/> is a SHA-512 crypt hash (<see cref="Sha512Crypt"/>): the password itself is
/// never stored or written.
/// </summary>
/// <param name="InstanceId">Changes when the machine is a new instance (e.g. the VM's id); first-boot work runs once per id.</param>
public sealed record NoCloudConfig(
    string InstanceId,
    string Hostname,
    string? User = null,
    string? PasswordHash = null,
    IReadOnlyList<string>? SshAuthorizedKeys = null);

/// <summary>
/// Builds a NoCloud seed: <c>meta-data</c> and <c>user-data</c> (#cloud-config) text and the ISO 9660 image
/// labelled <c>cidata</c> that carries them. Every value is checked against a strict shape and written as a
/// double-quoted YAML scalar (\\ and \" escaped; control characters refused), so no input can add YAML keys.
/// The built-in Debian image's first-boot script reads exactly this subset (docs/platform.md).
/// </summary>
public static partial class NoCloudSeed
{
    public const string VolumeLabel = "cidata";
    public const int MaxSshKeys = 32, MaxSshKeyLength = 16384;

    /// <summary>Checks a configuration; returns the problems (empty when it is valid).</summary>
    public static IReadOnlyList<string> Validate(NoCloudConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var problems = new List<string>();
        if (!InstanceIdPattern().IsMatch(config.InstanceId ?? ""))
            problems.Add("instance id: 1-64 characters of A-Z a-z 0-9 . _ -");
        if (!IsValidHostname(config.Hostname))
            problems.Add("hostname: 1-63 letters, digits and hyphens, not starting or ending with a hyphen");
        if (config.User is not null && !IsValidUserName(config.User))
            problems.Add("user: 1-32 characters, lower-case letters, digits, _ and -, starting with a letter or _ (not root)");
        if (config.PasswordHash is not null && !Sha512Crypt.IsHash(config.PasswordHash))
            problems.Add("password hash: a SHA-512 crypt hash ($6$salt$...) is expected");
        var keys = config.SshAuthorizedKeys ?? [];
        if (keys.Count > MaxSshKeys) problems.Add($"at most {MaxSshKeys} SSH keys");
        foreach (var key in keys)
            if (!IsValidSshKey(key)) { problems.Add("SSH key: one line \"<type> <base64> [comment]\" (ssh-ed25519, ssh-rsa, ecdsa-sha2-…, sk-…)"); break; }
        if ((config.PasswordHash is not null || keys.Count > 0) && config.User is null)
            problems.Add("a password or SSH key needs a user name");
        return problems;
    }

    public static bool IsValidHostname(string? name) => name is not null && HostnamePattern().IsMatch(name);

    public static bool IsValidUserName(string? name) => name is not null && UserPattern().IsMatch(name) && name != "root";

    public static bool IsValidSshKey(string? key) =>
        key is not null && key.Length <= MaxSshKeyLength && !key.Any(char.IsControl) && SshKeyPattern().IsMatch(key);

    /// <summary>The <c>meta-data</c> file: instance-id and local-hostname.</summary>
    public static string MetaData(NoCloudConfig config)
    {
        ThrowIfInvalid(config);
        return $"instance-id: {Quote(config.InstanceId)}\nlocal-hostname: {Quote(config.Hostname)}\n";
    }

    /// <summary>
    /// The <c>user-data</c> file (#cloud-config): hostname; the user with sudo (no password asked), groups sudo
    /// and adm, bash, the password hash and/or SSH keys; ssh_pwauth true when a password is set.
    /// </summary>
    public static string UserData(NoCloudConfig config)
    {
        ThrowIfInvalid(config);
        var sb = new StringBuilder();
        sb.Append("#cloud-config\n");
        sb.Append("hostname: ").Append(Quote(config.Hostname)).Append('\n');
        var keys = config.SshAuthorizedKeys ?? [];
        if (config.User is not null)
        {
            sb.Append("users:\n");
            sb.Append("  - name: ").Append(Quote(config.User)).Append('\n');
            sb.Append("    shell: \"/bin/bash\"\n");
            sb.Append("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n");
            sb.Append("    groups: [\"sudo\", \"adm\"]\n");
            if (config.PasswordHash is not null)
            {
                sb.Append("    lock_passwd: false\n");
                sb.Append("    passwd: ").Append(Quote(config.PasswordHash)).Append('\n');
            }
            if (keys.Count > 0)
            {
                sb.Append("    ssh_authorized_keys:\n");
                foreach (var key in keys) sb.Append("      - ").Append(Quote(key.Trim())).Append('\n');
            }
        }
        sb.Append("ssh_pwauth: ").Append(config.PasswordHash is not null ? "true" : "false").Append('\n');
        return sb.ToString();
    }

    /// <summary>The seed as an ISO 9660 image labelled cidata with meta-data and user-data.</summary>
    public static byte[] BuildIso(NoCloudConfig config, DateTimeOffset? timestamp = null) =>
        Iso9660Writer.Build(VolumeLabel,
        [
            ("meta-data", Encoding.UTF8.GetBytes(MetaData(config))),
            ("user-data", Encoding.UTF8.GetBytes(UserData(config))),
        ], timestamp);

    /// <summary>Writes the seed ISO to <paramref name="path"/> (through a temporary file and a rename).</summary>
    public static void WriteIso(NoCloudConfig config, string path)
    {
        var bytes = BuildIso(config);
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>A YAML double-quoted scalar. Values are validated first; control characters are refused here too.</summary>
    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            if (char.IsControl(c)) throw new ArgumentException("control characters are not allowed in seed values");
            if (c is '"' or '\\') sb.Append('\\');
            sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    private static void ThrowIfInvalid(NoCloudConfig config)
    {
        var problems = Validate(config);
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(config));
    }

    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,64}\z")]
    private static partial Regex InstanceIdPattern();

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\z")]
    private static partial Regex HostnamePattern();

    [GeneratedRegex(@"^[a-z_][a-z0-9_-]{0,31}\z")]
    private static partial Regex UserPattern();

    [GeneratedRegex(@"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?\z")]
    private static partial Regex SshKeyPattern();
}

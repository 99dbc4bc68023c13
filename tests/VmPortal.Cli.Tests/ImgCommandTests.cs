using System.Diagnostics;
using System.Text.Json;
using VmPortal.Cli;
using VmPortal.Emulator;

namespace VmPortal.Cli.Tests;

/// <summary><c>vmportal img</c> end to end, with qemu-img (apt qemu-utils) judging the files it writes.</summary>
public sealed class ImgCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-img-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string F(string name) => Path.Combine(_dir, name);

    private static (int Exit, string Out, string Err) Img(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int exit = ImgCommand.Run(args, o, e);
        return (exit, o.ToString(), e.ToString());
    }

    /// <summary>Runs QEMU's <c>qemu-img</c> (the format oracle) with its output and exit code.</summary>
    internal static (int Exit, string Out) Qemu(params string[] args)
    {
        var psi = new ProcessStartInfo("qemu-img") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    [Fact]
    public void CreateInfoConvertResizeCheckRoundTrip()
    {
        Assert.Equal(0, Img("create", F("blank.qcow2"), "64M").Exit);
        Assert.Equal(0, Qemu("check", F("blank.qcow2")).Exit);
        var info = Img("info", F("blank.qcow2"), "--json");
        Assert.Equal(0, info.Exit);
        using (var doc = JsonDocument.Parse(info.Out))
        {
            Assert.Equal("qcow2", doc.RootElement.GetProperty("format").GetString());
            Assert.Equal(64L << 20, doc.RootElement.GetProperty("virtual-size").GetInt64());
        }

        // an overlay on a raw base (relative name), flattened back to raw: the base's bytes
        var data = new byte[3 << 20];
        new Random(5).NextBytes(data.AsSpan(0, 1 << 20));
        File.WriteAllBytes(F("base.raw"), data);
        var created = Img("create", "-f", "qcow2", "-b", "base.raw", F("ov.qcow2"));
        Assert.True(created.Exit == 0, created.Err);
        var text = Img("info", F("ov.qcow2")).Out;
        Assert.Contains("file format: qcow2", text);
        Assert.Contains("backing file: base.raw", text);
        Assert.Contains("backing file format: raw", text);
        Assert.Contains("backing file format: raw", Qemu("info", F("ov.qcow2")).Out);
        Assert.Equal(0, Img("convert", "-O", "raw", F("ov.qcow2"), F("flat.raw")).Exit);
        Assert.Equal(data, File.ReadAllBytes(F("flat.raw")));
        Assert.Equal(0, Img("convert", F("ov.qcow2"), F("flat.qcow2")).Exit);
        Assert.Equal(0, Qemu("compare", F("flat.qcow2"), F("base.raw")).Exit);
        Assert.Equal(0, Img("convert", "-O", "vpc", F("ov.qcow2"), F("flat.vhd")).Exit);
        Assert.Equal(0, Qemu("compare", "-f", "vpc", "-F", "raw", F("flat.vhd"), F("base.raw")).Exit);

        Assert.Equal(0, Img("resize", F("ov.qcow2"), "+1M").Exit);
        Assert.Contains($"\"virtual-size\": {(4 << 20)}", Qemu("info", "--output=json", F("ov.qcow2")).Out);
        var check = Img("check", F("ov.qcow2"));
        Assert.Equal(0, check.Exit);
        Assert.Contains("No errors", check.Out);
        Assert.Equal(0, Qemu("check", F("ov.qcow2")).Exit);

        Assert.Equal(0, Img("create", "-f", "vpc", "-o", "subformat=fixed", F("f.vhd"), "8M").Exit);
        Assert.Contains("file format: vpc", Img("info", F("f.vhd")).Out);
        Assert.Equal(0, Img("create", "-f", "raw", F("r.img"), "1G").Exit);
        Assert.Equal(1L << 30, new FileInfo(F("r.img")).Length);
    }

    [Fact]
    public void CheckReportsProblemsWithExitCodeTwo()
    {
        Assert.Equal(0, Qemu("create", "-f", "qcow2", F("x.qcow2"), "4M").Exit);
        Assert.Equal(0, Qemu("create", "-f", "qcow2", "-b", "x.qcow2", "-F", "qcow2", F("y.qcow2")).Exit);
        File.Delete(F("x.qcow2"));
        var r = Img("check", F("y.qcow2"));
        Assert.Equal(ImgCommand.ExitProblems, r.Exit);
        Assert.Contains("x.qcow2", r.Out);
        Assert.Contains("not found", r.Out);

        var junk = new byte[100_000];
        new Random(3).NextBytes(junk);
        junk[0] = 0x51; junk[1] = 0x46; junk[2] = 0x49; junk[3] = 0xFB;
        File.WriteAllBytes(F("junk.qcow2"), junk);
        Assert.Equal(ImgCommand.ExitProblems, Img("check", F("junk.qcow2")).Exit);
        var info = Img("info", F("junk.qcow2"));
        Assert.Equal(1, info.Exit);
        Assert.Contains("junk.qcow2", info.Err);
    }

    [Fact]
    public void UsageErrorsExitWithOne()
    {
        Assert.Equal(1, Img().Exit);
        Assert.Equal(0, Img("--help").Exit);
        Assert.Contains("unknown format", Img("create", "-f", "vdi", F("a"), "1M").Err);
        Assert.Contains("needs a SIZE", Img("create", F("a")).Err);
        Assert.Contains("invalid size", Img("create", F("a"), "12Q").Err);
        Assert.Contains("invalid size", Img("create", F("a"), "9T").Err);
        Assert.Equal(1, Img("fly").Exit);
        Assert.Equal(1, Img("info", F("missing.img")).Exit);
        Assert.Contains("vmdk can be read, not written", Img("convert", "-O", "vmdk", F("a"), F("b")).Err);
        Img("create", F("small.qcow2"), "2M");
        var shrink = Img("resize", F("small.qcow2"), "1M");
        Assert.Equal(1, shrink.Exit);
        Assert.Contains("only grow", shrink.Err);
        Assert.Equal(3L << 30, ImgCommand.ParseSize("3G"));
        Assert.Equal(1536L << 20, ImgCommand.ParseSize("1.5GiB"));
        Assert.Equal(4096, ImgCommand.ParseSize("4096"));
    }

    [Fact]
    public void RunTakesThreeDisksAndSnapshot()
    {
        var o = RunOptions.Parse(new[] { "--hda", "a.qcow2", "--hdc", "c.vhd", "--hdb", "b.img", "--snapshot" }, out string? error);
        Assert.True(o != null, error);
        var config = o!.ToMachineConfig();
        Assert.Equal(new[] { IdeSlot.PrimaryMaster, IdeSlot.PrimarySlave, IdeSlot.SecondarySlave }, config.DiskSlots().Select(d => d.Slot));
        Assert.Equal(new[] { "a.qcow2", "b.img", "c.vhd" }, config.HardDisks.Select(d => d.Path));
        Assert.All(config.HardDisks, d => Assert.True(d.Snapshot));
        var only = RunOptions.Parse(new[] { "--hdc", "c.img" }, out _)!.ToMachineConfig();
        Assert.Equal(IdeSlot.SecondarySlave, Assert.Single(only.DiskSlots()).Slot);
        Assert.Null(RunOptions.Parse(new[] { "--hda", "a", "--hda", "b" }, out error));
        Assert.Contains("given twice", error);
        Assert.Null(RunOptions.Parse(new[] { "--snapshot" }, out error));
        Assert.Contains("needs a hard disk", error);
    }

    [Fact]
    public async Task RunRefusesAMissingBackingFileByName()
    {
        Assert.Equal(0, Qemu("create", "-f", "raw", F("gone.raw"), "1M").Exit);
        Assert.Equal(0, Qemu("create", "-f", "qcow2", "-b", "gone.raw", "-F", "raw", F("ov.qcow2")).Exit);
        File.Delete(F("gone.raw"));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliMain.RunAsync(new[] { "run", "--hda", F("ov.qcow2"), "--timeout", "5" }, null, stdout, stderr, new MemoryStream());
        Assert.Equal(1, exit);
        Assert.Contains("gone.raw", stderr.ToString());
        Assert.Contains("not found", stderr.ToString());
    }
}

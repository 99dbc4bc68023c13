using System.Text;
using VmPortal.Cli;

namespace VmPortal.Cli.Tests;

public class CliTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var raw = new MemoryStream();
        int exit = await CliMain.RunAsync(args, null, stdout, stderr, raw);
        return (exit, stdout.ToString() + Encoding.Latin1.GetString(raw.ToArray()), stderr.ToString());
    }

    private static string TempFile(byte[] content)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmportal-cli-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, content);
        return path;
    }

    [Fact]
    public async Task UsageErrorsExitWithOne()
    {
        var r = await Run("run", "--memory", "x", "--cdrom", "a.iso");
        Assert.Equal(1, r.Exit);
        Assert.Contains("--memory must be a number", r.Err);
        Assert.Contains("vmportal run --help", r.Err);
        Assert.Equal(1, (await Run("fly")).Exit);
    }

    [Fact]
    public async Task HelpExitsWithZero()
    {
        var r = await Run("run", "--help");
        Assert.Equal(0, r.Exit);
        Assert.Contains("--until REGEX", r.Out);
        Assert.Contains("Exit codes", r.Out);
    }

    [Fact]
    public async Task MissingFilesAreHostErrors()
    {
        var r = await Run("run", "--cdrom", "/nonexistent/x.iso", "--timeout", "5");
        Assert.Equal(1, r.Exit);
        Assert.Contains("CD-ROM image not found: /nonexistent/x.iso", r.Err);
    }

    [Fact]
    public async Task AnUnusableFirmwareImageIsReportedAsACrash()
    {
        string bios = TempFile(new byte[1000]);
        var r = await Run("run", "--bios", bios, "--timeout", "10");
        Assert.Equal(3, r.Exit);
        Assert.Contains("not a multiple of 4 KiB", r.Err);
    }

    [Fact]
    public void PngWriterWritesAValidSignatureAndChunks()
    {
        var ms = new MemoryStream();
        PngWriter.Write(ms, 2, 1, new uint[] { 0xFF0000, 0x00FF00 });
        var bytes = ms.ToArray();
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal("IEND", Encoding.ASCII.GetString(bytes, bytes.Length - 8, 4));
        // CRC of the IEND chunk is the well-known AE426082.
        Assert.Equal(new byte[] { 0xAE, 0x42, 0x60, 0x82 }, bytes[^4..]);
    }
}

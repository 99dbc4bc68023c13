using VmPortal.Cli;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Cli.Tests;

/// <summary>A fact that boots memtest86+ through SeaBIOS: skipped with the reason when SeaBIOS or the image is missing.</summary>
public sealed class MemtestFactAttribute : FactAttribute
{
    public MemtestFactAttribute()
    {
        if (FirmwareFiles.FindBios() == null) Skip = FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName);
        else if (!File.Exists(GuestImages.PathOf(GuestImages.MemtestKernel)))
            Skip = $"{GuestImages.PathOf(GuestImages.MemtestKernel)} is missing: {GuestImages.BuildHint}";
    }
}

/// <summary><c>vmportal run</c> end to end on real firmware and a real guest (memtest86+ booted as a kernel).</summary>
[Trait("Category", "Boot")]
public class CliGuestTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliMain.RunAsync(args, null, stdout, stderr, new MemoryStream());
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static readonly string[] Memtest =
    {
        "run", "--memory", "64", "--kernel", GuestImages.PathOf(GuestImages.MemtestKernel), "--append", "console=ttyS0,115200",
    };

    [MemtestFact]
    public async Task TypesIntoTheKeyboardAndMatchesTheScreen()
    {
        // memtest86+ waits 3 s for Enter, then starts by itself: the typed Enter has to come within those 3 s (--type
        // waits for the screen to stay still for 0.75 s). --deterministic would not help: the guest then runs the
        // 3 s in well under a second of host time.
        var r = await Run(Memtest.Concat(new[]
        {
            "--type", "\\n", "--type-after", "to start testing", "--until", @"Testing: +\d", "--timeout", "240", "--screen-text",
        }).ToArray());
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("Memtest86+", r.Out);
        Assert.Matches(@"Testing: +\d", r.Out);
    }

    [MemtestFact]
    public async Task ATimeoutExitsWithTwoAndSaysWhere()
    {
        var r = await Run(Memtest.Concat(new[] { "--until", "this text never appears", "--timeout", "3" }).ToArray());
        Assert.Equal(2, r.Exit);
        Assert.Contains("timeout after 3 s", r.Err);
        Assert.Matches(@"[\d,]+ instructions, guest time [\d.]+ s \(host [\d.]+ s\), CPU at ", r.Err);
    }
}

using VmPortal.Cli;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Cli.Tests;

/// <summary>A fact that boots the Linux rescue guest: skipped with the reason when SeaBIOS or the images are missing.</summary>
public sealed class RescueFactAttribute : FactAttribute
{
    public RescueFactAttribute()
    {
        if (FirmwareFiles.FindBios() == null) Skip = FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName);
        else if (Environment.GetEnvironmentVariable("CI") != "true" && !File.Exists(GuestImages.PathOf(GuestImages.RescueKernel)))
            Skip = $"{GuestImages.PathOf(GuestImages.RescueKernel)} is missing: {GuestImages.BuildHint}";
    }
}

/// <summary><c>vmportal run</c> ends by itself, with exit code 0, when the guest powers the machine off (ACPI S5).</summary>
[Trait("Category", "Boot")]
public class CliPowerOffTests
{
    [RescueFact]
    public async Task AGuestPoweroffEndsTheRunWithExitCodeZero()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // No --until: the only way to exit 0 is the guest switching the machine off. Typed on the PS/2 keyboard into
        // the shell on tty1 once a prompt shows on the screen.
        int exit = await CliMain.RunAsync(new[]
        {
            "run", "--memory", "128", "--kernel", GuestImages.PathOf(GuestImages.RescueKernel),
            "--initrd", GuestImages.PathOf(GuestImages.RescueInitrd), "--append", GuestImages.RescueCommandLine,
            "--type", "poweroff -f\\n", "--timeout", "1800", // generous: a loaded 2-core machine
        }, null, stdout, stderr, new MemoryStream());
        Assert.True(exit == 0, $"exit {exit}: {stderr}");
        Assert.Contains("the guest powered off", stderr.ToString());
    }
}

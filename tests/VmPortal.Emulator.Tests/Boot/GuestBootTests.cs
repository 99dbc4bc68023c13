using System.Globalization;
using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// Real guests from Debian packages boot on the emulated PC: SeaBIOS, the Linux rescue ISO (CD-ROM through SeaBIOS and
/// El Torito), direct kernel boot and iPXE. One class so the heavy boots run one after another (memtest86+'s long pass
/// has its own class, <see cref="MemtestPassTests"/>, so it runs beside them).
/// </summary>
[Trait("Category", "Boot")]
public class GuestBootTests
{
    private const uint LinuxNeeds = TestGuests.CpuidFpu | TestGuests.CpuidCx8 | TestGuests.CpuidCmov; // GUESTS.md
    private const string Linux = "Debian's i386 686 kernel";
    private const string Command = "uname -m; echo $((6*7))\n";

    [BootFact(0, "SeaBIOS")]
    public async Task SeaBiosShowsItsBannerOnTheVgaTextScreen()
    {
        using var h = new BootHarness(BootHarness.Config(memoryMiB: 32));
        await h.Start();
        await h.WaitFor(@"SeaBIOS \(version", serial: false);
    }

    [BootFact(LinuxNeeds, Linux, GuestImages.RescueIso)]
    public async Task TheLinuxIsoBootsFromCdToAShellDrivenByTheKeyboardAndReadFromTheScreen()
    {
        using var h = new BootHarness(BootHarness.Config(cdrom: GuestImages.RescueIso));
        await h.Start();
        await h.WaitFor(GuestImages.ReadyLine, serial: false);
        await h.WaitFor(@"^/ #", serial: false); // screen text has trailing blanks trimmed
        h.Machine.TypeText(Command);
        await h.WaitFor(@"^i686\s*$", serial: false);
        await h.WaitFor(@"^42\s*$", serial: false);
    }

    [BootFact(LinuxNeeds, Linux, GuestImages.RescueIso)]
    public async Task TheLinuxIsoShellAnswersOverTheSerialConsole()
    {
        using var h = new BootHarness(BootHarness.Config(cdrom: GuestImages.RescueIso));
        await h.Start();
        await h.WaitFor(GuestImages.ReadyLine, screen: false);
        await h.WaitFor(@"/ # ", screen: false);
        int from = h.Serial.Length;
        h.Machine.SendSerial("uname -m; echo $((6*7))\r"u8);
        await h.WaitFor(@"^i686\r?$", screen: false, serialFrom: from);
        await h.WaitFor(@"^42\r?$", screen: false, serialFrom: from);
    }

    /// <summary>Direct kernel boot with the CPU's JIT tier forced on (the ISO boots above use the default, which is on
    /// too) at its default threshold: most of the boot runs as compiled code and the shell works.</summary>
    [BootFact(LinuxNeeds, Linux, GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task DirectKernelBootReachesTheSamePrompt()
    {
        using var h = new BootHarness(BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd, append: GuestImages.RescueCommandLine, jit: true));
        await h.Start();
        await h.WaitFor(GuestImages.ReadyLine, screen: false);
        await h.WaitFor(@"/ # ", screen: false);
        int from = h.Serial.Length;
        h.Machine.SendSerial("echo $((6*7))\r"u8);
        await h.WaitFor(@"^42\r?$", screen: false, serialFrom: from);
        AssertLinuxMeasuredTheTsc(h.Serial, h.Machine.Config.TscFrequencyHz);
        var jit = h.Machine.JitStatistics!.Value;
        Assert.True(jit.Enabled);
        Assert.True(jit.BlocksCompiled > 20, jit.ToString());
        Assert.True(jit.Instructions > h.Machine.InstructionCount / 2, $"{jit} of {h.Machine.InstructionCount:N0}");
    }

    /// <summary>
    /// The kernel calibrated the TSC against the PIT and found the configured rate ("tsc: Detected 999.967 MHz
    /// processor"): PIT and TSC agree on guest time. (Later the kernel's clocksource watchdog may still mark the
    /// TSC unstable: with no ACPI PM timer, HPET or local APIC its only watchdog is the jiffies-based "pit"
    /// clocksource, whose reading is off by up to a tick once the PIT runs as a one-shot clockevent; see
    /// docs/platform.md.)
    /// </summary>
    private static void AssertLinuxMeasuredTheTsc(string serial, long tscHz)
    {
        var m = Regex.Match(serial, @"tsc: Detected (\d+\.\d+) MHz processor");
        Assert.True(m.Success, $"no TSC calibration in the kernel log:\n{serial[..Math.Min(serial.Length, 4000)]}");
        double mhz = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(mhz, tscHz / 1e6 * 0.98, tscHz / 1e6 * 1.02);
        Assert.DoesNotContain("Unable to calibrate against PIT", serial);
    }

    [BootFact(TestGuests.CpuidFxsr, "iPXE (its librm executes FXSAVE unconditionally)", GuestImages.IpxeIso)]
    public async Task IpxeShowsItsBanner()
    {
        using var h = new BootHarness(BootHarness.Config(memoryMiB: 64, cdrom: GuestImages.IpxeIso));
        await h.Start();
        await h.WaitFor(@"iPXE");
        await h.WaitFor(@"Open Source Network Boot Firmware");
    }
}

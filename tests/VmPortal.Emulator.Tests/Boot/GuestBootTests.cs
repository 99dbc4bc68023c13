using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// Real guests from Debian packages boot on the emulated PC: SeaBIOS, the Linux rescue ISO (CD-ROM through SeaBIOS and
/// El Torito), direct kernel boot, memtest86+ and iPXE. One class so the heavy boots run one after another.
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

    [BootFact(LinuxNeeds, Linux, GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task DirectKernelBootReachesTheSamePrompt()
    {
        using var h = new BootHarness(BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd, append: GuestImages.RescueCommandLine));
        await h.Start();
        await h.WaitFor(GuestImages.ReadyLine, screen: false);
        await h.WaitFor(@"/ # ", screen: false);
        int from = h.Serial.Length;
        h.Machine.SendSerial("echo $((6*7))\r"u8);
        await h.WaitFor(@"^42\r?$", screen: false, serialFrom: from);
    }

    [BootFact(0, "memtest86+", GuestImages.MemtestIso)]
    public async Task Memtest86PlusShowsItsTestScreen()
    {
        using var h = new BootHarness(BootHarness.Config(memoryMiB: 64, cdrom: GuestImages.MemtestIso));
        await h.Start();
        await h.WaitFor(@"Memtest86\+", serial: false);
        await h.WaitFor(@"Pass", serial: false);
        Assert.DoesNotMatch(@"Errors:\s*[1-9]", h.Screen);
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

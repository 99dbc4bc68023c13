using System.Diagnostics;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;
using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// A CD made by grub-mkrescue (GRUB 2, as most distributions' ISOs boot on BIOS machines): SeaBIOS boots its El Torito
/// image, GRUB shows its menu on the VGA text screen and counts down, then loads the rescue kernel and initramfs
/// (GRUB's 32-bit Linux loader, not ISOLINUX's) and the guest reaches its shell. GRUB switches between protected and
/// real mode through a conforming 16-bit code segment; a CPU that leaks that segment's cached attributes into real
/// mode hangs in SeaBIOS's timer interrupt right after "Booting from DVD/CD...". One boot, several assertions; in its
/// own class so it runs beside the other boot tests.
/// </summary>
[Trait("Category", "Boot")]
public class GrubIsoBootTests
{
    private const uint LinuxNeeds = TestGuests.CpuidFpu | TestGuests.CpuidCx8 | TestGuests.CpuidCmov;
    private readonly ITestOutputHelper _output;

    public GrubIsoBootTests(ITestOutputHelper output) => _output = output;

    [BootFact(LinuxNeeds, "Debian's i386 686 kernel booted by GRUB 2", GuestImages.RescueGrubIso)]
    public async Task TheGrubIsoShowsItsMenuCountsDownAndBootsTheRescueShell()
    {
        using var h = new BootHarness(BootHarness.Config(cdrom: GuestImages.RescueGrubIso));
        var sw = Stopwatch.StartNew();
        await h.Start();
        // The menu on the VGA text screen: GRUB's banner, the entry, and the countdown from 3 s.
        await h.WaitFor(@"GNU GRUB\s+version 2", serial: false);
        await h.WaitFor(@"\*?VmPortal rescue \(Debian i386\)", serial: false);
        await h.WaitFor(@"executed automatically in 3s", serial: false);
        var menuAt = sw.Elapsed;
        // The countdown goes on by itself (guest time: the PIT and CMOS clock drive GRUB's timer).
        await h.WaitFor(@"executed automatically in [12]s", serial: false);
        // The same menu on COM1 (terminal_output console serial).
        await h.WaitFor(@"VmPortal rescue \(Debian i386\)", screen: false);
        // The entry boots: GRUB's Linux loader, then the kernel and the initramfs's /init.
        await h.WaitFor(@"Linux version 6\.", screen: false);
        await h.WaitFor(GuestImages.ReadyLine, screen: false);
        await h.WaitFor(@"/ # ", screen: false);
        var shellAt = sw.Elapsed;
        int from = h.Serial.Length;
        h.Machine.SendSerial("uname -m; echo $((6*7))\r"u8);
        await h.WaitFor(@"^i686\r?$", screen: false, serialFrom: from);
        await h.WaitFor(@"^42\r?$", screen: false, serialFrom: from);
        // The kernel saw the initramfs GRUB loaded (its /init announced itself on the VGA console too).
        await h.WaitFor(GuestImages.ReadyLine, serial: false);
        _output.WriteLine($"menu after {menuAt.TotalSeconds:F1} s, shell after {shellAt.TotalSeconds:F1} s (host time), " +
                          $"guest time {h.Machine.Clock.NowNs / 1e9:F1} s, {h.Machine.InstructionCount:N0} instructions");
    }
}

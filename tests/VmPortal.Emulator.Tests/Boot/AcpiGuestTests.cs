using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// ACPI on the rescue guest (direct kernel boot), one machine for all steps: Linux finds SeaBIOS's ACPI tables for
/// the PIIX4 PM (RSDP, FACP, DSDT, S5, the SCI on IRQ 9, the fixed power button) without ACPI errors; <c>reboot -f</c>
/// resets the machine and the firmware runs again; the power button reaches the guest (its /init watcher reports the
/// sysfs count rising) and the guest then powers the machine off through S5 — a guest power-off, not a crash.
/// Its own class so xunit runs it beside the other boot tests.
/// </summary>
[Trait("Category", "Boot")]
public class AcpiGuestTests
{
    private const uint LinuxNeeds = TestGuests.CpuidFpu | TestGuests.CpuidCx8 | TestGuests.CpuidCmov;
    private const string PowerButtonLine = "VMPORTAL-POWER-BUTTON";

    [BootFact(LinuxNeeds, "Debian's i386 686 kernel", GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task LinuxUsesAcpiRebootsAndShutsDownOnThePowerButton()
    {
        using var h = new BootHarness(BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd,
            append: "console=ttyS0,115200"));
        var resets = new List<string>();
        h.Machine.ResetOccurred += r => { lock (resets) resets.Add(r); };
        await h.Start();
        await h.WaitFor(GuestImages.ReadyLine, screen: false);
        await h.WaitFor(@"/ # ", screen: false);

        // 1. What Linux found: the tables, the SCI, S5 and the power button, and no ACPI errors.
        int from = h.Serial.Length;
        h.Machine.SendSerial("dmesg | grep -i -E 'acpi|sci'; grep acpi /proc/interrupts; echo ACPI-LOG-END\r"u8);
        await h.WaitFor(@"^ACPI-LOG-END\r?$", screen: false, serialFrom: from);
        string log = h.Serial[from..];
        foreach (var expected in new[]
                 {
                     @"ACPI: RSDP 0x[0-9A-F]+ 000014 \(v00 BOCHS \)", @"ACPI: FACP 0x", @"ACPI: DSDT 0x", @"ACPI: SSDT 0x",
                     @"ACPI: PM-Timer IO Port: 0xb008", @"ACPI: Interpreter enabled", @"ACPI: PM: \(supports S0 S5\)",
                     @"ACPI: PCI Root Bridge \[PCI0\]", @"ACPI: button: Power Button \[PWRF\]",
                     @"^\s*9:\s+\d+\s+XT-PIC\s+acpi", // the SCI handler on IRQ 9
                 })
            Assert.True(Regex.IsMatch(log, expected, RegexOptions.Multiline), $"/{expected}/ not in:\n{log}");
        Assert.DoesNotMatch(@"ACPI (BIOS )?(Error|Exception|Warning)|AE_[A-Z_]+", log);

        // 2. reboot -f: the kernel resets the machine (no reset register in this FADT revision: the keyboard
        //    controller pulse), SeaBIOS runs again, Linux comes back.
        int beforeReboot = h.Serial.Length;
        int banners = Regex.Matches(h.Debug, @"SeaBIOS \(version").Count; // the firmware's log on port 0x402
        Assert.True(banners > 0, "no SeaBIOS log on port 0x402");
        h.Machine.SendSerial("reboot -f\r"u8);
        await h.WaitFor(GuestImages.ReadyLine, screen: false, serialFrom: beforeReboot);
        lock (resets) Assert.True(resets.Count == 1, "resets: " + string.Join(", ", resets));
        Assert.Equal(1, h.Machine.ResetCount);
        Assert.Equal(2 * banners, Regex.Matches(h.Debug, @"SeaBIOS \(version").Count); // the firmware ran again
        await h.WaitFor(@"/ # ", screen: false, serialFrom: beforeReboot);
        Assert.Equal(MachineState.Running, h.Machine.State);

        // 3. The power button: the guest hears it (its watcher sees /sys/firmware/acpi/interrupts/ff_pwr_btn rise)
        //    and powers off; the machine reports a guest power-off.
        await WaitUntil(() => h.Machine.GuestHandlesPowerButton, "the guest to enable the power-button event", h);
        int beforeButton = h.Serial.Length;
        h.Machine.PressPowerButton();
        await h.WaitFor(PowerButtonLine, screen: false, serialFrom: beforeButton);
        await h.Machine.Stopped.WaitAsync(BootHarness.StepTimeout);
        Assert.Equal(MachineState.PoweredOff, h.Machine.State);
        Assert.True(h.Machine.PoweredOffByGuest);
        Assert.Null(h.Machine.CrashReason);
        Assert.Contains("reboot: Power down", h.Serial[beforeButton..]);
    }

    private static async Task WaitUntil(Func<bool> condition, string what, BootHarness h)
    {
        var deadline = DateTime.UtcNow + BootHarness.StepTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"timed out waiting for {what}\n{h.Diagnostics()}");
            await Task.Delay(100);
        }
    }
}

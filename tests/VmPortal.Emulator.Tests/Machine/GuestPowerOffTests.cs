namespace VmPortal.Emulator.Tests.Platform;

/// <summary>
/// The machine side of ACPI with a 4 KiB firmware that programs the PIIX4 PM like SeaBIOS (PMBA 0xB000), enables
/// ACPI (0xF1 → port 0xB2) and the power-button event, polls PWRBTN_STS and then writes S5 (SLP_EN, SLP_TYP 0):
/// a guest power-off is a clean stop (<see cref="Machine.PoweredOffByGuest"/>), not a crash.
/// </summary>
public class GuestPowerOffTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Real-mode code; <paramref name="waitForButton"/> false writes S5 at once.</summary>
    public static byte[] AcpiGuest(bool waitForButton)
    {
        var code = new List<byte>
        {
            0xFA,                                     // cli
            0x66, 0xB8, 0x40, 0x0B, 0x00, 0x80,       // mov eax, 8000_0B40h (00:01.3 reg 40h PMBA)
            0xBA, 0xF8, 0x0C, 0x66, 0xEF,             // mov dx, 0CF8h; out dx, eax
            0x66, 0xB8, 0x01, 0xB0, 0x00, 0x00,       // mov eax, 0B001h
            0xBA, 0xFC, 0x0C, 0x66, 0xEF,             // mov dx, 0CFCh; out dx, eax
            0x66, 0xB8, 0x80, 0x0B, 0x00, 0x80,       // mov eax, 8000_0B80h (PMREGMISC)
            0xBA, 0xF8, 0x0C, 0x66, 0xEF,             // mov dx, 0CF8h; out dx, eax
            0xB0, 0x01, 0xBA, 0xFC, 0x0C, 0xEE,       // mov al, 1; mov dx, 0CFCh; out dx, al
            0xB0, 0xF1, 0xE6, 0xB2,                   // mov al, 0F1h; out 0B2h, al (ACPI enable)
            0xB8, 0x00, 0x01, 0xBA, 0x02, 0xB0, 0xEF, // mov ax, 100h; mov dx, 0B002h; out dx, ax (PWRBTN_EN)
        };
        if (waitForButton)
            code.AddRange(new byte[]
            {
                0xBA, 0x00, 0xB0,                     // mov dx, 0B000h (PM1_STS)
                0xED,                                 // L: in ax, dx
                0xA9, 0x00, 0x01,                     // test ax, 100h (PWRBTN_STS)
                0x74, 0xFA,                           // jz L
            });
        code.AddRange(new byte[]
        {
            0xB8, 0x00, 0x20, 0xBA, 0x04, 0xB0, 0xEF, // mov ax, 2000h; mov dx, 0B004h; out dx, ax (SLP_EN, S5)
            0xF4, 0xEB, 0xFD,                         // hlt; jmp $-1
        });
        var image = new byte[TestGuests.Size];
        code.CopyTo(image, 0);
        new byte[] { 0xEA, 0x00, 0xF0, 0x00, 0xF0 }.CopyTo(image, 0xFF0); // reset vector → F000:F000
        return image;
    }

    private static Machine NewMachine(byte[] bios, string name) =>
        new(new MachineConfigBuilder { Name = name, Bios = TestGuests.WriteTemp(bios, name) }.Build());

    [Fact]
    public async Task S5FromTheGuestPowersTheMachineOffCleanly()
    {
        using var m = NewMachine(AcpiGuest(waitForButton: false), "acpi-s5");
        int poweredOff = 0, crashed = 0;
        m.PoweredOff += () => poweredOff++;
        m.Crashed += _ => crashed++;
        await m.Start();
        await m.Stopped.WaitAsync(Wait);
        Assert.Equal(MachineState.PoweredOff, m.State);
        Assert.True(m.PoweredOffByGuest);
        Assert.Null(m.CrashReason);
        Assert.Equal((1, 0), (poweredOff, crashed));
    }

    [Fact]
    public async Task ThePowerButtonReachesTheGuestWhichThenPowersOff()
    {
        using var m = NewMachine(AcpiGuest(waitForButton: true), "acpi-button");
        await m.Start();
        var deadline = DateTime.UtcNow + Wait;
        while (!m.GuestHandlesPowerButton && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.True(m.GuestHandlesPowerButton);
        await Task.Delay(200);
        Assert.Equal(MachineState.Running, m.State); // polling: nothing happens until the button
        m.PressPowerButton();
        await m.Stopped.WaitAsync(Wait);
        Assert.True(m.PoweredOffByGuest);
    }

    [Fact]
    public async Task APowerOffFromTheHostIsNotAGuestPowerOffAndAGuestWithoutAcpiIgnoresTheButton()
    {
        using var m = NewMachine(TestGuests.Halt(), "acpi-none");
        await m.Start();
        m.PressPowerButton();
        await Task.Delay(300);
        Assert.Equal(MachineState.Running, m.State);
        Assert.False(m.GuestHandlesPowerButton);
        await m.PowerOff();
        Assert.Equal(MachineState.PoweredOff, m.State);
        Assert.False(m.PoweredOffByGuest);
    }
}

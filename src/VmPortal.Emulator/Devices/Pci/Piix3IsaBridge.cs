using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Pci;

/// <summary>
/// Intel 82371SB PIIX3 function 0, the PCI-to-ISA bridge (8086:7000, class 06 01 00) at 00:01.0, multi-function
/// (the IDE controller is 01.1). Its PIRQ route control registers 0x60–0x63 (PIRQA#–PIRQD#: bit 7 disables,
/// bits 3–0 give the ISA IRQ) steer PCI INTx# lines onto the PIC; the slot swizzle follows the i440FX board wiring,
/// PIRQ = (pin − 1 + device − 1) mod 4, the same formula SeaBIOS uses to fill each function's interrupt line.
/// Several INTx# sharing a PIRQ are wire-ORed, and PCI lines are level triggered (the guest sets the ELCR, see
/// <see cref="Pic.DualPic"/>). Other registers (0x4C ISA recovery, 0x69 top of memory, 0x6A misc…) are stored.
/// Guests: SeaBIOS (programs PIRQs to IRQ 10/11, builds $PIR), Linux (pirq routing, acpi=off paths).
/// </summary>
public sealed class Piix3IsaBridge : PciFunction, IPciInterruptRouter
{
    public const ushort IntelVendor = 0x8086, Piix3IsaDeviceId = 0x7000;
    public const int PirqRouteBase = 0x60, PirqCount = 4;
    public const byte PirqDisabled = 0x80, PirqIrqMask = 0x0F;

    private readonly IIrqSink _irq;
    private readonly bool[] _intx = new bool[PciBus.MaxDevices * PciBus.MaxFunctions * 4];
    private readonly int[] _pirqAsserted = new int[PirqCount];
    private readonly bool[] _isaLevel = new bool[16];

    public Piix3IsaBridge(IIrqSink irq) : base(IntelVendor, Piix3IsaDeviceId, 0x06, 0x01, 0x00, revision: 0, headerType: 0x80)
    {
        _irq = irq;
        for (int i = 0; i < PirqCount; i++) Config[PirqRouteBase + i] = PirqDisabled;
        Config[CommandOffset] = (byte)(CommandIo | CommandMemory | CommandBusMaster);
        Config[StatusOffset + 1] = 0x02; // DEVSEL medium
    }

    /// <summary>Machine reset: all PIRQs disabled.</summary>
    public void Reset()
    {
        for (int i = 0; i < PirqCount; i++) Config[PirqRouteBase + i] = PirqDisabled;
        UpdateIsaLines();
    }

    /// <summary>The ISA IRQ a PIRQ line is routed to, or -1 when disabled.</summary>
    public int PirqRoute(int pirq)
    {
        byte r = Config[PirqRouteBase + pirq];
        return (r & PirqDisabled) != 0 ? -1 : r & PirqIrqMask;
    }

    /// <summary>The PIRQ line (0 = PIRQA#) that <paramref name="pin"/> (1 = INTA#) of slot <paramref name="device"/> is wired to.</summary>
    public static int PirqFor(int device, int pin) => (pin - 1 + device - 1) & 3;

    public void SetPciIntx(int device, int function, int pin, bool level)
    {
        if (pin < 1 || pin > 4 || (uint)device >= PciBus.MaxDevices || (uint)function >= PciBus.MaxFunctions) return;
        int key = (device * PciBus.MaxFunctions + function) * 4 + pin - 1;
        if (_intx[key] == level) return;
        _intx[key] = level;
        _pirqAsserted[PirqFor(device, pin)] += level ? 1 : -1;
        UpdateIsaLines();
    }

    protected override void OnConfigLoaded() => UpdateIsaLines();

    protected override void WriteDeviceRegister(int offset, byte value)
    {
        if (offset >= PirqRouteBase && offset < PirqRouteBase + PirqCount)
        {
            Config[offset] = (byte)(value & (PirqDisabled | PirqIrqMask));
            UpdateIsaLines();
            return;
        }
        base.WriteDeviceRegister(offset, value);
    }

    private void UpdateIsaLines()
    {
        Span<bool> want = stackalloc bool[16];
        for (int p = 0; p < PirqCount; p++)
        {
            int irq = PirqRoute(p);
            // IRQ 0, 1, 2, 8 and 13 are reserved on the PIIX3 and cannot take a PIRQ.
            if (irq is > 2 and not 8 and not 13 && _pirqAsserted[p] > 0) want[irq] = true;
        }
        for (int i = 0; i < 16; i++)
        {
            if (want[i] == _isaLevel[i]) continue;
            _isaLevel[i] = want[i];
            _irq.SetIrq(i, want[i]);
        }
    }
}

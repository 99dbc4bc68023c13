using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// Intel PIIX3 IDE controller, PCI function 01.1 (8086:7010, class 0101, prog-if 0x80: both channels in fixed
/// compatibility mode, bus-master capable). The legacy channels are always decoded: primary 0x1F0–0x1F7/0x3F6
/// on IRQ 14, secondary 0x170–0x177/0x376 on IRQ 15. BAR4 is the 16-byte bus-master I/O block
/// (<see cref="IdeBusMaster"/>, primary at +0, secondary at +8), registered while I/O decoding is enabled.
/// Config 0x40–0x43 (IDETIM) and 0x44 (SIDETIM) are stored but do not gate decoding.
/// Guests: SeaBIOS (finds the controller, enables its decode), Linux ata_piix.
/// </summary>
public sealed class PiixIde : PciFunction
{
    public const ushort IntelVendorId = 0x8086, Piix3IdeDeviceId = 0x7010;
    public const int BusMasterBar = 4;
    public const uint BusMasterBarSize = 16;
    private const int IdeTimPrimary = 0x40, IdeTimSecondary = 0x42;

    private readonly IoBus _bus;
    private ushort _mappedBase;

    public PiixIde(IoBus bus, PhysicalMemory memory, IIrqSink irqSink)
        : base(IntelVendorId, Piix3IdeDeviceId, 0x01, 0x01, 0x80)
    {
        _bus = bus;
        Primary = new AtaChannel(bus, AtaChannel.PrimaryCommandBase, AtaChannel.PrimaryControlPort, AtaChannel.PrimaryIrq, irqSink);
        Secondary = new AtaChannel(bus, AtaChannel.SecondaryCommandBase, AtaChannel.SecondaryControlPort, AtaChannel.SecondaryIrq, irqSink);
        PrimaryBusMaster = new IdeBusMaster(Primary, memory);
        SecondaryBusMaster = new IdeBusMaster(Secondary, memory);
        PrimaryBusMaster.BusMasterAllowed = () => BusMasterEnabled;
        SecondaryBusMaster.BusMasterAllowed = () => BusMasterEnabled;
        DefineBar(BusMasterBar, BusMasterBarSize, io: true);
        Config[IdeTimPrimary + 1] = 0x80; // IDE decode enable, as after PIIX3 reset
        Config[IdeTimSecondary + 1] = 0x80;
        BarChanged += OnBarChanged;
    }

    public AtaChannel Primary { get; }
    public AtaChannel Secondary { get; }
    public IdeBusMaster PrimaryBusMaster { get; }
    public IdeBusMaster SecondaryBusMaster { get; }

    /// <summary>Machine reset: both channels' devices return to their power-on state.</summary>
    public void Reset()
    {
        PrimaryBusMaster.DropPending();
        SecondaryBusMaster.DropPending();
        Primary.Reset();
        Secondary.Reset();
    }

    /// <summary>Whether a bus-master transfer's end waits to be reported (<see cref="FinishDma"/>).</summary>
    public bool DmaFinishPending => PrimaryBusMaster.FinishIsPending || SecondaryBusMaster.FinishIsPending;

    /// <summary>Reports the end of both channels' finished transfers (status, interrupt). The machine calls it after a
    /// CPU slice in which a transfer ran, once the guest has run on a little or halted to wait for it.</summary>
    public void FinishDma()
    {
        PrimaryBusMaster.FinishPending();
        SecondaryBusMaster.FinishPending();
    }

    private void OnBarChanged(int bar)
    {
        if (bar != BusMasterBar) return;
        // A command-register write may have just enabled bus mastering for a transfer that was waiting.
        PrimaryBusMaster.TryTransfer();
        SecondaryBusMaster.TryTransfer();
        if (_mappedBase != 0) { _bus.Unregister(_mappedBase, (int)BusMasterBarSize); _mappedBase = 0; }
        uint addr = BarAddress(BusMasterBar);
        if (!IoEnabled || addr == 0 || addr >= 0xFFF0) return;
        _mappedBase = (ushort)addr;
        _bus.Register(_mappedBase, (int)BusMasterBarSize, ReadBusMaster, WriteBusMaster, wideAccess: true);
    }

    private uint ReadBusMaster(ushort port, int size)
    {
        int off = port - _mappedBase;
        var bm = off < 8 ? PrimaryBusMaster : SecondaryBusMaster;
        return bm.Read(off & 7, Math.Min(size, 8 - (off & 7)));
    }

    private void WriteBusMaster(ushort port, int size, uint value)
    {
        int off = port - _mappedBase;
        var bm = off < 8 ? PrimaryBusMaster : SecondaryBusMaster;
        bm.Write(off & 7, Math.Min(size, 8 - (off & 7)), value);
    }
}

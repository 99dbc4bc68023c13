using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// One IDE/ATA channel (PIIX3 IDE, compatibility mode): the command block at <c>commandBase</c>+0…7
/// (data, error/features, sector count, LBA low/mid/high, device, status/command) and the control block
/// at <c>controlPort</c> (alternate status / device control: nIEN, SRST, HOB), with up to two devices.
/// Primary: 0x1F0–0x1F7, 0x3F6, IRQ 14. Secondary: 0x170–0x177, 0x376, IRQ 15.
/// Host writes to the task file reach both devices; reads come from the selected one. The data port accepts
/// 16- and 32-bit accesses. INTRQ follows the spec: asserted while an interrupt is pending and nIEN is clear;
/// reading the status register clears it. Registers of an absent selected device read back what was written
/// and its status reads 0, like QEMU, so BIOS and Linux probing see "no device".
/// Guests: SeaBIOS, Linux ata_piix/libata, DOS.
/// </summary>
public sealed class AtaChannel
{
    public const ushort PrimaryCommandBase = 0x1F0, PrimaryControlPort = 0x3F6, SecondaryCommandBase = 0x170, SecondaryControlPort = 0x376;
    public const int PrimaryIrq = 14, SecondaryIrq = 15;

    private readonly AtaDevice?[] _devices = new AtaDevice?[2];
    private readonly IIrqSink _irqSink;
    private readonly int _irq;
    private int _selected;
    private byte _control;
    private bool _irqPending, _irqLine;
    // Task file as last written by the host, for reads of an absent selected device.
    private byte _feat, _count, _lbaLow, _lbaMid, _lbaHigh, _device = AtaProtocol.DeviceObsolete;

    public AtaChannel(IoBus bus, ushort commandBase, ushort controlPort, int irq, IIrqSink irqSink)
    {
        CommandBase = commandBase;
        ControlPort = controlPort;
        _irq = irq;
        _irqSink = irqSink;
        bus.Register(commandBase, 1, ReadDataPort, WriteDataPort, wideAccess: true);
        bus.Register((ushort)(commandBase + 1), 7, ReadRegister, WriteRegister);
        bus.Register(controlPort, 1, ReadControl, WriteControl);
    }

    public ushort CommandBase { get; }
    public ushort ControlPort { get; }
    public int Irq => _irq;

    /// <summary>The bus-master DMA engine of this channel (set by <see cref="PiixIde"/>), if any.</summary>
    public IdeBusMaster? BusMaster { get; internal set; }

    public AtaDevice? Master => _devices[0];
    public AtaDevice? Slave => _devices[1];

    /// <summary>Connects <paramref name="device"/> as master (0) or slave (1).</summary>
    public void Attach(int unit, AtaDevice device)
    {
        if (unit is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(unit));
        device.Channel = this;
        _devices[unit] = device;
    }

    internal AtaDevice? Selected => _devices[_selected];

    /// <summary>True while INTRQ is asserted.</summary>
    public bool IrqAsserted => _irqLine;

    /// <summary>Hardware reset (machine reset): both devices to their power-on state.</summary>
    public void Reset()
    {
        _control = 0;
        _selected = 0;
        _irqPending = false;
        UpdateIrq();
        foreach (var d in _devices) d?.Reset();
    }

    internal void RaiseIrq()
    {
        _irqPending = true;
        BusMaster?.SetInterruptFlag();
        UpdateIrq();
    }

    private void UpdateIrq()
    {
        bool level = _irqPending && (_control & AtaProtocol.ControlNien) == 0;
        if (level == _irqLine) return;
        _irqLine = level;
        _irqSink.SetIrq(_irq, level);
    }

    private bool AnyDevice => _devices[0] != null || _devices[1] != null;

    private uint ReadDataPort(ushort port, int size)
    {
        var d = Selected;
        if (d == null) return size == 4 ? 0xFFFF_FFFFu : 0xFFFFu;
        return d.ReadData(size);
    }

    private void WriteDataPort(ushort port, int size, uint value) => Selected?.WriteData(size, value);

    private uint ReadRegister(ushort port, int size)
    {
        int reg = port - CommandBase;
        var d = Selected;
        if (!AnyDevice) return 0;
        bool hob = (_control & AtaProtocol.ControlHob) != 0;
        if (d == null)
        {
            return reg switch
            {
                AtaProtocol.RegErrorFeatures => 0,
                AtaProtocol.RegSectorCount => _count,
                AtaProtocol.RegLbaLow => _lbaLow,
                AtaProtocol.RegLbaMid => _lbaMid,
                AtaProtocol.RegLbaHigh => _lbaHigh,
                AtaProtocol.RegDevice => _device,
                _ => 0, // status of an absent device
            };
        }
        switch (reg)
        {
            case AtaProtocol.RegErrorFeatures: return hob ? d.HobFeatures : d.Error;
            case AtaProtocol.RegSectorCount: return hob ? d.HobSectorCount : d.SectorCount;
            case AtaProtocol.RegLbaLow: return hob ? d.HobLbaLow : d.LbaLow;
            case AtaProtocol.RegLbaMid: return hob ? d.HobLbaMid : d.LbaMid;
            case AtaProtocol.RegLbaHigh: return hob ? d.HobLbaHigh : d.LbaHigh;
            case AtaProtocol.RegDevice: return (uint)(d.Device | AtaProtocol.DeviceObsolete);
            default:
                _irqPending = false;
                UpdateIrq();
                return d.Status;
        }
    }

    private void WriteRegister(ushort port, int size, uint value)
    {
        int reg = port - CommandBase;
        byte v = (byte)value;
        if (reg != AtaProtocol.RegStatusCommand) _control &= unchecked((byte)~AtaProtocol.ControlHob); // any task file write clears HOB
        switch (reg)
        {
            case AtaProtocol.RegErrorFeatures: _feat = v; foreach (var d in _devices) if (d != null) { d.HobFeatures = d.Features; d.Features = v; } break;
            case AtaProtocol.RegSectorCount: _count = v; foreach (var d in _devices) if (d != null) { d.HobSectorCount = d.SectorCount; d.SectorCount = v; } break;
            case AtaProtocol.RegLbaLow: _lbaLow = v; foreach (var d in _devices) if (d != null) { d.HobLbaLow = d.LbaLow; d.LbaLow = v; } break;
            case AtaProtocol.RegLbaMid: _lbaMid = v; foreach (var d in _devices) if (d != null) { d.HobLbaMid = d.LbaMid; d.LbaMid = v; } break;
            case AtaProtocol.RegLbaHigh: _lbaHigh = v; foreach (var d in _devices) if (d != null) { d.HobLbaHigh = d.LbaHigh; d.LbaHigh = v; } break;
            case AtaProtocol.RegDevice:
                _device = v;
                _selected = (v & AtaProtocol.DeviceDev) != 0 ? 1 : 0;
                foreach (var d in _devices) if (d != null) d.Device = v;
                break;
            default:
                ExecuteCommand(v);
                break;
        }
    }

    private void ExecuteCommand(byte command)
    {
        var d = Selected;
        if (d == null) return; // commands to an absent device are ignored
        if ((d.Status & AtaProtocol.StatusBsy) != 0 && command != AtaProtocol.CmdDeviceReset) return;
        _irqPending = false;
        UpdateIrq();
        if (command == AtaProtocol.CmdExecuteDiagnostic)
        {
            foreach (var dev in _devices) dev?.SetSignature();
            _selected = 0;
            _device = AtaProtocol.DeviceObsolete;
            RaiseIrq();
            return;
        }
        d.ExecuteCommand(command);
    }

    private uint ReadControl(ushort port, int size)
    {
        var d = Selected;
        if (!AnyDevice || d == null) return 0;
        return d.Status; // alternate status: does not clear the interrupt
    }

    private void WriteControl(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        bool wasReset = (_control & AtaProtocol.ControlSrst) != 0;
        bool reset = (v & AtaProtocol.ControlSrst) != 0;
        _control = v;
        if (reset && !wasReset)
        {
            foreach (var d in _devices) if (d != null) d.Status = AtaProtocol.StatusBsy;
        }
        else if (!reset && wasReset)
        {
            foreach (var d in _devices) d?.Reset();
            _selected = 0;
            _device = AtaProtocol.DeviceObsolete;
        }
        UpdateIrq();
    }
}

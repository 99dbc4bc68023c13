using System.Buffers.Binary;

namespace VmPortal.Emulator.Devices.Pci;

/// <summary>
/// One PCI function's 256-byte type-0 configuration space. Subclasses (host bridge, PIIX3, IDE, VGA, NIC…)
/// describe their identity and BARs; the base class implements the standard header behaviour: read-only IDs,
/// the command/status registers, BAR size probing (write all ones, read back the size mask) and the expansion
/// ROM BAR. <see cref="BarChanged"/> is called when the guest moves a BAR or toggles I/O / memory decoding,
/// so the device can re-register its ports or MMIO range.
/// </summary>
public abstract class PciFunction
{
    public const int VendorIdOffset = 0x00, DeviceIdOffset = 0x02, CommandOffset = 0x04, StatusOffset = 0x06;
    public const int RevisionOffset = 0x08, ClassOffset = 0x09, HeaderTypeOffset = 0x0E, Bar0Offset = 0x10;
    public const int SubsystemVendorOffset = 0x2C, RomBarOffset = 0x30, InterruptLineOffset = 0x3C, InterruptPinOffset = 0x3D;
    public const ushort CommandIo = 1, CommandMemory = 2, CommandBusMaster = 4;

    protected readonly byte[] Config = new byte[256];
    private readonly BarInfo[] _bars = new BarInfo[7]; // 0–5 and 6 = expansion ROM

    protected PciFunction(ushort vendorId, ushort deviceId, byte classCode, byte subclass, byte progIf, byte revision = 0, byte headerType = 0)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(VendorIdOffset), vendorId);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(DeviceIdOffset), deviceId);
        Config[RevisionOffset] = revision;
        Config[ClassOffset] = progIf;
        Config[ClassOffset + 1] = subclass;
        Config[ClassOffset + 2] = classCode;
        Config[HeaderTypeOffset] = headerType;
    }

    public ushort VendorId => BinaryPrimitives.ReadUInt16LittleEndian(Config.AsSpan(VendorIdOffset));
    public ushort DeviceId => BinaryPrimitives.ReadUInt16LittleEndian(Config.AsSpan(DeviceIdOffset));
    public ushort Command => BinaryPrimitives.ReadUInt16LittleEndian(Config.AsSpan(CommandOffset));
    public bool IoEnabled => (Command & CommandIo) != 0;
    public bool MemoryEnabled => (Command & CommandMemory) != 0;
    public bool BusMasterEnabled => (Command & CommandBusMaster) != 0;

    /// <summary>Command register bit 10: the function's INTx# output is disabled.</summary>
    public const ushort CommandInterruptDisable = 0x400;
    /// <summary>Status register bit 3: the function's INTx# is asserted (before the disable bit).</summary>
    public const ushort StatusInterrupt = 0x08;

    private Action<PciFunction, bool>? _intxSink;
    private bool _intxRequested;
    private bool _intxDriven;

    /// <summary>PCI device number (slot) on bus 0 once added to a <see cref="PciBus"/>, else -1.</summary>
    public int DeviceNumber { get; private set; } = -1;

    /// <summary>Function number (0–7) once added to a <see cref="PciBus"/>, else -1.</summary>
    public int FunctionNumber { get; private set; } = -1;

    /// <summary>The interrupt pin register (0x3D): 0 none, 1 = INTA# … 4 = INTD#.</summary>
    public int InterruptPin => Config[InterruptPinOffset];

    /// <summary>Declares which INTx# pin the function uses (1 = INTA# … 4 = INTD#).</summary>
    protected void SetInterruptPin(int pin) => Config[InterruptPinOffset] = (byte)pin;

    /// <summary>
    /// Asserts or releases this function's INTx# line (level triggered; hold it while the device needs service).
    /// The bus routes it through the PIIX3 PIRQ registers to an ISA IRQ. Honors the command register's interrupt disable.
    /// </summary>
    protected void SetIntx(bool level)
    {
        _intxRequested = level;
        if (level) Config[StatusOffset] |= (byte)StatusInterrupt; else Config[StatusOffset] &= unchecked((byte)~StatusInterrupt);
        DriveIntx();
    }

    private void DriveIntx()
    {
        bool drive = _intxRequested && (Command & CommandInterruptDisable) == 0 && InterruptPin != 0;
        if (drive == _intxDriven) return;
        _intxDriven = drive;
        _intxSink?.Invoke(this, drive);
    }

    /// <summary>Named, versioned snapshot of the 256-byte configuration space and the INTx# request.</summary>
    public sealed record ConfigState(int Version, byte[] Config, bool IntxRequested)
    {
        public const int CurrentVersion = 1;
    }

    public ConfigState SaveConfigState() => new(ConfigState.CurrentVersion, (byte[])Config.Clone(), _intxRequested);

    /// <summary>Restores the configuration space, then lets the device re-map BARs and decode (<see cref="BarChanged"/>, <see cref="OnConfigLoaded"/>).</summary>
    public void LoadConfigState(ConfigState s)
    {
        if (s.Version != ConfigState.CurrentVersion) throw new InvalidDataException($"PCI config state version {s.Version} is not supported.");
        s.Config.AsSpan(0, Config.Length).CopyTo(Config);
        _intxRequested = s.IntxRequested;
        for (int bar = 0; bar < 7; bar++) if (_bars[bar].Defined) BarChanged?.Invoke(bar);
        OnConfigLoaded();
        DriveIntx();
    }

    /// <summary>Device hook after <see cref="LoadConfigState"/> (apply device registers held in config space).</summary>
    protected virtual void OnConfigLoaded() { }

    /// <summary>Called by the bus when the function is placed at <paramref name="device"/>.<paramref name="function"/>.</summary>
    internal void AttachToBus(int device, int function, Action<PciFunction, bool>? intxSink)
    {
        DeviceNumber = device;
        FunctionNumber = function;
        _intxSink = intxSink;
    }

    /// <summary>Called with the BAR index (6 = ROM) when its address or the decode enables change.</summary>
    public event Action<int>? BarChanged;

    /// <summary>Declares BAR <paramref name="index"/> (0–5) of <paramref name="size"/> bytes (a power of two). I/O BARs need size ≥ 4, memory BARs ≥ 16.</summary>
    protected void DefineBar(int index, uint size, bool io, bool prefetchable = false)
    {
        if (size == 0 || (size & (size - 1)) != 0) throw new ArgumentException("BAR size must be a power of two.");
        _bars[index] = new BarInfo(size, io, prefetchable, true);
        uint flags = io ? 1u : (prefetchable ? 8u : 0u);
        WriteConfigRaw(Bar0Offset + 4 * index, flags);
    }

    /// <summary>Declares an expansion ROM of <paramref name="size"/> bytes (BAR 6, offset 0x30).</summary>
    protected void DefineRomBar(uint size)
    {
        if (size == 0 || (size & (size - 1)) != 0) throw new ArgumentException("ROM size must be a power of two.");
        _bars[6] = new BarInfo(size, false, false, true);
    }

    /// <summary>Current base address of BAR <paramref name="index"/> (flags stripped); 6 is the expansion ROM.</summary>
    public uint BarAddress(int index)
    {
        uint raw = ReadConfigRaw(index == 6 ? RomBarOffset : Bar0Offset + 4 * index);
        if (index == 6) return raw & 0xFFFF_F800;
        return _bars[index].Io ? raw & 0xFFFF_FFFC : raw & 0xFFFF_FFF0;
    }

    public bool RomEnabled => (ReadConfigRaw(RomBarOffset) & 1) != 0 && MemoryEnabled;

    public virtual uint ReadConfig(int offset, int size)
    {
        uint v = 0;
        for (int i = 0; i < size; i++) v |= (uint)Config[(offset + i) & 0xFF] << (8 * i);
        return v;
    }

    public virtual void WriteConfig(int offset, int size, uint value)
    {
        for (int i = 0; i < size; i++)
        {
            int off = (offset + i) & 0xFF;
            byte b = (byte)(value >> (8 * i));
            WriteConfigByte(off, b);
        }
        // Notify after the whole access so a 32-bit BAR write is seen once, complete.
        if (offset <= CommandOffset && offset + size > CommandOffset)
            for (int bar = 0; bar < 7; bar++) if (_bars[bar].Defined) BarChanged?.Invoke(bar);
        if (offset <= CommandOffset + 1 && offset + size > CommandOffset + 1) DriveIntx();
        for (int bar = 0; bar < 6; bar++)
        {
            int bo = Bar0Offset + 4 * bar;
            if (_bars[bar].Defined && offset < bo + 4 && offset + size > bo) BarChanged?.Invoke(bar);
        }
        if (_bars[6].Defined && offset < RomBarOffset + 4 && offset + size > RomBarOffset) BarChanged?.Invoke(6);
    }

    /// <summary>Device-specific registers (offset ≥ 0x40) land here; the default stores the byte.</summary>
    protected virtual void WriteDeviceRegister(int offset, byte value) => Config[offset] = value;

    private void WriteConfigByte(int off, byte b)
    {
        switch (off)
        {
            case CommandOffset: Config[off] = (byte)(b & 0x07); return;   // I/O, memory, bus master
            case CommandOffset + 1: Config[off] = (byte)(b & 0x05); return; // SERR, interrupt disable
            case StatusOffset: Config[off] &= (byte)~(b & ~StatusInterrupt); return; // write 1 to clear; INTx status is live
            case StatusOffset + 1: Config[off] &= (byte)~b; return;
            case InterruptLineOffset: Config[off] = b; return;
            case 0x0C: case 0x0D: Config[off] = b; return; // cache line size, latency timer
        }
        if (off >= Bar0Offset && off < Bar0Offset + 24)
        {
            int bar = (off - Bar0Offset) / 4;
            var info = _bars[bar];
            if (!info.Defined) return;
            int byteIndex = (off - Bar0Offset) % 4;
            uint current = ReadConfigRaw(Bar0Offset + 4 * bar);
            uint updated = (current & ~(0xFFu << (8 * byteIndex))) | ((uint)b << (8 * byteIndex));
            uint mask = ~(info.Size - 1);
            uint flags = info.Io ? 1u : (info.Prefetchable ? 8u : 0u);
            WriteConfigRaw(Bar0Offset + 4 * bar, (updated & mask & (info.Io ? 0xFFFF_FFFC : 0xFFFF_FFF0)) | flags);
            return;
        }
        if (off >= RomBarOffset && off < RomBarOffset + 4)
        {
            var info = _bars[6];
            if (!info.Defined) return;
            int byteIndex = off - RomBarOffset;
            uint current = ReadConfigRaw(RomBarOffset);
            uint updated = (current & ~(0xFFu << (8 * byteIndex))) | ((uint)b << (8 * byteIndex));
            WriteConfigRaw(RomBarOffset, updated & (~(info.Size - 1) | 1));
            return;
        }
        if (off >= 0x40) WriteDeviceRegister(off, b);
        // Other header bytes are read-only.
    }

    protected uint ReadConfigRaw(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(Config.AsSpan(offset));
    protected void WriteConfigRaw(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Config.AsSpan(offset), value);

    private readonly record struct BarInfo(uint Size, bool Io, bool Prefetchable, bool Defined);
}

using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Pci;

/// <summary>
/// PCI bus 0 behind configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 (32-bit: bit 31 enable, bits 23–16 bus,
/// 15–11 device, 10–8 function, 7–2 register) and CONFIG_DATA at 0xCFC–0xCFF (8/16/32-bit accesses at the byte
/// offset given by the port). Absent functions and other buses read all ones. Byte port 0xCF9 is the PIIX3 reset
/// control register (bit 2 RCPU: a 0→1 write resets the machine; bit 1 SRST: hard reset), raised as
/// <see cref="ResetRequested"/>. Functions are placed with <see cref="Add"/>; their INTx# lines go to
/// <see cref="InterruptRouter"/> (the PIIX3). Guests: SeaBIOS (enumerates and assigns BARs and IRQs, detects QEMU
/// from the host bridge), Linux (pci=conf1 probing, reboot via 0xCF9), iPXE (finds NICs).
/// </summary>
public sealed class PciBus
{
    public const ushort ConfigAddressPort = 0xCF8, ResetControlPort = 0xCF9, ConfigDataPort = 0xCFC;
    public const uint ConfigEnable = 0x8000_0000;
    public const byte ResetCpu = 0x04, ResetSystem = 0x02;
    public const int MaxDevices = 32, MaxFunctions = 8;

    private readonly PciFunction?[] _functions = new PciFunction?[MaxDevices * MaxFunctions];
    private uint _address;
    private byte _resetControl;

    public PciBus(IoBus io)
    {
        io.Register(ConfigAddressPort, 4, ReadAddress, WriteAddress, wideAccess: true);
        io.Register(ConfigDataPort, 4, ReadData, WriteData, wideAccess: true);
    }

    /// <summary>Routes INTx# of every function (set to the PIIX3 ISA bridge).</summary>
    public IPciInterruptRouter? InterruptRouter { get; set; }

    /// <summary>Raised when the guest writes the reset control register (0xCF9) to reset the machine.</summary>
    public event Action? ResetRequested;

    /// <summary>Last value written to CONFIG_ADDRESS.</summary>
    public uint ConfigAddress => _address;

    /// <summary>Places <paramref name="pciFunction"/> at 00:<paramref name="device"/>.<paramref name="function"/>. Function 0 of a multi-function device must set header type bit 7.</summary>
    public void Add(int device, int function, PciFunction pciFunction)
    {
        if ((uint)device >= MaxDevices || (uint)function >= MaxFunctions) throw new ArgumentOutOfRangeException(nameof(device));
        if (_functions[device * MaxFunctions + function] != null) throw new InvalidOperationException($"PCI slot {device:X2}.{function} is taken.");
        _functions[device * MaxFunctions + function] = pciFunction;
        pciFunction.AttachToBus(device, function, RouteIntx);
    }

    public PciFunction? Get(int device, int function) =>
        (uint)device < MaxDevices && (uint)function < MaxFunctions ? _functions[device * MaxFunctions + function] : null;

    /// <summary>Host-side configuration read (firmware loaders, tests).</summary>
    public uint ReadConfig(int device, int function, int offset, int size) =>
        Get(device, function)?.ReadConfig(offset, size) ?? SizeMask(size);

    public void WriteConfig(int device, int function, int offset, int size, uint value) =>
        Get(device, function)?.WriteConfig(offset, size, value);

    /// <summary>Named, versioned snapshot of the bus registers (each function saves its own configuration space).</summary>
    public sealed record State(int Version, uint ConfigAddress, byte ResetControl)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _address, _resetControl);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"PCI bus state version {s.Version} is not supported.");
        (_address, _resetControl) = (s.ConfigAddress, s.ResetControl);
    }

    private void RouteIntx(PciFunction f, bool level) => InterruptRouter?.SetPciIntx(f.DeviceNumber, f.FunctionNumber, f.InterruptPin, level);

    private uint ReadAddress(ushort port, int size)
    {
        if (port == ConfigAddressPort && size == 4) return _address;
        if (port == ResetControlPort && size == 1) return _resetControl;
        return SizeMask(size);
    }

    private void WriteAddress(ushort port, int size, uint value)
    {
        if (port == ConfigAddressPort && size == 4)
        {
            _address = value & 0x80FF_FFFC;
            return;
        }
        if (port == ResetControlPort && size == 1)
        {
            byte old = _resetControl;
            _resetControl = (byte)(value & (ResetCpu | ResetSystem));
            if ((value & ResetCpu) != 0 && (old & ResetCpu) == 0)
            {
                _resetControl = 0; // the reset clears the register
                ResetRequested?.Invoke();
            }
        }
    }

    private PciFunction? Selected(out int offset)
    {
        offset = (int)(_address & 0xFC);
        if ((_address & ConfigEnable) == 0 || ((_address >> 16) & 0xFF) != 0) return null;
        int slot = (int)((_address >> 8) & 0xFF);
        return _functions[slot];
    }

    private uint ReadData(ushort port, int size)
    {
        var f = Selected(out int offset);
        if (f == null) return SizeMask(size);
        return f.ReadConfig(offset + (port - ConfigDataPort), size);
    }

    private void WriteData(ushort port, int size, uint value)
    {
        Selected(out int offset)?.WriteConfig(offset + (port - ConfigDataPort), size, value);
    }

    private static uint SizeMask(int size) => size switch { 1 => 0xFFu, 2 => 0xFFFFu, _ => 0xFFFF_FFFFu };
}

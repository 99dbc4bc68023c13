using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Misc;

/// <summary>
/// System control port A at 0x92 ("PS/2 fast A20 and fast reset", PIIX3 port 92).
/// Bit 0: writing 1 (from 0) pulses the CPU reset line (reads back 0 after the reset). Bit 1: A20 gate
/// (reads back the current state of <see cref="PhysicalMemory.A20Enabled"/>, which the i8042 output port also drives).
/// Other bits are stored. Guests: SeaBIOS (enables A20 here), Linux's boot A20 code, memtest86+.
/// </summary>
public sealed class SystemControlPortA
{
    public const ushort Port = 0x92;
    public const byte FastReset = 0x01, A20Gate = 0x02;

    private readonly PhysicalMemory _memory;
    private byte _value;

    public SystemControlPortA(IoBus io, PhysicalMemory memory)
    {
        _memory = memory;
        io.Register(Port, 1, Read, Write);
    }

    /// <summary>Raised when the guest requests a reset through bit 0. The machine resets the CPU (and devices).</summary>
    public event Action? ResetRequested;

    /// <summary>Machine reset: clears the stored bits (the machine sets A20 itself on reset).</summary>
    public void Reset() => _value = 0;

    /// <summary>Named, versioned snapshot (A20 itself lives in <see cref="PhysicalMemory"/>).</summary>
    public sealed record State(int Version, byte Value)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _value);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"Port A state version {s.Version} is not supported.");
        _value = s.Value;
    }

    private uint Read(ushort port, int size) => (uint)((_value & ~(FastReset | A20Gate)) | (_memory.A20Enabled ? A20Gate : 0));

    private void Write(ushort port, int size, uint value)
    {
        byte b = (byte)value;
        bool reset = (b & FastReset) != 0 && (_value & FastReset) == 0;
        _value = (byte)(b & ~FastReset);
        _memory.A20Enabled = (b & A20Gate) != 0;
        if (reset) ResetRequested?.Invoke();
    }
}

using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Devices.Misc;

/// <summary>
/// System control port B at 0x61 (the AT's "port B", in the PIIX3 as NMI status and control).
/// Write: bit 0 PIT counter 2 GATE, bit 1 speaker data enable, bits 2–3 parity/IOCHK check disables.
/// Read: bits 0–3 as written, bit 4 DRAM refresh toggle (flips every 15.085 µs of guest time), bit 5 counter 2 OUT,
/// bit 6 IOCHK# NMI source, bit 7 PCI SERR#/parity NMI source (both always 0 here).
/// Guests: SeaBIOS and Linux (counter 2 TSC calibration via GATE/OUT), memtest86+ and older code timing
/// delays on the refresh toggle, the PC speaker (beeps).
/// </summary>
public sealed class SystemControlPortB
{
    public const ushort Port = 0x61;
    public const byte Timer2Gate = 0x01, SpeakerEnable = 0x02, ParityCheckDisable = 0x04, ChannelCheckDisable = 0x08;
    public const byte RefreshToggle = 0x10, Timer2Output = 0x20;
    public const long RefreshPeriodNs = 15_085;

    private readonly Pit8254 _pit;
    private readonly MachineClock _clock;
    private byte _written;

    public SystemControlPortB(IoBus io, Pit8254 pit, MachineClock clock)
    {
        _pit = pit;
        _clock = clock;
        io.Register(Port, 1, Read, Write);
    }

    /// <summary>True while the speaker sounds counter 2's square wave (gate and speaker data both on).</summary>
    public bool SpeakerOn => (_written & (Timer2Gate | SpeakerEnable)) == (Timer2Gate | SpeakerEnable);

    /// <summary>Raised when <see cref="SpeakerOn"/> changes (for a bell in the console).</summary>
    public event Action<bool>? SpeakerChanged;

    /// <summary>Machine reset: gate and speaker off.</summary>
    public void Reset() => Write(Port, 1, 0);

    /// <summary>Named, versioned snapshot (the bits the guest wrote).</summary>
    public sealed record State(int Version, byte Written)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _written);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"Port B state version {s.Version} is not supported.");
        Write(Port, 1, s.Written);
    }

    private uint Read(ushort port, int size)
    {
        int v = _written & 0x0F;
        if ((_clock.NowNs / RefreshPeriodNs & 1) != 0) v |= RefreshToggle;
        if (_pit.Channel2Output) v |= Timer2Output;
        return (uint)v;
    }

    private void Write(ushort port, int size, uint value)
    {
        bool wasOn = SpeakerOn;
        _written = (byte)(value & 0x0F);
        _pit.Channel2Gate = (_written & Timer2Gate) != 0;
        if (SpeakerOn != wasOn) SpeakerChanged?.Invoke(SpeakerOn);
    }
}

using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Devices.Pit;

/// <summary>
/// Intel 8254 programmable interval timer at 0x40–0x43 (counter 0, 1, 2 data ports and the control word port),
/// clocked at 1.193182 MHz derived from <see cref="MachineClock.NowNs"/>. Counter 0's OUT drives IRQ 0 through a
/// <see cref="GuestTimer"/> armed for the next rising edge (no per-instruction polling); counter 1 (DRAM refresh)
/// only counts; counter 2's GATE and OUT are wired to port 0x61 (<see cref="Misc.SystemControlPortB"/>) for the
/// speaker and for delay/calibration loops.
/// Control word (0x43): SC1:0 counter or 11 = read-back; RW1:0 00 = latch, 01 lo, 10 hi, 11 lo/hi; M2:0; BCD.
/// Guests: SeaBIOS (mode 2 18.2 Hz tick, counter 2 for TSC calibration), Linux (mode 2 periodic / mode 0 one-shot
/// clockevent, counter 2 TSC calibration), memtest86+ (counter 2 timing), iPXE.
/// When the machine falls behind, missed periods of counter 0 collapse into one interrupt (the PIC latches one edge anyway).
/// </summary>
public sealed class Pit8254
{
    public const ushort DefaultBasePort = 0x40;
    public const int Counter0Port = 0, Counter1Port = 1, Counter2Port = 2, ControlPort = 3;
    public const long FrequencyHz = 1_193_182;
    public const byte ReadBackCommand = 0xC0, ReadBackNoCount = 0x20, ReadBackNoStatus = 0x10;
    private const long NsPerSecond = 1_000_000_000;

    private readonly ushort _base;
    private readonly IIrqSink _irq;
    private readonly int _irqLine;
    private readonly MachineClock _clock;
    private readonly GuestTimer _timer;
    private PitChannel[] _channels;
    private bool _line = true; // counter 0 OUT idles high after power-on (like an idle mode 3 counter)

    public Pit8254(IoBus io, IIrqSink irq, TimerScheduler scheduler, ushort basePort = DefaultBasePort, int irqLine = 0)
    {
        _base = basePort;
        _irq = irq;
        _irqLine = irqLine;
        _clock = scheduler.Clock;
        _timer = scheduler.CreateTimer("pit-counter0", OnCounter0Edge);
        _channels = new[] { new PitChannel(0, true), new PitChannel(1, true), new PitChannel(2, false) };
        io.Register(basePort, 4, Read, Write);
    }

    public PitChannel Channel(int index) => _channels[index];

    /// <summary>Machine reset: counters back to their power-on state (counter 2 gate low), no timer armed.</summary>
    public void Reset()
    {
        _timer.Cancel();
        _channels = new[] { new PitChannel(0, true), new PitChannel(1, true), new PitChannel(2, false) };
        SetLine(true);
    }

    /// <summary>Counter 2 GATE (port 0x61 bit 0).</summary>
    public bool Channel2Gate
    {
        get => _channels[2].Gate;
        set => _channels[2].SetGate(value, _clock.NowNs);
    }

    /// <summary>Counter 2 OUT (port 0x61 bit 5; the speaker input).</summary>
    public bool Channel2Output => _channels[2].OutAt(_clock.NowNs);

    public static long NsToTicks(long ns) => ns / NsPerSecond * FrequencyHz + ns % NsPerSecond * FrequencyHz / NsPerSecond;

    /// <summary>Guest nanoseconds until <paramref name="ticks"/> input-clock ticks have passed (rounded up).</summary>
    public static long TicksToNs(long ticks) => ticks / FrequencyHz * NsPerSecond + (ticks % FrequencyHz * NsPerSecond + FrequencyHz - 1) / FrequencyHz;

    /// <summary>Named, versioned snapshot: the three counters and the IRQ 0 line. Restore into a machine whose clock resumed at the saved guest time.</summary>
    public sealed record State(int Version, PitChannel.State[] Channels, bool Line)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, [_channels[0].SaveState(), _channels[1].SaveState(), _channels[2].SaveState()], _line);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"PIT state version {s.Version} is not supported.");
        for (int i = 0; i < 3; i++) _channels[i].LoadState(s.Channels[i]);
        _line = s.Line;
        Arm(_clock.NowNs);
    }

    private uint Read(ushort port, int size)
    {
        int reg = port - _base;
        if (reg == ControlPort) return 0xFF; // the control register is write-only
        return _channels[reg].Read(_clock.NowNs);
    }

    private void Write(ushort port, int size, uint value)
    {
        int reg = port - _base;
        byte b = (byte)value;
        long now = _clock.NowNs;
        if (reg != ControlPort)
        {
            if (_channels[reg].Write(b, now) && reg == 0) Counter0Changed(now);
            return;
        }
        int sc = b >> 6;
        if (sc == 3)
        {
            for (int i = 0; i < 3; i++)
            {
                if ((b & (2 << i)) == 0) continue;
                if ((b & ReadBackNoStatus) == 0) _channels[i].LatchStatus(now);
                if ((b & ReadBackNoCount) == 0) _channels[i].LatchCount(now);
            }
            return;
        }
        int access = (b >> 4) & 3;
        if (access == PitChannel.AccessLatch)
        {
            _channels[sc].LatchCount(now);
            return;
        }
        _channels[sc].SetControl(access, (b >> 1) & 7, (b & 1) != 0);
        if (sc == 0) Counter0Changed(now);
    }

    private void Counter0Changed(long now)
    {
        SetLine(_channels[0].OutAt(now));
        Arm(now);
    }

    private void Arm(long now)
    {
        long next = _channels[0].NextRisingEdgeNs(now);
        if (next < 0) _timer.Cancel();
        else _timer.Schedule(next);
    }

    private void OnCounter0Edge(long deadlineNs)
    {
        // Pulse the line so the edge-triggered PIC sees a fresh rising edge, then leave it at OUT's level.
        SetLine(false);
        SetLine(true);
        long now = Math.Max(deadlineNs, _clock.NowNs);
        SetLine(_channels[0].OutAt(now));
        Arm(now);
    }

    private void SetLine(bool level)
    {
        if (level == _line) return;
        _line = level;
        _irq.SetIrq(_irqLine, level);
    }
}

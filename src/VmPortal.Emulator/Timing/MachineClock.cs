namespace VmPortal.Emulator.Timing;

/// <summary>
/// Guest time in nanoseconds since power-on: the one time base of a machine. The PIT, the RTC, the UART and the
/// CPU's time-stamp counter all read <see cref="NowNs"/>, so they always agree with each other. It stands still
/// while the machine is paused.
/// <para>
/// Three ways it moves:
/// </para>
/// <list type="bullet">
/// <item><b>Host clock</b> (no instruction counter attached): <see cref="NowNs"/> is the host's elapsed time
/// (a <see cref="TimeProvider"/>, injectable for tests).</item>
/// <item><b>Paced</b> (a machine attached its CPU's instruction counter with <see cref="AttachInstructionCounter"/>):
/// while the CPU runs, guest time advances with every retired instruction at a pace chosen at each slice start
/// (<see cref="BeginSlice"/>) from the measured host speed, slightly faster or slower so it converges on host time
/// (within <see cref="CatchUpHorizonNs"/>). So guest time still follows host time over any span a user can see,
/// but a host hiccup (preemption, GC pause, the loop's own work between slices) does not show up as a jump inside
/// the guest's timing loops: a guest that reads RDTSC and the PIT back to back sees them move smoothly and in
/// proportion, which is what Linux's TSC calibration (tsc max/min delta check) and memtest86+ need. Gaps larger
/// than <see cref="ResyncThresholdNs"/> are not caught up but skipped. While the CPU is halted
/// (<see cref="EnterIdle"/>) guest time follows the host clock directly.</item>
/// <item><b>Manual</b> (deterministic): time moves only through <see cref="Advance"/>, plus, with an instruction
/// counter attached, <c>nsPerInstruction</c> per retired instruction.</item>
/// </list>
/// Machine thread only, except that other threads may read <see cref="NowNs"/> for diagnostics.
/// </summary>
public sealed class MachineClock
{
    /// <summary>A gap between guest and host time is closed within about this much host time.</summary>
    public const long CatchUpHorizonNs = 20_000_000;
    /// <summary>
    /// Guest time behind the host by more than this (the host process was stopped or suspended) jumps forward
    /// instead of catching up. Smaller gaps (preemption, GC, JIT warm-up after power-on) are caught up by running
    /// guest time up to <see cref="MaxPaceFactor"/> faster: a jump inside a guest's calibration loop would be
    /// measured as a too-fast TSC (memtest86+ once showed 1159 MHz for a 1000 MHz TSC that way).
    /// </summary>
    public const long ResyncThresholdNs = 5_000_000_000;
    /// <summary>Pace limits relative to the measured host speed while catching up or waiting for the host.</summary>
    public const double MinPaceFactor = 0.5, MaxPaceFactor = 2.0;
    /// <summary>
    /// How fast the pace may change: by a factor of at most e^(x·ms) over ms guest milliseconds (1.22× per 10 ms,
    /// 2.7× per 50 ms), inside Linux's check that no TSC delta of its 10 ms or 50 ms PIT calibration loop is 10× another.
    /// </summary>
    public const double PaceDriftPerGuestMs = 0.02;
    /// <summary>Pace assumed before any machine in this process measured one (ns per instruction, i.e. 50 MIPS).</summary>
    public const double InitialNsPerInstruction = 20.0;

    /// <summary>The last host speed measured by any machine in this process: a new machine's first guess.</summary>
    private static double s_lastHostNsPerInstruction = InitialNsPerInstruction;

    private readonly TimeProvider _time;
    private readonly long _manualNsPerInstruction;
    private Func<long>? _counter;
    private bool _running;
    private long _hostBaseTimestamp;   // host timestamp when the current running stretch began
    private long _hostAccumulatedNs;   // host time of earlier running stretches
    private long _frozenNs;            // guest time while paused; manual mode: guest time at _baseCount

    // Paced mode: NowNs = _segmentBaseNs + (counter - _segmentBaseCount) * _pace, unless following the host.
    private bool _followHost = true;
    private long _floorNs;             // following the host: never below this (keeps time monotonic)
    private long _segmentBaseNs;
    private long _segmentBaseCount;
    private double _pace;
    private double _hostNsPerInstruction;  // measured host speed (moving average), 0 = not yet measured
    private bool _measuring;
    private long _lastSliceHostNs, _lastSliceCount;

    /// <param name="firstGuessNsPerInstruction">The pace before this clock measured one; default: the last host speed
    /// any machine of this process measured (tests give one, so other machines running beside them do not matter).</param>
    public MachineClock(TimeProvider? time = null, bool manual = false, long nsPerInstruction = 0, double? firstGuessNsPerInstruction = null)
    {
        _time = time ?? TimeProvider.System;
        Manual = manual;
        _manualNsPerInstruction = nsPerInstruction;
        _firstGuess = firstGuessNsPerInstruction;
    }

    private readonly double? _firstGuess;

    /// <summary>When true, time moves only through <see cref="Advance"/> (and per instruction, if so configured).</summary>
    public bool Manual { get; }

    /// <summary>Wall-clock time of the host at power-on (the RTC starts from it).</summary>
    public DateTimeOffset HostTimeAtStart { get; private set; }

    /// <summary>Times guest time was moved forward to the host clock because it had fallen too far behind.</summary>
    public int Resyncs { get; private set; }

    /// <summary>Guest nanoseconds per instruction in the current slice (paced mode; diagnostics).</summary>
    public double Pace => _pace;

    /// <summary>Host time since power-on while running (pauses excluded).</summary>
    public long HostNs => _running ? _hostAccumulatedNs + HostElapsed() : _hostAccumulatedNs;

    public long NowNs
    {
        get
        {
            if (Manual)
            {
                if (_counter == null || _manualNsPerInstruction == 0) return _frozenNs;
                return _frozenNs + (_counter() - _segmentBaseCount) * _manualNsPerInstruction;
            }
            if (!_running) return _frozenNs;
            if (_followHost || _counter == null) return Math.Max(_floorNs, HostNs);
            return _segmentBaseNs + (long)((_counter() - _segmentBaseCount) * _pace);
        }
    }

    /// <summary>
    /// Ties guest time to a CPU's retired-instruction counter (a reset attaches the new CPU's counter; time goes on
    /// from where it was). The counter must be current whenever a device or RDTSC reads <see cref="NowNs"/>.
    /// </summary>
    public void AttachInstructionCounter(Func<long> counter)
    {
        long now = NowNs;
        _counter = counter;
        long count = counter();
        if (Manual) _frozenNs = now;
        _segmentBaseNs = now;
        _segmentBaseCount = count;
        _floorNs = now;
        _followHost = true;
        _measuring = false;
    }

    public void Start()
    {
        if (HostTimeAtStart == default) HostTimeAtStart = _time.GetUtcNow();
        if (_running) return;
        _hostBaseTimestamp = _time.GetTimestamp();
        _running = true;
        _floorNs = _frozenNs;
        _followHost = true;
        _measuring = false;
    }

    public void Pause()
    {
        if (!_running) return;
        _frozenNs = NowNs;
        _hostAccumulatedNs = HostNs;
        _running = false;
        if (Manual && _counter != null) _segmentBaseCount = _counter();
    }

    /// <summary>Manual clocks only: moves guest time forward by <paramref name="ns"/>.</summary>
    public void Advance(long ns)
    {
        if (!Manual) throw new InvalidOperationException("Only a manual clock can be advanced.");
        _frozenNs += ns;
    }

    /// <summary>
    /// Machine thread, before each CPU slice: measures how fast the host ran the last slice and sets the pace of
    /// guest time for the next one (paced mode; nothing to do otherwise).
    /// </summary>
    public void BeginSlice()
    {
        if (Manual || _counter == null || !_running) return;
        long count = _counter();
        long host = HostNs;
        long guest = NowNs;
        long guestSpan = Math.Max(0, guest - _segmentBaseNs); // guest time since the last slice began (incl. idle)
        if (_measuring)
        {
            long instructions = count - _lastSliceCount;
            long hostSpent = host - _lastSliceHostNs;
            if (instructions >= 1000 && hostSpent > 0)
            {
                double sample = (double)hostSpent / instructions;
                _hostNsPerInstruction = _hostNsPerInstruction == 0 ? sample : _hostNsPerInstruction + (sample - _hostNsPerInstruction) * 0.25;
                s_lastHostNsPerInstruction = _hostNsPerInstruction;
            }
        }
        _lastSliceCount = count;
        _lastSliceHostNs = host;
        _measuring = true;

        long behind = host - guest;
        if (behind > ResyncThresholdNs)
        {
            guest = host;
            behind = 0;
            Resyncs++;
        }
        double factor = Math.Clamp(1.0 + (double)behind / CatchUpHorizonNs, MinPaceFactor, MaxPaceFactor);
        // (a new machine's first slices run firmware in the interpreter: another machine's JIT-compiled loop, ~2 ns per
        // instruction, is no guess for them, and a pace far too slow takes long to drift up)
        double target = (_hostNsPerInstruction > 0 ? _hostNsPerInstruction : _firstGuess ?? Math.Clamp(s_lastHostNsPerInstruction, 5, 200)) * factor;
        // The pace drifts (by at most e^(PaceDriftPerGuestMs) per guest millisecond) instead of jumping, so a guest
        // loop timing itself over a few milliseconds sees steady time; a sudden host slowdown (preemption, GC) is
        // absorbed by the gap to host time and caught up afterwards.
        double step = Math.Exp(PaceDriftPerGuestMs * guestSpan / 1e6);
        _pace = _pace == 0 ? target : Math.Clamp(target, _pace / step, _pace * step);
        _segmentBaseNs = guest;
        _segmentBaseCount = count;
        _followHost = false;
    }

    /// <summary>
    /// Machine thread: the CPU halted and waits for an interrupt, so guest time follows the host clock until the
    /// next <see cref="BeginSlice"/> (never going back: a guest ahead of the host waits for it).
    /// </summary>
    public void EnterIdle()
    {
        if (Manual || _counter == null || !_running || _followHost) return;
        _floorNs = NowNs;
        _followHost = true;
        _measuring = false;
    }

    /// <summary>
    /// Machine state load: guest time continues from <paramref name="nowNs"/>, counted from the new CPU's
    /// <paramref name="counter"/>; the clock is left stopped (the machine starts it when it runs). Host time since
    /// power-on is set equal to guest time, so a paced clock neither races nor waits after the load.
    /// </summary>
    public void RestoreState(long nowNs, DateTimeOffset hostTimeAtStart, Func<long> counter)
    {
        _counter = counter;
        HostTimeAtStart = hostTimeAtStart;
        _running = false;
        _frozenNs = nowNs;
        _hostAccumulatedNs = nowNs;
        _segmentBaseNs = nowNs;
        _segmentBaseCount = counter();
        _floorNs = nowNs;
        _followHost = true;
        _measuring = false;
    }

    /// <summary>A copy of every field, to undo a failed <see cref="RestoreState"/>.</summary>
    internal MachineClock Backup() => (MachineClock)MemberwiseClone();

    internal void RestoreBackup(MachineClock b)
    {
        (_counter, _running, _hostBaseTimestamp, _hostAccumulatedNs, _frozenNs) = (b._counter, b._running, b._hostBaseTimestamp, b._hostAccumulatedNs, b._frozenNs);
        (_followHost, _floorNs, _segmentBaseNs, _segmentBaseCount, _pace) = (b._followHost, b._floorNs, b._segmentBaseNs, b._segmentBaseCount, b._pace);
        (_hostNsPerInstruction, _measuring, _lastSliceHostNs, _lastSliceCount) = (b._hostNsPerInstruction, b._measuring, b._lastSliceHostNs, b._lastSliceCount);
        HostTimeAtStart = b.HostTimeAtStart;
        Resyncs = b.Resyncs;
    }

    private long HostElapsed()
    {
        long elapsed = _time.GetTimestamp() - _hostBaseTimestamp;
        return (long)(elapsed * (1_000_000_000.0 / _time.TimestampFrequency));
    }
}

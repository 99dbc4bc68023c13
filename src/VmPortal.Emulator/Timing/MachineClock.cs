namespace VmPortal.Emulator.Timing;

/// <summary>
/// Guest time in nanoseconds since power-on. It follows the host clock (a <see cref="TimeProvider"/>, injectable
/// for tests) while the machine runs and stands still while it is paused. <see cref="Manual"/> clocks advance only
/// through <see cref="Advance"/>, for deterministic tests.
/// </summary>
public sealed class MachineClock
{
    private readonly TimeProvider _time;
    private long _baseTimestamp;
    private long _frozenNs;
    private bool _running;

    public MachineClock(TimeProvider? time = null, bool manual = false)
    {
        _time = time ?? TimeProvider.System;
        Manual = manual;
    }

    /// <summary>When true, time moves only through <see cref="Advance"/>.</summary>
    public bool Manual { get; }

    /// <summary>Wall-clock time of the host at power-on (the RTC starts from it).</summary>
    public DateTimeOffset HostTimeAtStart { get; private set; }

    public long NowNs
    {
        get
        {
            if (Manual || !_running) return _frozenNs;
            long elapsed = _time.GetTimestamp() - _baseTimestamp;
            return _frozenNs + (long)(elapsed * (1_000_000_000.0 / _time.TimestampFrequency));
        }
    }

    public void Start()
    {
        if (HostTimeAtStart == default) HostTimeAtStart = _time.GetUtcNow();
        if (_running) return;
        _baseTimestamp = _time.GetTimestamp();
        _running = true;
    }

    public void Pause()
    {
        if (!_running) return;
        _frozenNs = NowNs;
        _running = false;
    }

    public void Advance(long ns)
    {
        if (!Manual) throw new InvalidOperationException("Only a manual clock can be advanced.");
        _frozenNs += ns;
    }
}

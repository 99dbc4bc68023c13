namespace VmPortal.Emulator.Timing;

/// <summary>
/// One-shot guest-time timers for devices (PIT channels, RTC periodic interrupt, UART transmit, …).
/// The machine loop calls <see cref="RunDue"/> between CPU slices and sleeps (when halted) until
/// <see cref="NextDeadlineNs"/>. Everything runs on the machine's thread; nothing here is thread-safe.
/// </summary>
public sealed class TimerScheduler
{
    private readonly List<GuestTimer> _timers = new();
    private long _next = long.MaxValue;

    public MachineClock Clock { get; }

    public TimerScheduler(MachineClock clock) => Clock = clock;

    /// <summary>Earliest armed deadline, or <see cref="long.MaxValue"/> when none is armed.</summary>
    public long NextDeadlineNs => _next;

    /// <summary>Every timer, in creation order (machine state saves and restores their deadlines by name).</summary>
    public IReadOnlyList<GuestTimer> Timers => _timers;

    public GuestTimer CreateTimer(string name, Action<long> callback)
    {
        var t = new GuestTimer(this, name, callback);
        _timers.Add(t);
        return t;
    }

    /// <summary>Fires every timer whose deadline is at or before <paramref name="nowNs"/>. Callbacks may re-arm.</summary>
    public void RunDue(long nowNs)
    {
        if (nowNs < _next) return;
        for (int guard = 0; guard < 1000; guard++)
        {
            GuestTimer? due = null;
            foreach (var t in _timers)
                if (t.Armed && t.DeadlineNs <= nowNs && (due == null || t.DeadlineNs < due.DeadlineNs)) due = t;
            if (due == null) break;
            due.Armed = false;
            due.Callback(due.DeadlineNs);
        }
        Recompute();
    }

    internal void Recompute()
    {
        long next = long.MaxValue;
        foreach (var t in _timers)
            if (t.Armed && t.DeadlineNs < next) next = t.DeadlineNs;
        _next = next;
    }
}

public sealed class GuestTimer
{
    private readonly TimerScheduler _owner;

    internal GuestTimer(TimerScheduler owner, string name, Action<long> callback)
    {
        _owner = owner;
        Name = name;
        Callback = callback;
    }

    public string Name { get; }
    internal Action<long> Callback { get; }
    public bool Armed { get; internal set; }
    public long DeadlineNs { get; private set; }

    /// <summary>Arms (or re-arms) the timer to fire at guest time <paramref name="deadlineNs"/>. The callback receives the deadline.</summary>
    public void Schedule(long deadlineNs)
    {
        DeadlineNs = deadlineNs;
        Armed = true;
        _owner.Recompute();
    }

    public void Cancel()
    {
        Armed = false;
        _owner.Recompute();
    }
}

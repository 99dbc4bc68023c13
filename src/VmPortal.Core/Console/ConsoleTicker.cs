namespace VmPortal.Core.Console;

/// <summary>
/// Calls a VM's frame tick (refresh the screen, <see cref="ConsoleStream.SubmitFrame"/> when it changed) on its own
/// background thread every <see cref="Period"/>, and sooner after <see cref="Kick"/>: input calls it so the echo of a
/// key is drawn within a few milliseconds instead of up to a whole period later. A kick brings a short series of early
/// ticks (at 1, 4, 10 and 20 × <see cref="KickDelay"/>), because how long the guest takes to echo varies (its own
/// scheduling, a busy host); each tick sends only what changed, so the extra ticks cost nothing when nothing did.
/// A tick that throws is reported to <c>onError</c> and the ticker goes on. While <see cref="Idle"/> (nobody watches)
/// regular ticks come only every <see cref="IdlePeriod"/>; leaving idle ticks at once.
/// </summary>
public sealed class ConsoleTicker : IDisposable
{
    private readonly Action tick;
    private readonly Action<Exception>? onError;
    private readonly Thread thread;
    private readonly AutoResetEvent wake = new(false);
    private volatile bool stopping;
    private readonly object kickGate = new();
    private long kickedAt; // Environment.TickCount64 of the last kick, 0 = no early ticks pending (under kickGate)
    private int kickStage; // index into KickSteps of the next early tick (under kickGate)
    /// <summary>Early ticks after a kick, in multiples of <see cref="KickDelay"/>.</summary>
    public static readonly int[] KickSteps = [1, 4, 10, 20];
    private long ticks;
    private volatile bool idle;

    /// <summary>Time between regular ticks while <see cref="Idle"/>.</summary>
    public static readonly TimeSpan IdlePeriod = TimeSpan.FromSeconds(1);

    /// <param name="tick">The work of one tick (runs on the ticker thread only).</param>
    /// <param name="period">Time between regular ticks (33 ms for 30 Hz).</param>
    /// <param name="kickDelay">How long after a <see cref="Kick"/> the early tick runs (gives the guest time to echo).</param>
    public ConsoleTicker(Action tick, TimeSpan period, TimeSpan kickDelay, Action<Exception>? onError = null, string name = "console-ticker")
    {
        ArgumentNullException.ThrowIfNull(tick);
        if (period <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(period));
        this.tick = tick;
        this.onError = onError;
        Period = period;
        KickDelay = kickDelay < TimeSpan.Zero ? TimeSpan.Zero : kickDelay;
        thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.Start();
    }

    public TimeSpan Period { get; }

    /// <summary>Slow regular ticks (nobody watches the screen). Setting it to false ticks at once. Any thread.</summary>
    public bool Idle
    {
        get => idle;
        set
        {
            if (idle == value) return;
            idle = value;
            if (!value) wake.Set();
        }
    }
    public TimeSpan KickDelay { get; }
    /// <summary>Ticks run so far.</summary>
    public long Ticks => Interlocked.Read(ref ticks);

    /// <summary>Asks for the early ticks from now (restarting the series if one is running). Cheap; any thread.</summary>
    public void Kick()
    {
        if (stopping) return;
        lock (kickGate)
        {
            kickedAt = Environment.TickCount64;
            kickStage = 0;
        }
        wake.Set();
    }

    private void Run()
    {
        long last = Environment.TickCount64; // when the last tick ran
        while (!stopping)
        {
            long now = Environment.TickCount64;
            long period = (long)(idle ? IdlePeriod : Period).TotalMilliseconds;
            long due = last + period;
            long delay = Math.Max(1, (long)KickDelay.TotalMilliseconds);
            lock (kickGate)
            {
                if (kickedAt != 0) due = Math.Min(due, kickedAt + delay * KickSteps[kickStage]);
            }
            if (now < due)
            {
                wake.WaitOne((int)Math.Min(int.MaxValue, due - now));
                continue;
            }
            lock (kickGate)
            {
                // this tick covers every early tick already due: go on with the next one, or end the series
                while (kickedAt != 0 && kickedAt + delay * KickSteps[kickStage] <= now)
                {
                    if (++kickStage == KickSteps.Length) { kickedAt = 0; kickStage = 0; }
                }
            }
            try { tick(); }
            catch (Exception e) { onError?.Invoke(e); }
            Interlocked.Increment(ref ticks);
            last = now; // fell behind: no burst of ticks
        }
    }

    /// <summary>Stops the thread (waits for a running tick to finish).</summary>
    public void Dispose()
    {
        if (stopping) return;
        stopping = true;
        wake.Set();
        if (Thread.CurrentThread != thread) thread.Join();
        wake.Dispose();
    }
}

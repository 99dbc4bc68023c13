namespace VmPortal.Core.Console;

/// <summary>
/// Calls a VM's frame tick (refresh the screen, <see cref="ConsoleStream.SubmitFrame"/> when it changed) on its own
/// background thread every <see cref="Period"/>, and sooner after <see cref="Kick"/>: input calls it so the echo of a
/// key is drawn within a few milliseconds instead of up to a whole period later. A tick that throws is reported to
/// <c>onError</c> and the ticker goes on.
/// </summary>
public sealed class ConsoleTicker : IDisposable
{
    private readonly Action tick;
    private readonly Action<Exception>? onError;
    private readonly Thread thread;
    private readonly AutoResetEvent wake = new(false);
    private volatile bool stopping;
    private long kickedAt; // Environment.TickCount64 of the pending kick, 0 = none
    private long ticks;

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
    public TimeSpan KickDelay { get; }
    /// <summary>Ticks run so far.</summary>
    public long Ticks => Interlocked.Read(ref ticks);

    /// <summary>Asks for a tick <see cref="KickDelay"/> from now (if none is pending). Cheap; any thread.</summary>
    public void Kick()
    {
        if (stopping) return;
        if (Interlocked.CompareExchange(ref kickedAt, Environment.TickCount64, 0) == 0) wake.Set();
    }

    private void Run()
    {
        long next = Environment.TickCount64 + (long)Period.TotalMilliseconds;
        while (!stopping)
        {
            long now = Environment.TickCount64;
            long due = next;
            long k = Interlocked.Read(ref kickedAt);
            if (k != 0) due = Math.Min(due, k + (long)KickDelay.TotalMilliseconds);
            if (now < due)
            {
                wake.WaitOne((int)Math.Min(int.MaxValue, due - now));
                continue;
            }
            Interlocked.Exchange(ref kickedAt, 0);
            try { tick(); }
            catch (Exception e) { onError?.Invoke(e); }
            Interlocked.Increment(ref ticks);
            now = Environment.TickCount64;
            next = Math.Max(next + (long)Period.TotalMilliseconds, now + 1); // fell behind: no burst of ticks
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

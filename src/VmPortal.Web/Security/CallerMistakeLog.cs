using System.Collections.Concurrent;

namespace VmPortal.Web.Security;

/// <summary>
/// Rate limit for log lines about caller mistakes (bad requests, aborted uploads, refused hub calls), so an anonymous
/// client cannot flood the log: per client address at most <see cref="PerWindow"/> lines per <see cref="Window"/>;
/// the first line of the next window says how many were left out.
/// </summary>
public sealed class CallerMistakeLog(TimeProvider clock)
{
    public const int PerWindow = 20;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private const int MaxTracked = 10_000; // addresses remembered at once; beyond it the table starts over

    private sealed class Counter
    {
        public DateTimeOffset Start;
        public int Count;
        public int Suppressed;
    }

    private readonly ConcurrentDictionary<string, Counter> counters = new();

    /// <summary>
    /// Whether a line about <paramref name="client"/> may be written now; <paramref name="suppressed"/> is the number
    /// of lines left out for it in the previous window (to mention once).
    /// </summary>
    public bool ShouldLog(string? client, out int suppressed)
    {
        if (counters.Count > MaxTracked) counters.Clear();
        var now = clock.GetUtcNow();
        var c = counters.GetOrAdd(client ?? "unknown", _ => new Counter { Start = now });
        lock (c)
        {
            suppressed = 0;
            if (now - c.Start >= Window)
            {
                suppressed = c.Suppressed;
                c.Start = now;
                c.Count = 0;
                c.Suppressed = 0;
            }
            if (c.Count < PerWindow)
            {
                c.Count++;
                return true;
            }
            c.Suppressed++;
            return false;
        }
    }
}

using System.Collections.Concurrent;

namespace VmPortal.Core.Accounts;

/// <summary>Limits of <see cref="LoginThrottle"/> (config section <c>Security:LoginThrottle</c>).</summary>
public sealed class LoginThrottleOptions
{
    /// <summary>Failed passwords for one user name from one address within <see cref="Window"/>.</summary>
    public int PerAddressAndUser { get; set; } = 5;
    /// <summary>Failed passwords from one address (any user names) within <see cref="Window"/>.</summary>
    public int PerAddress { get; set; } = 20;
    /// <summary>
    /// Failed passwords for one user name from all addresses within <see cref="Window"/>. Once reached, every address
    /// that has already failed for this user is refused; an address with no failure for it still gets its attempt, so
    /// the real user is not locked out by someone else's guesses.
    /// </summary>
    public int PerUser { get; set; } = 50;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Throttles password guessing (sign-in form and <c>POST /api/auth/tokens</c>) by counting failed passwords per
/// address, per user name and per (address, user name) in a sliding window. A throttled attempt is refused with a
/// retry time (HTTP 429 + <c>Retry-After</c>) and not counted again. Nothing is written to the account: there is no
/// account lockout, and API tokens keep working whatever happens to password sign-in.
/// Unknown user names are counted exactly like real ones, so the answers do not tell whether an account exists.
/// </summary>
public sealed class LoginThrottle(LoginThrottleOptions options, TimeProvider clock)
{
    private const int MaxKeys = 100_000;
    private readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> _failures = new();

    public LoginThrottleOptions Options => options;

    private static string Norm(string userName) => userName.Trim().ToUpperInvariant();
    private static string AddressKey(string? address) => "a|" + (address ?? "?");
    private static string UserKey(string userName) => "u|" + Norm(userName);
    private static string PairKey(string? address, string userName) => "p|" + (address ?? "?") + "|" + Norm(userName);

    /// <summary>How long <paramref name="address"/> must wait before trying <paramref name="userName"/> again; null when it may try now.</summary>
    public TimeSpan? RetryAfter(string? address, string userName)
    {
        var now = clock.GetUtcNow();
        TimeSpan? wait = null;
        void Check(string key, int limit)
        {
            if (Wait(key, limit, now) is { } w && (wait is null || w > wait)) wait = w;
        }
        Check(PairKey(address, userName), options.PerAddressAndUser);
        Check(AddressKey(address), options.PerAddress);
        if (Count(PairKey(address, userName), now) > 0) Check(UserKey(userName), options.PerUser);
        return wait;
    }

    /// <summary>Counts a failed password. True when this failure made one of the limits bite (worth an audit event).</summary>
    public bool RecordFailure(string? address, string userName)
    {
        var now = clock.GetUtcNow();
        if (_failures.Count > MaxKeys) Prune(now);
        var tripped = false;
        foreach (var (key, limit) in new[]
                 {
                     (PairKey(address, userName), options.PerAddressAndUser), (AddressKey(address), options.PerAddress),
                     (UserKey(userName), options.PerUser),
                 })
        {
            var q = _failures.GetOrAdd(key, _ => new Queue<DateTimeOffset>());
            lock (q)
            {
                Trim(q, now);
                q.Enqueue(now);
                if (q.Count == limit) tripped = true;
            }
        }
        return tripped;
    }

    /// <summary>A correct password: the (address, user) count starts again.</summary>
    public void RecordSuccess(string? address, string userName) => _failures.TryRemove(PairKey(address, userName), out _);

    /// <summary>Whether password sign-in for <paramref name="userName"/> is being throttled from some address (shown to admins).</summary>
    public bool IsThrottled(string userName)
    {
        var now = clock.GetUtcNow();
        var suffix = "|" + Norm(userName);
        if (Wait(UserKey(userName), options.PerUser, now) is not null) return true;
        return _failures.Keys.Any(k => k.StartsWith("p|", StringComparison.Ordinal) && k.EndsWith(suffix, StringComparison.Ordinal)
                                       && Wait(k, options.PerAddressAndUser, now) is not null);
    }

    /// <summary>Forgets every failure for <paramref name="userName"/> (an admin reset the password).</summary>
    public void Clear(string userName)
    {
        var suffix = "|" + Norm(userName);
        foreach (var k in _failures.Keys.Where(k => k.EndsWith(suffix, StringComparison.Ordinal) && !k.StartsWith("a|", StringComparison.Ordinal)))
            _failures.TryRemove(k, out _);
    }

    private int Count(string key, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(key, out var q)) return 0;
        lock (q)
        {
            Trim(q, now);
            return q.Count;
        }
    }

    private TimeSpan? Wait(string key, int limit, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(key, out var q)) return null;
        lock (q)
        {
            Trim(q, now);
            if (q.Count < limit) return null;
            // blocked until enough failures leave the window for one more attempt
            var oldestBlocking = q.ElementAt(q.Count - limit);
            var w = oldestBlocking + options.Window - now;
            return w > TimeSpan.Zero ? w : null;
        }
    }

    private void Trim(Queue<DateTimeOffset> q, DateTimeOffset now)
    {
        while (q.Count > 0 && q.Peek() + options.Window <= now) q.Dequeue();
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (k, q) in _failures)
        {
            lock (q)
            {
                Trim(q, now);
                if (q.Count == 0) _failures.TryRemove(k, out _);
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Data;

namespace VmPortal.Web.Auth;

/// <summary>
/// Cookie sessions that were signed out. Every sign-in puts a random session id into the cookie
/// (<see cref="SessionClaim"/>); <c>POST /account/logout</c> ends that id here, and the cookie handler and the Blazor
/// circuit refuse a cookie whose session ended, so a cookie captured before sign-out is worthless at once.
/// Ended ids are remembered in memory and recorded in the audit log (<c>user.sign-out</c>, target <c>session</c>);
/// after a restart the ids ended within the cookie lifetime are read back from there.
/// </summary>
public sealed class SessionRegistry(IDbContextFactory<PortalDbContext> dbFactory, TimeProvider clock)
{
    public const string SessionClaim = "vmportal:sid";
    /// <summary>Cookie lifetime (sliding); a session ended longer ago than this cannot have a valid cookie left.</summary>
    public static readonly TimeSpan CookieLifetime = TimeSpan.FromHours(8);

    private readonly ConcurrentDictionary<string, DateTimeOffset> _ended = new();
    private Task? _loaded;

    public static string NewSessionId() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    public static string? SessionOf(ClaimsPrincipal? user) => user?.FindFirstValue(SessionClaim);

    public void End(string sessionId)
    {
        var now = clock.GetUtcNow();
        _ended[sessionId] = now;
        if (_ended.Count > 10_000)
            foreach (var (k, at) in _ended)
                if (at + CookieLifetime < now) _ended.TryRemove(k, out _);
    }

    /// <summary>True when the principal's session was signed out (a cookie without a session id is refused too).</summary>
    public async Task<bool> IsEndedAsync(ClaimsPrincipal user)
    {
        await (_loaded ??= LoadAsync());
        var sid = SessionOf(user);
        return sid is null || _ended.ContainsKey(sid);
    }

    private async Task LoadAsync()
    {
        try
        {
            var since = clock.GetUtcNow() - CookieLifetime;
            await using var db = await dbFactory.CreateDbContextAsync();
            var ids = await db.AuditEvents.AsNoTracking()
                .Where(e => e.Action == AuditActions.SignOut && e.TargetType == "session" && e.At > since && e.TargetId != null)
                .Select(e => new { e.TargetId, e.At }).ToListAsync();
            foreach (var e in ids) _ended.TryAdd(e.TargetId!, e.At);
        }
        catch (Exception)
        {
            _loaded = null; // database not ready yet: try again on the next request
            throw;
        }
    }
}

using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using VmPortal.Core.Accounts;

namespace VmPortal.Web.Auth;

/// <summary>
/// Runs after authentication for requests made with an API token: (1) the token's rate limit — its own
/// <c>rateLimitPerMinute</c> or <c>Security:RateLimit:TokenRequestsPerMinute</c> (default 600), a fixed one-minute
/// window per token, 429 + <c>Retry-After</c> beyond; (2) a scoped token's scopes — each request needs the scope
/// <see cref="Required"/> names, else 403 problem details naming the scope. Cookie sessions are not affected.
/// </summary>
public sealed class TokenScopeMiddleware(RequestDelegate next, IConfiguration config)
{
    public const int DefaultRequestsPerMinute = 600;
    private readonly int defaultLimit = config.GetValue<int?>("Security:RateLimit:TokenRequestsPerMinute") ?? DefaultRequestsPerMinute;
    private readonly ConcurrentDictionary<string, RateLimiter> limiters = new();

    public async Task InvokeAsync(HttpContext http)
    {
        var user = http.User;
        var tokenId = user.FindFirstValue(ApiTokenAuthenticationHandler.TokenIdClaim);
        if (tokenId is null)
        {
            await next(http);
            return;
        }

        var limit = int.TryParse(user.FindFirstValue(ApiTokenAuthenticationHandler.RateLimitClaim), NumberStyles.None, CultureInfo.InvariantCulture, out var own)
            ? own : defaultLimit;
        var limiter = limiters.GetOrAdd($"{tokenId}/{limit}", _ => new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
        {
            PermitLimit = limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true,
        }));
        using var lease = limiter.AttemptAcquire();
        if (!lease.IsAcquired)
        {
            var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromMinutes(1);
            var seconds = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            await Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                detail: $"This API token may make {limit} requests per minute. Try again in {seconds} s.",
                extensions: new Dictionary<string, object?> { ["retryAfterSeconds"] = seconds }).ExecuteAsync(http);
            return;
        }

        var scopes = user.FindAll(ApiTokenAuthenticationHandler.ScopeClaim).Select(c => c.Value).ToHashSet();
        if (scopes.Count > 0 && !scopes.Contains(TokenScopes.Admin))
        {
            var needed = Required(http.Request.Method, http.Request.Path);
            if (needed.Length > 0 && !needed.Any(scopes.Contains))
            {
                await Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                    detail: needed.Length == 1 && needed[0] == "unscoped"
                        ? "Managing API tokens needs a token without scopes (or the admin scope)."
                        : $"This token's scopes ({string.Join(", ", scopes.Order())}) do not allow {http.Request.Method} {http.Request.Path}; it needs {string.Join(" or ", needed)}.",
                    extensions: new Dictionary<string, object?> { ["requiredScopes"] = needed }).ExecuteAsync(http);
                return;
            }
        }
        await next(http);
    }

    private static readonly string[] PowerActions = ["start", "stop", "shutdown", "reset", "pause", "resume", "ctrl-alt-del"];

    /// <summary>
    /// The scopes of which a request needs one: empty = any token (<c>/api/auth/me</c>); "unscoped" = none will do.
    /// Unknown paths need <c>admin</c>, so a new endpoint is closed to scoped tokens until it is mapped here.
    /// </summary>
    public static string[] Required(string method, PathString path)
    {
        var read = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        var seg = (path.Value ?? "").Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (seg.Length >= 2 && seg[0] == "hubs" && seg[1] == "console") return [TokenScopes.Console];
        if (seg.Length < 2 || seg[0] != "api") return [TokenScopes.Admin];
        switch (seg[1])
        {
            case "auth":
                return seg.Length >= 3 && seg[2] == "me" ? [] : ["unscoped"];
            case "vms":
                if (seg.Length >= 4 && seg[3] == "console")
                    return seg.Length >= 5 && seg[4] == "shares" ? (read ? [TokenScopes.VmsRead] : [TokenScopes.VmsWrite]) : [TokenScopes.Console];
                if (seg.Length == 4 && !read && PowerActions.Contains(seg[3])) return [TokenScopes.VmsPower];
                if (seg.Length == 4 && !read && seg[3] == "template") return [TokenScopes.Admin]; // a catalog template
                if (seg.Length == 6 && !read && seg[3] == "disks" && seg[5] == "export") return [TokenScopes.VmsRead]; // reads the disk
                return read ? [TokenScopes.VmsRead] : [TokenScopes.VmsWrite];
            case "tasks":
                return read ? [TokenScopes.VmsRead] : [TokenScopes.VmsWrite];
            case "images":
                return read ? [TokenScopes.VmsRead, TokenScopes.Images] : [TokenScopes.Images];
            case "templates" or "groups" or "quota" or "networks":
                return read ? [TokenScopes.VmsRead] : [TokenScopes.Admin];
            default:
                return [TokenScopes.Admin]; // users, audit, and anything not mapped yet
        }
    }
}

using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.HostFiltering;
using Microsoft.AspNetCore.RateLimiting;

namespace VmPortal.Web.Security;

/// <summary>
/// The portal's HTTP hardening (docs/security.md): request-rate limits on the credential endpoints, the origin check
/// for cookie-authenticated state changes and WebSockets, security headers, allowed hosts and the public base URL.
/// </summary>
public static class SecuritySetup
{
    /// <summary>Rate-limiter policy of <c>POST /api/auth/tokens</c> and <c>POST /account/login</c> (per client address).</summary>
    public const string CredentialsPolicy = "credentials";
    private const string NonceKey = "vmportal:csp-nonce";

    public static void AddPortalSecurity(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var services = builder.Services;
        services.Configure<VmPortal.Core.Accounts.LoginThrottleOptions>(config.GetSection("Security:LoginThrottle"));
        services.AddSingleton<PublicUrls>();

        var perMinute = config.GetValue<int?>("Security:RateLimit:CredentialsPerMinute") ?? 30;
        services.AddRateLimiter(o =>
        {
            o.AddPolicy(CredentialsPolicy, ctx => RateLimitPartition.GetFixedWindowLimiter(
                ctx.Connection.RemoteIpAddress?.ToString() ?? "?",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = perMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
            o.OnRejected = async (ctx, ct) =>
            {
                var http = ctx.HttpContext;
                var seconds = ctx.Lease.TryGetMetadata(MetadataName.RetryAfter, out var ra) ? Math.Max(1, (int)Math.Ceiling(ra.TotalSeconds)) : 60;
                http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (http.Request.Path.StartsWithSegments("/account"))
                {
                    http.Response.StatusCode = StatusCodes.Status303SeeOther;
                    http.Response.Headers.Location = $"/account/login?error=throttled&retryAfter={seconds}";
                    return;
                }
                await Results.Problem(statusCode: 429, title: "Too many requests",
                        detail: $"Too many requests from this address. Try again in {seconds} s.",
                        extensions: new Dictionary<string, object?> { ["retryAfterSeconds"] = seconds })
                    .ExecuteAsync(http);
            };
        });

        // AllowedHosts "*" (the default) becomes the portal's own names: the public base URL's host, loopback names,
        // and for non-loopback binds this machine's host name and addresses. A forged Host header is refused (400)
        // and can never end up in a link.
        services.PostConfigure<HostFilteringOptions>(o =>
        {
            if (o.AllowedHosts.Count > 0 && !(o.AllowedHosts.Count == 1 && o.AllowedHosts[0] == "*")) return;
            o.AllowedHosts = DefaultAllowedHosts(config).ToList();
        });
    }

    /// <summary>Host names the portal answers when <c>AllowedHosts</c> is not configured.</summary>
    public static IEnumerable<string> DefaultAllowedHosts(IConfiguration config)
    {
        var hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "localhost", "127.0.0.1", "[::1]" };
        if (PublicUrls.Configured(config) is { } pub) hosts.Add(pub.Host);
        var urls = (config["urls"] ?? config["ASPNETCORE_URLS"] ?? config["ASPNETCORE_HTTP_PORTS"] ?? "")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var u in urls)
        {
            var host = u.Contains("://") ? u.Split("://", 2)[1].Split('/')[0] : "*";
            host = host.StartsWith('[') ? host[..(host.IndexOf(']') + 1)] : host.Split(':')[0];
            if (host is "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip))) continue;
            if (host is "*" or "+" or "0.0.0.0" or "[::]")
            {
                hosts.Add(Dns.GetHostName());
                try
                {
                    foreach (var ni in NetworkInterface.GetAllNetworkInterfaces())
                    foreach (var a in ni.GetIPProperties().UnicastAddresses)
                        hosts.Add(a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                            ? $"[{a.Address.ToString().Split('%')[0]}]" : a.Address.ToString());
                }
                catch (NetworkInformationException) { }
            }
            else hosts.Add(host);
        }
        return hosts;
    }

    /// <summary>The CSP nonce of this request (for the few inline scripts the framework renders, e.g. the import map).</summary>
    public static string CspNonce(HttpContext http)
    {
        if (http.Items[NonceKey] is string n) return n;
        n = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        http.Items[NonceKey] = n;
        return n;
    }

    /// <summary>Security headers, the origin check and the rate limiter; call before authentication.</summary>
    public static void UsePortalSecurity(this WebApplication app)
    {
        app.Use((http, next) =>
        {
            http.Response.OnStarting(() =>
            {
                var h = http.Response.Headers;
                h.XContentTypeOptions = "nosniff";
                h["Referrer-Policy"] = "same-origin"; // share-link tokens live in URL paths: never sent to other sites
                h.XFrameOptions = "DENY";
                var type = http.Response.ContentType ?? "";
                if (type.StartsWith("text/html", StringComparison.OrdinalIgnoreCase) && !http.Request.Path.StartsWithSegments("/api/docs"))
                    h.ContentSecurityPolicy =
                        $"default-src 'self'; script-src 'self' 'nonce-{CspNonce(http)}'; style-src 'self' 'unsafe-inline'; " +
                        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
                        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
                return Task.CompletedTask;
            });
            return next(http);
        });
        app.UseMiddleware<OriginCheckMiddleware>();
        app.UseRateLimiter();
    }
}

namespace VmPortal.Web.Security;

/// <summary>
/// Refuses (403) cookie-authenticated requests that change state, and every cookie-carrying WebSocket upgrade
/// (the console hub, the Blazor circuit), when the browser says they come from another origin: the cookie is
/// <c>SameSite=Lax</c>, which still lets pages on other ports or sub-domains of the same site use it.
/// Allowed origins: the portal's own (scheme and host of the request, which host filtering restricts), the public base
/// URL (<c>Portal:PublicBaseUrl</c>) and <c>Security:AllowedOrigins</c> (a list). Requests with
/// <c>Authorization: Bearer</c> carry their own credential and are not checked; without a usable <c>Origin</c>
/// header (absent or "null") the browser's <c>Sec-Fetch-Site</c> decides (same-origin or none).
/// </summary>
public sealed class OriginCheckMiddleware(RequestDelegate next, IConfiguration config, ILogger<OriginCheckMiddleware> log)
{
    private readonly HashSet<string> _configured = new(
        (config.GetSection("Security:AllowedOrigins").Get<string[]>() ?? [])
            .Concat(PublicUrls.Configured(config) is { } p ? [p.GetLeftPart(UriPartial.Authority)] : [])
            .Select(o => o.TrimEnd('/')),
        StringComparer.OrdinalIgnoreCase);

    public Task InvokeAsync(HttpContext http)
    {
        var req = http.Request;
        if (req.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return next(http);
        if (req.Headers.Cookie.Count == 0) return next(http);
        var unsafeMethod = !(HttpMethods.IsGet(req.Method) || HttpMethods.IsHead(req.Method) || HttpMethods.IsOptions(req.Method) || HttpMethods.IsTrace(req.Method));
        // (the WebSocket feature is added later, by the hub's own middleware: look at the headers)
        var webSocket = string.Equals(req.Headers.Upgrade, "websocket", StringComparison.OrdinalIgnoreCase)
                        || HttpMethods.IsConnect(req.Method);
        if (!unsafeMethod && !webSocket) return next(http);

        string? origin = req.Headers.Origin;
        var site = req.Headers["Sec-Fetch-Site"].ToString();
        bool allowed;
        if (string.IsNullOrEmpty(origin) || origin == "null")
            // no usable Origin (old browsers; "null" from privacy settings or sandboxed frames): trust Fetch metadata
            allowed = site is "same-origin" or "none" || (site.Length == 0 && string.IsNullOrEmpty(origin));
        else
        {
            var own = $"{req.Scheme}://{req.Host}";
            allowed = string.Equals(origin, own, StringComparison.OrdinalIgnoreCase) || _configured.Contains(origin.TrimEnd('/'));
        }
        if (allowed) return next(http);
        log.LogWarning("Refused a cookie-authenticated {Method} {Path} from origin {Origin} ({Address})",
            req.Method, req.Path.Value?.Length > 100 ? req.Path.Value[..100] : req.Path.Value, origin?.Length > 100 ? origin[..100] : origin, http.Connection.RemoteIpAddress);
        return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
            detail: "Cross-origin request refused: this portal accepts cookie-authenticated changes and console connections only from its own pages.")
            .ExecuteAsync(http);
    }
}

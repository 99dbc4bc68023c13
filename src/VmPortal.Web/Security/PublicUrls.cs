namespace VmPortal.Web.Security;

/// <summary>
/// Absolute links the portal hands out (console share links): built on <c>Portal:PublicBaseUrl</c> when configured
/// (e.g. https://vms.example.com behind a proxy), otherwise on the request's scheme and host, which host filtering
/// has already restricted to the portal's own names (<see cref="SecuritySetup.DefaultAllowedHosts"/>).
/// </summary>
public sealed class PublicUrls(IConfiguration config)
{
    private readonly Uri? _base = Configured(config);

    public static Uri? Configured(IConfiguration config) =>
        config["Portal:PublicBaseUrl"] is { Length: > 0 } s && Uri.TryCreate(s.TrimEnd('/') + "/", UriKind.Absolute, out var u)
            && u.Scheme is "http" or "https" ? u : null;

    /// <summary><paramref name="path"/> (starting with '/') as an absolute URL.</summary>
    public string Absolute(HttpContext http, string path) =>
        _base is not null
            ? _base.GetLeftPart(UriPartial.Authority) + _base.AbsolutePath.TrimEnd('/') + path
            : $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{path}";
}

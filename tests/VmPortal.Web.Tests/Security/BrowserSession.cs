using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace VmPortal.Web.Tests.Security;

/// <summary>
/// What a browser does against the real portal: a cookie jar, the antiforgery token from a rendered page, the
/// sign-in form. <paramref name="fromAddress"/> binds the client socket to another loopback address (127.0.0.2 …)
/// so the portal sees a second client machine.
/// </summary>
public sealed partial class BrowserSession : IDisposable
{
    public CookieContainer Cookies { get; } = new();
    public HttpClient Http { get; }
    public Uri Base { get; }

    public BrowserSession(Uri baseAddress, IPAddress? fromAddress = null)
    {
        Base = baseAddress;
        var handler = new SocketsHttpHandler { CookieContainer = Cookies, UseCookies = true, AllowAutoRedirect = false };
        if (fromAddress is not null) handler.ConnectCallback = (ctx, ct) => ConnectFromAsync(fromAddress, ctx, ct);
        Http = new HttpClient(handler) { BaseAddress = baseAddress };
    }

    /// <summary>A plain client (no cookies) whose connections come from <paramref name="fromAddress"/>.</summary>
    public static HttpClient ClientFrom(Uri baseAddress, IPAddress fromAddress) =>
        new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, ConnectCallback = (ctx, ct) => ConnectFromAsync(fromAddress, ctx, ct) })
            { BaseAddress = baseAddress };

    private static async ValueTask<Stream> ConnectFromAsync(IPAddress from, SocketsHttpConnectionContext ctx, CancellationToken ct)
    {
        var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Bind(new IPEndPoint(from, 0));
        await s.ConnectAsync(ctx.DnsEndPoint, ct);
        return new NetworkStream(s, ownsSocket: true);
    }

    /// <summary>The antiforgery token rendered into <paramref name="page"/> (for the current cookie's user).</summary>
    public async Task<string> AntiforgeryTokenAsync(string page = "/account/login")
    {
        var html = await Http.GetStringAsync(page);
        var m = TokenRegex().Match(html);
        Assert.True(m.Success, "no antiforgery token on " + page);
        return WebUtility.HtmlDecode(m.Groups[1].Value);
    }

    public async Task<HttpResponseMessage> PostFormAsync(string path, IDictionary<string, string> fields, string? origin = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(fields) };
        if (origin is not null) req.Headers.Add("Origin", origin);
        return await Http.SendAsync(req);
    }

    public async Task<HttpResponseMessage> SignInAsync(string userName, string password, string? returnUrl = null)
    {
        var token = await AntiforgeryTokenAsync();
        var fields = new Dictionary<string, string> { ["userName"] = userName, ["password"] = password, ["__RequestVerificationToken"] = token };
        if (returnUrl is not null) fields["returnUrl"] = returnUrl;
        return await PostFormAsync("/account/login", fields);
    }

    /// <summary>The Cookie header this browser would send (to replay it elsewhere).</summary>
    public string CookieHeader => Cookies.GetCookieHeader(Base);

    public string Origin => Base.GetLeftPart(UriPartial.Authority);

    public void Dispose() => Http.Dispose();

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex TokenRegex();
}

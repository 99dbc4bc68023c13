using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Security;

/// <summary>
/// Issue 15 findings on cookies and browsers, against the real portal: cross-origin console sockets and cookie
/// requests (2), return URLs (6), sign-out (7), user-name enumeration (8), an expired sign-in form (9),
/// WWW-Authenticate (11), Host header (13), security headers (14).
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class SessionAndOriginTests(PortalAppFixture app) : ApiTestBase(app)
{
    private const string OtherPortOrigin = "http://127.0.0.1:8080";

    private async Task<BrowserSession> SignedInAsync(string userName, string password)
    {
        var s = new BrowserSession(App.BaseAddress);
        var r = await s.SignInAsync(userName, password);
        Assert.True(r.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found, $"sign-in: {r.StatusCode}");
        Assert.Equal("/", r.Headers.Location!.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/api/auth/me")).StatusCode);
        return s;
    }

    private HubConnection CookieHub(BrowserSession s, string origin) =>
        new HubConnectionBuilder()
            .WithUrl(new Uri(App.BaseAddress, ConsoleHub.Path), o =>
            {
                o.Cookies = s.Cookies;
                o.Headers["Origin"] = origin;
                o.Transports = HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
            })
            .AddMessagePackProtocol()
            .Build();

    [Fact]
    public async Task Console_hub_refuses_a_cookie_websocket_from_another_origin_and_accepts_its_own()
    {
        var name = Unique("origin");
        var (_, token) = await App.NewUserAsync(name, password: "origin-password-1");
        using var api = App.Client(token);
        var id = (await CreateVmAsync(api, Unique("ovm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        using var s = await SignedInAsync(name, "origin-password-1");

        await using (var foreign = CookieHub(s, OtherPortOrigin))
        {
            var e = await Assert.ThrowsAnyAsync<Exception>(() => foreign.StartAsync());
            Assert.Contains("403", e.ToString());
        }
        await using var own = CookieHub(s, s.Origin);
        await own.StartAsync();
        var join = await own.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
        Assert.False(join.ReadOnly);

        // bearer-token clients are not affected by the origin of their requests
        await using var bearer = new HubConnectionBuilder()
            .WithUrl(new Uri(App.BaseAddress, ConsoleHub.Path), o =>
            {
                o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                o.Headers["Origin"] = OtherPortOrigin;
            })
            .AddMessagePackProtocol().Build();
        await bearer.StartAsync();
        Assert.False((await bearer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null)).ReadOnly);
    }

    [Fact]
    public async Task Cookie_authenticated_changes_from_another_origin_are_refused()
    {
        var name = Unique("csrf");
        var (_, token) = await App.NewUserAsync(name, password: "csrf-password-1");
        using var s = await SignedInAsync(name, "csrf-password-1");

        async Task<HttpResponseMessage> Create(string? origin, string? site = null)
        {
            using var req = new HttpRequestMessage(HttpMethod.Post, "/api/vms") { Content = JsonContent.Create(VmBody(Unique("c"))) };
            if (origin is not null) req.Headers.Add("Origin", origin);
            if (site is not null) req.Headers.Add("Sec-Fetch-Site", site);
            return await s.Http.SendAsync(req);
        }
        await AssertProblemAsync(await Create(OtherPortOrigin), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Create("null"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await Create(null, "same-site"), HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.Accepted, (await Create(s.Origin)).StatusCode); // a create is a task: 202 + Location
        Assert.Equal(HttpStatusCode.Accepted, (await Create(null, "same-origin")).StatusCode);
        // a cookie-less bearer client from anywhere is fine
        using var bearer = App.Client(token);
        using var req = new HttpRequestMessage(HttpMethod.Post, "/api/vms") { Content = JsonContent.Create(VmBody(Unique("b"))) };
        req.Headers.Add("Origin", OtherPortOrigin);
        Assert.Equal(HttpStatusCode.Created, (await bearer.SendAsync(req)).StatusCode);
    }

    [Fact]
    public async Task Crafted_return_urls_redirect_home_instead_of_failing()
    {
        var name = Unique("ret");
        await App.NewUserAsync(name, password: "return-password-1");
        foreach (var evil in new[] { "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/", " /evil", "/\u2028/evil.example" })
        {
            using var s = new BrowserSession(App.BaseAddress);
            var page = await s.Http.GetAsync("/account/login?returnUrl=" + Uri.EscapeDataString(evil));
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("name=\"returnUrl\" value=\"/\"", await page.Content.ReadAsStringAsync());
            var r = await s.SignInAsync(name, "return-password-1", evil);
            Assert.True(r.StatusCode == HttpStatusCode.Redirect && r.Headers.Location!.OriginalString == "/",
                $"{Uri.EscapeDataString(evil)}: {r.StatusCode} {r.Headers.Location}");
        }
        using var ok = new BrowserSession(App.BaseAddress);
        var good = await ok.SignInAsync(name, "return-password-1", "/vms?page=2");
        Assert.Equal("/vms?page=2", good.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task Sign_out_needs_the_antiforgery_token_and_ends_the_session_on_the_server()
    {
        var name = Unique("out");
        await App.NewUserAsync(name, password: "logout-password-1");
        using var s = await SignedInAsync(name, "logout-password-1");
        var captured = s.CookieHeader;

        // a forged sign-out (no token, e.g. from another site's form) does nothing
        var forged = await s.PostFormAsync("/account/logout", new Dictionary<string, string>(), s.Origin);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/api/auth/me")).StatusCode);

        var token = await s.AntiforgeryTokenAsync();
        var r = await s.PostFormAsync("/account/logout", new Dictionary<string, string> { ["__RequestVerificationToken"] = token }, s.Origin);
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.Equal("/account/login", r.Headers.Location!.OriginalString);

        // the cookie captured before sign-out no longer works
        using var replay = App.Client();
        using var req = new HttpRequestMessage(HttpMethod.Get, "/api/auth/me");
        req.Headers.Add("Cookie", captured);
        Assert.Equal(HttpStatusCode.Unauthorized, (await replay.SendAsync(req)).StatusCode);
        // and signing in again works
        using var again = await SignedInAsync(name, "logout-password-1");
    }

    [Fact]
    public async Task Unknown_and_real_user_names_get_the_same_answers_in_comparable_time()
    {
        var real = Unique("enum");
        await App.NewUserAsync(real, password: "enum-password-1");
        var unknown = Unique("nobody");
        using var c = App.Client();
        async Task<(HttpStatusCode, string, double)> Try(string user)
        {
            var sw = Stopwatch.StartNew();
            var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = user, password = "wrong-password", name = "t", expiresInDays = 1 });
            var ms = sw.Elapsed.TotalMilliseconds;
            return (r.StatusCode, (await JsonAsync(r))["detail"]!.GetValue<string>(), ms);
        }
        await Try(Unique("warm-up")); // first-call costs (hasher, JIT) are not part of the comparison
        var realTimes = new List<double>();
        var unknownTimes = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var a = await Try(real);
            var b = await Try(unknown);
            Assert.Equal(HttpStatusCode.Unauthorized, a.Item1);
            Assert.Equal((a.Item1, a.Item2), (b.Item1, b.Item2));
            realTimes.Add(a.Item3);
            unknownTimes.Add(b.Item3);
        }
        // sixth attempt: both throttled, with the same answer (the real account is not "locked")
        var ra = await Try(real);
        var rb = await Try(unknown);
        Assert.Equal(HttpStatusCode.TooManyRequests, ra.Item1);
        Assert.Equal(ra.Item1, rb.Item1);
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        var ratio = Median(realTimes) / Median(unknownTimes);
        Assert.True(ratio is > 0.4 and < 2.5, $"real {Median(realTimes):0.0} ms vs unknown {Median(unknownTimes):0.0} ms");
    }

    [Fact]
    public async Task An_expired_sign_in_form_shows_the_form_again_with_a_message()
    {
        using var s = new BrowserSession(App.BaseAddress);
        await s.AntiforgeryTokenAsync(); // the antiforgery cookie exists, but the form's token is stale
        var r = await s.PostFormAsync("/account/login", new Dictionary<string, string>
        {
            ["userName"] = "admin", ["password"] = PortalAppFixture.AdminPassword, ["__RequestVerificationToken"] = "CfDJ8-stale-token",
        });
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        var location = r.Headers.Location!.OriginalString;
        Assert.StartsWith("/account/login?error=expired", location);
        var page = await s.Http.GetStringAsync(location);
        Assert.Contains("The form expired, please try again", page);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Http.GetAsync("/api/auth/me")).StatusCode);
    }

    [Fact]
    public async Task Anonymous_401s_carry_WWW_Authenticate()
    {
        using var c = App.Client();
        foreach (var path in new[] { "/api/vms", "/api/auth/me", "/api/images", "/api/users" })
        {
            var r = await c.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("Bearer", Assert.Single(r.Headers.WwwAuthenticate).Scheme);
        }
        // upload: authorization comes before the content-type check
        var up = await c.PostAsync("/api/images?name=x.iso", new StringContent("x", System.Text.Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.Unauthorized, up.StatusCode);
    }

    [Fact]
    public async Task A_forged_Host_header_is_refused_and_never_reaches_links()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var id = (await CreateVmAsync(admin, Unique("host")))["id"]!.GetValue<Guid>();
        using var req = new HttpRequestMessage(HttpMethod.Post, $"/api/vms/{id}/console/shares") { Content = JsonContent.Create(new { expiresInHours = 1 }) };
        req.Headers.Host = "evil.example";
        var r = await admin.SendAsync(req);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        using var login = new HttpRequestMessage(HttpMethod.Get, "/vms");
        login.Headers.Host = "evil.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await App.Client().SendAsync(login)).StatusCode);

        var ok = await admin.PostAsJsonAsync($"/api/vms/{id}/console/shares", new { expiresInHours = 1 });
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        Assert.StartsWith(App.BaseAddress.GetLeftPart(UriPartial.Authority) + "/console/shared/", (await JsonAsync(ok))["url"]!.GetValue<string>());
    }

    [Fact]
    public async Task Responses_carry_security_headers_and_pages_a_script_policy()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var api = await c.GetAsync("/api/vms");
        Assert.Equal("nosniff", api.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("same-origin", api.Headers.GetValues("Referrer-Policy").Single());

        using var anon = App.Client();
        var page = await anon.GetAsync("/account/login");
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self' 'nonce-", csp);
        Assert.DoesNotContain("unsafe-inline' 'unsafe-eval", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Equal("same-origin", page.Headers.GetValues("Referrer-Policy").Single());
        // every script on the page is a file from this portal or carries this response's nonce (the import map)
        var nonce = System.Text.RegularExpressions.Regex.Match(csp, "'nonce-([^']+)'").Groups[1].Value;
        var html = await page.Content.ReadAsStringAsync();
        var scripts = System.Text.RegularExpressions.Regex.Matches(html, "<script[^>]*>").Select(m => m.Value).ToList();
        Assert.NotEmpty(scripts);
        Assert.All(scripts, tag => Assert.True(tag.Contains("src=\"") || tag.Contains($"nonce=\"{nonce}\""), tag));
    }
}

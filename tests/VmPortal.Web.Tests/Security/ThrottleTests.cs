using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Security;

/// <summary>A portal with the shipped limits (the shared test portal raises the per-address ones).</summary>
public sealed class ShippedLimitsPortalFixture() : PortalAppFixture(new Dictionary<string, string?>());

[CollectionDefinition(Name)]
public sealed class ShippedLimitsCollection : ICollectionFixture<ShippedLimitsPortalFixture>
{
    public const string Name = "portal with shipped limits";
}

/// <summary>
/// Finding 1: password guessing is answered with 429 + Retry-After per address and per user name, without locking
/// the real user (another address) out and without touching API tokens; throttling is audited.
/// </summary>
[Collection(ShippedLimitsCollection.Name)]
public sealed class ThrottleTests(ShippedLimitsPortalFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Fifty_anonymous_failures_for_admin_are_throttled_but_admin_keeps_signing_in_and_its_tokens_work()
    {
        var adminToken = await App.AdminTokenAsync();
        using var attacker = BrowserSession.ClientFrom(App.BaseAddress, IPAddress.Parse("127.0.0.2"));
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? first429 = null;
        for (var i = 0; i < 50; i++)
        {
            var r = await attacker.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = "guess-" + i, name = "t", expiresInDays = 1 });
            statuses.Add(r.StatusCode);
            if (r.StatusCode == HttpStatusCode.TooManyRequests) first429 ??= r;
        }
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.Unauthorized)); // then every answer is 429
        Assert.Equal(45, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.NotNull(first429!.Headers.RetryAfter?.Delta);
        await AssertProblemAsync(first429, HttpStatusCode.TooManyRequests);

        // the real admin, from its own address, is not locked out; its existing token keeps working
        using var admin = App.Client(adminToken);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/auth/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await App.Client().PostAsJsonAsync("/api/auth/tokens",
            new { username = "admin", password = PortalAppFixture.AdminPassword, name = "t", expiresInDays = 1 })).StatusCode);
        // the attacker's address is refused even with the right password
        Assert.Equal(HttpStatusCode.TooManyRequests, (await attacker.PostAsJsonAsync("/api/auth/tokens",
            new { username = "admin", password = PortalAppFixture.AdminPassword, name = "t", expiresInDays = 1 })).StatusCode);

        var audit = App.Services.GetRequiredService<AuditLog>();
        var events = await audit.RecentAsync(500);
        Assert.Contains(events, e => e.Action == AuditActions.SignInThrottled && e.UserName == "admin" && e.Details.Contains("127.0.0.2"));
    }

    [Fact]
    public async Task One_address_spraying_many_user_names_is_throttled_per_address()
    {
        using var sprayer = BrowserSession.ClientFrom(App.BaseAddress, IPAddress.Parse("127.0.0.3"));
        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < 25; i++)
            codes.Add((await sprayer.PostAsJsonAsync("/api/auth/tokens", new { username = Unique("spray"), password = "guess", name = "t", expiresInDays = 1 })).StatusCode);
        Assert.Equal(20, codes.Count(c => c == HttpStatusCode.Unauthorized));
        Assert.All(codes.Skip(20), c => Assert.Equal(HttpStatusCode.TooManyRequests, c));
    }

    [Fact]
    public async Task The_sign_in_form_is_throttled_too_and_says_when_to_retry()
    {
        var name = Unique("form");
        await App.NewUserAsync(name, password: "form-password-1");
        using var s = new BrowserSession(App.BaseAddress, IPAddress.Parse("127.0.0.4"));
        for (var i = 0; i < 5; i++)
            Assert.Contains("error=invalid", (await s.SignInAsync(name, "wrong")).Headers.Location!.OriginalString);
        var r = await s.SignInAsync(name, "form-password-1");
        var location = r.Headers.Location!.OriginalString;
        Assert.Contains("error=throttled", location);
        Assert.Contains("try again in", await s.Http.GetStringAsync(location));
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Http.GetAsync("/api/auth/me")).StatusCode);
    }
}

using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>Who sees what: users see their own VMs only, admins see all, tokens can be revoked or expire.</summary>
[Collection(PortalCollection.Name)]
public sealed class AuthorizationTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task User_B_gets_404_for_user_As_vm_and_cannot_change_it()
    {
        var a = await App.NewUserAsync(Unique("a"));
        var b = await App.NewUserAsync(Unique("b"));
        using var ca = App.Client(a.Token);
        using var cb = App.Client(b.Token);
        var vm = await CreateVmAsync(ca, Unique("secret"));
        var id = vm["id"]!.GetValue<Guid>();
        var version = vm["version"]!.GetValue<uint>();

        await AssertProblemAsync(await cb.GetAsync($"/api/vms/{id}"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await cb.PutAsJsonAsync($"/api/vms/{id}", new { name = "stolen", memoryMiB = 64, version }), HttpStatusCode.NotFound);
        await AssertProblemAsync(await cb.DeleteAsync($"/api/vms/{id}"), HttpStatusCode.NotFound);
        var listB = await JsonAsync(await cb.GetAsync("/api/vms"));
        Assert.DoesNotContain(listB["items"]!.AsArray(), v => v!["id"]!.GetValue<Guid>() == id);
        // B asking for A's VMs by owner id sees nothing either
        Assert.Equal(0, (await JsonAsync(await cb.GetAsync($"/api/vms?ownerId={a.Id}")))["total"]!.GetValue<int>());

        // A's VM is untouched
        var still = await JsonAsync(await ca.GetAsync($"/api/vms/{id}"));
        Assert.Equal(vm["name"]!.GetValue<string>(), still["name"]!.GetValue<string>());
        Assert.Equal(version, still["version"]!.GetValue<uint>());
    }

    [Fact]
    public async Task Admin_sees_every_vm_and_filters_by_owner()
    {
        var a = await App.NewUserAsync(Unique("own"));
        using var ca = App.Client(a.Token);
        var vm = await CreateVmAsync(ca, Unique("x"));
        using var admin = App.Client(await App.AdminTokenAsync());
        var mine = await JsonAsync(await admin.GetAsync($"/api/vms?ownerId={a.Id}"));
        Assert.Equal(1, mine["total"]!.GetValue<int>());
        Assert.Equal(vm["id"]!.GetValue<Guid>(), mine["items"]![0]!["id"]!.GetValue<Guid>());
        Assert.Equal(a.Id, mine["items"]![0]!["ownerId"]!.GetValue<Guid>());
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/vms/{vm["id"]}")).StatusCode);
    }

    [Fact]
    public async Task Only_admins_create_vms_for_others()
    {
        var a = await App.NewUserAsync(Unique("o1"));
        var b = await App.NewUserAsync(Unique("o2"));
        using var cb = App.Client(b.Token);
        var r = await cb.PostAsJsonAsync("/api/vms", new { name = Unique("gift"), memoryMiB = 64, ownerId = a.Id });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);

        using var admin = App.Client(await App.AdminTokenAsync());
        var ok = await admin.PostAsJsonAsync("/api/vms", new { name = Unique("gift"), memoryMiB = 64, ownerId = a.Id });
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        Assert.Equal(a.Id, (await JsonAsync(ok))["ownerId"]!.GetValue<Guid>());
    }

    [Fact]
    public async Task Users_cannot_reach_admin_endpoints()
    {
        var u = await App.NewUserAsync(Unique("plain"));
        using var c = App.Client(u.Token);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.GetAsync("/api/users")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.PostAsJsonAsync("/api/users", new { userName = Unique("x"), password = "password-123", role = "Admin" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.GetAsync("/api/audit")).StatusCode);
    }

    [Fact]
    public async Task Revoked_token_gets_401()
    {
        var u = await App.NewUserAsync(Unique("rev"));
        using var c = App.Client(u.Token);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/vms")).StatusCode);
        var tokens = await c.GetFromJsonAsync<List<TokenRow>>("/api/auth/tokens", Web);
        var tokenId = Assert.Single(tokens!).Id;
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/auth/tokens/{tokenId}")).StatusCode);
        var r = await c.GetAsync("/api/vms");
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Expired_token_gets_401()
    {
        var u = await App.NewUserAsync(Unique("exp"));
        using var c = App.Client(u.Token);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/vms")).StatusCode);
        var tokenId = (await c.GetFromJsonAsync<List<TokenRow>>("/api/auth/tokens", Web))!.Single().Id;
        var svc = (VmPortal.Core.Accounts.ApiTokenService)App.Services.GetService(typeof(VmPortal.Core.Accounts.ApiTokenService))!;
        await svc.SetExpiryAsync(tokenId, DateTimeOffset.UtcNow.AddSeconds(-1));
        Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/api/vms")).StatusCode);
    }

    [Fact]
    public async Task Forged_or_garbage_tokens_get_401()
    {
        foreach (var t in new[] { "vmp_" + new string('A', 43), "garbage", "vmp_'; DROP TABLE api_tokens; --", new string('x', 5000) })
        {
            using var c = App.Client(t);
            Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/api/vms")).StatusCode);
        }
    }

    [Fact]
    public async Task Token_endpoint_throttles_wrong_passwords_with_429_and_keeps_existing_tokens_working()
    {
        var name = Unique("lock");
        var (_, token) = await App.NewUserAsync(name, password: "right-password-1");
        using var c = App.Client();
        for (var i = 0; i < 5; i++)
        {
            var bad = await c.PostAsJsonAsync("/api/auth/tokens", new { username = name, password = "wrong", name = "t", expiresInDays = 1 });
            await AssertProblemAsync(bad, HttpStatusCode.Unauthorized);
        }
        // from this address, this user name is throttled: 429 with Retry-After, even with the right password
        var throttled = await c.PostAsJsonAsync("/api/auth/tokens", new { username = name, password = "right-password-1", name = "t", expiresInDays = 1 });
        await AssertProblemAsync(throttled, HttpStatusCode.TooManyRequests);
        var retry = throttled.Headers.RetryAfter?.Delta;
        Assert.NotNull(retry);
        Assert.InRange(retry!.Value.TotalSeconds, 1, 300);
        // the account is not locked: the user's token still works
        using var withToken = App.Client(token);
        Assert.Equal(HttpStatusCode.OK, (await withToken.GetAsync("/api/auth/me")).StatusCode);
    }

    [Fact]
    public async Task Token_request_validation()
    {
        using var c = App.Client();
        var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = PortalAppFixture.AdminPassword, name = "", expiresInDays = 0 });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        var errors = (await JsonAsync(r))["errors"]!.AsObject();
        Assert.True(errors.ContainsKey("name"));
        var r2 = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = PortalAppFixture.AdminPassword, name = "ok", expiresInDays = 10000 });
        Assert.True((await JsonAsync(r2))["errors"]!.AsObject().ContainsKey("expiresInDays"));
        var unknown = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "nobody-" + Guid.NewGuid(), password = "x", name = "ok", expiresInDays = 1 });
        await AssertProblemAsync(unknown, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Minted_token_has_prefix_and_is_stored_only_hashed()
    {
        using var c = App.Client();
        var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = PortalAppFixture.AdminPassword, name = "script", expiresInDays = 7 });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var body = await JsonAsync(r);
        var token = body["token"]!.GetValue<string>();
        Assert.StartsWith("vmp_", token);
        var expires = body["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expires, DateTimeOffset.UtcNow.AddDays(6.9), DateTimeOffset.UtcNow.AddDays(7.1));

        var dbf = (Microsoft.EntityFrameworkCore.IDbContextFactory<VmPortal.Data.PortalDbContext>)App.Services.GetService(typeof(Microsoft.EntityFrameworkCore.IDbContextFactory<VmPortal.Data.PortalDbContext>))!;
        await using var db = await dbf.CreateDbContextAsync();
        var id = body["id"]!.GetValue<Guid>();
        var row = db.ApiTokens.Single(t => t.Id == id);
        Assert.NotEqual(token, row.Hash);
        Assert.DoesNotContain(token[4..], row.Hash);
        Assert.Equal(VmPortal.Core.Accounts.ApiTokenService.Hash(token), row.Hash);
    }

    [Fact]
    public async Task Disabled_user_tokens_stop_working()
    {
        var u = await App.NewUserAsync(Unique("dis"));
        using var c = App.Client(u.Token);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/vms")).StatusCode);
        var users = (VmPortal.Core.Accounts.UserService)App.Services.GetService(typeof(VmPortal.Core.Accounts.UserService))!;
        var admin = new VmPortal.Core.Caller(Guid.Empty, "admin", true);
        Assert.True((await users.SetDisabledAsync(admin, u.Id, true)).IsOk);
        Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/api/vms")).StatusCode);
        Assert.True((await users.SetDisabledAsync(admin, u.Id, false)).IsOk);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/vms")).StatusCode);
    }

    private sealed record TokenRow(Guid Id, string Name, bool Active);
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Scoped API tokens and per-token rate limits on the real portal: a <c>vms:read</c> token reads but cannot start,
/// create or type (403 naming the scope); scopes never exceed the owner (admin scope refused for a user, an admin's
/// read-only token loses admin rights); last use and address are recorded; a token's own limit answers 429 with
/// <c>Retry-After</c> without touching other tokens.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class ScopedTokenTests(PortalAppFixture app) : ApiTestBase(app)
{
    private async Task<HttpResponseMessage> MintAsync(string user, string password, object extra)
    {
        using var c = App.Client();
        var body = new JsonObject { ["username"] = user, ["password"] = password, ["name"] = "scoped", ["expiresInDays"] = 1 };
        foreach (var (k, v) in JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(extra))!.AsObject()) body[k] = v?.DeepClone();
        return await c.PostAsync("/api/auth/tokens", new StringContent(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
    }

    private async Task<string> TokenAsync(string user, string password, object extra)
    {
        var r = await MintAsync(user, password, extra);
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        return (await JsonAsync(r))["token"]!.GetValue<string>();
    }

    [Fact]
    public async Task A_read_only_token_reads_but_cannot_change_power_or_type()
    {
        var name = Unique("scoped");
        var (_, full) = await App.NewUserAsync(name);
        using var owner = App.Client(full);
        var vm = await CreateVmAsync(owner, "box", 64);
        var id = vm["id"]!.GetValue<Guid>();

        var readToken = await TokenAsync(name, "user-password-1", new { scopes = new[] { "vms:read" } });
        using var reader = App.Client(readToken);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/api/vms")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"/api/vms/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/api/templates")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/api/auth/me")).StatusCode);

        var start = await reader.PostAsync($"/api/vms/{id}/start", null);
        await AssertProblemAsync(start, HttpStatusCode.Forbidden);
        Assert.Contains("vms:power", await start.Content.ReadAsStringAsync());
        await AssertProblemAsync(await reader.PostAsJsonAsync("/api/vms", VmBody("other")), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await reader.DeleteAsync($"/api/vms/{id}"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await reader.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "c" }), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await reader.GetAsync($"/api/vms/{id}/console/text"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await reader.GetAsync("/api/auth/tokens"), HttpStatusCode.Forbidden);
        Assert.Equal("stopped", (await JsonAsync(await owner.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());

        // a power-only token starts and stops, but cannot edit
        var powerToken = await TokenAsync(name, "user-password-1", new { scopes = new[] { "vms:power" } });
        using var power = App.Client(powerToken);
        Assert.Equal(HttpStatusCode.OK, (await power.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await power.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        await AssertProblemAsync(await power.DeleteAsync($"/api/vms/{id}"), HttpStatusCode.Forbidden);

        // another user's VM is still 404 to a fully-scoped token
        var (_, strangerToken) = await App.NewUserAsync(Unique("stranger"));
        using var stranger = App.Client(strangerToken);
        await AssertProblemAsync(await stranger.PostAsync($"/api/vms/{id}/start", null), HttpStatusCode.NotFound);

        // the token list shows scopes, last use and address
        var tokens = JsonNode.Parse(await owner.GetStringAsync("/api/auth/tokens"))!.AsArray();
        var listed = tokens.Single(t => t!["prefix"]!.GetValue<string>() == readToken[..8])!;
        Assert.Equal("vms:read", listed["scopes"]![0]!.GetValue<string>());
        Assert.NotNull(listed["lastUsedAt"]);
        Assert.Equal("127.0.0.1", listed["lastUsedAddress"]!.GetValue<string>());
    }

    [Fact]
    public async Task Scopes_never_exceed_the_owner_and_unknown_scopes_are_refused()
    {
        var name = Unique("scoped");
        await App.NewUserAsync(name);
        var adminScope = await MintAsync(name, "user-password-1", new { scopes = new[] { "admin" } });
        await AssertProblemAsync(adminScope, HttpStatusCode.BadRequest);
        Assert.Contains("administrator", await adminScope.Content.ReadAsStringAsync());
        var unknown = await MintAsync(name, "user-password-1", new { scopes = new[] { "vms:everything" } });
        await AssertProblemAsync(unknown, HttpStatusCode.BadRequest);
        Assert.Contains("vms:read", await unknown.Content.ReadAsStringAsync());

        // an admin's read-only token has no admin rights; with the admin scope it has
        var adminRead = await TokenAsync("admin", PortalAppFixture.AdminPassword, new { scopes = new[] { "vms:read" } });
        using var ar = App.Client(adminRead);
        Assert.Equal(HttpStatusCode.Forbidden, (await ar.GetAsync("/api/users")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await ar.GetAsync("/api/audit")).StatusCode);
        var me = await JsonAsync(await ar.GetAsync("/api/auth/me"));
        Assert.DoesNotContain(me["roles"]!.AsArray(), r => r!.GetValue<string>() == "Admin");
        var adminAll = await TokenAsync("admin", PortalAppFixture.AdminPassword, new { scopes = new[] { "admin" } });
        using var aa = App.Client(adminAll);
        Assert.Equal(HttpStatusCode.OK, (await aa.GetAsync("/api/users")).StatusCode);
    }

    [Fact]
    public async Task A_tokens_rate_limit_answers_429_with_retry_after_and_leaves_other_tokens_alone()
    {
        var name = Unique("limited");
        var (_, other) = await App.NewUserAsync(name);
        var limitedToken = await TokenAsync(name, "user-password-1", new { rateLimitPerMinute = 3 });
        await AssertProblemAsync(await MintAsync(name, "user-password-1", new { rateLimitPerMinute = 0 }), HttpStatusCode.BadRequest);
        using var limited = App.Client(limitedToken);
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await limited.GetAsync("/api/vms")).StatusCode);
        var refused = await limited.GetAsync("/api/vms");
        await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests);
        var retry = refused.Headers.RetryAfter!.Delta!.Value;
        Assert.InRange(retry.TotalSeconds, 1, 60);
        Assert.Contains("3 requests per minute", await refused.Content.ReadAsStringAsync());
        // the same user's other token is unaffected
        using var unaffected = App.Client(other);
        Assert.Equal(HttpStatusCode.OK, (await unaffected.GetAsync("/api/vms")).StatusCode);
    }
}

/// <summary>The audit export: filters, CSV shape (RFC 4180 quoting, formula cells defused), admins only.</summary>
[Collection(PortalCollection.Name)]
public sealed class AuditExportTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task The_audit_log_exports_as_filtered_csv_for_admins_only()
    {
        var name = "-" + Unique("csv"); // a user name a spreadsheet would read as a formula
        var (_, token) = await App.NewUserAsync(name);
        using var user = App.Client(token);
        var r = await user.PostAsJsonAsync("/api/vms", new { name = "two-disks", memoryMiB = 64, disks = new[] { new { sizeMiB = 1 }, new { sizeMiB = 2 } } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        await AssertProblemAsync(await user.GetAsync("/api/audit/export"), HttpStatusCode.Forbidden);

        using var admin = App.Client(await App.AdminTokenAsync());
        var csvAnswer = await admin.GetAsync($"/api/audit/export?user={Uri.EscapeDataString(name)}&action=vm.*");
        Assert.Equal(HttpStatusCode.OK, csvAnswer.StatusCode);
        Assert.Equal("text/csv", csvAnswer.Content.Headers.ContentType!.MediaType);
        Assert.StartsWith("audit-", csvAnswer.Content.Headers.ContentDisposition!.FileName!.Trim('"'));
        var lines = (await csvAnswer.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("id,at,user,userId,action,targetType,targetId,success,details", lines[0]);
        var row = Assert.Single(lines.Skip(1));
        Assert.Contains($",'{name},", row);                       // formula defused
        Assert.Contains(",vm.create,vm,", row);
        Assert.EndsWith("disks=1MiB,2MiB\"", row);               // a comma inside is quoted
        Assert.Contains(",\"name=two-disks", row);

        var json = JsonNode.Parse(await admin.GetStringAsync($"/api/audit/export?format=json&user={Uri.EscapeDataString(name)}"))!.AsArray();
        Assert.Contains(json, e => e!["action"]!.GetValue<string>() == "vm.create");
        Assert.All(json, e => Assert.Equal(name, e!["userName"]!.GetValue<string>()));
        await AssertProblemAsync(await admin.GetAsync("/api/audit/export?format=xml"), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await admin.GetAsync("/api/audit/export?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), HttpStatusCode.BadRequest);
        var none = await admin.GetStringAsync($"/api/audit/export?user={Uri.EscapeDataString(name)}&from=2999-01-01T00:00:00Z");
        Assert.Equal("id,at,user,userId,action,targetType,targetId,success,details\r\n", none);
    }
}

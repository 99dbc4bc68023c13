using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Console;
using VmPortal.Data;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// View-only console links on real Kestrel + PostgreSQL: the REST API (owner or admin, bounded expiry, problem details,
/// only the hash stored, audit), the anonymous share page, and the hub: a link's viewer gets frames but every input and
/// power call is refused; revoking or expiring the link cuts off viewers that are already watching.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class ConsoleShareTests(PortalAppFixture app) : ApiTestBase(app)
{
    private static async Task<(Guid Id, string Token, string Url)> ShareAsync(HttpClient c, Guid vmId, int hours = 1, string? label = null)
    {
        var r = await c.PostAsJsonAsync($"/api/vms/{vmId}/console/shares", new { expiresInHours = hours, label });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var body = await JsonAsync(r);
        Assert.Equal($"/api/vms/{vmId}/console/shares/{body["id"]}", r.Headers.Location?.ToString());
        return (body["id"]!.GetValue<Guid>(), body["token"]!.GetValue<string>(), body["url"]!.GetValue<string>());
    }

    [Fact]
    public async Task Owner_makes_lists_and_revokes_links_with_bounded_expiry_and_only_the_hash_is_stored()
    {
        var a = await App.NewUserAsync(Unique("sh-a"));
        var b = await App.NewUserAsync(Unique("sh-b"));
        using var ca = App.Client(a.Token);
        using var cb = App.Client(b.Token);
        using var admin = App.Client(await App.AdminTokenAsync());
        var vmName = Unique("sharevm");
        var id = (await CreateVmAsync(ca, vmName, memoryMiB: 32))["id"]!.GetValue<Guid>();
        var before = DateTimeOffset.UtcNow;

        var (shareId, token, url) = await ShareAsync(ca, id, hours: 48, label: "for bob");
        Assert.StartsWith(ConsoleShareService.TokenPrefix, token);
        Assert.True(token.Length >= 40, token);
        Assert.Equal(new Uri(App.BaseAddress, $"/console/shared/{token}").ToString(), url);

        // bad input: problem details naming the field
        foreach (var (body, field) in new (string, string)[]
                 {
                     ("{}", "expiresInHours"), ("{\"expiresInHours\":0}", "expiresInHours"), ("{\"expiresInHours\":721}", "expiresInHours"),
                     ("{\"expiresInHours\":-5}", "expiresInHours"),
                     ($"{{\"expiresInHours\":1,\"label\":\"{new string('x', 101)}\"}}", "label"),
                     ("{\"expiresInHours\":1,\"label\":\"a\\u0007b\"}", "label"),
                 })
        {
            var r = await ca.PostAsync($"/api/vms/{id}/console/shares", RawJson(body));
            await AssertProblemAsync(r, HttpStatusCode.BadRequest);
            var problem = await JsonAsync(await ca.PostAsync($"/api/vms/{id}/console/shares", RawJson(body)));
            Assert.True(problem["errors"]?[field] is not null, $"{body}: {problem}");
        }
        await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/console/shares", RawJson("not json")), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/console/shares", RawJson("{\"expiresInHours\":\"soon\"}")), HttpStatusCode.BadRequest);

        // another user: the VM does not exist for them
        await AssertProblemAsync(await cb.PostAsJsonAsync($"/api/vms/{id}/console/shares", new { expiresInHours = 1 }), HttpStatusCode.NotFound);
        await AssertProblemAsync(await cb.GetAsync($"/api/vms/{id}/console/shares"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await cb.DeleteAsync($"/api/vms/{id}/console/shares/{shareId}"), HttpStatusCode.NotFound);
        using (var anonymous = App.Client())
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/api/vms/{id}/console/shares")).StatusCode);

        // the list never shows the token; the database holds only its SHA-256
        var listText = await ca.GetStringAsync($"/api/vms/{id}/console/shares");
        Assert.DoesNotContain(token, listText);
        var listed = Assert.Single(JsonNode.Parse(listText)!.AsArray());
        Assert.Equal(shareId, listed!["id"]!.GetValue<Guid>());
        Assert.Equal("for bob", listed["label"]!.GetValue<string>());
        Assert.True(listed["active"]!.GetValue<bool>());
        Assert.Equal(token[..8], listed["prefix"]!.GetValue<string>());
        var expires = listed["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expires, before.AddHours(48).AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(48).AddMinutes(1));
        await using (var db = await App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>().CreateDbContextAsync())
        {
            var row = await db.ConsoleShares.AsNoTracking().SingleAsync(s => s.Id == shareId);
            Assert.Equal(ConsoleShareService.Hash(token), row.TokenHash);
            Assert.Equal(64, row.TokenHash.Length);
            Assert.DoesNotContain(token, $"{row.TokenHash}|{row.Prefix}|{row.Label}|{row.CreatedByName}");
        }
        // an admin sees and may revoke it
        Assert.Single((await admin.GetFromJsonAsync<JsonArray>($"/api/vms/{id}/console/shares"))!);

        // the share page opens without signing in, and says so once the link is revoked
        using var browser = App.Client();
        var page = await browser.GetStringAsync($"/console/shared/{token}");
        Assert.Contains(vmName, page);
        Assert.Contains("View-only console", page);
        Assert.Contains("invalid, expired or revoked", await browser.GetStringAsync("/console/shared/vms_nonsense"));

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/vms/{id}/console/shares/{shareId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}/console/shares/{shareId}")).StatusCode); // idempotent
        await AssertProblemAsync(await ca.DeleteAsync($"/api/vms/{id}/console/shares/{Guid.NewGuid()}"), HttpStatusCode.NotFound);
        var after = Assert.Single((await ca.GetFromJsonAsync<JsonArray>($"/api/vms/{id}/console/shares"))!);
        Assert.False(after!["active"]!.GetValue<bool>());
        Assert.NotNull(after["revokedAt"]?.GetValue<DateTimeOffset>());
        Assert.Contains("invalid, expired or revoked", await browser.GetStringAsync($"/console/shared/{token}"));

        // audit: who made and who revoked the link
        var audit = (await admin.GetFromJsonAsync<JsonArray>($"/api/audit?search={vmName}"))!;
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == ConsoleShareService.AuditCreate
                                    && e["details"]!.GetValue<string>().Contains(shareId.ToString()));
        Assert.Contains(audit, e => e!["action"]!.GetValue<string>() == ConsoleShareService.AuditRevoke && e["userName"]!.GetValue<string>() == "admin");

        // deleting the VM deletes its links
        Assert.Equal(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}")).StatusCode);
        await using (var db = await App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>().CreateDbContextAsync())
            Assert.False(await db.ConsoleShares.AnyAsync(s => s.VmId == id));
    }

    [Fact]
    public async Task A_link_viewer_sees_frames_but_cannot_send_input_and_is_cut_off_when_the_link_is_revoked_or_expires()
    {
        var a = await App.NewUserAsync(Unique("shv-a"));
        var b = await App.NewUserAsync(Unique("shv-b"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("sharehub"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        var other = (await CreateVmAsync(ca, Unique("other"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        var (shareId, token, _) = await ShareAsync(ca, id);
        var shares = App.Services.GetRequiredService<ConsoleShareService>();

        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            await using var owner = Connect(a.Token);
            await owner.StartAsync();
            await owner.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);

            // an anonymous viewer with the link: read-only, full frame, screen text
            await using var viewer = Connect(null);
            var full = new TaskCompletionSource<ConsoleFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
            var closed = new TaskCompletionSource<ConsoleClosed>(TaskCreationOptions.RunContinuationsAsynchronously);
            var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            viewer.On<ConsoleFrame>(ConsoleMethods.Frame, f => { if (f.Full && f.Tiles.Length > 0) full.TrySetResult(f); });
            viewer.On<ConsoleClosed>(ConsoleMethods.Closed, c => closed.TrySetResult(c));
            viewer.Closed += _ => { gone.TrySetResult(); return Task.CompletedTask; };
            await viewer.StartAsync();

            // the token opens only its own VM
            await Assert.ThrowsAsync<HubException>(() => viewer.InvokeAsync<JoinResult>("JoinConsole", other.ToString(), token));
            await Assert.ThrowsAsync<HubException>(() => viewer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), token + "x"));
            var join = await viewer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), token);
            Assert.True(join.ReadOnly);
            Assert.Equal(VmRunState.Running, join.State);
            var frame = await full.Task.WaitAsync(TimeSpan.FromSeconds(30));
            // the owner can see that the link was used (audit: anonymous, from where)
            using (var admin = App.Client(await App.AdminTokenAsync()))
            {
                var opened = (await admin.GetFromJsonAsync<JsonArray>($"/api/audit?search={shareId}"))!;
                var open = Assert.Single(opened, e => e!["action"]!.GetValue<string>() == ConsoleShareService.AuditOpen);
                Assert.Equal("(anonymous)", open!["userName"]!.GetValue<string>());
                Assert.Contains("from=127.0.0.1", open["details"]!.GetValue<string>());
            }
            Assert.True(frame.Width >= 640, $"{frame.Width}x{frame.Height}");
            Assert.Contains("SeaBIOS", await WaitForTextAsync(viewer, "SeaBIOS"));

            // every input and power call is refused for the link viewer
            foreach (var (method, args) in InputCalls)
                await Assert.ThrowsAsync<HubException>(() => viewer.InvokeCoreAsync(method, args));
            Assert.Equal("running", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());

            // a signed-in stranger holding the link is view-only too (the explicit read-only check, past [Authorize])
            await using var stranger = Connect(b.Token);
            await stranger.StartAsync();
            await Assert.ThrowsAsync<HubException>(() => stranger.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null));
            Assert.True((await stranger.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), token)).ReadOnly);
            foreach (var (method, args) in InputCalls)
            {
                var e = await Assert.ThrowsAsync<HubException>(() => stranger.InvokeCoreAsync(method, args));
                Assert.Contains("view-only", e.Message);
            }

            // revoke: both link viewers are told and disconnected; the owner keeps the console
            Assert.Equal(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}/console/shares/{shareId}")).StatusCode);
            Assert.Contains("revoked", (await closed.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
            await gone.Task.WaitAsync(TimeSpan.FromSeconds(10));
            await WaitUntilAsync(() => stranger.State == HubConnectionState.Disconnected);
            Assert.Contains("SeaBIOS", await WaitForTextAsync(owner, "SeaBIOS"));
            await owner.InvokeAsync("Key", "Escape", true);
            await owner.InvokeAsync("Key", "Escape", false);

            // the revoked token no longer joins
            await using var late = Connect(null);
            await late.StartAsync();
            var refused = await Assert.ThrowsAsync<HubException>(() => late.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), token));
            Assert.Contains("revoked", refused.Message);

            // expiry: moved into the past → cut off; a link that runs out while watched → cut off by the sweep
            var (expShare, expToken, _) = await ShareAsync(ca, id);
            var (soonShare, soonToken, _) = await ShareAsync(ca, id);
            await using var expViewer = Connect(null);
            await using var soonViewer = Connect(null);
            await expViewer.StartAsync();
            await soonViewer.StartAsync();
            await expViewer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), expToken);
            await soonViewer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), soonToken);
            await shares.SetExpiryAsync(expShare, DateTimeOffset.UtcNow.AddMinutes(-1));
            await WaitUntilAsync(() => expViewer.State == HubConnectionState.Disconnected);
            Assert.Equal(HubConnectionState.Connected, soonViewer.State);
            await shares.SetExpiryAsync(soonShare, DateTimeOffset.UtcNow.AddSeconds(4));
            await soonViewer.InvokeAsync<string?>("GetScreenText"); // still valid for now (throws once cut off)
            await WaitUntilAsync(() => soonViewer.State == HubConnectionState.Disconnected);
            Assert.Equal(HubConnectionState.Connected, owner.State);
        }
        finally
        {
            await ca.PostAsync($"/api/vms/{id}/stop", null);
        }
    }

    private static readonly (string Method, object?[] Args)[] InputCalls =
    [
        ("Key", ["KeyA", true]), ("TypeText", ["reboot\n"]), ("SpecialKeys", ["ctrl-alt-del"]), ("Mouse", [5, 5, 1]), ("MouseWheel", [1, 0]),
        ("SerialInput", [new byte[] { 13 }]), ("Power", ["poweroff"]), ("Power", ["reset"]),
    ];

    private static async Task WaitUntilAsync(Func<bool> condition, double seconds = 10)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not met in time");
            await Task.Delay(50);
        }
    }

    private static async Task<string> WaitForTextAsync(HubConnection c, string text)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string last = "";
        while (DateTime.UtcNow < until)
        {
            last = await c.InvokeAsync<string?>("GetScreenText") ?? "";
            if (last.Contains(text)) return last;
            await Task.Delay(100);
        }
        return last;
    }
}

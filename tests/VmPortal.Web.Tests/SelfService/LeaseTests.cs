using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Disks;
using VmPortal.Core.Leases;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Leases on the real portal: the owner sets and shortens, only admins extend; the reaper, run with chosen times
/// (an injected clock), powers a running VM off at expiry and deletes it (definition and disk files) after the grace
/// period; each step is audited.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class LeaseTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task A_lease_stops_the_vm_at_expiry_and_deletes_it_after_the_grace_period()
    {
        var (_, token) = await App.NewUserAsync(Unique("leaser"));
        using var c = App.Client(token);
        using var admin = App.Client(await App.AdminTokenAsync());
        var vm = await CreateVmAsync(c, "temporary", 64);
        var id = vm["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.NoContent, (await c.GetAsync($"/api/vms/{id}/lease")).StatusCode);

        var now = DateTimeOffset.UtcNow;
        var set = await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = now.AddHours(2), graceHours = 24 });
        Assert.True(set.StatusCode == HttpStatusCode.OK, await set.Content.ReadAsStringAsync());
        var lease = await JsonAsync(set);
        Assert.True(lease["warning"]!.GetValue<bool>());
        // the owner may shorten, not extend or remove; an admin may extend
        Assert.Equal(HttpStatusCode.OK, (await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = now.AddHours(1) })).StatusCode);
        var extend = await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = now.AddDays(3) });
        await AssertProblemAsync(extend, HttpStatusCode.BadRequest);
        Assert.Contains("Only an administrator can extend", await extend.Content.ReadAsStringAsync());
        await AssertProblemAsync(await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = (DateTimeOffset?)null }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = now.AddHours(-1) }), HttpStatusCode.BadRequest);
        var extended = await JsonAsync(await admin.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = now.AddHours(3) }));
        Assert.Equal(now.AddHours(3 + 24).ToUnixTimeSeconds(), extended["deleteAt"]!.GetValue<DateTimeOffset>().ToUnixTimeSeconds());
        var (_, strangerToken) = await App.NewUserAsync(Unique("stranger"));
        using var stranger = App.Client(strangerToken);
        await AssertProblemAsync(await stranger.GetAsync($"/api/vms/{id}/lease"), HttpStatusCode.NotFound);

        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        var leases = App.Services.GetRequiredService<LeaseService>();
        var runtime = App.Services.GetRequiredService<VmPortal.Web.Runtime.VmRuntime>();

        // before expiry nothing happens
        var early = await leases.ReapAsync(now.AddHours(1), runtime.ForgetAsync);
        Assert.DoesNotContain(id, early.Stopped);
        Assert.NotEqual("stopped", (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());

        // at expiry: powered off, kept
        var expiry = await leases.ReapAsync(now.AddHours(4), runtime.ForgetAsync);
        Assert.Contains(id, expiry.Stopped);
        Assert.DoesNotContain(id, expiry.Deleted);
        Assert.Equal("stopped", (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
        var after = await JsonAsync(await c.GetAsync($"/api/vms/{id}/lease"));
        Assert.NotNull(after["stoppedAt"]);
        Assert.True(after["expired"]!.GetValue<bool>());

        // after the grace period: deleted with its disks
        var dir = App.Services.GetRequiredService<VmDiskStore>().VmDirectory(id);
        Assert.True(Directory.Exists(dir));
        var grace = await leases.ReapAsync(now.AddHours(3 + 24 + 1), runtime.ForgetAsync);
        Assert.Contains(id, grace.Deleted);
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{id}"), HttpStatusCode.NotFound);
        Assert.False(Directory.Exists(dir));

        var audit = await admin.GetStringAsync($"/api/audit/export?format=json&targetId={id}");
        Assert.Contains("vm.lease-set", audit);
        Assert.Contains("vm.lease-expired", audit);
        Assert.Contains("vm.lease-deleted", audit);
    }

    [Fact]
    public async Task A_template_lease_gives_each_vm_made_from_it_an_expiry_that_admins_can_extend()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var image = Unique("leased") + ".img";
        await File.WriteAllBytesAsync(Path.Combine(App.ImageStoreDir, image), new byte[1024 * 1024]);

        // bad lease settings are field errors
        var bad = await admin.PostAsJsonAsync("/api/templates", new { name = Unique("bad"), imageId = "upload:" + image, leaseHours = 0 });
        await AssertProblemAsync(bad, HttpStatusCode.BadRequest);
        Assert.Contains("leaseHours", await bad.Content.ReadAsStringAsync());
        var noHours = await admin.PostAsJsonAsync("/api/templates", new { name = Unique("bad"), imageId = "upload:" + image, leaseGraceHours = 5 });
        await AssertProblemAsync(noHours, HttpStatusCode.BadRequest);
        Assert.Contains("leaseGraceHours", await noHours.Content.ReadAsStringAsync());

        var r = await admin.PostAsJsonAsync("/api/templates", new { name = Unique("leased"), imageId = "upload:" + image, memoryMiB = 32, leaseHours = 48, leaseGraceHours = 6 });
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        var template = await JsonAsync(r);
        Assert.Equal(48, template["leaseHours"]!.GetValue<int>());
        Assert.Equal(6, template["leaseGraceHours"]!.GetValue<int>());
        var templateId = template["id"]!.GetValue<Guid>();
        var listed = (await admin.GetFromJsonAsync<System.Text.Json.Nodes.JsonArray>("/api/templates"))!.Single(t => t!["id"]!.GetValue<Guid>() == templateId)!;
        Assert.Equal(48, listed["leaseHours"]!.GetValue<int>());

        // a VM provisioned from it expires 48 h after it was made, deleted 6 h later
        var (_, token) = await App.NewUserAsync(Unique("tlease"));
        using var c = App.Client(token);
        var before = DateTimeOffset.UtcNow;
        var made = await c.PostAsJsonAsync("/api/vms", new { name = Unique("from-tpl"), templateId });
        Assert.True(made.StatusCode == HttpStatusCode.Created, await made.Content.ReadAsStringAsync());
        var id = (await JsonAsync(made))["id"]!.GetValue<Guid>();
        var lease = await JsonAsync(await c.GetAsync($"/api/vms/{id}/lease"));
        var expires = lease["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expires, before.AddHours(48).AddSeconds(-1), DateTimeOffset.UtcNow.AddHours(48).AddSeconds(1));
        Assert.Equal(expires.AddHours(6), lease["deleteAt"]!.GetValue<DateTimeOffset>());
        Assert.StartsWith("template ", lease["setBy"]!.GetValue<string>());
        Assert.False(lease["warning"]!.GetValue<bool>());

        // the owner cannot extend it, an admin can; the reaper treats it like any lease
        await AssertProblemAsync(await c.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = expires.AddDays(1) }), HttpStatusCode.BadRequest);
        var extended = await admin.PutAsJsonAsync($"/api/vms/{id}/lease", new { expiresAt = expires.AddDays(7) });
        Assert.Equal(HttpStatusCode.OK, extended.StatusCode);
        Assert.Equal(expires.AddDays(7).AddHours(6), (await JsonAsync(extended))["deleteAt"]!.GetValue<DateTimeOffset>());
        var leases = App.Services.GetRequiredService<LeaseService>();
        var runtime = App.Services.GetRequiredService<VmPortal.Web.Runtime.VmRuntime>();
        Assert.DoesNotContain(id, (await leases.ReapAsync(expires.AddHours(1), runtime.ForgetAsync)).Deleted);
        Assert.Contains(id, (await leases.ReapAsync(expires.AddDays(7).AddHours(7), runtime.ForgetAsync)).Deleted);

        // a VM made without a template, and one from a template without a lease, has none
        var plain = await admin.PostAsJsonAsync("/api/templates", new { name = Unique("plain"), imageId = "upload:" + image, memoryMiB = 32 });
        var plainTemplate = await JsonAsync(plain);
        Assert.Null(plainTemplate["leaseHours"]);
        var other = await c.PostAsJsonAsync("/api/vms", new { name = Unique("no-lease"), templateId = plainTemplate["id"]!.GetValue<Guid>() });
        Assert.Equal(HttpStatusCode.NoContent, (await c.GetAsync($"/api/vms/{(await JsonAsync(other))["id"]}/lease")).StatusCode);

        var audit = await admin.GetStringAsync($"/api/audit/export?format=json&targetId={id}");
        Assert.Contains("vm.lease-set", audit);
        Assert.Contains("48 h", audit);
    }
}

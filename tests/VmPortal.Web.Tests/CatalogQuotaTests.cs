using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>
/// The catalog and quotas against the real portal and PostgreSQL: an admin publishes a template, a user provisions
/// from it; quotas hold under concurrent requests (the per-owner advisory lock), and refusals name the quota.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class CatalogQuotaTests(PortalAppFixture app) : ApiTestBase(app)
{
    private string MakeBaseImage()
    {
        var name = Unique("tmpl") + ".img";
        File.WriteAllBytes(Path.Combine(App.ImageStoreDir, name), new byte[2 * 1024 * 1024]);
        return "upload:" + name;
    }

    private async Task<JsonObject> CreateTemplateAsync(HttpClient admin, object body)
    {
        var r = await admin.PostAsJsonAsync("/api/templates", body);
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        return await JsonAsync(r);
    }

    private async Task SetQuotaAsync(HttpClient admin, Guid userId, object quota)
    {
        var r = await admin.PutAsJsonAsync($"/api/users/{userId}/quota", quota);
        Assert.True(r.StatusCode == HttpStatusCode.OK, await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_user_provisions_from_a_published_template_within_its_limits()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var imageId = MakeBaseImage();
        var template = await CreateTemplateAsync(admin, new
        {
            name = Unique("debian"), os = "Debian 12", description = "a small server", imageId,
            memoryMiB = 96, maxMemoryMiB = 256, maxDiskSizeMiB = 64, hostnamePattern = "srv-{name}", defaultUser = "debian",
        });
        var hidden = await CreateTemplateAsync(admin, new { name = Unique("hidden"), imageId, published = false });
        var (_, token) = await App.NewUserAsync(Unique("cat"));
        using var user = App.Client(token);

        // the user sees the published template only, and cannot manage templates
        var list = JsonNode.Parse(await user.GetStringAsync("/api/templates"))!.AsArray();
        Assert.Contains(list, t => t!["id"]!.GetValue<Guid>() == template["id"]!.GetValue<Guid>());
        Assert.DoesNotContain(list, t => t!["id"]!.GetValue<Guid>() == hidden["id"]!.GetValue<Guid>());
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync("/api/templates", new { name = "mine", imageId })).StatusCode);
        await AssertProblemAsync(await user.PostAsJsonAsync("/api/vms", new { name = "x1", templateId = hidden["id"] }), HttpStatusCode.NotFound);

        // provision: name + password is enough; memory, disk, boot order and first-boot settings come from the template
        var r = await user.PostAsJsonAsync("/api/vms", new { name = "web1", templateId = template["id"], cloudInit = new { password = "pw-123456" } });
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        var vm = await JsonAsync(r);
        Assert.Equal(96, vm["memoryMiB"]!.GetValue<int>());
        Assert.Equal(imageId, vm["disks"]![0]!["backingImageId"]!.GetValue<string>());
        Assert.Equal(2, vm["disks"]![0]!["sizeMiB"]!.GetValue<long>());
        Assert.Equal("disk", vm["bootOrder"]![0]!.GetValue<string>());
        Assert.Equal("srv-web1", vm["cloudInit"]!["hostname"]!.GetValue<string>());
        Assert.Equal("debian", vm["cloudInit"]!["user"]!.GetValue<string>());
        Assert.True(vm["cloudInit"]!["hasPassword"]!.GetValue<bool>());

        // the template's limits and fixed hardware
        var big = await user.PostAsJsonAsync("/api/vms", new { name = "web2", templateId = template["id"], memoryMiB = 512 });
        await AssertProblemAsync(big, HttpStatusCode.BadRequest);
        Assert.Contains("at most 256 MiB", await big.Content.ReadAsStringAsync());
        var cd = await user.PostAsJsonAsync("/api/vms", new { name = "web3", templateId = template["id"], cdromImageId = "builtin:debian-i386-rescue-iso" });
        Assert.Contains("The template sets the CD-ROM", await cd.Content.ReadAsStringAsync());

        // the audit log names the template
        var audit = await admin.GetStringAsync("/api/audit");
        Assert.Contains($"template={template["id"]}", audit);
    }

    [Fact]
    public async Task Twenty_concurrent_provisions_against_a_quota_of_five_create_exactly_five()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var template = await CreateTemplateAsync(admin, new { name = Unique("q"), imageId = MakeBaseImage(), memoryMiB = 64 });
        var (userId, token) = await App.NewUserAsync(Unique("quota"));
        await SetQuotaAsync(admin, userId, new { maxVms = 5, maxRunningVms = (int?)null, maxMemoryMiB = (int?)null, maxDiskGiB = 10 });

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            using var c = App.Client(token);
            var r = await c.PostAsJsonAsync("/api/vms", new { name = $"q{i}", templateId = template["id"] });
            return (r.StatusCode, Body: await r.Content.ReadAsStringAsync());
        }));
        Assert.Equal(5, results.Count(r => r.StatusCode == HttpStatusCode.Created));
        var refused = results.Where(r => r.StatusCode != HttpStatusCode.Created).ToList();
        Assert.All(refused, r => Assert.Equal(HttpStatusCode.Conflict, r.StatusCode));
        Assert.All(refused, r => Assert.Contains("Quota exceeded", r.Body));
        Assert.Contains("5 of 5 VMs", refused[0].Body);

        using var user = App.Client(token);
        var quota = JsonNode.Parse(await user.GetStringAsync("/api/quota"))!;
        Assert.Equal(5, quota["usage"]!["vms"]!.GetValue<int>());
        Assert.Equal(5, quota["quota"]!["maxVms"]!.GetValue<int>());
    }

    [Fact]
    public async Task Concurrent_starts_never_exceed_the_running_vm_and_memory_quotas()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var (userId, token) = await App.NewUserAsync(Unique("run"));
        using var user = App.Client(token);
        var ids = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            var r = await user.PostAsJsonAsync("/api/vms", new { name = $"r{i}", memoryMiB = 32, bootOrder = new[] { "cdrom" } });
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
            ids.Add((await JsonAsync(r))["id"]!.GetValue<string>());
        }
        // 3 running VMs at most, and 80 MiB: the memory limit bites first (2 × 32 MiB)
        await SetQuotaAsync(admin, userId, new { maxVms = (int?)null, maxRunningVms = 3, maxMemoryMiB = 80, maxDiskGiB = (int?)null });
        try
        {
            var starts = await Task.WhenAll(ids.Select(async id =>
            {
                using var c = App.Client(token);
                var r = await c.PostAsync($"/api/vms/{id}/start", null);
                return (r.StatusCode, Body: await r.Content.ReadAsStringAsync());
            }));
            Assert.Equal(2, starts.Count(s => s.StatusCode == HttpStatusCode.OK));
            var refused = starts.Where(s => s.StatusCode != HttpStatusCode.OK).ToList();
            Assert.All(refused, s => Assert.Contains("Memory quota exceeded", s.Body));
            var quota = JsonNode.Parse(await user.GetStringAsync("/api/quota"))!;
            Assert.Equal(2, quota["usage"]!["runningVms"]!.GetValue<int>());
            Assert.Equal(64, quota["usage"]!["runningMemoryMiB"]!.GetValue<long>());
        }
        finally
        {
            foreach (var id in ids) await admin.PostAsync($"/api/vms/{id}/stop", null);
        }
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Groups on the real portal and PostgreSQL: admin-only management, templates restricted to groups (the catalog and
/// provisioning honour it: 404 for a template the user may not use), and a quota shared by a group's members that
/// holds under concurrent requests from several members.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class GroupsTests(PortalAppFixture app) : ApiTestBase(app)
{
    private string MakeBaseImage()
    {
        var name = Unique("grp") + ".img";
        File.WriteAllBytes(Path.Combine(App.ImageStoreDir, name), new byte[1024 * 1024]);
        return "upload:" + name;
    }

    private static async Task<JsonObject> OkJsonAsync(HttpResponseMessage r, HttpStatusCode status = HttpStatusCode.OK)
    {
        Assert.True(r.StatusCode == status, $"{r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
        return await JsonAsync(r);
    }

    [Fact]
    public async Task A_template_restricted_to_a_group_is_usable_by_its_members_only()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var group = await OkJsonAsync(await admin.PostAsJsonAsync("/api/groups", new { name = Unique("devs"), description = "developers" }), HttpStatusCode.Created);
        var groupId = group["id"]!.GetValue<Guid>();
        var imageId = MakeBaseImage();
        var restricted = await OkJsonAsync(await admin.PostAsJsonAsync("/api/templates",
            new { name = Unique("devbox"), imageId, memoryMiB = 64, groupIds = new[] { groupId } }), HttpStatusCode.Created);
        Assert.Equal(groupId, restricted["groupIds"]![0]!.GetValue<Guid>());
        var open = await OkJsonAsync(await admin.PostAsJsonAsync("/api/templates", new { name = Unique("open"), imageId, memoryMiB = 64 }), HttpStatusCode.Created);
        Assert.Empty(open["groupIds"]!.AsArray());

        var (memberId, memberToken) = await App.NewUserAsync(Unique("member"));
        var (_, outsiderToken) = await App.NewUserAsync(Unique("outsider"));
        using var member = App.Client(memberToken);
        using var outsider = App.Client(outsiderToken);

        // users cannot manage groups; an unknown group in a template is a field error
        Assert.Equal(HttpStatusCode.Forbidden, (await member.PostAsJsonAsync("/api/groups", new { name = "mine" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.PostAsJsonAsync($"/api/groups/{groupId}/members", new { userId = memberId })).StatusCode);
        var badGroup = await admin.PostAsJsonAsync("/api/templates", new { name = Unique("bad"), imageId, groupIds = new[] { Guid.NewGuid() } });
        await AssertProblemAsync(badGroup, HttpStatusCode.BadRequest);
        Assert.Contains("groupIds", await badGroup.Content.ReadAsStringAsync());
        await AssertProblemAsync(await admin.PostAsJsonAsync("/api/groups", new { name = group["name"]!.GetValue<string>().ToUpperInvariant() }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await admin.PostAsJsonAsync("/api/groups", new { name = "" }), HttpStatusCode.BadRequest);

        // before joining: the restricted template is neither listed nor usable (404 like a missing one); the open one is
        foreach (var c in new[] { member, outsider })
        {
            var list = JsonNode.Parse(await c.GetStringAsync("/api/templates"))!.AsArray();
            Assert.DoesNotContain(list, t => t!["id"]!.GetValue<Guid>() == restricted["id"]!.GetValue<Guid>());
            Assert.Contains(list, t => t!["id"]!.GetValue<Guid>() == open["id"]!.GetValue<Guid>());
            await AssertProblemAsync(await c.GetAsync($"/api/templates/{restricted["id"]}"), HttpStatusCode.NotFound);
            await AssertProblemAsync(await c.PostAsJsonAsync("/api/vms", new { name = "dev1", templateId = restricted["id"] }), HttpStatusCode.NotFound);
        }

        // after joining: the member sees and uses it; the outsider still does not
        var joined = await OkJsonAsync(await admin.PostAsJsonAsync($"/api/groups/{groupId}/members", new { userId = memberId }));
        Assert.Contains(joined["members"]!.AsArray(), m => m!["userId"]!.GetValue<Guid>() == memberId);
        Assert.Contains(JsonNode.Parse(await member.GetStringAsync("/api/templates"))!.AsArray(), t => t!["id"]!.GetValue<Guid>() == restricted["id"]!.GetValue<Guid>());
        await OkJsonAsync(await member.PostAsJsonAsync("/api/vms", new { name = "dev1", templateId = restricted["id"] }), HttpStatusCode.Created);
        await AssertProblemAsync(await outsider.PostAsJsonAsync("/api/vms", new { name = "dev1", templateId = restricted["id"] }), HttpStatusCode.NotFound);
        // a user lists the groups they are in, and only those
        var mine = JsonNode.Parse(await member.GetStringAsync("/api/groups"))!.AsArray();
        Assert.Single(mine);
        Assert.Empty(JsonNode.Parse(await outsider.GetStringAsync("/api/groups"))!.AsArray());

        // leaving the group (or deleting it) closes the template again… for the member; deleting the group opens it to everyone
        await OkJsonAsync(await admin.DeleteAsync($"/api/groups/{groupId}/members/{memberId}"));
        await AssertProblemAsync(await member.PostAsJsonAsync("/api/vms", new { name = "dev2", templateId = restricted["id"] }), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/groups/{groupId}")).StatusCode);
        var after = await OkJsonAsync(await admin.GetAsync($"/api/templates/{restricted["id"]}"));
        Assert.Empty(after["groupIds"]!.AsArray());

        var audit = await admin.GetStringAsync("/api/audit?search=group.&take=50");
        Assert.Contains("group.member-add", audit);
        Assert.Contains("group.delete", audit);
    }

    [Fact]
    public async Task A_group_quota_is_shared_by_its_members_and_holds_under_concurrent_requests()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var group = await OkJsonAsync(await admin.PostAsJsonAsync("/api/groups", new { name = Unique("team") }), HttpStatusCode.Created);
        var groupId = group["id"]!.GetValue<Guid>();
        var members = new List<(Guid Id, HttpClient Client)>();
        for (var i = 0; i < 2; i++)
        {
            var (id, token) = await App.NewUserAsync(Unique("teammate"));
            await OkJsonAsync(await admin.PostAsJsonAsync($"/api/groups/{groupId}/members", new { userId = id }));
            members.Add((id, App.Client(token)));
        }
        await AssertProblemAsync(await admin.PutAsJsonAsync($"/api/groups/{groupId}/quota", new { maxVms = -1 }), HttpStatusCode.BadRequest);
        await OkJsonAsync(await admin.PutAsJsonAsync($"/api/groups/{groupId}/quota", new { maxVms = 5, maxRunningVms = 1 }));

        // 20 concurrent creates from two members against a shared quota of 5 VMs: exactly 5
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            members[i % 2].Client.PostAsJsonAsync("/api/vms", new { name = $"t{i}", memoryMiB = 32, disks = new[] { new { sizeMiB = 1 } } })));
        Assert.Equal(5, results.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(15, results.Count(r => r.StatusCode == HttpStatusCode.Conflict));
        var refusal = await JsonAsync(results.First(r => r.StatusCode == HttpStatusCode.Conflict));
        Assert.Equal("Quota exceeded", refusal["title"]!.GetValue<string>());
        Assert.Contains($"group '{group["name"]}'", refusal["detail"]!.GetValue<string>());
        Assert.Contains("5 of 5 VMs", refusal["detail"]!.GetValue<string>());
        var usage = await OkJsonAsync(await members[0].Client.GetAsync($"/api/groups/{groupId}/quota"));
        Assert.Equal(5, usage["usage"]!["vms"]!.GetValue<int>());

        // running VMs: one for the whole group — the second member's start is refused while the first one's VM runs
        var vmsOf = async (HttpClient c) => JsonNode.Parse(await c.GetStringAsync("/api/vms"))!["items"]!.AsArray();
        var first = (await vmsOf(members[0].Client)).FirstOrDefault() ?? (await vmsOf(members[1].Client)).First();
        var firstOwner = members.First(m => m.Id == first!["ownerId"]!.GetValue<Guid>());
        var second = members.First(m => m.Id != firstOwner.Id);
        var secondVm = (await vmsOf(second.Client)).FirstOrDefault();
        if (secondVm is not null)
        {
            Assert.Equal(HttpStatusCode.OK, (await firstOwner.Client.PostAsync($"/api/vms/{first!["id"]}/start", null)).StatusCode);
            var refused = await second.Client.PostAsync($"/api/vms/{secondVm["id"]}/start", null);
            await AssertProblemAsync(refused, HttpStatusCode.Conflict);
            Assert.Contains("Running-VM quota of group", await refused.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.OK, (await firstOwner.Client.PostAsync($"/api/vms/{first["id"]}/stop", null)).StatusCode);
        }
        // an outsider cannot read the group's quota
        var (_, outsiderToken) = await App.NewUserAsync(Unique("outsider"));
        using var outsider = App.Client(outsiderToken);
        await AssertProblemAsync(await outsider.GetAsync($"/api/groups/{groupId}/quota"), HttpStatusCode.NotFound);
        foreach (var m in members) m.Client.Dispose();
    }
}

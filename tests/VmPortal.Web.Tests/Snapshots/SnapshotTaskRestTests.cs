using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Snapshots;

/// <summary>
/// Snapshot operations are tasks (no guest needed: disk snapshots of a stopped VM): with <c>Prefer: respond-async</c>
/// the answer is 202 + <c>Location</c> of the task, which ends with the same body the synchronous answer carries; a
/// refusal inside the task ends it failed with the problem the synchronous call answers; without the header the
/// request waits and answers 201/200/409; the Tasks list shows each with its type and the log its steps.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class SnapshotTaskRestTests(PortalAppFixture app) : ApiTestBase(app)
{
    private static HttpRequestMessage Post(string url, object? body = null, string? prefer = null)
    {
        var m = new HttpRequestMessage(HttpMethod.Post, url) { Content = body is null ? null : JsonContent.Create(body) };
        if (prefer is not null) m.Headers.Add("Prefer", prefer);
        return m;
    }

    private static async Task<JsonObject> TaskAsync(HttpClient c, Uri location)
    {
        var t = await JsonAsync(await c.GetAsync(location + "?wait=120"));
        Assert.True(t["status"]!.GetValue<string>() is "succeeded" or "failed", $"task not finished: {t}");
        return t;
    }

    [Fact]
    public async Task Take_revert_delete_and_suspend_are_tasks_answered_at_once_or_with_202()
    {
        var owner = await App.NewUserAsync(Unique("snaptask"));
        using var c = App.Client(owner.Token);
        var created = await c.PostAsJsonAsync("/api/vms", new { name = Unique("snaptask"), memoryMiB = 32, disks = new[] { new { sizeMiB = 16 } }, bootOrder = new[] { "disk" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await JsonAsync(created))["id"]!.GetValue<Guid>();

        // asynchronous: 202 + Location, the task's result is the snapshot
        var r = await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "first", includeMemory = false }, "respond-async"));
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        Assert.Equal("respond-async", r.Headers.GetValues("Preference-Applied").Single());
        var accepted = await JsonAsync(r);
        Assert.Equal("vm.snapshot", accepted["type"]!.GetValue<string>());
        Assert.Equal(id.ToString(), accepted["targetId"]!.GetValue<string>());
        Assert.Equal($"/api/tasks/{accepted["id"]}", r.Headers.Location!.ToString());
        var task = await TaskAsync(c, r.Headers.Location!);
        Assert.Equal("succeeded", task["status"]!.GetValue<string>());
        var first = task["result"]!["snapshot"]!;
        Assert.Equal("first", first["name"]!.GetValue<string>());
        Assert.True(first["current"]!.GetValue<bool>());
        Assert.Equal("stopped", task["result"]!["vmState"]!.GetValue<string>());
        var log = await c.GetStringAsync($"/api/tasks/{accepted["id"]}/log");
        Assert.Contains("freezing the disks", log);
        Assert.Contains("recording the snapshot", log);
        var firstId = first["id"]!.GetValue<Guid>();

        // a refusal in an asynchronous task: the task fails with the problem (409: name taken)
        r = await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "FIRST", includeMemory = false }, "respond-async"));
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        task = await TaskAsync(c, r.Headers.Location!);
        Assert.Equal("failed", task["status"]!.GetValue<string>());
        Assert.Equal(409, task["error"]!["status"]!.GetValue<int>());
        Assert.Contains("already has a snapshot named", task["error"]!["detail"]!.GetValue<string>());

        // synchronous (the default wait, or Prefer: wait=N): 201/200 with the same body, refusals as problem details
        r = await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "second", description = "d", includeMemory = false }));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var second = (await JsonAsync(r))["snapshot"]!;
        Assert.Equal($"/api/vms/{id}/snapshots/{second["id"]}", r.Headers.Location!.ToString());
        Assert.Equal(firstId, second["parentId"]!.GetValue<Guid>());
        await AssertProblemAsync(await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "second", includeMemory = false }, "wait=60")), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "x", includeMemory = true })), HttpStatusCode.Conflict); // stopped: no memory
        await AssertProblemAsync(await c.SendAsync(Post($"/api/vms/{id}/snapshots", new { name = "bad name" }, "respond-async")), HttpStatusCode.BadRequest); // checked before any task
        await AssertProblemAsync(await c.SendAsync(Post($"/api/vms/{id}/suspend")), HttpStatusCode.Conflict); // not running

        r = await c.SendAsync(Post($"/api/vms/{id}/snapshots/{firstId}/revert", prefer: "wait=60"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.True((await JsonAsync(r))["snapshot"]!["current"]!.GetValue<bool>());
        await AssertProblemAsync(await c.SendAsync(Post($"/api/vms/{id}/snapshots/{Guid.NewGuid()}/revert")), HttpStatusCode.NotFound);

        var del = new HttpRequestMessage(HttpMethod.Delete, $"/api/vms/{id}/snapshots/{second["id"]}");
        del.Headers.Add("Prefer", "respond-async");
        r = await c.SendAsync(del);
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        task = await TaskAsync(c, r.Headers.Location!);
        Assert.Equal("succeeded", task["status"]!.GetValue<string>());
        Assert.Equal("second", task["result"]!["snapshot"]!["name"]!.GetValue<string>());
        var left = JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}/snapshots"))!.AsArray();
        Assert.Equal("first", Assert.Single(left)!["name"]!.GetValue<string>());

        // the Tasks list has them all, with the failures
        var tasks = JsonNode.Parse(await c.GetStringAsync($"/api/tasks?targetId={id}"))!.AsArray();
        var types = tasks.Select(t => $"{t!["type"]}:{t["status"]}").ToList();
        Assert.Equal(5, types.Count(t => t.StartsWith("vm.snapshot:", StringComparison.Ordinal)));
        Assert.Contains("vm.snapshot-revert:succeeded", types);
        Assert.Contains("vm.snapshot-delete:succeeded", types);
        Assert.Contains("vm.suspend:failed", types);
        Assert.Equal(3, types.Count(t => t == "vm.snapshot:failed")); // name taken (twice), memory of a stopped VM
    }
}

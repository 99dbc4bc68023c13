using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// The default answer of actions (docs/automation.md "Tasks"): create, provision, start, stop … answer
/// <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c> with the task; the task's result is what the held answer
/// (<c>Prefer: wait=N</c>) gives: 201 with the VM, 200 with the power state, the problem details. Request-level
/// mistakes (unknown VM, bad timeout) are answered at once, without a task. Each power action is audited once, with
/// its outcome.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class TaskAnswerTests(PortalAppFixture app) : ApiTestBase(app)
{
    private static async Task<JsonObject> FollowAsync(HttpClient c, HttpResponseMessage accepted)
    {
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, await accepted.Content.ReadAsStringAsync());
        var location = accepted.Headers.Location!.OriginalString;
        Assert.Matches("^/api/tasks/[0-9a-f-]{36}$", location);
        var task = await JsonAsync(accepted);
        Assert.Equal(location, $"/api/tasks/{task["id"]}");
        for (var i = 0; i < 10; i++)
        {
            var t = await JsonAsync(await c.GetAsync($"{location}?wait=60"));
            if (t["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled") return t;
        }
        throw new TimeoutException("task did not end");
    }

    [Fact]
    public async Task Actions_answer_202_with_the_task_by_default_and_the_held_answer_with_prefer_wait()
    {
        var userName = Unique("async");
        var (userId, token) = await App.NewUserAsync(userName);
        using var c = App.Client(token, holdAnswers: false);

        // create: 202 + the task (type vm.create, queued or running), whose result is the VM
        var created = await FollowAsync(c, await c.PostAsJsonAsync("/api/vms", VmBody(Unique("a"), 32)));
        Assert.Equal("vm.create", created["type"]!.GetValue<string>());
        Assert.Equal("succeeded", created["status"]!.GetValue<string>());
        var id = created["result"]!["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"/api/vms/{id}")).StatusCode);

        // a bad definition: 202, then the task fails with the 400 and the field named
        var bad = await FollowAsync(c, await c.PostAsJsonAsync("/api/vms", new { name = "bad name!", memoryMiB = 32 }));
        Assert.Equal("failed", bad["status"]!.GetValue<string>());
        Assert.Equal(400, bad["error"]!["status"]!.GetValue<int>());
        Assert.Contains("name", bad["error"]!["detail"]!.GetValue<string>());

        // start then stop sent back to back: both accepted at once, run in order on the VM
        var start = await c.PostAsync($"/api/vms/{id}/start", null);
        var stop = await c.PostAsync($"/api/vms/{id}/stop", null);
        var started = await FollowAsync(c, start);
        var stopped = await FollowAsync(c, stop);
        Assert.Equal(("vm.start", "succeeded", "running"), (started["type"]!.GetValue<string>(), started["status"]!.GetValue<string>(), started["result"]!["state"]!.GetValue<string>()));
        Assert.Equal(("vm.stop", "succeeded", "stopped"), (stopped["type"]!.GetValue<string>(), stopped["status"]!.GetValue<string>(), stopped["result"]!["state"]!.GetValue<string>()));
        Assert.Equal(id.ToString(), started["targetId"]!.GetValue<string>());

        // a command the state forbids: accepted, the task fails with 409
        var paused = await FollowAsync(c, await c.PostAsync($"/api/vms/{id}/pause", null));
        Assert.Equal(("failed", 409), (paused["status"]!.GetValue<string>(), paused["error"]!["status"]!.GetValue<int>()));

        // request-level mistakes: at once, no task
        await AssertProblemAsync(await c.PostAsync($"/api/vms/{Guid.NewGuid()}/start", null), HttpStatusCode.NotFound);
        await AssertProblemAsync(await c.PostAsync($"/api/vms/{id}/shutdown?timeoutSeconds=0", null), HttpStatusCode.BadRequest);

        // Prefer: wait=N holds the answer: the action's own status and body, and a link to the task
        using var held = new HttpRequestMessage(HttpMethod.Post, $"/api/vms/{id}/pause");
        held.Headers.Add("Prefer", "wait=30");
        var conflict = await c.SendAsync(held);
        await AssertProblemAsync(conflict, HttpStatusCode.Conflict);
        var link = conflict.Headers.GetValues("Link").Single();
        Assert.Matches("^</api/tasks/[0-9a-f-]{36}>; rel=\"monitor\"$", link);
        var linked = await JsonAsync(await c.GetAsync(link[1..link.IndexOf('>')]));
        Assert.Equal(("vm.pause", "failed"), (linked["type"]!.GetValue<string>(), linked["status"]!.GetValue<string>()));
        using var heldCreate = new HttpRequestMessage(HttpMethod.Post, "/api/vms") { Content = JsonContent.Create(VmBody(Unique("h"), 32)) };
        heldCreate.Headers.Add("Prefer", "wait=30");
        var createdHeld = await c.SendAsync(heldCreate);
        Assert.Equal(HttpStatusCode.Created, createdHeld.StatusCode);
        Assert.Contains("/api/vms/", createdHeld.Headers.Location!.OriginalString);
        Assert.NotNull(createdHeld.Headers.ETag);

        // the quota refusal of a create is the task's error, with the title scripts look for
        using var admin = App.Client(await App.AdminTokenAsync());
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/users/{userId}/quota", new { maxVms = 2 })).StatusCode);
        var refused = await FollowAsync(c, await c.PostAsJsonAsync("/api/vms", VmBody(Unique("q"), 32)));
        Assert.Equal(("failed", 409, "Quota exceeded"), (refused["status"]!.GetValue<string>(), refused["error"]!["status"]!.GetValue<int>(), refused["error"]!["title"]!.GetValue<string>()));

        // each power action is audited once, with its outcome and the client's address
        var events = (await App.Services.GetRequiredService<AuditLog>().RecentAsync(2000))
            .Where(e => e.UserName == userName && e.TargetId == id.ToString()).ToList();
        Assert.Single(events, e => e.Action == "vm.start");
        Assert.Single(events, e => e.Action == "vm.stop");
        Assert.Contains(events, e => e.Action == "vm.start" && e.Success && e.Details.Contains("127.0.0.1") && e.Details.Contains($"task {started["id"]}"));
        Assert.Equal(2, events.Count(e => e.Action == "vm.pause" && !e.Success && e.Details.Contains("HTTP 409")));
    }
}

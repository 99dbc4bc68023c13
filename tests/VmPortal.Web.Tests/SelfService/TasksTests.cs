using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core;
using VmPortal.Core.Tasks;
using VmPortal.Data;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Tasks against the real portal and PostgreSQL: progress and log while running, the result or the error as problem
/// details, long polling, cancellation, visibility, a portal restart during a task, and power actions and creates
/// answered with 202 + Location when the client sends <c>Prefer: respond-async</c>.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class TasksTests(PortalAppFixture app) : ApiTestBase(app)
{
    private TaskService Tasks => App.Services.GetRequiredService<TaskService>();

    private static Caller CallerOf(Guid id, string name) => new(id, name, IsAdmin: false);

    private static async Task<JsonObject> WaitAsync(HttpClient c, string location, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds * 3);
        while (true)
        {
            var t = await JsonAsync(await c.GetAsync($"{location}?wait={seconds}"));
            var status = t["status"]!.GetValue<string>();
            if (status is "succeeded" or "failed" or "cancelled") return t;
            Assert.True(DateTime.UtcNow < deadline, $"task still {status}");
        }
    }

    [Fact]
    public async Task A_task_reports_progress_and_log_then_its_result()
    {
        var name = Unique("tasker");
        var (userId, token) = await App.NewUserAsync(name);
        using var c = App.Client(token);
        var step = new SemaphoreSlim(0);
        var task = await Tasks.StartAsync(CallerOf(userId, name), "test.copy", new TaskTarget("test", Guid.NewGuid().ToString(), "thing"), async ctx =>
        {
            ctx.Report(0, 300, "starting");
            for (var i = 1; i <= 3; i++)
            {
                await step.WaitAsync();
                ctx.Report(i * 100, 300, $"part {i} of 3");
                ctx.Log($"part {i} copied");
            }
            return new { copied = 300, name = "thing" };
        });
        Assert.Equal("Queued", task.Status.ToString());

        // progress is visible (REST reads the live value) while the work runs
        step.Release();
        await Eventually(async () =>
        {
            var t = await JsonAsync(await c.GetAsync($"/api/tasks/{task.Id}"));
            return t["status"]!.GetValue<string>() == "running" && t["progress"]!["completed"]!.GetValue<long>() == 100
                   && t["progress"]!["total"]!.GetValue<long>() == 300 && t["progress"]!["message"]!.GetValue<string>() == "part 1 of 3";
        });
        Assert.Contains("part 1 copied", await c.GetStringAsync($"/api/tasks/{task.Id}/log"));
        // …and reaches the database within the flush interval
        await Eventually(async () =>
        {
            await using var db = await App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>().CreateDbContextAsync();
            var row = await db.Tasks.AsNoTracking().FirstAsync(t => t.Id == task.Id);
            return row.Completed == 100 && row.Log.Contains("part 1 copied");
        });

        // a long poll that ends by timeout returns the running task
        var polled = await JsonAsync(await c.GetAsync($"/api/tasks/{task.Id}?wait=1"));
        Assert.Equal("running", polled["status"]!.GetValue<string>());

        // a long poll that ends with the task
        var waiting = c.GetAsync($"/api/tasks/{task.Id}?wait=60");
        step.Release(2);
        var done = await JsonAsync(await waiting);
        Assert.Equal("succeeded", done["status"]!.GetValue<string>());
        Assert.Equal(300, done["progress"]!["completed"]!.GetValue<long>());
        Assert.True(done["result"]?["copied"]?.GetValue<int>() == 300, done.ToJsonString());
        Assert.NotNull(done["startedAt"]);
        Assert.NotNull(done["endedAt"]);
        var log = await c.GetStringAsync($"/api/tasks/{task.Id}/log");
        Assert.Contains("part 3 copied", log);
        Assert.Contains("done", log);

        // the caller's list has it; another user's view is 404; cancel after the end is 409
        var list = JsonNode.Parse(await c.GetStringAsync("/api/tasks"))!.AsArray();
        Assert.Contains(list, t => t!["id"]!.GetValue<Guid>() == task.Id);
        var (_, otherToken) = await App.NewUserAsync(Unique("other"));
        using var other = App.Client(otherToken);
        await AssertProblemAsync(await other.GetAsync($"/api/tasks/{task.Id}"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await other.GetAsync($"/api/tasks/{task.Id}/log"), HttpStatusCode.NotFound);
        Assert.DoesNotContain(JsonNode.Parse(await other.GetStringAsync("/api/tasks"))!.AsArray(), t => t!["id"]!.GetValue<Guid>() == task.Id);
        await AssertProblemAsync(await c.PostAsync($"/api/tasks/{task.Id}/cancel", null), HttpStatusCode.Conflict);
        // admins see everyone's with all=true
        using var admin = App.Client(await App.AdminTokenAsync());
        Assert.Contains(JsonNode.Parse(await admin.GetStringAsync("/api/tasks?all=true&take=500"))!.AsArray(), t => t!["id"]!.GetValue<Guid>() == task.Id);
        await AssertProblemAsync(await c.GetAsync($"/api/tasks/{task.Id}?wait=301"), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.GetAsync("/api/tasks?take=0"), HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_failing_task_ends_with_problem_details_and_cancel_stops_a_running_one()
    {
        var name = Unique("tasker");
        var (userId, token) = await App.NewUserAsync(name);
        using var c = App.Client(token);
        var target = new TaskTarget("test", Guid.NewGuid().ToString(), "x");

        var failing = await Tasks.StartAsync(CallerOf(userId, name), "test.fail", target, ctx =>
            throw new TaskFailedException(409, "Conflict", "The thing is busy."));
        var failed = await WaitAsync(c, $"/api/tasks/{failing.Id}");
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Equal(409, failed["error"]!["status"]!.GetValue<int>());
        Assert.Equal("The thing is busy.", failed["error"]!["detail"]!.GetValue<string>());

        // a running task that honours its token ends Cancelled; one queued behind it on the same target is cancelled before it starts
        var started = new TaskCompletionSource();
        var running = await Tasks.StartAsync(CallerOf(userId, name), "test.slow", target, async ctx =>
        {
            started.SetResult();
            await Task.Delay(TimeSpan.FromMinutes(5), ctx.CancellationToken);
            return null;
        });
        var ran = false;
        var queued = await Tasks.StartAsync(CallerOf(userId, name), "test.after", target, ctx => { ran = true; return Task.FromResult<object?>(null); });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("queued", (await JsonAsync(await c.GetAsync($"/api/tasks/{queued.Id}")))["status"]!.GetValue<string>());

        var cancelQueued = await c.PostAsync($"/api/tasks/{queued.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, cancelQueued.StatusCode);
        var r = await c.PostAsync($"/api/tasks/{running.Id}/cancel", null);
        Assert.Equal(HttpStatusCode.Accepted, r.StatusCode);
        Assert.Equal($"/api/tasks/{running.Id}", r.Headers.Location!.OriginalString);
        var cancelled = await WaitAsync(c, $"/api/tasks/{running.Id}");
        Assert.Equal("cancelled", cancelled["status"]!.GetValue<string>());
        Assert.True(cancelled["cancelRequested"]!.GetValue<bool>());
        Assert.Contains(name, cancelled["error"]!["detail"]!.GetValue<string>());
        Assert.Equal("cancelled", (await WaitAsync(c, $"/api/tasks/{queued.Id}"))["status"]!.GetValue<string>());
        Assert.False(ran);
        await AssertProblemAsync(await c.PostAsync($"/api/tasks/{Guid.NewGuid()}/cancel", null), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_task_interrupted_by_a_restart_is_marked_failed_and_stays_failed()
    {
        var name = Unique("tasker");
        var (userId, token) = await App.NewUserAsync(name);
        using var c = App.Client(token);
        var release = new TaskCompletionSource();
        var started = new TaskCompletionSource();
        var task = await Tasks.StartAsync(CallerOf(userId, name), "test.long", new TaskTarget("test", null, "long"), async ctx =>
        {
            ctx.Report(1, 10, "working");
            started.SetResult();
            await release.Task;
            return "finished";
        });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // a new portal process on the same database: its TaskService knows nothing of this task and recovers it
        var restarted = new TaskService(App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>(), TimeProvider.System);
        Assert.True(await restarted.RecoverAsync() >= 1);
        var after = await restarted.GetAsync(CallerOf(userId, name), task.Id);
        Assert.Equal("Failed", after!.Status.ToString());
        Assert.Equal(503, after.Error!.Status);
        Assert.Equal(TaskService.RestartError, after.Error.Title);

        // the old process's work ending later does not overwrite the verdict
        release.SetResult();
        await Task.Delay(500);
        await Eventually(async () => (await JsonAsync(await c.GetAsync($"/api/tasks/{task.Id}")))["status"]!.GetValue<string>() == "failed");
        Assert.Equal("failed", (await JsonAsync(await c.GetAsync($"/api/tasks/{task.Id}")))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Power_actions_and_creates_answer_202_with_a_task_when_asked_to_respond_async()
    {
        var (_, token) = await App.NewUserAsync(Unique("power"));
        using var c = App.Client(token);

        // create as a task: the result is the VM
        var create = new HttpRequestMessage(HttpMethod.Post, "/api/vms") { Content = JsonContent.Create(VmBody(Unique("t"), 64)) };
        create.Headers.Add("Prefer", "respond-async");
        var created = await c.SendAsync(create);
        Assert.Equal(HttpStatusCode.Accepted, created.StatusCode);
        Assert.Equal("respond-async", created.Headers.GetValues("Preference-Applied").Single());
        var createTask = await WaitAsync(c, created.Headers.Location!.OriginalString);
        Assert.Equal("succeeded", createTask["status"]!.GetValue<string>());
        Assert.Equal("vm.create", createTask["type"]!.GetValue<string>());
        var vmId = createTask["result"]!["id"]!.GetValue<Guid>();

        // a command the state forbids fails with the synchronous call's 409
        var pause = new HttpRequestMessage(HttpMethod.Post, $"/api/vms/{vmId}/pause");
        pause.Headers.Add("Prefer", "respond-async");
        var pauseAnswer = await c.SendAsync(pause);
        Assert.Equal(HttpStatusCode.Accepted, pauseAnswer.StatusCode);
        var paused = await WaitAsync(c, pauseAnswer.Headers.Location!.OriginalString);
        Assert.Equal("failed", paused["status"]!.GetValue<string>());
        Assert.Equal(409, paused["error"]!["status"]!.GetValue<int>());

        // start and stop as tasks; the result is the power state
        foreach (var (action, state) in new[] { ("start", "running"), ("stop", "stopped") })
        {
            var req = new HttpRequestMessage(HttpMethod.Post, $"/api/vms/{vmId}/{action}");
            req.Headers.Add("Prefer", "respond-async, wait=0");
            var answer = await c.SendAsync(req);
            Assert.Equal(HttpStatusCode.Accepted, answer.StatusCode);
            var body = await JsonAsync(answer);
            Assert.Equal($"vm.{action}", body["type"]!.GetValue<string>());
            Assert.Equal(vmId.ToString(), body["targetId"]!.GetValue<string>());
            var t = await WaitAsync(c, answer.Headers.Location!.OriginalString);
            Assert.True(t["status"]!.GetValue<string>() == "succeeded", t.ToJsonString());
            Assert.Equal(state, t["result"]!["state"]!.GetValue<string>());
        }
        // with Prefer: wait=N (this test client's default) the answer is held until the task ends: 200 + the power state
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{vmId}/start", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{vmId}/stop", null)).StatusCode);

        // the audit log has the request and the task's outcome
        using var admin = App.Client(await App.AdminTokenAsync());
        var events = JsonNode.Parse(await admin.GetStringAsync("/api/audit?search=task&take=200"))!.AsArray();
        Assert.Contains(events, e => e!["action"]!.GetValue<string>() == "vm.start" && e["targetId"]?.GetValue<string>() == vmId.ToString()
                                     && e["details"]!.GetValue<string>().Contains("succeeded"));
        Assert.Contains(events, e => e!["action"]!.GetValue<string>() == "vm.pause" && e["targetId"]?.GetValue<string>() == vmId.ToString()
                                     && !e["success"]!.GetValue<bool>());
    }

    private static async Task Eventually(Func<Task<bool>> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(50);
        }
    }
}

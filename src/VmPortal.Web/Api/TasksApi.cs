using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core;
using VmPortal.Core.Tasks;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>/api/tasks</c>: long operations and how they went. <c>GET /api/tasks</c> lists the caller's tasks (admins:
/// <c>all=true</c> for everyone's), <c>GET /api/tasks/{id}?wait=30</c> long-polls until the task ends (0–300 s),
/// <c>GET /api/tasks/{id}/log</c> is its log (text), <c>POST /api/tasks/{id}/cancel</c> asks it to stop (202; 409 when
/// it has ended). Endpoints that start a task answer <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c> and the task.
/// </summary>
public static class TasksApi
{
    public static RouteGroupBuilder MapTasksApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/tasks").WithTags("Tasks").RequireAuthorization();
        g.MapGet("/", List).WithSummary("The caller's tasks, newest first (status=queued|running|succeeded|failed|cancelled, targetId, take ≤ 500; admins: all=true)");
        g.MapGet("/{id:guid}", Get).WithName("GetTask")
            .WithSummary("One task: status, progress {completed, total, message}, result or error (problem details); wait=N long-polls up to N s (≤ 300) until it ends");
        g.MapGet("/{id:guid}/log", Log).WithSummary("The task's log lines (text/plain)").Produces<string>(200, "text/plain");
        g.MapPost("/{id:guid}/cancel", Cancel).WithSummary("Ask a queued or running task to stop (202 with the task; 409 when it has ended)");
        return g;
    }

    public static async Task<Results<Ok<IReadOnlyList<TaskDto>>, ValidationProblem>> List(ClaimsPrincipal user, TaskService tasks,
        PortalTaskStatus? status, string? targetId, bool? all, int? take, CancellationToken ct)
    {
        if (take is < 1 or > TaskService.MaxTake)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["take"] = [$"take must be from 1 to {TaskService.MaxTake}."] });
        return TypedResults.Ok(await tasks.ListAsync(user.Caller(), new TaskQuery(status, targetId, all ?? false, take ?? 50), ct));
    }

    public static async Task<Results<Ok<TaskDto>, ValidationProblem, ProblemHttpResult>> Get(Guid id, int? wait, ClaimsPrincipal user, TaskService tasks, CancellationToken ct)
    {
        if (wait is < 0 || wait > TaskService.MaxWait.TotalSeconds)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["wait"] = [$"wait must be from 0 to {TaskService.MaxWait.TotalSeconds:0} seconds."] });
        var dto = await tasks.WaitAsync(user.Caller(), id, TimeSpan.FromSeconds(wait ?? 0), ct);
        return dto is null ? ApiResults.NotFound($"Task {id} not found.") : TypedResults.Ok(dto);
    }

    public static async Task<Results<ContentHttpResult, ProblemHttpResult>> Log(Guid id, ClaimsPrincipal user, TaskService tasks, CancellationToken ct) =>
        await tasks.LogAsync(user.Caller(), id, ct) is { } text ? TypedResults.Text(text, "text/plain; charset=utf-8") : ApiResults.NotFound($"Task {id} not found.");

    public static async Task<Results<Accepted<TaskDto>, ProblemHttpResult>> Cancel(Guid id, ClaimsPrincipal user, TaskService tasks, CancellationToken ct)
    {
        var r = await tasks.CancelAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.Accepted($"/api/tasks/{id}", r.Value) : ApiResults.Failure(r);
    }

    /// <summary>The answer of an endpoint that started a task: 202 + <c>Location: /api/tasks/{id}</c>, the task as body.</summary>
    public static Accepted<TaskDto> Accepted(TaskDto task) => TypedResults.Accepted($"/api/tasks/{task.Id}", task);

}

using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Snapshots;
using VmPortal.Core.Tasks;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>Body of <c>POST /api/vms/{id}/snapshots</c>.</summary>
public sealed record SnapshotCreateRequest(string? Name, string? Description, bool? IncludeMemory);

/// <summary>
/// Snapshots and suspend (docs/portal.md "Snapshots"): <c>GET/POST /api/vms/{id}/snapshots</c>,
/// <c>POST …/snapshots/{snapshotId}/revert</c>, <c>DELETE …/snapshots/{snapshotId}</c>, <c>POST /api/vms/{id}/suspend</c>
/// (resume is <c>POST /api/vms/{id}/resume</c>, in <see cref="VmPowerApi"/>). Owner or admin; another user's VM is 404.
/// Each runs as a task (<see cref="SnapshotTasks"/>: progress on the Tasks page). The request waits for it up to
/// <see cref="DefaultWait"/> (RFC 7240 <c>Prefer: wait=N</c> chooses N seconds, <c>Prefer: respond-async</c> none) and
/// answers 200/201 with the result or the problem details of a refusal; a task still running then is answered
/// <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c> with the task (its result, once done, is the same body).
/// </summary>
public static class SnapshotEndpoints
{
    /// <summary>How long a request waits for its task before answering 202 (unless <c>Prefer</c> says otherwise).</summary>
    public static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(10);

    public static RouteGroupBuilder MapSnapshotApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("VM snapshots").RequireAuthorization();
        g.MapGet("/snapshots", List).WithSummary("The VM's snapshots (a tree through parentId; current = the position the disks continue from)");
        g.MapPost("/snapshots", Take)
            .Produces<SnapshotOpDto>(StatusCodes.Status201Created).Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Take a snapshot {name, description, includeMemory} (memory: running or paused VMs only)");
        g.MapPost("/snapshots/{snapshotId:guid}/revert", Revert)
            .Produces<SnapshotOpDto>().Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Revert to a snapshot: later disk changes are discarded; with memory the machine continues from it");
        g.MapDelete("/snapshots/{snapshotId:guid}", Delete)
            .Produces<SnapshotOpDto>().Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Delete a snapshot (its data is merged into its children and the current disks that read through it)");
        g.MapPost("/suspend", Suspend)
            .Produces<SuspendDto>().Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Suspend to disk: save the machine state, free its memory (state suspended); POST /resume continues it");
        return g;
    }

    private static async Task<IResult> List(Guid id, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots, CancellationToken ct)
    {
        if (await rt.FindAsync(user.Caller(), id, ct) is null) return ApiResults.NotFound($"VM {id} not found.");
        return TypedResults.Ok(await snapshots.ListAsync(id, ct));
    }

    private static async Task<IResult> Take(Guid id, SnapshotCreateRequest? body, HttpContext http, ClaimsPrincipal user, VmRuntime rt,
        SnapshotTasks ops, CancellationToken ct)
    {
        var caller = user.Caller();
        var vm = await rt.FindAsync(caller, id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        if (body is null) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A JSON body {name, description, includeMemory} is required."] });
        var errors = SnapshotService.Validate(body.Name, body.Description);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var started = await ops.TakeAsync(caller, vm, body.Name, body.Description, body.IncludeMemory ?? false);
        return await AnswerAsync(http, started, result => TypedResults.Created($"/api/vms/{id}/snapshots/{((SnapshotOpDto)result).Snapshot.Id}", result));
    }

    private static async Task<IResult> Revert(Guid id, Guid snapshotId, HttpContext http, ClaimsPrincipal user, VmRuntime rt, SnapshotTasks ops, CancellationToken ct)
    {
        var caller = user.Caller();
        var vm = await rt.FindAsync(caller, id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        return await AnswerAsync(http, await ops.RevertAsync(caller, vm, snapshotId), TypedResults.Ok);
    }

    private static async Task<IResult> Delete(Guid id, Guid snapshotId, HttpContext http, ClaimsPrincipal user, VmRuntime rt, SnapshotTasks ops, CancellationToken ct)
    {
        var caller = user.Caller();
        var vm = await rt.FindAsync(caller, id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        return await AnswerAsync(http, await ops.DeleteAsync(caller, vm, snapshotId), TypedResults.Ok);
    }

    private static async Task<IResult> Suspend(Guid id, HttpContext http, ClaimsPrincipal user, VmRuntime rt, SnapshotTasks ops, CancellationToken ct)
    {
        var caller = user.Caller();
        var vm = await rt.FindAsync(caller, id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        return await AnswerAsync(http, await ops.SuspendAsync(caller, vm), TypedResults.Ok);
    }

    /// <summary>The result (or the refusal) if the task ends within the wait the client allows, else 202 + Location of the task.</summary>
    private static async Task<IResult> AnswerAsync(HttpContext http, StartedSnapshotTask started, Func<object, IResult> ok)
    {
        var (wait, asked) = Wait(http.Request);
        if (wait > TimeSpan.Zero)
        {
            // not cancelled with the request: the operation goes on as a task if the client goes away
            await Task.WhenAny(started.Done, Task.Delay(wait, CancellationToken.None));
        }
        if (started.Done.IsCompleted)
        {
            try { return ok(await started.Done); }
            catch (TaskFailedException e) { return ApiResults.Problem(e.Status, e.Title, e.Message); }
        }
        if (asked) http.Response.Headers["Preference-Applied"] = wait == TimeSpan.Zero ? "respond-async" : $"wait={(int)wait.TotalSeconds}";
        return TasksApi.Accepted(started.Task);
    }

    /// <summary>RFC 7240: <c>Prefer: wait=N</c> → N seconds (at most the task long-poll's 300); <c>Prefer: respond-async</c> alone → no wait; else <see cref="DefaultWait"/>.</summary>
    internal static (TimeSpan Wait, bool Asked) Wait(HttpRequest request)
    {
        TimeSpan? wait = null;
        bool async = false;
        foreach (var value in request.Headers["Prefer"])
            foreach (var part in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var token = part.Split(';')[0].Trim();
                if (token.Equals("respond-async", StringComparison.OrdinalIgnoreCase)) async = true;
                else if (token.StartsWith("wait=", StringComparison.OrdinalIgnoreCase) && int.TryParse(token[5..], out int seconds) && seconds >= 0)
                    wait = TimeSpan.FromSeconds(Math.Min(seconds, TaskService.MaxWait.TotalSeconds));
            }
        if (wait is { } w) return (w, true); // with respond-async: wait that long, then answer 202
        return async ? (TimeSpan.Zero, true) : (DefaultWait, false);
    }
}

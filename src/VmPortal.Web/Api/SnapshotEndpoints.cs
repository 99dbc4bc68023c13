using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Audit;
using VmPortal.Core.Snapshots;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>Body of <c>POST /api/vms/{id}/snapshots</c>.</summary>
public sealed record SnapshotCreateRequest(string? Name, string? Description, bool? IncludeMemory);

/// <summary>The answer of take/revert/delete: the snapshot, the VM's run state after it, and the times.</summary>
public sealed record SnapshotOpDto(SnapshotInfo Snapshot, VmPortal.Data.Entities.VmState VmState, double TotalMs, double PausedMs, long BytesMerged);

/// <summary>The answer of suspend: the VM's state and how long it took.</summary>
public sealed record SuspendDto(Guid Id, VmPortal.Data.Entities.VmState State, double TotalMs);

/// <summary>
/// Snapshots and suspend (docs/portal.md "Snapshots"): <c>GET/POST /api/vms/{id}/snapshots</c>,
/// <c>POST …/snapshots/{snapshotId}/revert</c>, <c>DELETE …/snapshots/{snapshotId}</c>, <c>POST /api/vms/{id}/suspend</c>
/// (resume is <c>POST /api/vms/{id}/resume</c>, in <see cref="VmPowerApi"/>). Owner or admin; another user's VM is 404.
/// Synchronous: the answer comes when the operation is done (200/201).
/// </summary>
public static class SnapshotEndpoints
{
    public static RouteGroupBuilder MapSnapshotApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("VM snapshots").RequireAuthorization();
        g.MapGet("/snapshots", List).WithSummary("The VM's snapshots (a tree through parentId; current = the position the disks continue from)");
        g.MapPost("/snapshots", Take)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Take a snapshot {name, description, includeMemory} (memory: running or paused VMs only)");
        g.MapPost("/snapshots/{snapshotId:guid}/revert", Revert)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Revert to a snapshot: later disk changes are discarded; with memory the machine continues from it");
        g.MapDelete("/snapshots/{snapshotId:guid}", Delete)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Delete a snapshot (its data is merged into its children and the current disks that read through it)");
        g.MapPost("/suspend", Suspend)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Suspend to disk: save the machine state, free its memory (state suspended); POST /resume continues it");
        return g;
    }

    private static async Task<IResult> List(Guid id, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots, CancellationToken ct)
    {
        if (await rt.FindAsync(user.Caller(), id, ct) is null) return ApiResults.NotFound($"VM {id} not found.");
        return TypedResults.Ok(await snapshots.ListAsync(id, ct));
    }

    private static async Task<IResult> Take(Guid id, SnapshotCreateRequest? body, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots,
        AuditLog audit, CancellationToken ct)
    {
        var caller = user.Caller();
        if (await rt.FindAsync(caller, id, ct) is null) return ApiResults.NotFound($"VM {id} not found.");
        if (body is null) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A JSON body {name, description, includeMemory} is required."] });
        var r = await snapshots.TakeAsync(id, body.Name, body.Description, body.IncludeMemory ?? false, ct);
        await rt.SyncAsync(id);
        await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot", "vm", id.ToString(),
            r.IsOk ? $"took snapshot '{body.Name}'{(body.IncludeMemory == true ? " with memory" : "")}" : $"snapshot '{body.Name}' refused: {r.Message}", r.IsOk, ct);
        if (!r.IsOk) return r.Status == OpStatus.Invalid ? ApiResults.Invalid(r) : ApiResults.Failure(r);
        return TypedResults.Created($"/api/vms/{id}/snapshots/{r.Value!.Snapshot!.Id}", Dto(id, r.Value, rt));
    }

    private static async Task<IResult> Revert(Guid id, Guid snapshotId, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots,
        AuditLog audit, CancellationToken ct)
    {
        var caller = user.Caller();
        var vm = await rt.FindAsync(caller, id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        var r = await snapshots.RevertAsync(id, snapshotId, ct);
        IResult? startFailure = null;
        if (r.IsOk && r.Value!.StartWithState is { } state)
        {
            // a stopped VM reverted to a snapshot with memory: its machine continues from that state
            var fresh = await rt.FindAsync(caller, id, ct);
            startFailure = await ConsoleApi.Guard(() => rt.StartAsync(fresh!, state));
        }
        await rt.SyncAsync(id);
        await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot-revert", "vm", id.ToString(),
            r.IsOk ? $"reverted to snapshot '{r.Value!.Snapshot!.Name}'" : $"revert refused: {r.Message}", r.IsOk && startFailure is null, ct);
        if (!r.IsOk) return ApiResults.Failure(r);
        if (startFailure is not null)
            return ApiResults.Problem(StatusCodes.Status409Conflict, "Reverted, but not started",
                $"The disks were reverted to snapshot '{r.Value!.Snapshot!.Name}', but its machine could not be started from the saved memory; start the VM when possible (it then boots from the reverted disks).");
        return TypedResults.Ok(Dto(id, r.Value!, rt));
    }

    private static async Task<IResult> Delete(Guid id, Guid snapshotId, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots,
        AuditLog audit, CancellationToken ct)
    {
        var caller = user.Caller();
        if (await rt.FindAsync(caller, id, ct) is null) return ApiResults.NotFound($"VM {id} not found.");
        var r = await snapshots.DeleteAsync(id, snapshotId, ct);
        await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot-delete", "vm", id.ToString(),
            r.IsOk ? $"deleted snapshot '{r.Value!.Snapshot!.Name}' ({r.Value.BytesMerged} bytes merged)" : $"delete refused: {r.Message}", r.IsOk, ct);
        if (!r.IsOk) return ApiResults.Failure(r);
        return TypedResults.Ok(Dto(id, r.Value!, rt));
    }

    private static async Task<IResult> Suspend(Guid id, ClaimsPrincipal user, VmRuntime rt, SnapshotService snapshots, AuditLog audit, CancellationToken ct)
    {
        var caller = user.Caller();
        if (await rt.FindAsync(caller, id, ct) is null) return ApiResults.NotFound($"VM {id} not found.");
        var r = await snapshots.SuspendAsync(id, ct);
        await rt.SyncAsync(id);
        await audit.WriteAsync(caller.UserId, caller.UserName, "vm.suspend", "vm", id.ToString(), r.IsOk ? "suspended to disk" : $"refused: {r.Message}", r.IsOk, ct);
        if (!r.IsOk) return ApiResults.Failure(r);
        return TypedResults.Ok(new SuspendDto(id, VmStateSync.ToEntity(rt.Host.Get(id).State), r.Value.TotalMilliseconds));
    }

    private static SnapshotOpDto Dto(Guid id, SnapshotOpResult r, VmRuntime rt) =>
        new(r.Snapshot!, VmStateSync.ToEntity(rt.Host.Get(id).State), r.Total.TotalMilliseconds, r.Paused.TotalMilliseconds, r.BytesMerged);
}

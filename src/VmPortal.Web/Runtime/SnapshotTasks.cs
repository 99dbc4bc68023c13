using VmPortal.Core;
using VmPortal.Core.Audit;
using VmPortal.Core.Snapshots;
using VmPortal.Core.Tasks;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Runtime;

/// <summary>The answer of take/revert/delete: the snapshot, the VM's run state after it, and the times.</summary>
public sealed record SnapshotOpDto(SnapshotInfo Snapshot, VmState VmState, double TotalMs, double PausedMs, long BytesMerged);

/// <summary>The answer of suspend: the VM's state and how long it took.</summary>
public sealed record SuspendDto(Guid Id, VmState State, double TotalMs);

/// <summary>A snapshot operation started as a task: the task as created, and its work (the result, or a <see cref="TaskFailedException"/>).</summary>
public sealed record StartedSnapshotTask(TaskDto Task, Task<object> Done);

/// <summary>
/// Snapshot take / revert / delete and suspend as tasks (types <c>vm.snapshot</c>, <c>vm.snapshot-revert</c>,
/// <c>vm.snapshot-delete</c>, <c>vm.suspend</c>; target the VM), so the Tasks page shows each with its progress
/// steps and log, and one VM's operations queue behind each other. The REST endpoints (<c>SnapshotEndpoints</c>) and
/// the Snapshots tab both start them here; the work writes the audit event (so a request answered 202 is audited
/// when it ends) and ends the task with the result DTO or the problem its synchronous answer would have been.
/// </summary>
public sealed class SnapshotTasks(TaskService tasks, SnapshotService snapshots, VmRuntime rt, AuditLog audit)
{
    public Task<StartedSnapshotTask> TakeAsync(Caller caller, VirtualMachine vm, string? name, string? description, bool includeMemory) =>
        StartAsync(caller, vm, "vm.snapshot", async ctx =>
        {
            var r = await snapshots.TakeAsync(vm.Id, name, description, includeMemory, CancellationToken.None, ctx);
            await rt.SyncAsync(vm.Id);
            await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot", "vm", vm.Id.ToString(),
                r.IsOk ? $"took snapshot '{name}'{(includeMemory ? " with memory" : "")} (task {ctx.Id})" : $"snapshot '{name}' refused: {r.Message}", r.IsOk);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            ctx.Log($"taken in {r.Value!.Total.TotalMilliseconds:0} ms, guest paused {r.Value.Paused.TotalMilliseconds:0} ms, {r.Value.Snapshot!.SizeBytes >> 10} KiB");
            return Dto(vm.Id, r.Value);
        });

    public Task<StartedSnapshotTask> RevertAsync(Caller caller, VirtualMachine vm, Guid snapshotId) =>
        StartAsync(caller, vm, "vm.snapshot-revert", async ctx =>
        {
            var r = await snapshots.RevertAsync(vm.Id, snapshotId, CancellationToken.None, ctx);
            string? startFailure = null;
            if (r.IsOk && r.Value!.StartWithState is { } state)
            {
                // a stopped VM reverted to a snapshot with memory: its machine continues from that state
                ctx.Step("starting the machine from the saved memory");
                try
                {
                    var fresh = await rt.FindAsync(caller, vm.Id);
                    await rt.StartAsync(fresh!, state);
                }
                catch (Exception e) when (e is VmPortal.Core.Console.VmLifecycleException or VmPortal.Core.Runtime.VmHostException
                                              or VmPortal.Core.Quotas.QuotaExceededException or VmPortal.Core.Console.ConsoleInputException)
                {
                    startFailure = e.Message;
                }
            }
            await rt.SyncAsync(vm.Id);
            await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot-revert", "vm", vm.Id.ToString(),
                r.IsOk ? $"reverted to snapshot '{r.Value!.Snapshot!.Name}' (task {ctx.Id}){(startFailure is null ? "" : $"; not started: {startFailure}")}" : $"revert refused: {r.Message}",
                r.IsOk && startFailure is null);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            if (startFailure is not null)
                throw new TaskFailedException(StatusCodes.Status409Conflict, "Reverted, but not started",
                    $"The disks were reverted to snapshot '{r.Value!.Snapshot!.Name}', but its machine could not be started from the saved memory ({startFailure}); start the VM when possible (it then boots from the reverted disks).");
            return Dto(vm.Id, r.Value!);
        });

    public Task<StartedSnapshotTask> DeleteAsync(Caller caller, VirtualMachine vm, Guid snapshotId) =>
        StartAsync(caller, vm, "vm.snapshot-delete", async ctx =>
        {
            var r = await snapshots.DeleteAsync(vm.Id, snapshotId, CancellationToken.None, ctx);
            await audit.WriteAsync(caller.UserId, caller.UserName, "vm.snapshot-delete", "vm", vm.Id.ToString(),
                r.IsOk ? $"deleted snapshot '{r.Value!.Snapshot!.Name}' ({r.Value.BytesMerged} bytes merged; task {ctx.Id})" : $"delete refused: {r.Message}", r.IsOk);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            return Dto(vm.Id, r.Value!);
        });

    public Task<StartedSnapshotTask> SuspendAsync(Caller caller, VirtualMachine vm) =>
        StartAsync(caller, vm, "vm.suspend", async ctx =>
        {
            var r = await snapshots.SuspendAsync(vm.Id, CancellationToken.None, ctx);
            await rt.SyncAsync(vm.Id);
            await audit.WriteAsync(caller.UserId, caller.UserName, "vm.suspend", "vm", vm.Id.ToString(),
                r.IsOk ? $"suspended to disk (task {ctx.Id})" : $"refused: {r.Message}", r.IsOk);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            return new SuspendDto(vm.Id, VmStateSync.ToEntity(rt.Host.Get(vm.Id).State), r.Value.TotalMilliseconds);
        });

    private async Task<StartedSnapshotTask> StartAsync(Caller caller, VirtualMachine vm, string type, Func<TaskContext, Task<object>> work)
    {
        var done = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        Guid id = Guid.Empty;
        // a task cancelled while queued ends without running its work: end Done too
        void OnChanged(TaskDto t)
        {
            if (t.Id != id || !t.Finished) return;
            tasks.Changed -= OnChanged;
            if (t.Status != PortalTaskStatus.Succeeded)
                done.TrySetException(new TaskFailedException(t.Error?.Status ?? 409, t.Error?.Title ?? "Cancelled", t.Error?.Detail ?? "The task did not run."));
        }
        tasks.Changed += OnChanged;
        var task = await tasks.StartAsync(caller, type, TaskTarget.Vm(vm.Id, vm.Name), async ctx =>
        {
            try
            {
                var result = await work(ctx);
                done.TrySetResult(result);
                return result;
            }
            catch (Exception e)
            {
                var error = TaskErrors.From(e);
                done.TrySetException(new TaskFailedException(error.Status, error.Title, error.Detail));
                throw;
            }
        });
        id = task.Id;
        _ = done.Task.ContinueWith(_ => tasks.Changed -= OnChanged, TaskScheduler.Default);
        return new StartedSnapshotTask(task, done.Task);
    }

    private SnapshotOpDto Dto(Guid id, SnapshotOpResult r) =>
        new(r.Snapshot!, VmStateSync.ToEntity(rt.Host.Get(id).State), r.Total.TotalMilliseconds, r.Paused.TotalMilliseconds, r.BytesMerged);
}

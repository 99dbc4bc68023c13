using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Runtime;

/// <summary>
/// Persists the run state of hosted VMs (<see cref="VmHost.StateChanged"/>) to the <see cref="VirtualMachine"/>
/// entity through its lifecycle methods. Writes are serialized and idempotent: each one moves the stored state to
/// the host's current state, so a lost or reordered event is repaired by the next one.
/// </summary>
public sealed class VmStateSync : IDisposable
{
    private readonly VmHost host;
    private readonly IDbContextFactory<PortalDbContext> dbFactory;
    private readonly TimeProvider clock;
    private readonly ILogger<VmStateSync> log;
    private readonly SemaphoreSlim gate = new(1, 1);

    public VmStateSync(VmHost host, IDbContextFactory<PortalDbContext> dbFactory, TimeProvider clock, ILogger<VmStateSync> log)
    {
        this.host = host;
        this.dbFactory = dbFactory;
        this.clock = clock;
        this.log = log;
        host.StateChanged += OnStateChanged;
    }

    private void OnStateChanged(HostedVm vm, VmRunState state, string? reason) =>
        _ = Task.Run(async () =>
        {
            try { await SyncAsync(vm.Id); }
            catch (Exception e) { log.LogWarning(e, "Persisting the state of VM {Id} failed", vm.Id); }
        });

    /// <summary>Writes the host's current state of <paramref name="vmId"/> to the database (no-op when equal).</summary>
    public async Task SyncAsync(Guid vmId, CancellationToken ct = default)
    {
        await gate.WaitAsync(ct);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                await using var db = await dbFactory.CreateDbContextAsync(ct);
                var entity = await db.VirtualMachines.FirstOrDefaultAsync(v => v.Id == vmId, ct);
                if (entity is null) return;
                var target = VmState.Stopped; // a VM the host forgot (deleted, or its row about to be) no longer runs
                string? reason = null;
                if (host.TryFind(vmId, out var hosted))
                {
                    target = ToEntity(hosted.State);
                    reason = target == VmState.Crashed ? hosted.Lifecycle.CrashReason : hosted.Lifecycle.StopReason;
                }
                // While the host is disposed at shutdown its VMs leave it without being stopped by anyone: a late write
                // from the shutdown's own suspend must not turn the VM it suspended into a stopped one.
                else if (host.IsDisposed) return;
                if (entity.State == target && (entity.StateReason == reason || !entity.IsStopped || reason is null)) return;
                MoveTo(entity, target, clock.GetUtcNow(), reason);
                try
                {
                    await db.SaveChangesAsync(ct);
                    return;
                }
                catch (DbUpdateConcurrencyException) when (attempt < 3)
                {
                    // someone edited the definition meanwhile: reload and try again
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    public static VmState ToEntity(VmRunState s) => s switch
    {
        VmRunState.Starting => VmState.Starting,
        VmRunState.Running => VmState.Running,
        VmRunState.Paused => VmState.Paused,
        VmRunState.Stopping => VmState.Stopping,
        VmRunState.Crashed => VmState.Crashed,
        VmRunState.Suspended => VmState.Suspended,
        _ => VmState.Stopped,
    };

    /// <summary>Moves the entity to <paramref name="target"/> through legal lifecycle steps.</summary>
    internal static void MoveTo(VirtualMachine vm, VmState target, DateTimeOffset now, string? reason = null)
    {
        if (vm.State == VmState.Suspended && target != VmState.Suspended) vm.MarkStopped(now); // resumed or discarded
        switch (target)
        {
            case VmState.Suspended:
                if (vm.State == VmState.Crashed) vm.BeginStart(now);
                if (vm.State == VmState.Starting) vm.MarkStopped(now);
                vm.MarkSuspended(now);
                break;
            case VmState.Starting:
                if (!vm.IsStopped) vm.MarkStopped(now);
                vm.BeginStart(now);
                break;
            case VmState.Running:
                if (vm.IsStopped) vm.BeginStart(now);
                else if (vm.State == VmState.Stopping) { vm.MarkStopped(now); vm.BeginStart(now); }
                vm.MarkRunning(now);
                break;
            case VmState.Paused:
                if (vm.State != VmState.Running) MoveTo(vm, VmState.Running, now);
                vm.Pause(now);
                break;
            case VmState.Stopping:
                if (vm.IsStopped) vm.BeginStart(now);
                vm.BeginStop(now);
                break;
            case VmState.Crashed:
                if (vm.IsStopped) vm.BeginStart(now);
                vm.MarkCrashed(now, reason);
                break;
            default:
                if (vm.IsStopped) vm.BeginStart(now); // a powered-off crash is plain Stopped; a new reason replaces the old
                vm.MarkStopped(now, reason);
                break;
        }
    }

    // The gate is not disposed: a write started by the last state change (the shutdown's suspend) may still hold it
    // when the container goes away, and releasing a disposed semaphore would fail that write. It owns no handle.
    public void Dispose() => host.StateChanged -= OnStateChanged;
}

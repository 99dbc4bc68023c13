using Microsoft.EntityFrameworkCore;
using VmPortal.Core;
using VmPortal.Core.Quotas;
using VmPortal.Core.Runtime;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Runtime;

/// <summary>
/// The portal's side of the VM runtime: per-VM authorization (owner or admin; a VM the caller may not see is
/// "not found") and starting a VM from its definition in PostgreSQL on the <see cref="VmHost"/>.
/// </summary>
public sealed class VmRuntime(VmHost host, VmMachineConfigFactory configs, VmStateSync sync, IDbContextFactory<PortalDbContext> dbFactory,
    Hubs.ConsoleConnections connections, Core.Snapshots.SnapshotService snapshots)
{
    public VmHost Host => host;

    /// <summary>The VM if <paramref name="caller"/> may use it, else null (not found and not yours look the same).</summary>
    public async Task<VirtualMachine?> FindAsync(Caller? caller, Guid id, CancellationToken ct = default)
    {
        if (caller is null) return null;
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == id, ct);
        return vm is not null && caller.CanAccess(vm.OwnerId) ? vm : null;
    }

    /// <summary>
    /// Starts <paramref name="vm"/>: refused with <see cref="VmHostException"/> when the host lacks memory or the
    /// definition cannot be built, with <see cref="Core.Console.VmLifecycleException"/> when it already runs.
    /// </summary>
    /// <para>A suspended VM resumes from its saved state; <paramref name="state"/> (a snapshot's memory) starts the
    /// machine from that state instead of booting it.</para>
    public async Task StartAsync(VirtualMachine vm, VmPortal.Emulator.Snapshots.MachineSnapshot? state = null)
    {
        var hosted = host.Get(vm.Id);
        bool resume = state is null && hosted.State == Core.Console.VmRunState.Suspended;
        if (resume)
        {
            try { state = snapshots.ReadSuspendState(vm.Id); }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                throw new VmHostException($"Cannot resume '{vm.Name}': its saved state cannot be read ({e.Message}).");
            }
            if (state is null) throw new VmHostException($"Cannot resume '{vm.Name}': its saved state file is missing; power it off to discard the suspended state.");
        }
        else if (state is null) snapshots.DiscardSuspendState(vm.Id); // a suspend discarded by power off: boot afresh
        Core.Console.VmLifecycle.Next(hosted.State, Core.Console.VmTransition.Start); // 409 before anything else
        if (vm.MemoryMiB > host.FreeMiB)
            throw new VmHostException(
                $"Cannot start '{vm.Name}': it needs {vm.MemoryMiB} MiB of memory but only {Math.Max(0, host.FreeMiB)} MiB " +
                $"of this host's {host.Options.CapacityMiB} MiB are free.");
        // the owner's running-VM and memory quotas: checked and taken under the owner's lock, held until the
        // database shows this VM as started (so a concurrent start of another of their VMs counts it)
        await using var db = await dbFactory.CreateDbContextAsync();
        await using var tx = await db.Database.BeginTransactionAsync();
        await QuotaService.LockOwnerAsync(db, vm.OwnerId);
        if (await QuotaService.CheckStartAsync(db, vm.OwnerId, vm.Id, vm.MemoryMiB) is { } refusal)
            throw new QuotaExceededException(refusal);
        var (config, problem) = configs.Build(vm);
        if (config is null) throw new VmHostException(problem!);
        try
        {
            try { await hosted.StartAsync(config, state); }
            catch (InvalidDataException e)
            {
                throw new VmHostException($"Cannot start '{vm.Name}' from its saved state: {e.Message}");
            }
            if (resume) snapshots.DiscardSuspendState(vm.Id);
        }
        finally
        {
            await sync.SyncAsync(vm.Id);
            await tx.CommitAsync();
        }
    }

    /// <summary>
    /// After a VM was deleted: tells its console viewers and disconnects them, powers off its machine if one still
    /// runs, and drops it from the host (so deleted VMs do not pile up in memory).
    /// </summary>
    public async Task ForgetAsync(Guid id)
    {
        connections.EndVm(id, "This VM was deleted.");
        await host.RemoveAsync(id);
    }

    /// <summary>Persists the VM's current runtime state now (after a command, so the API answer and the DB agree).</summary>
    public Task SyncAsync(Guid id) => sync.SyncAsync(id);
}

using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Core.Runtime;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Runtime;

/// <summary>
/// Reconciles the stored state with the (empty) host when the portal starts: every VM stored as starting, running,
/// paused or stopping is marked Stopped (its machine died with the previous process); then the VMs flagged
/// "start at boot" are started in the background. Registered after the database initializer, so the schema exists.
/// </summary>
public sealed class VmRuntimeStartup(IServiceProvider services, TimeProvider clock, ILogger<VmRuntimeStartup> log)
    : IHostedService
{
    private Task? starting;

    // resolved when starting: the database connection exists only once the database initializer has run
    private IDbContextFactory<PortalDbContext> dbFactory => services.GetRequiredService<IDbContextFactory<PortalDbContext>>();

    // Resolved at start: at shutdown the container may already be going away (a slow suspend ran past the host's
    // shutdown timeout), and StopAsync must still reach the VMs.
    private VmHost? host;
    private VmStateSync? sync;
    private AuditLog? audit;

    public async Task StartAsync(CancellationToken ct)
    {
        host = services.GetRequiredService<VmHost>();
        sync = services.GetRequiredService<VmStateSync>();
        audit = services.GetRequiredService<AuditLog>();
        var atBoot = await ReconcileAsync(ct);
        if (atBoot.Count > 0) starting = Task.Run(() => StartAtBootAsync(atBoot), CancellationToken.None);
    }

    /// <summary>Marks every VM stored as having a machine Stopped; returns the ids of the VMs to start at boot.</summary>
    internal async Task<List<Guid>> ReconcileAsync(CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var stale = await db.VirtualMachines
            .Where(v => v.State != VmState.Stopped && v.State != VmState.Crashed && v.State != VmState.Suspended).ToListAsync(ct);
        foreach (var vm in stale) vm.MarkStopped(now, HostCrashedReason);
        if (stale.Count > 0)
        {
            await db.SaveChangesAsync(ct);
            log.LogWarning("Marked {Count} VMs stopped that were running when the portal host stopped unexpectedly", stale.Count);
            var audit = services.GetRequiredService<AuditLog>();
            foreach (var vm in stale)
                await audit.WriteAsync(null, "system", AuditActions.VmHostStopped, "vm", vm.Id.ToString(), HostCrashedReason, success: false, ct: ct);
        }
        // suspended VMs keep their saved state: the host knows them as suspended (their next start resumes them)
        var suspended = await db.VirtualMachines.Where(v => v.State == VmState.Suspended).Select(v => v.Id).ToListAsync(ct);
        var host = services.GetRequiredService<VmPortal.Core.Runtime.VmHost>();
        foreach (var id in suspended) host.Get(id).MarkSuspended();
        return await db.VirtualMachines.Where(v => v.StartAtBoot).Select(v => v.Id).ToListAsync(ct);
    }

    /// <summary>Starts the given VMs if they are still flagged "start at boot"; failures are logged, not thrown.</summary>
    internal async Task StartAtBootAsync(IReadOnlyList<Guid> ids)
    {
        var runtime = services.GetRequiredService<VmRuntime>();
        foreach (var id in ids)
        {
            try
            {
                await using var db = await dbFactory.CreateDbContextAsync();
                var vm = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == id);
                if (vm is null || !vm.StartAtBoot) continue;
                await runtime.StartAsync(vm);
                log.LogInformation("Started VM {Name} ({Id}) at boot", vm.Name, id);
            }
            catch (Exception e)
            {
                log.LogWarning("Could not start VM {Id} at boot: {Message}", id, e.Message);
            }
        }
    }

    /// <summary>Stop reason of the VMs found running after the previous portal process died (kill -9, power cut).</summary>
    public const string HostCrashedReason = "the portal host stopped unexpectedly";
    /// <summary>Stop reason of the VMs the portal powered off when it was shut down.</summary>
    public const string PortalShutDownReason = "the portal was shut down";

    /// <summary>
    /// A clean shutdown (SIGTERM, Ctrl-C): powers off every running VM with <see cref="PortalShutDownReason"/>, records
    /// it in the database and the audit log, so the VM list says why each one stopped.
    /// </summary>
    /// <remarks>
    /// Once, however often the host calls it: concurrent calls (see <see cref="ShutdownSuspender.StopAsync"/>) all wait
    /// for the same power-off, which runs after the suspend and leaves the VMs it suspended alone.
    /// </remarks>
    public Task StopAsync(CancellationToken ct)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var shared = Interlocked.CompareExchange(ref stopped, mine.Task, null);
        if (shared is not null) return shared;
        _ = Task.Run(async () =>
        {
            try
            {
                if (starting is not null) await Task.WhenAny(starting, Task.Delay(Timeout.Infinite, ct));
                if (host is not null) await PowerOffForShutdownAsync(host.All);
            }
            catch (Exception e) { log.LogWarning(e, "Powering off the VMs at shutdown failed"); }
            finally { mine.SetResult(); }
        }, CancellationToken.None);
        return mine.Task;
    }

    private Task? stopped; // the one power-off every StopAsync call waits for

    /// <summary>What <see cref="StopAsync"/> does to the hosted VMs (tests call it for their own VMs only).</summary>
    internal async Task PowerOffForShutdownAsync(IEnumerable<HostedVm> vms)
    {
        var running = vms.Where(v => v.Machine is not null).ToList();
        if (running.Count == 0) return;
        var sync = this.sync ?? services.GetRequiredService<VmStateSync>();
        var audit = this.audit ?? services.GetRequiredService<AuditLog>();
        int poweredOff = 0;
        await Task.WhenAll(running.Select(async vm =>
        {
            try
            {
                // a VM suspended (or stopped) since the list was taken keeps its state
                if (!await vm.PowerOffIfRunningAsync(PortalShutDownReason)) return;
                Interlocked.Increment(ref poweredOff);
                await sync.SyncAsync(vm.Id, CancellationToken.None);
                await audit.WriteAsync(null, "system", AuditActions.VmHostStopped, "vm", vm.Id.ToString(), PortalShutDownReason);
            }
            catch (Exception e)
            {
                log.LogWarning("Stopping VM {Id} at shutdown: {Message}", vm.Id, e.Message);
            }
        }));
        if (poweredOff > 0) log.LogInformation("Powered off {Count} running VMs at shutdown", poweredOff);
    }
}

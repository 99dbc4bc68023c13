using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Core.Snapshots;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Runtime;

/// <summary>
/// A clean portal shutdown (Ctrl-C, SIGTERM, <c>docker stop</c>) suspends the running and paused VMs to disk
/// (config <c>Runtime:OnShutdown</c>: <c>suspend</c>, the default, or <c>poweroff</c> to leave them to the host's
/// power-off as before) and marks them; the next start of the portal resumes exactly those. VMs a user suspended stay
/// suspended. At start, before resuming, it removes the files interrupted snapshot operations left
/// (<see cref="SnapshotService.SweepOrphansAsync"/>). Registered after <see cref="VmRuntimeStartup"/>, so it starts
/// after the reconcile and stops before it.
/// </summary>
public sealed class ShutdownSuspender(IServiceProvider services, IConfiguration config, ILogger<ShutdownSuspender> log) : IHostedService
{
    /// <summary>Beside <c>suspended.vmstate</c>: this suspend was the portal's own, resume at the next start.</summary>
    public const string ResumeMarker = "suspended.resume-at-start";

    private Task? resuming;
    private Task? stopped; // the one suspend every StopAsync call waits for

    // resolved at start: a stop that comes after the container was disposed still reaches the VMs
    private VmHost? host;
    private SnapshotService? snapshots;
    private Core.Disks.VmDiskStore? disks;
    private VmStateSync? sync;

    public async Task StartAsync(CancellationToken ct)
    {
        host = services.GetRequiredService<VmHost>();
        snapshots = services.GetRequiredService<SnapshotService>();
        disks = services.GetRequiredService<Core.Disks.VmDiskStore>();
        sync = services.GetRequiredService<VmStateSync>();
        // before any VM runs: remove what a crash in the middle of a snapshot operation left behind
        try
        {
            var removed = await services.GetRequiredService<SnapshotService>().SweepOrphansAsync(ct);
            // visible to admins on the Audit page: one event per VM naming the files
            var audit = services.GetRequiredService<Core.Audit.AuditLog>();
            foreach (var dir in removed.GroupBy(Path.GetDirectoryName))
                await audit.WriteAsync(null, "system", Core.Audit.AuditActions.SnapshotOrphansRemoved, "vm",
                    Guid.TryParse(Path.GetFileName(dir.Key), out var vmId) ? vmId.ToString() : dir.Key,
                    "Removed at start, left by an interrupted snapshot operation: " + string.Join(", ", dir.Select(Path.GetFileName)), ct: ct);
        }
        catch (Exception e) when (e is not OperationCanceledException) { log.LogWarning(e, "Looking for files left by interrupted snapshot operations failed"); }
        resuming = Task.Run(ResumeMarkedAsync, CancellationToken.None);
    }

    private async Task ResumeMarkedAsync()
    {
        try
        {
            var dbFactory = services.GetRequiredService<IDbContextFactory<PortalDbContext>>();
            var disks = services.GetRequiredService<Core.Disks.VmDiskStore>();
            var runtime = services.GetRequiredService<VmRuntime>();
            await using var db = await dbFactory.CreateDbContextAsync();
            var host = services.GetRequiredService<VmHost>();
            var snapshots = services.GetRequiredService<SnapshotService>();
            foreach (var vm in await db.VirtualMachines.AsNoTracking().ToListAsync())
            {
                var marker = Path.Combine(disks.VmDirectory(vm.Id), ResumeMarker);
                if (!File.Exists(marker)) continue;
                try
                {
                    File.Delete(marker);
                    if (!File.Exists(snapshots.SuspendFilePath(vm.Id))) continue; // discarded meanwhile
                    // the database may not have recorded the suspend (the process ended first): the state file decides
                    host.Get(vm.Id).MarkSuspended();
                    await runtime.StartAsync(vm);
                    log.LogInformation("Resumed VM {Name} ({Id}), suspended by the last shutdown", vm.Name, vm.Id);
                }
                catch (Exception e)
                {
                    log.LogWarning("Could not resume VM {Id} after the restart: {Message}", vm.Id, e.Message);
                }
            }
        }
        catch (Exception e)
        {
            log.LogWarning(e, "Resuming the VMs suspended by the last shutdown failed");
        }
    }

    /// <summary>
    /// Suspends the running and paused VMs, once. The host may stop twice at the same time — a host run by
    /// <c>app.Run()</c> whose stop was started by someone else (WebApplicationFactory, an embedding host) stops it again
    /// when <c>ApplicationStopping</c> fires, and disposes it when that second stop returns — so every call waits for
    /// the same suspend: a second caller that returned at once would go on to <see cref="VmRuntimeStartup.StopAsync"/>
    /// (power off every machine) and dispose the container while the suspend is still running.
    /// </summary>
    public Task StopAsync(CancellationToken ct)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var shared = Interlocked.CompareExchange(ref stopped, mine.Task, null);
        if (shared is not null) return shared;
        _ = Task.Run(async () =>
        {
            try { await SuspendAllAsync(ct); }
            catch (Exception e) { log.LogWarning(e, "Suspending the VMs at shutdown failed"); }
            finally { mine.SetResult(); }
        }, CancellationToken.None);
        return mine.Task;
    }

    private async Task SuspendAllAsync(CancellationToken ct)
    {
        if (resuming is not null) await Task.WhenAny(resuming, Task.Delay(Timeout.Infinite, ct));
        if (!string.Equals(config["Runtime:OnShutdown"] ?? "suspend", "suspend", StringComparison.OrdinalIgnoreCase)) return;
        if (host is null || snapshots is null || disks is null || sync is null) return; // never started
        foreach (var vm in host.All.Where(v => v.State is VmRunState.Running or VmRunState.Paused))
        {
            try
            {
                // not cancelled by the host's shutdown timeout: a half-done suspend is worth finishing
                var r = await snapshots.SuspendAsync(vm.Id, CancellationToken.None);
                if (!r.IsOk) { log.LogWarning("Could not suspend VM {Id} at shutdown: {Message}", vm.Id, r.Message); continue; }
                await File.WriteAllTextAsync(Path.Combine(disks.VmDirectory(vm.Id), ResumeMarker), "", CancellationToken.None);
                await sync.SyncAsync(vm.Id, CancellationToken.None);
                log.LogInformation("Suspended VM {Id} at shutdown in {Ms:0} ms", vm.Id, r.Value.TotalMilliseconds);
            }
            catch (Exception e)
            {
                log.LogWarning("Could not suspend VM {Id} at shutdown: {Message}", vm.Id, e.Message);
            }
        }
    }
}

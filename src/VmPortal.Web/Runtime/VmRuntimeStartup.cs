using Microsoft.EntityFrameworkCore;
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

    public async Task StartAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        List<Guid> atBoot;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var stale = await db.VirtualMachines
                .Where(v => v.State != VmState.Stopped && v.State != VmState.Crashed).ToListAsync(ct);
            foreach (var vm in stale) vm.MarkStopped(now);
            if (stale.Count > 0)
            {
                await db.SaveChangesAsync(ct);
                log.LogInformation("Marked {Count} VMs stopped that were running before the restart", stale.Count);
            }
            atBoot = await db.VirtualMachines.Where(v => v.StartAtBoot).Select(v => v.Id).ToListAsync(ct);
        }
        if (atBoot.Count > 0) starting = Task.Run(() => StartAtBootAsync(atBoot), CancellationToken.None);
    }

    private async Task StartAtBootAsync(List<Guid> ids)
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

    public async Task StopAsync(CancellationToken ct)
    {
        if (starting is not null) await Task.WhenAny(starting, Task.Delay(Timeout.Infinite, ct));
    }
}

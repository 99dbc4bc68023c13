using VmPortal.Core.Leases;

namespace VmPortal.Web.Runtime;

/// <summary>
/// Enforces leases every <c>Leases:CheckIntervalSeconds</c> (default 60): expired VMs are powered off, and deleted
/// (consoles told, machine dropped) once their grace period has passed (<see cref="LeaseService.ReapAsync"/>).
/// </summary>
public sealed class LeaseReaper(IServiceProvider services, IConfiguration config, TimeProvider clock, ILogger<LeaseReaper> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(Math.Max(1, config.GetValue<int?>("Leases:CheckIntervalSeconds") ?? 60));
        using var timer = new PeriodicTimer(interval, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var runtime = services.GetRequiredService<VmRuntime>();
                await services.GetRequiredService<LeaseService>().ReapAsync(clock.GetUtcNow(), runtime.ForgetAsync, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogWarning(e, "Lease check failed");
            }
        }
    }
}

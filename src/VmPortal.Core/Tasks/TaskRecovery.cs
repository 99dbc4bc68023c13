using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VmPortal.Core.Tasks;

/// <summary>
/// At start (after the database initializer, which is registered before it): marks the tasks that a previous run
/// of the portal left queued or running as failed, so nobody waits for them forever.
/// </summary>
/// (The service is resolved in StartAsync: the database's connection string is known only once the initializer ran.)
public sealed class TaskRecovery(IServiceProvider services, ILogger<TaskRecovery> log) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var n = await services.GetRequiredService<TaskService>().RecoverAsync(cancellationToken);
        if (n > 0) log.LogWarning("{Count} task(s) were interrupted by the last shutdown and are marked failed", n);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

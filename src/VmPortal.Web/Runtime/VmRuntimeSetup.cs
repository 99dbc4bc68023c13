using Microsoft.AspNetCore.SignalR;
using VmPortal.Core.Runtime;
using VmPortal.Web.Api;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Runtime;

/// <summary>Registration of the VM runtime (host, state persistence, startup reconciliation) and its endpoints.</summary>
public static class VmRuntimeSetup
{
    /// <summary>
    /// Registers the <see cref="VmHost"/> singleton (config <c>Runtime:CapacityMiB</c>, default <see cref="DefaultCapacityMiB"/>;
    /// <c>Runtime:FrameRate</c>, default 30) and the portal services around it. Call after <c>AddPortal</c> so the
    /// startup reconciliation runs after the database initializer.
    /// </summary>
    public static void AddVmRuntime(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var services = builder.Services;
        services.AddSingleton(_ => new VmHost(new VmHostOptions
        {
            CapacityMiB = config.GetValue<long?>("Runtime:CapacityMiB") ?? DefaultCapacityMiB(),
            FrameRate = config.GetValue<double?>("Runtime:FrameRate") ?? 30,
        }));
        services.AddSingleton<VmMachineConfigFactory>();
        services.AddSingleton<VmStateSync>();
        services.AddSingleton<VmRuntime>();
        services.AddSingleton<VmPortal.Core.Snapshots.SnapshotService>();
        services.AddSingleton<SnapshotTasks>();
        services.AddSingleton<DiskExportTasks>(); // disk downloads and exports as tasks
        services.AddHostedService<VmRuntimeStartup>();
        services.AddHostedService<ShutdownSuspender>(); // after the reconcile: stopped before it
        services.AddSignalR(o =>
        {
            o.MaximumReceiveMessageSize = 256 * 1024;
            o.AddFilter<HubMistakeFilter>();
        }).AddMessagePackProtocol();
        services.AddSingleton<ConsoleConnections>();
        services.AddSingleton<VmPortal.Core.Console.ConsoleShareService>();
        services.AddHostedService<LeaseReaper>(); // leases: power off at expiry, delete after the grace period
    }

    /// <summary>
    /// VM memory the host offers when <c>Runtime:CapacityMiB</c> is not set: three quarters of the memory this process
    /// may use (the machine's RAM, or the container's limit), leaving the rest to the portal, PostgreSQL and the OS.
    /// </summary>
    public static long DefaultCapacityMiB()
    {
        var total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return total <= 0 ? 4096 : Math.Max(256, total / 4 * 3 >> 20);
    }

    public static void MapVmRuntime(this WebApplication app)
    {
        app.MapVmPowerApi();
        app.MapVmNicApi();
        app.MapVmDisksApi();
        app.MapSnapshotApi();
        app.MapVmCloneApi();
        app.MapVmTemplateApi();
        app.MapLeaseApi();
        app.MapConsoleApi();
        app.MapConsoleShareApi();
        app.MapHub<ConsoleHub>(ConsoleHub.Path);
    }
}

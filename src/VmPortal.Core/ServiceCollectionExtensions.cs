using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Accounts;
using VmPortal.Core.Audit;
using VmPortal.Core.Images;
using VmPortal.Core.Vms;

namespace VmPortal.Core;

public static class ServiceCollectionExtensions
{
    /// <summary>Registers the portal's use cases. The caller registers the DbContext factory and Identity.</summary>
    public static IServiceCollection AddPortalCore(this IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<AuditLog>();
        services.AddSingleton<ImageCatalog>();
        services.AddSingleton<ImageService>();
        services.AddSingleton<Disks.VmDiskStore>();
        services.AddSingleton<Templates.TemplateService>();
        services.AddSingleton<Templates.TemplateFromVm>();
        services.AddSingleton<Quotas.QuotaService>();
        services.AddSingleton(sp => new Networks.NetworkHost(sp.GetService<Runtime.VmHost>()));
        services.AddSingleton<Networks.NetworkService>();
        services.AddSingleton<VmService>();
        services.AddSingleton<ApiTokenService>();
        services.AddSingleton<UserService>();
        services.AddOptions<LoginThrottleOptions>();
        services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<LoginThrottleOptions>>().Value);
        services.AddSingleton<LoginThrottle>();
        services.AddSingleton<PasswordGate>();
        services.AddSingleton<Tasks.TaskService>();
        services.AddHostedService<Tasks.TaskRecovery>();
        services.AddSingleton<Groups.GroupService>();
        services.AddSingleton<Clones.CloneService>();
        services.AddSingleton<AuditExport>();
        services.AddSingleton<Leases.LeaseService>();
        return services;
    }
}

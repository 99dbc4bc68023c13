using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Audit;
using VmPortal.Core.Tasks;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// Power actions asked for with <c>Prefer: respond-async</c>: the command runs as a task (type <c>vm.&lt;action&gt;</c>,
/// target the VM) and the request is answered at once with 202 + <c>Location</c>. The request itself is audited by
/// <see cref="InputAuditFilter"/> ("HTTP 202"); the task writes a second audit event with how the command ended.
/// </summary>
internal static class VmPowerTasks
{
    public static async Task<IResult> StartAsync(HttpContext http, ClaimsPrincipal user, VirtualMachine vm, string action,
        Func<TaskContext, Task<object?>> work)
    {
        var caller = user.Caller();
        var services = http.RequestServices;
        var tasks = services.GetRequiredService<TaskService>();
        var audit = services.GetRequiredService<AuditLog>();
        var address = http.Connection.RemoteIpAddress?.ToString();
        var task = await tasks.StartAsync(caller, AuditActions.VmPower(action), TaskTarget.Vm(vm.Id, vm.Name), async ctx =>
        {
            try
            {
                var result = await work(ctx);
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.VmPower(action), "vm", vm.Id.ToString(),
                    $"task {ctx.Id} succeeded; REST from {address}");
                return result;
            }
            catch (Exception e)
            {
                var error = TaskErrors.From(e);
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.VmPower(action), "vm", vm.Id.ToString(),
                    $"task {ctx.Id} failed: {error.Status} {error.Detail}; REST from {address}", success: false);
                throw;
            }
        });
        TasksApi.PreferenceApplied(http.Response);
        return TasksApi.Accepted(task);
    }
}

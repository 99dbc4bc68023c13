using System.Security.Claims;
using VmPortal.Core.Tasks;
using VmPortal.Core.Vms;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>POST /api/vms</c> with <c>Prefer: respond-async</c>: the create (or the provision from a template) runs as a task
/// (<c>vm.provision</c> with a template, else <c>vm.create</c>) and the answer is 202 + <c>Location</c>; validation and
/// quota refusals end the task as failed with the problem the synchronous call would have answered (400, 404, 409).
/// </summary>
internal static class VmCreateTask
{
    public static async Task<Microsoft.AspNetCore.Http.HttpResults.Accepted<TaskDto>> StartAsync(HttpContext http, ClaimsPrincipal user, VmSpec spec)
    {
        var caller = user.Caller();
        var vms = http.RequestServices.GetRequiredService<VmService>();
        var tasks = http.RequestServices.GetRequiredService<TaskService>();
        var type = spec.TemplateId is null ? "vm.create" : "vm.provision";
        var task = await tasks.StartAsync(caller, type, new TaskTarget("vm", null, spec.Name ?? ""), async ctx =>
        {
            ctx.Step(spec.TemplateId is { } t ? $"provisioning '{spec.Name}' from template {t}" : $"creating '{spec.Name}'");
            var r = await vms.CreateAsync(caller, spec, ctx.CancellationToken);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            ctx.Step($"created {r.Value!.Id}");
            return r.Value;
        });
        TasksApi.PreferenceApplied(http.Response);
        return TasksApi.Accepted(task);
    }
}

using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Tasks;
using VmPortal.Core.Templates;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>POST /api/vms/{id}/template {"name", "description", "os", "icon", "published", "groupIds"}</c> (Admin): a stopped
/// VM's disk becomes the read-only base image of a new catalog template (<see cref="TemplateFromVm"/>). Checked first
/// (404 unknown VM, 400 bad name, 409 running VM, name taken, more than one disk); then a task (<c>vm.template</c>):
/// 202 + <c>Location: /api/tasks/{id}</c>, its result the template; with <c>Prefer: wait=N</c> 201 + the template.
/// </summary>
public static class VmTemplateApi
{
    public static RouteGroupBuilder MapVmTemplateApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("Templates").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin));
        g.MapPost("/template", Create)
            .WithSummary("Make a catalog template of a stopped VM (Admin): its disk becomes the template's read-only base image; a task, 202 + Location")
            .Produces<TaskDto>(StatusCodes.Status202Accepted).Produces<TemplateDto>(StatusCodes.Status201Created)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return g;
    }

    public static async Task<IResult> Create(Guid id, TemplateFromVmSpec spec, ClaimsPrincipal user, TemplateFromVm maker, HttpContext http, CancellationToken ct)
    {
        var caller = user.Caller();
        var check = await maker.CheckAsync(caller, id, spec, ct);
        if (check.Status == OpStatus.Invalid) return ApiResults.Invalid(check);
        if (!check.IsOk) return ApiResults.Failure(check);
        var vm = check.Value!;
        return await TaskAnswer.RunAsync(http, "vm.template", TaskTarget.Vm(vm.Id, vm.Name),
            async ctx => await maker.CreateAsync(caller, id, spec, ctx),
            result =>
            {
                var t = (TemplateDto)result!;
                return TypedResults.CreatedAtRoute(t, "GetTemplate", new { id = t.Id });
            });
    }
}

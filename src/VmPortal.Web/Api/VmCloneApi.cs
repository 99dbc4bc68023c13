using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core;
using VmPortal.Core.Clones;
using VmPortal.Core.Tasks;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>POST /api/vms/{id}/clone {"name", "mode": "linked"|"full", "description"}</c>: clones a stopped VM the caller may
/// see into a new VM of the caller. Checked before anything is copied (404 unknown VM, 400 bad name, 409 running
/// source or name taken, 409 "Quota exceeded"); then <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c>: the task
/// copies the disks with progress and its result is the new VM (its <c>id</c> is the task's result's <c>id</c>);
/// with <c>Prefer: wait=N</c> the held answer is 201 with the new VM (<see cref="TaskAnswer"/>).
/// </summary>
public static class VmCloneApi
{
    public static RouteGroupBuilder MapVmCloneApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("VMs").RequireAuthorization();
        g.MapPost("/clone", Clone)
            .WithSummary("Clone a stopped VM (linked: shares the base image, copies the VM's own changes; full: standalone copy); 202 + Location of the task")
            .Produces<TaskDto>(StatusCodes.Status202Accepted).Produces<Core.Vms.VmDto>(StatusCodes.Status201Created)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return g;
    }

    public static async Task<IResult> Clone(Guid id, CloneSpec spec, ClaimsPrincipal user, CloneService clones, HttpContext http, CancellationToken ct)
    {
        var caller = user.Caller();
        var check = await clones.CheckAsync(caller, id, spec, ct);
        if (check.Status == OpStatus.Invalid) return ApiResults.Invalid(check);
        if (!check.IsOk) return ApiResults.Failure(check);
        var source = check.Value!;
        return await TaskAnswer.RunAsync(http, "vm.clone", TaskTarget.Vm(source.Id, source.Name),
            async ctx => await clones.CloneAsync(caller, id, spec, ctx),
            result =>
            {
                var vm = (Core.Vms.VmDto)result!;
                http.Response.Headers.ETag = ApiResults.ETag(vm.Version);
                return TypedResults.CreatedAtRoute(vm, "GetVm", new { id = vm.Id });
            });
    }
}

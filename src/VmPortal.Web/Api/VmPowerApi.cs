using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Data.Entities;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>The run state of a VM as the power and console endpoints answer it.</summary>
public sealed record VmPowerDto(Guid Id, VmState State, string? CrashReason, long HostFreeMiB);

/// <summary>
/// <c>POST /api/vms/{id}/start|stop|reset|pause|resume|ctrl-alt-del</c>: power commands (token or cookie; owner or
/// admin; a VM the caller may not see is 404). 200 with the new state; 409 problem details for a transition the
/// state forbids or a start the host cannot take (memory capacity, missing image).
/// </summary>
public static class VmPowerApi
{
    public static RouteGroupBuilder MapVmPowerApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("VM power").RequireAuthorization();
        g.AddEndpointFilter<InputAuditFilter>(); // every POST here is audited (actor, address, result)
        g.MapGet("/power", (Guid id, ClaimsPrincipal user, VmRuntime rt) =>
                Run(id, user, rt, (_, _) => Task.CompletedTask))
            .WithSummary("The VM's run state on this host");
        g.MapPost("/start", (Guid id, ClaimsPrincipal user, VmRuntime rt) => Run(id, user, rt, (vm, _) => rt.StartAsync(vm)))
            .WithSummary("Start the VM (409 when it runs or the host lacks memory)");
        g.MapPost("/stop", (Guid id, ClaimsPrincipal user, VmRuntime rt) => Run(id, user, rt, (_, h) => h.PowerOffAsync()))
            .WithSummary("Power the VM off now");
        g.MapPost("/reset", (Guid id, ClaimsPrincipal user, VmRuntime rt) => Run(id, user, rt, (_, h) => h.ResetAsync()))
            .WithSummary("Hardware reset");
        g.MapPost("/pause", (Guid id, ClaimsPrincipal user, VmRuntime rt) => Run(id, user, rt, (_, h) => h.PauseAsync()))
            .WithSummary("Pause a running VM");
        g.MapPost("/resume", (Guid id, ClaimsPrincipal user, VmRuntime rt) => Run(id, user, rt, (_, h) => h.ResumeAsync()))
            .WithSummary("Resume a paused VM");
        g.MapPost("/ctrl-alt-del", (Guid id, ClaimsPrincipal user, VmRuntime rt) =>
                Run(id, user, rt, (_, h) => { h.SpecialKeys("ctrl-alt-del"); return Task.CompletedTask; }))
            .WithSummary("Send Ctrl-Alt-Del to a running VM");
        return g;
    }

    private static async Task<IResult> Run(Guid id, ClaimsPrincipal user, VmRuntime rt, Func<VirtualMachine, HostedVm, Task> command)
    {
        var vm = await rt.FindAsync(Caller.From(user), id);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        var hosted = rt.Host.Get(id);
        var failure = await ConsoleApi.Guard(() => command(vm, hosted));
        await rt.SyncAsync(id);
        return failure ?? TypedResults.Ok(new VmPowerDto(id, VmStateSync.ToEntity(hosted.State), hosted.Lifecycle.CrashReason, rt.Host.FreeMiB));
    }
}

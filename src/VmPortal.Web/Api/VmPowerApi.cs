using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Data.Entities;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>
/// The run state of a VM as the power and console endpoints answer it. <c>StopReason</c>: why it last stopped
/// ("the guest powered off", "powered off"), null unless Stopped after a run on this host.
/// </summary>
public sealed record VmPowerDto(Guid Id, VmState State, string? CrashReason, long HostFreeMiB, string? StopReason = null);

/// <summary>
/// <c>POST /api/vms/{id}/start|stop|reset|pause|resume|ctrl-alt-del</c>: power commands (token or cookie; owner or
/// admin; a VM the caller may not see is 404). 200 with the new state; 409 problem details for a transition the
/// state forbids or a start the host cannot take (memory capacity, missing image).
/// <c>POST /api/vms/{id}/shutdown?timeoutSeconds=60</c> presses the ACPI power button and answers when the guest has
/// powered off (200, Stopped) or, after the timeout (1–3600 s, default 60; 400 otherwise), 504 problem details saying
/// that the guest did not stop (the VM runs on; <c>stop</c> powers it off). 409 when the VM is not running or paused.
/// </summary>
public static class VmPowerApi
{
    public static RouteGroupBuilder MapVmPowerApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}").WithTags("VM power").RequireAuthorization();
        g.AddEndpointFilter<InputAuditFilter>(); // every POST here is audited (actor, address, result)
        g.MapGet("/power", (Guid id, ClaimsPrincipal user, VmRuntime rt) =>
                Run(id, user, rt, null, null, (_, _) => Task.CompletedTask))
            .WithSummary("The VM's run state on this host");
        g.MapPost("/start", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "start", (vm, _) => rt.StartAsync(vm)))
            .WithSummary("Start the VM (409 when it runs or the host lacks memory)");
        g.MapPost("/shutdown", Shutdown)
            .WithSummary("Press the ACPI power button and wait until the guest powers off (timeoutSeconds 1–3600, default 60; 504 when it did not)");
        g.MapPost("/stop", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "stop", (_, h) => h.PowerOffAsync()))
            .WithSummary("Power the VM off now");
        g.MapPost("/reset", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "reset", (_, h) => h.ResetAsync()))
            .WithSummary("Hardware reset");
        g.MapPost("/pause", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "pause", (_, h) => h.PauseAsync()))
            .WithSummary("Pause a running VM");
        g.MapPost("/resume", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) =>
                Run(id, user, rt, http, "resume", (vm, h) => h.State == VmRunState.Suspended ? rt.StartAsync(vm) : h.ResumeAsync()))
            .WithSummary("Resume a paused VM, or a suspended one from its saved state");
        g.MapPost("/ctrl-alt-del", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) =>
                Run(id, user, rt, http, "ctrl-alt-del", (_, h) => { h.SpecialKeys("ctrl-alt-del"); return Task.CompletedTask; }))
            .WithSummary("Send Ctrl-Alt-Del to a running VM");
        return g;
    }

    private static async Task<IResult> Run(Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext? http, string? action,
        Func<VirtualMachine, HostedVm, Task> command)
    {
        var vm = await rt.FindAsync(Caller.From(user), id);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        // Prefer: respond-async → 202 + Location of a task that runs the command (docs/automation.md "Tasks")
        if (http is not null && action is not null && TasksApi.WantsAsync(http.Request))
            return await VmPowerTasks.StartAsync(http, user, vm, action, async _ =>
            {
                var h = rt.Host.Get(id);
                try { await command(vm, h); }
                finally { await rt.SyncAsync(id); }
                return Dto(id, h, rt);
            });
        var hosted = rt.Host.Get(id);
        var failure = await ConsoleApi.Guard(() => command(vm, hosted));
        await rt.SyncAsync(id);
        return failure ?? TypedResults.Ok(Dto(id, hosted, rt));
    }

    private static VmPowerDto Dto(Guid id, HostedVm hosted, VmRuntime rt) =>
        new(id, VmStateSync.ToEntity(hosted.State), hosted.Lifecycle.CrashReason, rt.Host.FreeMiB, hosted.Lifecycle.StopReason);

    /// <summary>Status of a shutdown whose guest was still running at the timeout.</summary>
    public const int ShutdownTimedOutStatus = StatusCodes.Status504GatewayTimeout;

    public static async Task<IResult> Shutdown(Guid id, string? timeoutSeconds, HttpRequest request, ClaimsPrincipal user, VmRuntime rt, CancellationToken ct)
    {
        // "?timeoutSeconds=" (empty) is refused like any other bad value instead of meaning the default.
        if (timeoutSeconds is null && request.Query.ContainsKey("timeoutSeconds")) timeoutSeconds = "";
        var timeout = HostedVm.DefaultShutdownTimeout;
        if (timeoutSeconds is not null)
        {
            if (!int.TryParse(timeoutSeconds, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int seconds)
                || seconds < HostedVm.MinShutdownTimeout.TotalSeconds || seconds > HostedVm.MaxShutdownTimeout.TotalSeconds)
                return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request",
                    $"timeoutSeconds must be a whole number of seconds from {HostedVm.MinShutdownTimeout.TotalSeconds:0} to " +
                    $"{HostedVm.MaxShutdownTimeout.TotalSeconds:0} (default {HostedVm.DefaultShutdownTimeout.TotalSeconds:0}); got '{timeoutSeconds}'.");
            timeout = TimeSpan.FromSeconds(seconds);
        }
        var vm = await rt.FindAsync(Caller.From(user), id);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        if (TasksApi.WantsAsync(request))
            return await VmPowerTasks.StartAsync(request.HttpContext, user, vm, "shutdown", async task =>
            {
                var h = rt.Host.Get(id);
                task.Step($"power button pressed; waiting up to {timeout.TotalSeconds:0} s for the guest to power off");
                ShutdownOutcome result;
                try { result = await h.ShutdownAsync(timeout, task.CancellationToken); }
                finally { await rt.SyncAsync(id); }
                if (result != ShutdownOutcome.Stopped)
                    throw new Core.Tasks.TaskFailedException(ShutdownTimedOutStatus, "The guest did not shut down",
                        $"The ACPI power button of '{vm.Name}' was pressed, but the guest was still running after {timeout.TotalSeconds:0} s, so the VM runs on. " +
                        $"POST /api/vms/{id}/stop powers it off now.");
                return Dto(id, h, rt);
            });
        var hosted = rt.Host.Get(id);
        var outcome = ShutdownOutcome.Stopped;
        var failure = await ConsoleApi.Guard(async () => outcome = await hosted.ShutdownAsync(timeout, ct));
        await rt.SyncAsync(id);
        if (failure is not null) return failure;
        if (outcome == ShutdownOutcome.Stopped) return TypedResults.Ok(Dto(id, hosted, rt));
        var problem = new Microsoft.AspNetCore.Mvc.ProblemDetails
        {
            Status = ShutdownTimedOutStatus,
            Title = "The guest did not shut down",
            Detail = $"The ACPI power button of '{vm.Name}' was pressed, but the guest was still running after " +
                     $"{timeout.TotalSeconds:0} s, so the VM runs on. " +
                     (hosted.GuestHandlesPowerButton ? "" : "The guest has not enabled the ACPI power button (no ACPI operating system is running). ") +
                     $"POST /api/vms/{id}/stop powers it off now.",
        };
        problem.Extensions["state"] = VmStateSync.ToEntity(hosted.State).ToString();
        problem.Extensions["timeoutSeconds"] = (int)timeout.TotalSeconds;
        problem.Extensions["guestHandlesPowerButton"] = hosted.GuestHandlesPowerButton;
        return TypedResults.Problem(problem);
    }
}

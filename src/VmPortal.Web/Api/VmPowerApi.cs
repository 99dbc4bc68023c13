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
/// <c>POST /api/vms/{id}/start|stop|reset|pause|resume|ctrl-alt-del|shutdown</c>: power commands (token or cookie;
/// owner or admin; a VM the caller may not see is 404 at once). Each runs as a task (<see cref="TaskAnswer"/>):
/// <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c> by default; with <c>Prefer: wait=N</c> the held answer is
/// 200 with the new state, 409 problem details for a transition the state forbids or a start the host cannot take
/// (memory capacity, missing image, quota). <c>shutdown?timeoutSeconds=60</c> presses the ACPI power button and ends
/// when the guest has powered off (Stopped) or, after the timeout (1–3600 s, default 60; 400 at once otherwise), fails
/// with 504 saying that the guest did not stop (the VM runs on; <c>stop</c> powers it off).
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
            .WithSummary("Start the VM (a task; held answer 409 when it runs, the host lacks memory or a quota is reached)").PowerAnswers();
        g.MapPost("/shutdown", Shutdown)
            .WithSummary("Press the ACPI power button; the task ends when the guest powers off (timeoutSeconds 1–3600, default 60; 504 when it did not)").PowerAnswers()
            .ProducesProblem(ShutdownTimedOutStatus);
        g.MapPost("/stop", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "stop", (_, h) => h.PowerOffAsync()))
            .WithSummary("Power the VM off now").PowerAnswers();
        g.MapPost("/reset", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "reset", (_, h) => h.ResetAsync()))
            .WithSummary("Hardware reset").PowerAnswers();
        g.MapPost("/pause", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) => Run(id, user, rt, http, "pause", (_, h) => h.PauseAsync()))
            .WithSummary("Pause a running VM").PowerAnswers();
        g.MapPost("/resume", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) =>
                Run(id, user, rt, http, "resume", (vm, h) => h.State == VmRunState.Suspended ? rt.StartAsync(vm) : h.ResumeAsync()))
            .WithSummary("Resume a paused VM, or a suspended one from its saved state").PowerAnswers();
        g.MapPost("/ctrl-alt-del", (Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext http) =>
                Run(id, user, rt, http, "ctrl-alt-del", (_, h) => { h.SpecialKeys("ctrl-alt-del"); return Task.CompletedTask; }))
            .WithSummary("Send Ctrl-Alt-Del to a running VM").PowerAnswers();
        return g;
    }

    /// <summary>OpenAPI: what a power action may answer (<see cref="TaskAnswer"/>).</summary>
    private static RouteHandlerBuilder PowerAnswers(this RouteHandlerBuilder b) => b
        .Produces<Core.Tasks.TaskDto>(StatusCodes.Status202Accepted).Produces<VmPowerDto>(StatusCodes.Status200OK)
        .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);

    private static async Task<IResult> Run(Guid id, ClaimsPrincipal user, VmRuntime rt, HttpContext? http, string? action,
        Func<VirtualMachine, HostedVm, Task> command)
    {
        var vm = await rt.FindAsync(Caller.From(user), id);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        if (http is null || action is null) return TypedResults.Ok(Dto(id, rt.Host.Get(id), rt)); // GET …/power
        // every power action is a task: 202 + Location by default, the held answer with Prefer: wait=N (TaskAnswer)
        return await PowerTaskAsync(http, vm, action, async _ =>
        {
            var hosted = rt.Host.Get(id);
            var failure = await ConsoleApi.Guard(() => command(vm, hosted));
            await rt.SyncAsync(id);
            if (failure is not null) throw AnswerException.From(failure);
            return Dto(id, hosted, rt);
        });
    }

    /// <summary>
    /// Runs a power action as a task (type <c>vm.&lt;action&gt;</c>) that audits its outcome (actor, client address,
    /// the status the action ended with); <see cref="InputAuditFilter"/> leaves such requests to the task.
    /// </summary>
    internal static Task<IResult> PowerTaskAsync(HttpContext http, VirtualMachine vm, string action, Func<Core.Tasks.TaskContext, Task<VmPowerDto>> work)
    {
        var caller = http.User.Caller();
        var audit = http.RequestServices.GetRequiredService<Core.Audit.AuditLog>();
        var address = http.Connection.RemoteIpAddress?.ToString();
        var type = Core.Audit.AuditActions.VmPower(action);
        return TaskAnswer.RunAsync(http, type, Core.Tasks.TaskTarget.Vm(vm.Id, vm.Name), async ctx =>
        {
            try
            {
                var result = await work(ctx);
                await audit.WriteAsync(caller.UserId, caller.UserName, type, "vm", vm.Id.ToString(),
                    $"REST from {address}; HTTP 200; task {ctx.Id} succeeded");
                return result;
            }
            catch (Exception e) when (e is not OperationCanceledException || !ctx.CancellationToken.IsCancellationRequested)
            {
                var error = Core.Tasks.TaskErrors.From(e);
                await audit.WriteAsync(caller.UserId, caller.UserName, type, "vm", vm.Id.ToString(),
                    $"REST from {address}; HTTP {error.Status}; task {ctx.Id} failed: {error.Detail}", success: false);
                throw;
            }
        }, result => TypedResults.Ok((VmPowerDto)result!));
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
        return await PowerTaskAsync(request.HttpContext, vm, "shutdown", async task =>
        {
            var hosted = rt.Host.Get(id);
            task.Step($"power button pressed; waiting up to {timeout.TotalSeconds:0} s for the guest to power off");
            var outcome = ShutdownOutcome.Stopped;
            var failure = await ConsoleApi.Guard(async () => outcome = await hosted.ShutdownAsync(timeout, task.CancellationToken));
            await rt.SyncAsync(id);
            if (failure is not null) throw AnswerException.From(failure);
            if (outcome == ShutdownOutcome.Stopped) return Dto(id, hosted, rt);
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
            throw new AnswerException(TypedResults.Problem(problem), ShutdownTimedOutStatus, problem.Title, problem.Detail);
        });
    }
}

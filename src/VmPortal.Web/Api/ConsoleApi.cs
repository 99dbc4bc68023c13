using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

public sealed record ConsoleCursor(int Row, int Column, bool Visible);
/// <summary>The text screen (null in graphics modes) with its size and cursor.</summary>
public sealed record ConsoleTextDto(string? Text, int Columns, int Rows, ConsoleCursor? Cursor, int Width, int Height);
public sealed record TypeRequest(string? Text);
/// <summary><c>typed</c>: characters accepted now; <c>pending</c>: keystrokes of typed text the guest has not read yet.</summary>
public sealed record TypeResultDto(int Typed, int Pending);
public sealed record TypePendingDto(int Pending, int Capacity);
public sealed record KeysRequest(List<string>? Keys);
public sealed record WaitRequest(string? Pattern, double? TimeoutSeconds, string? Source);
public sealed record WaitMatchDto(bool Matched, string Match, string LastText);

/// <summary>
/// <c>/api/vms/{id}/console/…</c>: the console for scripts — text, screenshot (PNG), type, keys, wait.
/// Same per-VM rules as the rest of <c>/api/vms</c>; bad input is 400, a VM without a machine is 409.
/// </summary>
public static class ConsoleApi
{
    public static RouteGroupBuilder MapConsoleApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}/console").WithTags("VM console").RequireAuthorization();
        g.AddEndpointFilter<InputAuditFilter>(); // type and keys are audited as counts
        g.MapGet("/text", Text).WithSummary("The text-mode screen with cursor position (text is null in graphics modes)");
        g.MapGet("/screenshot", Screenshot).Produces(StatusCodes.Status200OK, contentType: "image/png")
            .WithSummary("The screen as PNG");
        g.MapPost("/type", Type).WithSummary("Type text as keystrokes on a US layout (\\n is Enter); queued per VM, 429 when the queue is full");
        g.MapGet("/type", TypePending).WithSummary("Keystrokes of typed text the guest has not read yet");
        g.MapDelete("/type", CancelTyping).WithSummary("Drop the typed text the guest has not read yet");
        g.MapPost("/keys", Keys).WithSummary("Press a key combination, e.g. {\"keys\":[\"ctrl\",\"alt\",\"del\"]}");
        g.MapPost("/wait", Wait).WithSummary("Wait for a regex on the screen or serial output: 200 with the match, 408 with the last text");
        return g;
    }

    /// <summary>Runs a runtime command, turning the runtime's user-facing exceptions into problem details.</summary>
    internal static async Task<IResult?> Guard(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (ConsoleInputException e) { return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", e.Message); }
        catch (VmLifecycleException e) { return ApiResults.Conflict(e.Message); }
        catch (VmHostException e) { return ApiResults.Conflict(e.Message); }
        catch (Core.Quotas.QuotaExceededException e) { return ApiResults.QuotaExceeded(e.Message); }
    }

    private static async Task<(HostedVm? Vm, IResult? Error)> Resolve(Guid id, ClaimsPrincipal user, VmRuntime rt)
    {
        var vm = await rt.FindAsync(Caller.From(user), id);
        if (vm is null) return (null, ApiResults.NotFound($"VM {id} not found."));
        return (rt.Host.Get(id), null);
    }

    private static IResult NoMachine(HostedVm vm) =>
        ApiResults.Conflict($"The VM is {vm.State.ToString().ToLowerInvariant()}; it has no screen.");

    public static async Task<IResult> Text(Guid id, ClaimsPrincipal user, VmRuntime rt)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        var screen = vm.Machine?.Screen;
        if (screen is null) return NoMachine(vm);
        var text = vm.ScreenText();
        var cursor = screen.Columns > 0 ? screen.Cursor : default;
        var (width, height) = screen.DisplaySize; // not the last console refresh: nobody may be watching
        return TypedResults.Ok(new ConsoleTextDto(text, screen.Columns, screen.Rows,
            screen.Columns > 0 ? new ConsoleCursor(cursor.Row, cursor.Column, cursor.Visible) : null, width, height));
    }

    public static async Task<IResult> Screenshot(Guid id, ClaimsPrincipal user, VmRuntime rt)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        if (vm.Screenshot() is not { } png) return NoMachine(vm);
        return TypedResults.File(png, "image/png", $"screen-{id:N}.png");
    }

    public static async Task<IResult> Type(Guid id, TypeRequest? body, ClaimsPrincipal user, VmRuntime rt, HttpContext http)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        if (body?.Text is not { Length: > 0 } text)
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "text is required.");
        int pending = 0;
        try
        {
            return await Guard(() => { pending = vm.TypeText(text); return Task.CompletedTask; })
                   ?? TypedResults.Ok(new TypeResultDto(text.Length, pending));
        }
        catch (TypeQueueFullException e)
        {
            // The guest reads about 1,500 keystrokes a second; ask to come back when about half the queue is gone.
            var wait = TimeSpan.FromSeconds(Math.Max(1, (e.Pending - HostedVm.MaxTypedPending / 2) / 1500.0));
            var problem = ApiResults.TooManyRequests(http, wait, e.Message);
            problem.ProblemDetails.Extensions["pending"] = e.Pending;
            problem.ProblemDetails.Extensions["capacity"] = e.Capacity;
            return problem;
        }
    }

    public static async Task<IResult> TypePending(Guid id, ClaimsPrincipal user, VmRuntime rt)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        return TypedResults.Ok(new TypePendingDto(vm.TypedPending, HostedVm.MaxTypedPending));
    }

    public static async Task<IResult> CancelTyping(Guid id, ClaimsPrincipal user, VmRuntime rt)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        return TypedResults.Ok(new { dropped = vm.CancelTyping() });
    }

    public static async Task<IResult> Keys(Guid id, KeysRequest? body, ClaimsPrincipal user, VmRuntime rt)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        if (body?.Keys is null)
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "keys is required, e.g. [\"ctrl\",\"alt\",\"del\"].");
        return await Guard(() => { vm.Keys(KeyInput.Combo(body.Keys)); return Task.CompletedTask; })
               ?? TypedResults.Ok(new { pressed = body.Keys.Count });
    }

    public static async Task<IResult> Wait(Guid id, WaitRequest? body, ClaimsPrincipal user, VmRuntime rt, CancellationToken ct)
    {
        var (vm, error) = await Resolve(id, user, rt);
        if (vm is null) return error!;
        if (body is null) return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "A JSON body {pattern, timeoutSeconds, source} is required.");
        WaitSource source;
        switch (body.Source?.ToLowerInvariant())
        {
            case null or "" or "screen": source = WaitSource.Screen; break;
            case "serial": source = WaitSource.Serial; break;
            default: return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "source must be 'screen' or 'serial'.");
        }
        var seconds = body.TimeoutSeconds ?? 60;
        if (!double.IsFinite(seconds) || seconds <= 0 || seconds > ConsoleWaiter.MaxTimeout.TotalSeconds)
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request",
                $"timeoutSeconds must be between 0 and {ConsoleWaiter.MaxTimeout.TotalSeconds:0}.");
        WaitResult? result = null;
        var failure = await Guard(async () => result = await vm.WaitForAsync(body.Pattern ?? "", source, TimeSpan.FromSeconds(seconds), ct));
        if (failure is not null) return failure;
        if (result!.Matched) return TypedResults.Ok(new WaitMatchDto(true, result.Match!, result.LastText));
        return TypedResults.Problem(statusCode: StatusCodes.Status408RequestTimeout, title: "Timed out",
            detail: $"'{body.Pattern}' did not appear on the {source.ToString().ToLowerInvariant()} within {seconds:0.###} s.",
            extensions: new Dictionary<string, object?> { ["lastText"] = result.LastText });
    }
}

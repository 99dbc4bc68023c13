using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using VmPortal.Core;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Hubs;

/// <summary>What <c>JoinConsole</c> answers.</summary>
public sealed record JoinResult(string VmId, bool ReadOnly, VmRunState State, int Width, int Height);

/// <summary>
/// The live console of a VM at <c>/hubs/console</c> (SignalR, MessagePack or JSON; docs/console.md). A connection
/// joins one VM (<see cref="JoinConsole"/>: owner or admin; "not found" and "not yours" are the same refusal; or anyone,
/// signed in or not, holding a valid view-only share link), gets its own viewer of the VM's shared
/// <see cref="ConsoleStream"/> (full frame first, a slow viewer skips frames), and sends keyboard input and power
/// commands. Errors for the caller are <see cref="HubException"/>s.
/// The hub itself admits anonymous connections (share-link viewers have no account), so every method checks: input
/// and power need a signed-in caller ([Authorize] per method) who joined a VM they may use, and not through a link;
/// reading (frames, screen text) needs a joined viewer. Links that are revoked or expire cut their viewers off
/// (<see cref="ConsoleConnections"/>).
/// </summary>
public sealed class ConsoleHub(VmRuntime runtime, ConsoleConnections connections, ConsoleShareService shares, ILogger<ConsoleHub> log,
    VmPortal.Core.Audit.AuditLog audit) : Hub
{
    public const string Path = "/hubs/console";
    private const string Refused = "This VM does not exist or you may not use its console.";
    private const string BadLink = "This share link is invalid, expired or revoked.";
    private const string ViewOnly = "This console is view-only.";
    /// <summary>Bytes per <see cref="SerialInput"/> call.</summary>
    public const int MaxSerialInput = 4096;

    /// <summary>
    /// Joins the console of <paramref name="vmId"/>. Without <paramref name="shareToken"/> the caller must be signed
    /// in as the owner or an admin; with one, the token must be a valid link to that VM and the viewer is read-only.
    /// </summary>
    public async Task<JoinResult> JoinConsole(string vmId, string? shareToken)
    {
        if (!Guid.TryParse(vmId, out var id)) throw new HubException(Refused);
        if (!string.IsNullOrEmpty(shareToken))
        {
            var grant = await shares.ResolveAsync(shareToken);
            if (grant is null || grant.VmId != id) throw new HubException(BadLink);
            var shared = runtime.Host.Get(id);
            shared.RefreshConsole(); // nobody may have watched: the first full frame is the screen of now
            var roViewer = shared.Console.AddViewer(readOnly: true);
            connections.Start(Context, shared, roViewer, grant.ShareId, grant.ExpiresAt);
            if (!await shares.IsActiveAsync(grant.ShareId)) // revoked while joining
            {
                connections.Stop(Context.ConnectionId);
                throw new HubException(BadLink);
            }
            var remote = Context.GetHttpContext()?.Connection.RemoteIpAddress?.ToString();
            log.LogInformation("console of VM {Vm} opened through share link {Prefix} by {User} from {Remote}", id, grant.Prefix,
                Context.User?.Identity?.Name ?? "an anonymous viewer", remote);
            await shares.RecordOpenAsync(grant, Caller.From(Context.User), remote);
            return Result(id, shared, readOnly: true);
        }
        var vm = await runtime.FindAsync(Caller.From(Context.User), id);
        if (vm is null) throw new HubException(Refused);
        var hosted = runtime.Host.Get(id);
        hosted.RefreshConsole(); // nobody may have watched: the first full frame is the screen of now
        var viewer = hosted.Console.AddViewer(readOnly: false);
        connections.Start(Context, hosted, viewer);
        return Result(id, hosted, readOnly: false);
    }

    private static JoinResult Result(Guid id, HostedVm hosted, bool readOnly)
    {
        var screen = hosted.Machine?.Screen;
        return new JoinResult(id.ToString(), readOnly, hosted.State, screen?.Width ?? 720, screen?.Height ?? 400);
    }

    /// <summary>One physical key (<c>KeyboardEvent.code</c>) down or up; releases of keys not held are dropped.</summary>
    [Authorize]
    public void Key(string? code, bool down)
    {
        var (vm, viewer) = Input();
        if (code is null) throw new HubException("A key code is required.");
        Checked(() => KeyboardMap.Set2Codes(code, down)); // unknown code → error to this caller only
        if (!viewer.HeldKeys.Apply(new KeyAction(code, down))) return;
        Checked(() => vm.Key(code, down));
        if (down) Interlocked.Increment(ref Joined().KeyEvents);
    }

    /// <summary>Types text on a US layout ("\n" is Enter); returns the keystrokes pending in the VM's typing queue.</summary>
    [Authorize]
    public int TypeText(string? text)
    {
        var (vm, _) = Input();
        if (text is null) throw new HubException("Text to type is required.");
        int pending = 0;
        Checked(() => pending = vm.TypeText(text));
        Interlocked.Add(ref Joined().CharsTyped, text.Length);
        return pending;
    }

    /// <summary>Keystrokes of typed text the guest has not read yet.</summary>
    public int TypingPending() => Joined().Vm.TypedPending;

    /// <summary>Drops the typed text the guest has not read yet; returns how many keystrokes were dropped.</summary>
    [Authorize]
    public int CancelTyping()
    {
        var (vm, _) = Input();
        return vm.CancelTyping();
    }

    /// <summary>"ctrl-alt-del", "ctrl-alt-f2", "alt-sysrq-s", "printscreen", …</summary>
    [Authorize]
    public void SpecialKeys(string? combo)
    {
        var (vm, _) = Input();
        if (string.IsNullOrEmpty(combo)) throw new HubException("A key combination such as ctrl-alt-del is required.");
        Checked(() => vm.SpecialKeys(combo));
        Interlocked.Increment(ref Joined().SpecialKeys);
    }

    /// <summary>
    /// Relative motion for the VM's PS/2 mouse (dx right, dy down; at most ±4096 per call) with the buttons held
    /// (bit 0 left, 1 right, 2 middle, 3 back, 4 forward).
    /// </summary>
    [Authorize]
    public void Mouse(int dx, int dy, int buttons)
    {
        var (vm, _) = Input();
        Checked(() => vm.Mouse(dx, dy, buttons));
    }

    /// <summary>Wheel steps (positive = down, towards the user) with the buttons held; the guest sees them once its driver enabled the wheel.</summary>
    [Authorize]
    public void MouseWheel(int steps, int buttons)
    {
        var (vm, _) = Input();
        Checked(() => vm.Mouse(0, 0, buttons, steps));
    }

    /// <summary>Asks for a full frame next (after a canvas reset); needs a joined viewer.</summary>
    public void RequestFullFrame() => Joined().Viewer.RequestFullFrame();

    [Authorize]
    public void SerialInput(byte[]? bytes)
    {
        var (vm, _) = Input();
        if (bytes is null || bytes.Length is 0 or > MaxSerialInput)
            throw new HubException($"Serial input must be 1 to {MaxSerialInput} bytes per call.");
        Checked(() => vm.SerialInput(bytes));
        Interlocked.Add(ref Joined().SerialBytes, bytes.Length);
    }

    /// <summary>
    /// start, shutdown (presses the ACPI power button and returns at once with Stopping; the outcome arrives as
    /// <c>PowerState</c>: Stopped, or Running with "the guest did not shut down within 60 s" after the timeout),
    /// poweroff, reset, pause, resume.
    /// </summary>
    [Authorize]
    public async Task<VmRunState> Power(string? action)
    {
        var c = connections.Get(Context.ConnectionId) ?? throw new HubException("Join a console first.");
        if (c.Viewer.ReadOnly) throw new HubException(ViewOnly);
        var vm = c.Vm;
        string? failure = null;
        try
        {
            switch (action)
            {
                case "start":
                    var def = await runtime.FindAsync(Caller.From(Context.User), vm.Id) ?? throw new HubException(Refused);
                    await runtime.StartAsync(def);
                    break;
                case "shutdown": await vm.BeginShutdownAsync(HostedVm.DefaultShutdownTimeout); break;
                case "poweroff": await vm.PowerOffAsync(); break;
                case "reset": await vm.ResetAsync(); break;
                case "pause": await vm.PauseAsync(); break;
                case "resume": await vm.ResumeAsync(); break;
                case "ctrl-alt-del": vm.SpecialKeys("ctrl-alt-del"); break;
                default: throw new HubException($"Unknown power action '{Shorten(action)}'. Use start, shutdown, poweroff, reset, pause, resume or ctrl-alt-del.");
            }
        }
        catch (VmLifecycleException e) { failure = e.Message; throw new HubException(e.Message); }
        catch (VmHostException e) { failure = e.Message; throw new HubException(e.Message); }
        catch (Core.Quotas.QuotaExceededException e) { failure = e.Message; throw new HubException(e.Message); }
        catch (HubException e) { failure = e.Message; throw; }
        finally
        {
            await runtime.SyncAsync(vm.Id);
            var who = Caller.From(Context.User);
            await audit.WriteAsync(who?.UserId, who?.UserName ?? "anonymous",
                VmPortal.Core.Audit.AuditActions.VmPower(Shorten(action).Replace("…", "")), "vm", vm.Id.ToString(),
                $"console from {Context.GetHttpContext()?.Connection.RemoteIpAddress}{(failure is null ? "" : "; refused: " + failure)}",
                failure is null);
        }
        return vm.State;
    }

    /// <summary>The text-mode screen as plain text (null in graphics modes or when stopped); view-only viewers may read it.</summary>
    public string? GetScreenText() => Joined().Vm.ScreenText();

    public long Ping() => Environment.TickCount64;

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (connections.Stop(Context.ConnectionId) is { } c && !c.Viewer.ReadOnly)
        {
            if (c.KeyEvents + c.CharsTyped + c.SpecialKeys + c.SerialBytes > 0)
            {
                var who = Caller.From(Context.User);
                await audit.WriteAsync(who?.UserId, who?.UserName ?? "anonymous", VmPortal.Core.Audit.AuditActions.ConsoleInput, "vm",
                    c.Vm.Id.ToString(),
                    $"{c.KeyEvents} key presses, {c.CharsTyped} characters typed, {c.SpecialKeys} key combinations, {c.SerialBytes} serial bytes; " +
                    $"console from {Context.GetHttpContext()?.Connection.RemoteIpAddress}");
            }
            foreach (var a in c.Viewer.HeldKeys.ReleaseAll())
            {
                try { c.Vm.Key(a.Code, false); }
                catch (Exception e) when (e is VmLifecycleException or ConsoleInputException) { log.LogDebug("release of {Code} dropped: {Message}", a.Code, e.Message); }
            }
        }
    }

    private static string Shorten(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "…" : s;

    private ConsoleConnections.Connection Joined() =>
        connections.Get(Context.ConnectionId) ?? throw new HubException("Join a console first.");

    private (HostedVm Vm, ConsoleViewer Viewer) Input()
    {
        var c = Joined();
        if (c.Viewer.ReadOnly) throw new HubException(ViewOnly);
        if (c.Vm.State != VmRunState.Running) throw new HubException($"The VM is {c.Vm.State.ToString().ToLowerInvariant()}.");
        return (c.Vm, c.Viewer);
    }

    /// <summary>Input errors go back to the caller as HubException (SignalR hides other exception messages).</summary>
    private static void Checked(Action f)
    {
        try { f(); }
        catch (ConsoleInputException e) { throw new HubException(e.Message); }
        catch (VmLifecycleException e) { throw new HubException(e.Message); }
        catch (TypeQueueFullException e) { throw new HubException(e.Message); }
    }

    private static T Checked<T>(Func<T> f)
    {
        try { return f(); }
        catch (ConsoleInputException e) { throw new HubException(e.Message); }
    }
}

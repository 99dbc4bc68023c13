using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using VmPortal.Core.Console;

namespace VmPortal.Benchmarks.Console.DemoHost;

/// <summary>What <c>JoinConsole</c> answers.</summary>
public sealed record JoinResult(string VmId, bool ReadOnly, VmRunState State, int Width, int Height);

/// <summary>
/// Reference console hub (the portal's ConsoleHub follows the same shape; docs/console.md). One
/// <see cref="ConsoleViewer"/> per connection, pumped to that connection by <see cref="ViewerPumps"/>; input goes
/// through <see cref="KeyboardMap"/>/<see cref="KeyInput"/> to the machine as set-1 scancodes. Here every VM id maps
/// to the one fake guest; share token "view" joins read-only, anything else is refused except none.
/// </summary>
public sealed class ConsoleHub(FakeGuest guest, ViewerPumps pumps) : Hub
{
    /// <summary>Typing speed of TypeText: one key action every 2 ms, like a fast typist the guest can follow.</summary>
    private static readonly TimeSpan KeyInterval = TimeSpan.FromMilliseconds(2);

    public JoinResult JoinConsole(string vmId, string? shareToken)
    {
        // The portal checks here: owner, admin, or a valid unexpired share token (view-only) — else HubException.
        bool readOnly = shareToken switch
        {
            null or "" => false,
            "view" => true,
            _ => throw new HubException("This share link is not valid (revoked or expired)."),
        };
        var viewer = guest.Stream.AddViewer(readOnly);
        pumps.Start(Context.ConnectionId, viewer);
        return new JoinResult(vmId, readOnly, guest.Lifecycle.State, TextScreen.Width, TextScreen.Height);
    }

    public void Key(string code, bool down)
    {
        var v = Input();
        var action = new KeyAction(code, down);
        var bytes = Checked(() => KeyboardMap.Bytes(code, down, ScancodeSet.Set1)); // unknown code → error to caller
        if (!v.HeldKeys.Apply(action)) return;                         // release of a key not held: dropped
        guest.SendScancodes(bytes);
    }

    public async Task TypeText(string text)
    {
        Input();
        var actions = Checked(() => KeyInput.TextToKeystrokes(text));
        foreach (var a in actions)
        {
            guest.SendScancodes(KeyboardMap.Bytes(a.Code, a.Down, ScancodeSet.Set1));
            if (!a.Down) await Task.Delay(KeyInterval, Context.ConnectionAborted);
        }
    }

    public void SpecialKeys(string name)
    {
        Input();
        guest.SendScancodes(Checked(() => KeyboardMap.Bytes(KeyInput.Combo(name), ScancodeSet.Set1)));
    }

    public void Mouse(int dx, int dy, int buttons) => Input(); // the fake guest has no mouse

    public void RequestFullFrame() => pumps.Get(Context.ConnectionId)?.RequestFullFrame();

    public void SerialInput(byte[] bytes)
    {
        Input();
        if (bytes.Length > 4096) throw new HubException("Serial input is limited to 4096 bytes per call.");
        guest.SerialInput(bytes);
    }

    public void Power(string action)
    {
        var v = pumps.Get(Context.ConnectionId) ?? throw new HubException("Join a console first.");
        if (v.ReadOnly) throw new HubException("This console is view-only.");
        var t = action switch
        {
            "start" => VmTransition.Start, "shutdown" => VmTransition.Shutdown, "poweroff" => VmTransition.PowerOff,
            "reset" => VmTransition.Reset, "pause" => VmTransition.Pause, "resume" => VmTransition.Resume,
            _ => throw new HubException($"Unknown power action '{action}'."),
        };
        try
        {
            var s = guest.Lifecycle.Apply(t);
            if (s == VmRunState.Starting) s = guest.Lifecycle.Apply(VmTransition.Started);
            if (s == VmRunState.Stopping) s = guest.Lifecycle.Apply(VmTransition.Stopped);
            guest.Stream.PublishPowerState(s);
        }
        catch (VmLifecycleException e) { throw new HubException(e.Message); }
    }

    public string GetScreenText() => guest.ScreenText();

    public long Ping() => Environment.TickCount64;

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        if (pumps.Stop(Context.ConnectionId) is { } v && !v.ReadOnly)
            foreach (var a in v.HeldKeys.ReleaseAll()) guest.SendScancodes(KeyboardMap.Bytes(a.Code, false, ScancodeSet.Set1));
        return Task.CompletedTask;
    }

    /// <summary>Input errors go back to the caller as HubException (other exceptions are hidden by SignalR).</summary>
    private static T Checked<T>(Func<T> f)
    {
        try { return f(); }
        catch (ConsoleInputException e) { throw new HubException(e.Message); }
    }

    /// <summary>The caller's viewer if it may send input; otherwise a HubException the client shows.</summary>
    private ConsoleViewer Input()
    {
        var v = pumps.Get(Context.ConnectionId) ?? throw new HubException("Join a console first.");
        if (v.ReadOnly) throw new HubException("This console is view-only.");
        if (guest.Lifecycle.State != VmRunState.Running) throw new HubException($"The VM is {guest.Lifecycle.State.ToString().ToLowerInvariant()}.");
        return v;
    }
}

/// <summary>
/// Copies each viewer's messages to its connection (one task per connection). A slow connection makes SendAsync
/// slow, so its viewer merges frames meanwhile; nothing else waits.
/// </summary>
public sealed class ViewerPumps(IHubContext<ConsoleHub> hub, ILogger<ViewerPumps> log)
{
    private readonly ConcurrentDictionary<string, (ConsoleViewer Viewer, Task Pump)> pumps = new();

    public void Start(string connectionId, ConsoleViewer viewer)
    {
        Stop(connectionId)?.Dispose();
        var task = Task.Run(async () =>
        {
            var client = hub.Clients.Client(connectionId);
            try
            {
                await foreach (var m in viewer.Reader.ReadAllAsync())
                    await client.SendAsync(m.Method, m.Payload);
            }
            catch (Exception e) { log.LogDebug(e, "console pump for {Connection} ended", connectionId); }
        });
        pumps[connectionId] = (viewer, task);
    }

    public ConsoleViewer? Get(string connectionId) => pumps.TryGetValue(connectionId, out var p) ? p.Viewer : null;

    public ConsoleViewer? Stop(string connectionId)
    {
        if (!pumps.TryRemove(connectionId, out var p)) return null;
        p.Viewer.Dispose(); // completes the reader, ending the pump
        return p.Viewer;
    }
}

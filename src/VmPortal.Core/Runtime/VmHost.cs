using System.Collections.Concurrent;
using VmPortal.Core.Console;
using VmPortal.Emulator;

namespace VmPortal.Core.Runtime;

/// <summary>Limits of a <see cref="VmHost"/>.</summary>
public sealed record VmHostOptions
{
    /// <summary>Guest memory this host may hand out in total; a start beyond it is refused.</summary>
    public long CapacityMiB { get; init; } = 4096;
    /// <summary>Console frame ticks per second.</summary>
    public double FrameRate { get; init; } = 30;
    /// <summary>Delay of the early frame tick after keyboard input (so the echo is on the next frame).</summary>
    public TimeSpan KickDelay { get; init; } = TimeSpan.FromMilliseconds(2);
}

/// <summary>How a shutdown (<see cref="HostedVm.ShutdownAsync"/>) ended.</summary>
public enum ShutdownOutcome
{
    /// <summary>The guest powered the machine off (or it was powered off meanwhile): the VM is Stopped.</summary>
    Stopped,
    /// <summary>The guest was still running when the time ran out: the VM is Running again.</summary>
    TimedOut,
}

/// <summary>A start the host refuses (not enough memory left, already running). The message is meant for the user.</summary>
public sealed class VmHostException(string message) : InvalidOperationException(message);

/// <summary>Typed text that does not fit in the VM's queue (<see cref="HostedVm.MaxTypedPending"/>).</summary>
public sealed class TypeQueueFullException(int pending, int requested, int capacity)
    : InvalidOperationException($"The VM's typing queue is full: {pending} keystrokes are still pending, {requested} more do not fit " +
                                $"(at most {capacity}). Wait for the guest to read them, or cancel with DELETE …/console/type.")
{
    public int Pending { get; } = pending;
    public int Capacity { get; } = capacity;
}

/// <summary>
/// Runs the machines of this host, each on its own thread (<see cref="Machine"/>), and keeps one
/// <see cref="HostedVm"/> per VM id: its run state (<see cref="VmLifecycle"/>), its console stream (which lives across
/// restarts, so viewers stay attached) and its frame ticker while it runs. Memory of every running VM counts against
/// <see cref="VmHostOptions.CapacityMiB"/>. Thread-safe.
/// </summary>
public sealed class VmHost : IDisposable
{
    private readonly ConcurrentDictionary<Guid, HostedVm> vms = new();
    private readonly object capacityGate = new();
    private long reservedMiB;
    private bool disposed;

    public VmHost(VmHostOptions? options = null) => Options = options ?? new VmHostOptions();

    public VmHostOptions Options { get; }
    /// <summary>Memory of the VMs that are starting, running, paused or stopping.</summary>
    public long ReservedMiB => Interlocked.Read(ref reservedMiB);
    public long FreeMiB => Options.CapacityMiB - ReservedMiB;

    /// <summary>Raised after every state change of any VM (from the thread that caused it).</summary>
    public event Action<HostedVm, VmRunState, string?>? StateChanged;

    /// <summary>The VM's host-side object (created on first use; Stopped until started).</summary>
    public HostedVm Get(Guid id)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return vms.GetOrAdd(id, i => new HostedVm(this, i));
    }

    public bool TryFind(Guid id, out HostedVm vm) => vms.TryGetValue(id, out vm!);

    public IReadOnlyCollection<HostedVm> All => vms.Values.ToArray();

    /// <summary>
    /// Forgets a deleted VM: powers its machine off (if any), ends its console (viewers' streams complete), releases its
    /// memory and drops it from the host. False when the host never had it.
    /// </summary>
    public async Task<bool> RemoveAsync(Guid id)
    {
        if (!vms.TryRemove(id, out var vm)) return false;
        await Task.Run(vm.Dispose); // waits for the machine thread to end (bounded)
        return true;
    }

    /// <summary>Starts a machine from <paramref name="config"/>; see <see cref="HostedVm.StartAsync"/>.</summary>
    public Task StartAsync(Guid id, MachineConfig config) => Get(id).StartAsync(config);

    internal void Reserve(MachineConfig config)
    {
        lock (capacityGate)
        {
            long free = Options.CapacityMiB - reservedMiB;
            if (config.MemoryMiB > free)
                throw new VmHostException(
                    $"Cannot start '{config.Name}': it needs {config.MemoryMiB} MiB of memory but only {Math.Max(0, free)} MiB " +
                    $"of this host's {Options.CapacityMiB} MiB are free.");
            reservedMiB += config.MemoryMiB;
        }
    }

    internal void Release(int memoryMiB)
    {
        lock (capacityGate) reservedMiB -= memoryMiB;
    }

    internal void OnStateChanged(HostedVm vm, VmRunState state, string? reason) => StateChanged?.Invoke(vm, state, reason);

    /// <summary>True once <see cref="Dispose"/> began (the portal is shutting down): VMs leave the host without being deleted.</summary>
    public bool IsDisposed => Volatile.Read(ref disposed);

    /// <summary>Powers off every machine and ends every console.</summary>
    public void Dispose()
    {
        if (disposed) return;
        Volatile.Write(ref disposed, true);
        foreach (var vm in vms.Values) vm.Dispose();
        vms.Clear();
    }
}

/// <summary>
/// One VM on the host: commands (start, pause, resume, reset, power off, keys, text, serial) checked against its
/// <see cref="Lifecycle"/>, and its <see cref="Console"/>. Commands that the state forbids throw
/// <see cref="VmLifecycleException"/>; bad input throws <see cref="ConsoleInputException"/>.
/// </summary>
public sealed class HostedVm : IDisposable
{
    private readonly VmHost host;
    private readonly SemaphoreSlim commandGate = new(1, 1);
    private readonly object machineGate = new();
    private Machine? machine;
    private ConsoleTicker? ticker;
    private int reservedMiB;
    private TimeSpan shutdownTimeout;

    internal HostedVm(VmHost host, Guid id)
    {
        this.host = host;
        Id = id;
        Lifecycle.Changed += (_, old, now) =>
        {
            // The reason shown beside the state: why it crashed, why it stopped, or that a shutdown ran out of time.
            string? reason = now switch
            {
                VmRunState.Crashed => Lifecycle.CrashReason,
                VmRunState.Stopped => Lifecycle.StopReason,
                VmRunState.Running when old == VmRunState.Stopping =>
                    $"the guest did not shut down within {shutdownTimeout.TotalSeconds:0} s; Power off pulls the plug",
                _ => null,
            };
            Console.PublishPowerState(now, reason);
            host.OnStateChanged(this, now, reason);
        };
        // Nobody watching: the screen is refreshed once a second only (a new viewer gets it fresh at once).
        Console.ViewersChanged += _ =>
        {
            lock (machineGate) ticker?.Idle = Console.ViewerCount == 0;
        };
    }

    public Guid Id { get; }
    public VmLifecycle Lifecycle { get; } = new();
    public VmRunState State => Lifecycle.State;
    /// <summary>The console of this VM; lives across restarts.</summary>
    public ConsoleStream Console { get; } = new();
    /// <summary>The guest's serial output (last 256 Ki characters), kept across restarts until the next start.</summary>
    public SerialLog SerialLog { get; } = new();
    /// <summary>The running machine, or null when stopped or crashed.</summary>
    public Machine? Machine { get { lock (machineGate) return machine; } }

    /// <summary>
    /// Builds and starts a machine. Refused when the VM is not stopped/crashed (<see cref="VmLifecycleException"/>)
    /// or the host lacks memory (<see cref="VmHostException"/>). Completes when the firmware runs; a machine that
    /// fails to build ends Crashed with the reason.
    /// </summary>
    public async Task StartAsync(MachineConfig config, VmPortal.Emulator.Snapshots.MachineSnapshot? state = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        await commandGate.WaitAsync();
        try
        {
            var before = Lifecycle.State;
            VmLifecycle.Next(before, VmTransition.Start); // throws if not startable
            var problems = config.Validate();
            if (problems.Count > 0) throw new VmHostException($"Cannot start '{config.Name}': {string.Join("; ", problems)}.");
            host.Reserve(config);
            Machine m;
            try
            {
                m = new Machine(config);
            }
            catch
            {
                host.Release(config.MemoryMiB);
                throw;
            }
            lock (machineGate) { machine = m; reservedMiB = config.MemoryMiB; }
            SerialLog.Clear();
            m.SerialOutput += bytes => { SerialLog.Append(bytes); Console.PublishSerial(bytes); };
            m.Crashed += reason => Ended(m, reason);
            m.PoweredOff += () => Ended(m, null);
            Lifecycle.Apply(VmTransition.Start);
            if (state is null) await m.Start();
            else
            {
                // continue a saved machine (resume from suspend, revert to a snapshot with memory)
                try
                {
                    await m.LoadState(state);
                    await m.Resume();
                }
                catch
                {
                    lock (machineGate) { if (machine == m) { machine = null; reservedMiB = 0; } }
                    host.Release(config.MemoryMiB);
                    m.Dispose();
                    Lifecycle.TryApply(VmTransition.PowerOff);
                    if (before == VmRunState.Suspended) Lifecycle.TryApply(VmTransition.Suspend);
                    throw;
                }
            }
            if (m.State == MachineState.Running)
            {
                Lifecycle.TryApply(VmTransition.Started);
                var period = TimeSpan.FromSeconds(1 / Math.Clamp(host.Options.FrameRate, 1, 120));
                var t = new ConsoleTicker(() => Tick(m), period, host.Options.KickDelay, name: $"console:{config.Name}");
                lock (machineGate)
                {
                    if (machine == m) { ticker = t; t.Idle = Console.ViewerCount == 0; }
                    else t.Dispose();
                }
            }
            else if (m.State == MachineState.Crashed)
            {
                Ended(m, m.CrashReason ?? "the machine failed to start");
            }
        }
        finally
        {
            commandGate.Release();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> with the VM's machine while no other command runs (snapshots: the disks are
    /// swapped and the state captured or loaded in between). Refused unless running or paused.
    /// </summary>
    public async Task<T> WithMachineAsync<T>(Func<Machine, Task<T>> work)
    {
        await commandGate.WaitAsync();
        try
        {
            if (Lifecycle.State is not (VmRunState.Running or VmRunState.Paused) || Machine is not { } m)
                throw new VmLifecycleException(Lifecycle.State, VmTransition.Pause,
                    $"The VM is {Lifecycle.State.ToString().ToLowerInvariant()}; this needs a running or paused VM.");
            return await work(m);
        }
        finally
        {
            commandGate.Release();
        }
    }

    /// <summary>
    /// Suspends to disk: pauses the machine, lets <paramref name="save"/> write its state, powers it off (freeing its
    /// memory) and marks the VM <see cref="VmRunState.Suspended"/>. If the save fails the VM runs on as before.
    /// </summary>
    public async Task SuspendAsync(Func<Machine, Task> save)
    {
        await commandGate.WaitAsync();
        try
        {
            var m = Machine;
            if (Lifecycle.State is not (VmRunState.Running or VmRunState.Paused) || m is null)
                throw new VmLifecycleException(Lifecycle.State, VmTransition.Suspend,
                    $"Cannot suspend a VM that is {Lifecycle.State.ToString().ToLowerInvariant()}; allowed when running or paused.");
            bool wasRunning = Lifecycle.State == VmRunState.Running;
            await m.Pause();
            try { await save(m); }
            catch
            {
                if (wasRunning) await m.Resume();
                throw;
            }
            await m.PowerOff();
            Ended(m, null);
            Lifecycle.Apply(VmTransition.Suspend);
        }
        finally
        {
            commandGate.Release();
        }
    }

    /// <summary>After a portal restart: this stopped VM has a saved state on disk (its next start resumes it).</summary>
    public void MarkSuspended()
    {
        if (Lifecycle.State == VmRunState.Stopped) Lifecycle.TryApply(VmTransition.Suspend);
    }

    public Task PauseAsync() => Command(VmTransition.Pause, m => m.Pause());
    public Task ResumeAsync() => Command(VmTransition.Resume, m => m.Resume());
    public Task ResetAsync() => Command(VmTransition.Reset, m => m.Reset());

    /// <summary>Shortest and longest wait of <see cref="ShutdownAsync"/>.</summary>
    public static readonly TimeSpan MinShutdownTimeout = TimeSpan.FromSeconds(1), MaxShutdownTimeout = TimeSpan.FromHours(1);
    /// <summary>The wait of a shutdown when the caller names none.</summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Presses the ACPI power button and waits up to <paramref name="timeout"/> for the guest to power the machine
    /// off; see <see cref="BeginShutdownAsync"/>. Cancelling <paramref name="ct"/> only stops the waiting: the shutdown
    /// runs its course.
    /// </summary>
    public async Task<ShutdownOutcome> ShutdownAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        var outcome = await BeginShutdownAsync(timeout);
        return await outcome.WaitAsync(ct);
    }

    /// <summary>
    /// Presses the ACPI power button (a paused VM is resumed first, so its guest can hear it) and returns, once
    /// pressed, a task for the outcome: <see cref="ShutdownOutcome.Stopped"/> when the guest powered the machine off
    /// (or it was powered off meanwhile), <see cref="ShutdownOutcome.TimedOut"/> when it still ran after
    /// <paramref name="timeout"/> (1 s – 1 h). State: Stopping while waiting, then Stopped, or Running again after a
    /// timeout (<see cref="PowerOffAsync"/> then pulls the plug; it may also run while the shutdown waits). Refused
    /// unless running or paused (<see cref="VmLifecycleException"/>).
    /// </summary>
    public async Task<Task<ShutdownOutcome>> BeginShutdownAsync(TimeSpan timeout)
    {
        if (timeout < MinShutdownTimeout || timeout > MaxShutdownTimeout)
            throw new ArgumentOutOfRangeException(nameof(timeout), $"A shutdown waits {MinShutdownTimeout.TotalSeconds:0}–{MaxShutdownTimeout.TotalSeconds:0} s.");
        Machine m;
        await commandGate.WaitAsync();
        try
        {
            VmLifecycle.Next(Lifecycle.State, VmTransition.Shutdown);
            m = Machine ?? throw new VmLifecycleException(Lifecycle.State, VmTransition.Shutdown, "The VM has no running machine.");
            if (Lifecycle.State == VmRunState.Paused) await m.Resume();
            shutdownTimeout = timeout;
            Lifecycle.Apply(VmTransition.Shutdown);
            m.PressPowerButton();
        }
        finally
        {
            commandGate.Release();
        }
        return AwaitShutdownAsync(m, timeout);
    }

    private async Task<ShutdownOutcome> AwaitShutdownAsync(Machine m, TimeSpan timeout)
    {
        try
        {
            await m.Stopped.WaitAsync(timeout);
            return ShutdownOutcome.Stopped;
        }
        catch (TimeoutException)
        {
            await commandGate.WaitAsync();
            try
            {
                if (Machine == m && Lifecycle.State == VmRunState.Stopping) Lifecycle.TryApply(VmTransition.ShutdownTimedOut);
            }
            finally
            {
                commandGate.Release();
            }
            return m.Stopped.IsCompleted ? ShutdownOutcome.Stopped : ShutdownOutcome.TimedOut;
        }
    }

    /// <summary>Whether the running guest enabled the ACPI power button (an ACPI OS); false when not running.</summary>
    public bool GuestHandlesPowerButton => Machine?.GuestHandlesPowerButton ?? false;

    /// <summary>
    /// Pulls the plug; completes when the machine thread has ended. Also clears a crash. <paramref name="reason"/>
    /// becomes the stop reason (default <see cref="PortalPoweredOffReason"/>).
    /// </summary>
    public Task PowerOffAsync(string? reason = null) => PowerOffCoreAsync(reason, onlyWithMachine: false);

    /// <summary>
    /// Pulls the plug if the VM still has a machine when its turn comes (checked under the command gate): a VM that
    /// was suspended, stopped or crashed meanwhile is left as it is. False when there was no machine.
    /// </summary>
    public Task<bool> PowerOffIfRunningAsync(string reason) => PowerOffCoreAsync(reason, onlyWithMachine: true);

    private async Task<bool> PowerOffCoreAsync(string? reason, bool onlyWithMachine)
    {
        await commandGate.WaitAsync();
        try
        {
            if (onlyWithMachine && Machine is null) return false;
            VmLifecycle.Next(Lifecycle.State, VmTransition.PowerOff);
            powerOffReason = reason;
            var m = Machine;
            if (m is not null) await m.PowerOff();
            Ended(m, null); // idempotent when the PoweredOff event already did it
            powerOffReason = null; // not used when there was no machine to end
            if (Lifecycle.State is VmRunState.Crashed or VmRunState.Suspended) Lifecycle.TryApply(VmTransition.PowerOff);
            return true;
        }
        finally
        {
            commandGate.Release();
        }
    }

    /// <summary>One physical key (browser <c>KeyboardEvent.code</c>) down or up.</summary>
    public void Key(string code, bool down)
    {
        var codes = KeyboardMap.Set2Codes(code, down); // validates first
        var m = RunningMachine("send keys to");
        foreach (var c in codes) m.SendKey(c, down);
        KickTicker();
    }

    /// <summary>Key actions in order (from <see cref="KeyInput.TextToKeystrokes"/> or <see cref="KeyInput.Combo(string)"/>).</summary>
    public void Keys(IReadOnlyList<KeyAction> actions)
    {
        var events = new List<(ushort, bool)>(actions.Count);
        foreach (var a in actions)
            foreach (var c in KeyboardMap.Set2Codes(a.Code, a.Down)) events.Add((c, a.Down));
        var m = RunningMachine("send keys to");
        foreach (var (c, d) in events) m.SendKey(c, d);
        KickTicker();
    }

    /// <summary>
    /// Most keystrokes of typed text one VM queues (64 Ki: one maximal <c>console/type</c> call; a guest reads about
    /// 1,500 a second, so a full queue drains in under a minute).
    /// </summary>
    public const int MaxTypedPending = KeyInput.MaxTextLength;

    /// <summary>
    /// Types text on a US layout: queued per VM and fed as the guest reads it; single keys (<see cref="Key"/>,
    /// <see cref="Keys"/>) go ahead of it. Returns the keystrokes now pending.
    /// </summary>
    /// <exception cref="TypeQueueFullException">the text does not fit beside what is still pending.</exception>
    public int TypeText(string text)
    {
        var actions = KeyInput.TextToKeystrokes(text); // validates first
        var events = new List<Emulator.KeyEvent>(actions.Count);
        foreach (var a in actions)
            foreach (var c in KeyboardMap.Set2Codes(a.Code, a.Down)) events.Add(new Emulator.KeyEvent(c, a.Down));
        var m = RunningMachine("type into");
        lock (typeGate) // the check and the enqueue together, so concurrent callers cannot overshoot the bound
        {
            int pending = m.TypedKeystrokesPending, strokes = CountKeystrokes(text);
            if (pending + strokes > MaxTypedPending)
                throw new TypeQueueFullException(pending, strokes, MaxTypedPending);
            m.EnqueueTyped(events);
        }
        KickTicker();
        return m.TypedKeystrokesPending;
    }

    private readonly object typeGate = new();

    private static int CountKeystrokes(string text)
    {
        int n = 0;
        for (int i = 0; i < text.Length; i++)
            if (!(text[i] == '\n' && i > 0 && text[i - 1] == '\r')) n++;
        return n;
    }

    /// <summary>Keystrokes of typed text the guest has not read yet (0 when not running).</summary>
    public int TypedPending => Machine?.TypedKeystrokesPending ?? 0;

    /// <summary>Drops the typed text still pending (the keystroke in progress finishes); returns how many keystrokes were dropped.</summary>
    public int CancelTyping() => Machine?.ClearTypedText() ?? 0;

    /// <summary>"ctrl-alt-del", "ctrl-alt-f2", "alt-sysrq-s", …</summary>
    public void SpecialKeys(string combo) => Keys(KeyInput.Combo(combo));

    /// <summary>
    /// Relative mouse motion (dx right, dy down, clamped to ±4096 per call), the buttons held (bit 0 left, 1 right,
    /// 2 middle, 3 back, 4 forward) and wheel steps (positive = down) for the PS/2 mouse. Thread-safe.
    /// </summary>
    public void Mouse(int dx, int dy, int buttons, int wheel = 0)
    {
        if (buttons is < 0 or > 0x1F) throw new ConsoleInputException("Mouse buttons must be a bit mask of 0 to 31.");
        RunningMachine("send mouse input to").SendMouse(dx, dy, buttons, wheel);
        KickTicker();
    }

    /// <summary>Mouse events this VM's running machine received (0 when stopped).</summary>
    public long MouseEvents => Machine?.MouseEvents ?? 0;

    public void SerialInput(ReadOnlySpan<byte> bytes) => RunningMachine("send serial input to").SendSerial(bytes);

    /// <summary>Plugs the running machine's network cable in or pulls it (the guest sees the link change); 409-worthy when not running.</summary>
    public void SetNicLink(bool up)
    {
        var m = RunningMachine("change the network link of");
        if (m.Config.Nic is null) throw new VmHostException("The VM has no network card.");
        m.SetNicLink(up);
    }

    /// <summary>Whether the running machine's network link is up (null when it is not running or has no card).</summary>
    public bool? NicLinkUp => Machine is { Config.Nic: not null } m ? m.NicLinkUp : null;

    /// <summary>The text-mode screen (null in graphics modes or when stopped).</summary>
    public string? ScreenText() => Machine?.ReadScreenText();

    /// <summary>Waits for <paramref name="pattern"/> on the screen text or the serial output (<c>console/wait</c>).</summary>
    public Task<WaitResult> WaitForAsync(string pattern, WaitSource source, TimeSpan timeout, CancellationToken ct = default)
    {
        var regex = ConsoleWaiter.Parse(pattern);
        Func<string?> read = source == WaitSource.Serial ? () => SerialLog.Text : ScreenText;
        return ConsoleWaiter.WaitAsync(read, regex, timeout, ct);
    }

    private async Task Command(VmTransition t, Func<Machine, Task> action)
    {
        await commandGate.WaitAsync();
        try
        {
            VmLifecycle.Next(Lifecycle.State, t);
            var m = Machine ?? throw new VmLifecycleException(Lifecycle.State, t, "The VM has no running machine.");
            await action(m);
            Lifecycle.TryApply(t);
        }
        finally
        {
            commandGate.Release();
        }
    }

    private Machine RunningMachine(string what)
    {
        var m = Machine;
        if (m is null || Lifecycle.State != VmRunState.Running)
            throw new VmLifecycleException(Lifecycle.State, VmTransition.Resume,
                $"Cannot {what} a VM that is {Lifecycle.State.ToString().ToLowerInvariant()}.");
        return m;
    }

    private void KickTicker()
    {
        ConsoleTicker? t;
        lock (machineGate) t = ticker;
        t?.Kick();
    }

    private readonly object tickGate = new();
    private object? submittedScreen; // the Screen object last submitted from (a reset builds a new one)

    /// <summary>One frame tick (ticker thread): refresh the VGA picture and submit it when it changed.</summary>
    private void Tick(Machine m)
    {
        lock (tickGate)
        {
            var screen = m.Screen;
            if (screen is null) return;
            bool changed = screen.Refresh();
            if (!changed && ReferenceEquals(screen, submittedScreen)) return;
            if (screen.Width <= 0 || screen.Height <= 0) return;
            submittedScreen = screen;
            // The VGA's pixels are R | G<<8 | B<<16 | A<<24.
            Console.SubmitFrame(screen.Pixels, screen.Width, screen.Height, PixelFormat.Abgr32);
        }
    }

    /// <summary>
    /// Refreshes the screen and submits it to the console now (any thread). Called before a viewer joins: without
    /// viewers the ticker refreshes only once a second.
    /// </summary>
    public void RefreshConsole()
    {
        if (Machine is not { } m) return;
        // Like a tick that fails on the ticker thread: a screen the console cannot take (a guest's unusable video
        // mode) must not keep a viewer out; the viewer then starts from the last frame that could be encoded.
        try { Tick(m); }
        catch (ArgumentException) { }
    }

    /// <summary>The current screen as a PNG (null when nothing is displayed), for <c>console/screenshot</c>.</summary>
    public byte[]? Screenshot()
    {
        var m = Machine;
        if (m?.Screen is not { } screen) return null;
        lock (tickGate) // Refresh has one consumer at a time: the ticker or this
        {
            screen.Refresh();
            if (screen.Width <= 0 || screen.Height <= 0) return null;
            return PngWriter.Encode(screen.Pixels, screen.Width, screen.Height, PixelFormat.Abgr32);
        }
    }

    /// <summary>The machine ended (powered off, guest off, crash): release memory, stop the ticker, update state.</summary>
    private void Ended(Machine? m, string? crashReason)
    {
        ConsoleTicker? t = null;
        int release = 0;
        lock (machineGate)
        {
            if (m is null || machine != m) return;
            machine = null;
            t = ticker;
            ticker = null;
            release = reservedMiB;
            reservedMiB = 0;
        }
        if (release > 0) host.Release(release);
        // The ticker may be the caller (a tick never ends the machine, but be safe): Dispose does not join itself.
        t?.Dispose();
        if (crashReason is not null) Lifecycle.TryApply(VmTransition.Crash, crashReason);
        else Lifecycle.TryApply(VmTransition.Stopped,
            m.PoweredOffByGuest ? GuestPoweredOffReason : Interlocked.Exchange(ref powerOffReason, null) ?? PortalPoweredOffReason);
        // May run on the machine thread (its PoweredOff/Crashed event): dispose once that thread has finished.
        _ = m.Stopped.ContinueWith(_ => m.Dispose(), TaskScheduler.Default);
    }

    private string? powerOffReason; // set by PowerOffAsync for the Ended it causes

    /// <summary><see cref="VmLifecycle.StopReason"/> when the guest switched the machine off (ACPI S5).</summary>
    public const string GuestPoweredOffReason = "the guest powered off";
    /// <summary><see cref="VmLifecycle.StopReason"/> when the portal pulled the plug.</summary>
    public const string PortalPoweredOffReason = "powered off";

    public void Dispose()
    {
        var m = Machine;
        if (m is not null)
        {
            try { m.PowerOff().Wait(TimeSpan.FromSeconds(10)); } catch (AggregateException) { }
            Ended(m, null);
        }
        Console.Dispose();
        commandGate.Dispose();
    }
}

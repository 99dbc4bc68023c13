namespace VmPortal.Core.Console;

/// <summary>
/// Run state of a VM on its host. Values match <c>VmPortal.Data.Entities.VmState</c> so the two convert by cast.
/// </summary>
public enum VmRunState
{
    Stopped = 0,
    Starting = 1,
    Running = 2,
    Paused = 3,
    Stopping = 4,
    Crashed = 5,
    /// <summary>Suspended to disk: the machine state is in a file, no machine runs; Start resumes it.</summary>
    Suspended = 6,
}

/// <summary>What can happen to a VM: user commands and reports from the running machine.</summary>
public enum VmTransition
{
    /// <summary>User: start a stopped or crashed VM (its machine is being built).</summary>
    Start,
    /// <summary>Machine: the machine thread runs guest code.</summary>
    Started,
    /// <summary>User: stop executing guest code, keep its state.</summary>
    Pause,
    /// <summary>User: continue a paused VM.</summary>
    Resume,
    /// <summary>User: hardware reset; the VM stays running (or paused).</summary>
    Reset,
    /// <summary>User: ask the guest to shut down (the ACPI power button was pressed; a graceful stop in progress).</summary>
    Shutdown,
    /// <summary>Machine: the guest was still running when the shutdown's time ran out; the VM is running again.</summary>
    ShutdownTimedOut,
    /// <summary>User: pull the plug now.</summary>
    PowerOff,
    /// <summary>Machine: the guest turned the machine off, or a shutdown completed.</summary>
    Stopped,
    /// <summary>Machine: emulation failed (triple fault with no reset, internal error); carries a reason.</summary>
    Crash,
    /// <summary>The machine's state was saved to disk and the machine ended (Stopped → Suspended).</summary>
    Suspend,
}

/// <summary>Raised for a transition that the current state forbids. The message is meant for the user.</summary>
public sealed class VmLifecycleException(VmRunState state, VmTransition transition, string message)
    : InvalidOperationException(message)
{
    public VmRunState State { get; } = state;
    public VmTransition Transition { get; } = transition;
}

/// <summary>
/// The run-state machine of one VM: a static transition table (usable by an entity that stores the state) and a
/// small thread-safe instance that holds the state, the crash reason and raises <see cref="Changed"/>.
/// </summary>
public sealed class VmLifecycle
{
    private static readonly Dictionary<(VmRunState, VmTransition), VmRunState> Table = new()
    {
        [(VmRunState.Stopped, VmTransition.Start)] = VmRunState.Starting,
        [(VmRunState.Crashed, VmTransition.Start)] = VmRunState.Starting,
        [(VmRunState.Suspended, VmTransition.Start)] = VmRunState.Starting, // resume from disk
        [(VmRunState.Stopped, VmTransition.Suspend)] = VmRunState.Suspended,

        [(VmRunState.Starting, VmTransition.Started)] = VmRunState.Running,

        [(VmRunState.Running, VmTransition.Pause)] = VmRunState.Paused,
        [(VmRunState.Paused, VmTransition.Resume)] = VmRunState.Running,

        [(VmRunState.Running, VmTransition.Reset)] = VmRunState.Running,
        [(VmRunState.Paused, VmTransition.Reset)] = VmRunState.Paused,

        [(VmRunState.Running, VmTransition.Shutdown)] = VmRunState.Stopping,
        [(VmRunState.Paused, VmTransition.Shutdown)] = VmRunState.Stopping,
        [(VmRunState.Stopping, VmTransition.ShutdownTimedOut)] = VmRunState.Running,

        [(VmRunState.Starting, VmTransition.PowerOff)] = VmRunState.Stopped,
        [(VmRunState.Running, VmTransition.PowerOff)] = VmRunState.Stopped,
        [(VmRunState.Paused, VmTransition.PowerOff)] = VmRunState.Stopped,
        [(VmRunState.Stopping, VmTransition.PowerOff)] = VmRunState.Stopped,
        // Powering off a crashed VM acknowledges the crash: its machine is already gone.
        [(VmRunState.Crashed, VmTransition.PowerOff)] = VmRunState.Stopped,
        // Powering off a suspended VM discards its saved state: the next start boots.
        [(VmRunState.Suspended, VmTransition.PowerOff)] = VmRunState.Stopped,

        [(VmRunState.Starting, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Running, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Paused, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Stopping, VmTransition.Stopped)] = VmRunState.Stopped,

        [(VmRunState.Starting, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Running, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Paused, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Stopping, VmTransition.Crash)] = VmRunState.Crashed,
    };

    private readonly object gate = new();

    public VmLifecycle(VmRunState initial = VmRunState.Stopped, string? crashReason = null)
    {
        State = initial;
        CrashReason = initial == VmRunState.Crashed ? crashReason ?? "unknown" : null;
    }

    /// <summary>The state after <paramref name="transition"/> from <paramref name="from"/>, if allowed.</summary>
    public static bool TryNext(VmRunState from, VmTransition transition, out VmRunState to) =>
        Table.TryGetValue((from, transition), out to);

    /// <summary>The state after <paramref name="transition"/>; throws <see cref="VmLifecycleException"/> if forbidden.</summary>
    public static VmRunState Next(VmRunState from, VmTransition transition)
    {
        if (TryNext(from, transition, out var to)) return to;
        var allowedFrom = Table.Keys.Where(k => k.Item2 == transition).Select(k => k.Item1.ToString()).ToArray();
        throw new VmLifecycleException(from, transition,
            $"Cannot {Verb(transition)} a VM that is {from.ToString().ToLowerInvariant()}; " +
            $"allowed when {string.Join(" or ", allowedFrom).ToLowerInvariant()}.");
    }

    /// <summary>The transitions that <paramref name="state"/> allows (to enable buttons).</summary>
    public static IReadOnlyList<VmTransition> Allowed(VmRunState state) =>
        Table.Keys.Where(k => k.Item1 == state).Select(k => k.Item2).ToArray();

    /// <summary>True when a machine exists for this state (input, screen and serial make sense).</summary>
    public static bool HasMachine(VmRunState state) =>
        state is VmRunState.Starting or VmRunState.Running or VmRunState.Paused or VmRunState.Stopping;

    public VmRunState State { get; private set; }

    /// <summary>Why the VM crashed; null unless <see cref="State"/> is Crashed.</summary>
    public string? CrashReason { get; private set; }

    /// <summary>
    /// Why the VM last stopped (e.g. "the guest powered off", "powered off by the user"); null unless
    /// <see cref="State"/> is Stopped after a run.
    /// </summary>
    public string? StopReason { get; private set; }

    /// <summary>Raised after every applied transition (outside the lock), with the old and new state.</summary>
    public event Action<VmLifecycle, VmRunState, VmRunState>? Changed;

    /// <summary>
    /// Applies a transition; <paramref name="reason"/> is required for <see cref="VmTransition.Crash"/> and recorded
    /// as <see cref="StopReason"/> for a transition that ends in Stopped.
    /// </summary>
    public VmRunState Apply(VmTransition transition, string? reason = null)
    {
        VmRunState old, now;
        lock (gate)
        {
            old = State;
            now = Next(old, transition);
            State = now;
            CrashReason = transition == VmTransition.Crash
                ? (string.IsNullOrWhiteSpace(reason) ? "unknown" : reason)
                : null;
            if (now != VmRunState.Stopped) StopReason = null;
            else if (old != VmRunState.Stopped) StopReason = reason;
        }
        Changed?.Invoke(this, old, now);
        return now;
    }

    /// <summary>Like <see cref="Apply"/> but returns false instead of throwing.</summary>
    public bool TryApply(VmTransition transition, string? reason = null)
    {
        try { Apply(transition, reason); return true; }
        catch (VmLifecycleException) { return false; }
    }

    private static string Verb(VmTransition t) => t switch
    {
        VmTransition.Start => "start",
        VmTransition.Started => "mark as running",
        VmTransition.Pause => "pause",
        VmTransition.Resume => "resume",
        VmTransition.Reset => "reset",
        VmTransition.Shutdown => "shut down",
        VmTransition.ShutdownTimedOut => "end the shutdown of",
        VmTransition.PowerOff => "power off",
        VmTransition.Stopped => "mark as stopped",
        VmTransition.Crash => "mark as crashed",
        VmTransition.Suspend => "suspend",
        _ => t.ToString().ToLowerInvariant(),
    };
}

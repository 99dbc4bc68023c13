using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class VmLifecycleTests
{
    // The full table, written out independently of the implementation: (from, transition) → to; absent = illegal.
    private static readonly Dictionary<(VmRunState, VmTransition), VmRunState> Expected = new()
    {
        [(VmRunState.Stopped, VmTransition.Start)] = VmRunState.Starting,
        [(VmRunState.Crashed, VmTransition.Start)] = VmRunState.Starting,
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
        [(VmRunState.Crashed, VmTransition.PowerOff)] = VmRunState.Stopped,
        [(VmRunState.Starting, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Running, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Paused, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Stopping, VmTransition.Stopped)] = VmRunState.Stopped,
        [(VmRunState.Starting, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Running, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Paused, VmTransition.Crash)] = VmRunState.Crashed,
        [(VmRunState.Stopping, VmTransition.Crash)] = VmRunState.Crashed,
        // suspend to disk: the machine ended (Stopped) with its state saved; a start resumes it
        [(VmRunState.Stopped, VmTransition.Suspend)] = VmRunState.Suspended,
        [(VmRunState.Suspended, VmTransition.Start)] = VmRunState.Starting,
        [(VmRunState.Suspended, VmTransition.PowerOff)] = VmRunState.Stopped, // discards the saved state
    };

    public static TheoryData<VmRunState, VmTransition> AllPairs()
    {
        var d = new TheoryData<VmRunState, VmTransition>();
        foreach (var s in Enum.GetValues<VmRunState>())
            foreach (var t in Enum.GetValues<VmTransition>())
                d.Add(s, t);
        return d;
    }

    [Theory]
    [MemberData(nameof(AllPairs))]
    public void Every_state_and_transition_pair_behaves_as_specified(VmRunState from, VmTransition t)
    {
        var lc = new VmLifecycle(from, "before");
        if (Expected.TryGetValue((from, t), out var to))
        {
            Assert.Equal(to, VmLifecycle.Next(from, t));
            Assert.Equal(to, lc.Apply(t, t == VmTransition.Crash ? "triple fault" : null));
            Assert.Equal(to, lc.State);
            Assert.Contains(t, VmLifecycle.Allowed(from));
        }
        else
        {
            var ex = Assert.Throws<VmLifecycleException>(() => lc.Apply(t));
            Assert.Equal(from, ex.State);
            Assert.Equal(t, ex.Transition);
            Assert.Contains(from.ToString().ToLowerInvariant(), ex.Message);
            Assert.Equal(from, lc.State); // unchanged
            Assert.DoesNotContain(t, VmLifecycle.Allowed(from));
            Assert.False(VmLifecycle.TryNext(from, t, out _));
        }
    }

    [Fact]
    public void Illegal_pause_names_the_state_and_the_allowed_one()
    {
        var ex = Assert.Throws<VmLifecycleException>(() => VmLifecycle.Next(VmRunState.Stopped, VmTransition.Pause));
        Assert.Equal("Cannot pause a VM that is stopped; allowed when running.", ex.Message);
    }

    [Fact]
    public void Crash_keeps_a_reason_until_the_vm_starts_again()
    {
        var lc = new VmLifecycle();
        var seen = new List<string>();
        lc.Changed += (_, a, b) => seen.Add($"{a}->{b}");
        lc.Apply(VmTransition.Start);
        lc.Apply(VmTransition.Started);
        lc.Apply(VmTransition.Crash, "triple fault at 0008:c0100000");
        Assert.Equal(VmRunState.Crashed, lc.State);
        Assert.Equal("triple fault at 0008:c0100000", lc.CrashReason);
        lc.Apply(VmTransition.Start);
        Assert.Null(lc.CrashReason);
        Assert.Equal(["Stopped->Starting", "Starting->Running", "Running->Crashed", "Crashed->Starting"], seen);
        Assert.False(lc.TryApply(VmTransition.Resume));
        Assert.Equal(4, seen.Count);
    }

    [Fact]
    public void A_full_life_start_pause_resume_reset_shutdown_stop()
    {
        var lc = new VmLifecycle();
        foreach (var t in new[] { VmTransition.Start, VmTransition.Started, VmTransition.Pause, VmTransition.Reset,
                     VmTransition.Resume, VmTransition.Reset, VmTransition.Shutdown, VmTransition.Stopped })
            lc.Apply(t);
        Assert.Equal(VmRunState.Stopped, lc.State);
    }

    [Fact]
    public void A_stop_records_its_reason_until_the_next_start_and_a_timed_out_shutdown_runs_again()
    {
        var lc = new VmLifecycle();
        lc.Apply(VmTransition.Start);
        lc.Apply(VmTransition.Started);
        lc.Apply(VmTransition.Shutdown);
        Assert.Equal(VmRunState.Stopping, lc.State);
        lc.Apply(VmTransition.ShutdownTimedOut);
        Assert.Equal(VmRunState.Running, lc.State);
        Assert.Null(lc.StopReason);
        lc.Apply(VmTransition.Stopped, "the guest powered off");
        Assert.Equal("the guest powered off", lc.StopReason);
        lc.Apply(VmTransition.Start);
        Assert.Null(lc.StopReason);
    }

    [Fact]
    public void Concurrent_pause_and_resume_never_corrupt_the_state()
    {
        var lc = new VmLifecycle(VmRunState.Running);
        int ok = 0;
        Parallel.For(0, 2000, i =>
        {
            if (lc.TryApply(i % 2 == 0 ? VmTransition.Pause : VmTransition.Resume)) Interlocked.Increment(ref ok);
        });
        // Each success flips the state, so the final state tells the parity of the successes.
        Assert.Equal(ok % 2 == 0 ? VmRunState.Running : VmRunState.Paused, lc.State);
    }

    [Fact]
    public void States_match_the_persisted_enum_values()
    {
        Assert.Equal(0, (int)VmRunState.Stopped);
        Assert.Equal(2, (int)VmRunState.Running);
        Assert.Equal(5, (int)VmRunState.Crashed);
    }
}

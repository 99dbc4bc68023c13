using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Platform;

/// <summary>
/// The paced guest clock with a scripted host clock and instruction counter: guest time moves with instructions
/// inside a slice, follows host time across slices, absorbs host stalls without jumping, and follows the host
/// directly while the CPU is halted.
/// </summary>
public class MachineClockTests
{
    /// <summary>A host clock that moves only when told to (timestamps in nanoseconds).</summary>
    private sealed class ScriptedHostTime : TimeProvider
    {
        public long Ns;
        public override long TimestampFrequency => 1_000_000_000;
        public override long GetTimestamp() => Ns;
        public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(Ns / 100);
    }

    private readonly ScriptedHostTime _host = new();
    private long _instructions;

    private MachineClock PacedClock()
    {
        // the first guess is fixed: by default it is the last speed any machine of the process measured, and the
        // machines of tests running beside these (a fast JIT loop: ~2 ns per instruction) would set it
        var clock = new MachineClock(_host, firstGuessNsPerInstruction: MachineClock.InitialNsPerInstruction);
        clock.AttachInstructionCounter(() => _instructions);
        clock.Start();
        return clock;
    }

    /// <summary>
    /// Runs slices at 25 ns per instruction until the pace has settled (the first guess comes from whatever machine
    /// of this process measured last, so it can be far off).
    /// </summary>
    private void Settle(MachineClock clock)
    {
        for (int i = 0; i < 3000; i++) Slice(clock, _host, ref _instructions, 20_000, 25);
    }

    /// <summary>One machine-loop slice: the host runs <paramref name="instructions"/> at <paramref name="hostNsPerInstruction"/>.</summary>
    private static void Slice(MachineClock clock, ScriptedHostTime host, ref long counter, int instructions, double hostNsPerInstruction)
    {
        clock.BeginSlice();
        counter += instructions;
        host.Ns += (long)(instructions * hostNsPerInstruction);
    }

    [Fact]
    public void WithoutAnInstructionCounterTheClockIsTheHostClock()
    {
        var clock = new MachineClock(_host);
        clock.Start();
        _host.Ns = 1234_5678;
        Assert.Equal(1234_5678, clock.NowNs);
        clock.Pause();
        _host.Ns += 1_000_000;
        Assert.Equal(1234_5678, clock.NowNs);
    }

    [Fact]
    public void InsideASliceTimeMovesWithInstructionsNotWithTheHost()
    {
        var clock = PacedClock();
        Settle(clock);
        clock.BeginSlice();
        long start = clock.NowNs;
        _host.Ns += 10_000_000; // the host stalls 10 ms: the guest must not see it mid-slice
        Assert.Equal(start, clock.NowNs);
        _instructions += 1000;
        long after = clock.NowNs;
        Assert.InRange(after - start, 20_000, 30_000); // ~1000 × 25 ns, the pace adjusted by at most a few %
        _instructions += 1000;
        Assert.InRange(clock.NowNs - after, after - start - 1, after - start + 1); // steady: equal instructions, equal guest time
    }

    [Fact]
    public void GuestTimeFollowsHostTimeAndCatchesUpAfterAStallWithoutJumping()
    {
        var clock = PacedClock();
        Settle(clock);
        Assert.InRange(clock.NowNs - _host.Ns, -1_000_000, 1_000_000); // within 1 ms of host time

        _host.Ns += 30_000_000; // preempted for 30 ms between slices
        long before = clock.NowNs;
        clock.BeginSlice();
        Assert.Equal(before, clock.NowNs); // no jump
        long maxStep = 0;
        for (int i = 0; i < 400; i++)
        {
            long t0 = clock.NowNs;
            Slice(clock, _host, ref _instructions, 20_000, 25);
            maxStep = Math.Max(maxStep, clock.NowNs - t0);
        }
        Assert.InRange(clock.NowNs - _host.Ns, -1_000_000, 1_000_000); // caught up
        Assert.True(maxStep <= 2 * 20_000 * 25 * 1.05, $"a slice advanced guest time by {maxStep} ns: faster than the catch-up limit");
        Assert.Equal(0, clock.Resyncs);
    }

    [Fact]
    public void APaceChangeIsGradual()
    {
        var clock = PacedClock();
        Settle(clock);
        // The host becomes 8x slower (another process takes the core): over the next 10 ms of guest time the
        // guest's ns per instruction may change by at most e^(0.02 × 10) ≈ 1.22×.
        double firstPace = 0;
        long startNs = clock.NowNs;
        while (clock.NowNs - startNs < 10_000_000)
        {
            clock.BeginSlice();
            if (firstPace == 0) firstPace = clock.Pace;
            _instructions += 20_000;
            _host.Ns += 20_000 * 200;
        }
        Assert.InRange(clock.Pace / firstPace, 1.0, Math.Exp(MachineClock.PaceDriftPerGuestMs * 11));
    }

    [Fact]
    public void AHugeGapIsSkippedNotCaughtUp()
    {
        var clock = PacedClock();
        Settle(clock);
        _host.Ns += MachineClock.ResyncThresholdNs + 1_000_000_000; // the host process was stopped
        clock.BeginSlice();
        Assert.Equal(1, clock.Resyncs);
        Assert.InRange(clock.NowNs - _host.Ns, -1_000_000, 0);
    }

    [Fact]
    public void WhileHaltedTimeFollowsTheHostAndNeverGoesBack()
    {
        var clock = PacedClock();
        Settle(clock);
        clock.BeginSlice();
        _instructions += 100;
        long guest = clock.NowNs;
        _host.Ns += 5_000_000;
        clock.EnterIdle();
        Assert.Equal(_host.Ns, clock.NowNs); // the guest was behind: it joins the host at once
        _host.Ns += 7_000_000;
        Assert.Equal(_host.Ns, clock.NowNs);
        Assert.True(clock.NowNs > guest);
        long idleNow = clock.NowNs;
        clock.BeginSlice();
        Assert.Equal(idleNow, clock.NowNs); // running again continues from there
    }

    [Fact]
    public void PauseFreezesGuestTime()
    {
        var clock = PacedClock();
        Settle(clock);
        long at = clock.NowNs;
        clock.Pause();
        _host.Ns += 60_000_000_000;
        _instructions += 5;
        Assert.Equal(at, clock.NowNs);
        clock.Start();
        Assert.True(clock.NowNs >= at && clock.NowNs - at < 5_000_000, "resuming continues from the paused time");
    }

    [Fact]
    public void AManualClockWithAnInstructionCounterAdvancesPerInstruction()
    {
        var clock = new MachineClock(manual: true, nsPerInstruction: 10);
        clock.AttachInstructionCounter(() => _instructions);
        clock.Start();
        _instructions += 7;
        Assert.Equal(70, clock.NowNs);
        clock.Advance(1000);
        Assert.Equal(1070, clock.NowNs);
        long count = 0;
        clock.AttachInstructionCounter(() => count); // a reset brings a new CPU: time goes on
        Assert.Equal(1070, clock.NowNs);
        count = 3;
        Assert.Equal(1100, clock.NowNs);
    }
}

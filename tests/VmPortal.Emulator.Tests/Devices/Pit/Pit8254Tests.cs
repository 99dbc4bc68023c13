using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Devices.Pit;

namespace VmPortal.Emulator.Tests.Devices.Pit;

public class Pit8254Tests
{
    private readonly DeviceTestRig _rig = new();
    private readonly Pit8254 _pit;
    private readonly SystemControlPortB _portB;

    public Pit8254Tests()
    {
        _pit = new Pit8254(_rig.Io, _rig.Pic, _rig.Scheduler);
        _portB = new SystemControlPortB(_rig.Io, _pit, _rig.Clock);
    }

    private void Program(int channel, int mode, int count, bool bcd = false)
    {
        _rig.Io.Out8(0x43, (byte)(channel << 6 | 0x30 | mode << 1 | (bcd ? 1 : 0)));
        _rig.Io.Out8((ushort)(0x40 + channel), (byte)count);
        _rig.Io.Out8((ushort)(0x40 + channel), (byte)(count >> 8));
    }

    private int LatchAndRead(int channel)
    {
        _rig.Io.Out8(0x43, (byte)(channel << 6));
        int lo = _rig.Io.In8((ushort)(0x40 + channel));
        return lo | _rig.Io.In8((ushort)(0x40 + channel)) << 8;
    }

    [Fact]
    public void TickConversionsAgree()
    {
        Assert.Equal(1_193_182, Pit8254.NsToTicks(1_000_000_000));
        Assert.Equal(1_000_000_000, Pit8254.TicksToNs(1_193_182));
        Assert.Equal(839, Pit8254.TicksToNs(1)); // 838.1 ns, rounded up
        Assert.True(Pit8254.NsToTicks(Pit8254.TicksToNs(12345)) >= 12345);
    }

    [Fact]
    public void Mode2RaisesIrq0EveryPeriodThroughATimerDeadline()
    {
        Program(0, 2, 11932); // ~10 ms
        long period = Pit8254.TicksToNs(11932);
        Assert.Equal(period, _rig.Scheduler.NextDeadlineNs);
        _rig.Advance(period - 1000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        _rig.Advance(1000);
        Assert.Equal(0x08, _rig.TakeInterrupt());
        int count = 0;
        for (int i = 0; i < 100; i++)
        {
            _rig.Advance(period / 10);
            if (_rig.TakeInterrupt() == 0x08) count++;
        }
        Assert.InRange(count, 9, 10); // one per period over 10 periods
    }

    [Fact]
    public void LatchedCountReflectsElapsedTicksAndHoldsUntilRead()
    {
        Program(0, 2, 1000);
        _rig.Advance(100_000); // 119.3 ticks
        _rig.Io.Out8(0x43, 0x00);
        _rig.Advance(50_000);
        int lo = _rig.Io.In8(0x40);
        int hi = _rig.Io.In8(0x40);
        Assert.Equal(1000 - 119, lo | hi << 8);
        Assert.Equal(1000 - (int)Pit8254.NsToTicks(150_000), LatchAndRead(0));
    }

    [Fact]
    public void Mode0InterruptsOnceAtTerminalCountThenKeepsCountingDown()
    {
        Program(0, 0, 1193); // ~1 ms
        Assert.False(_pit.Channel(0).OutAt(_rig.Clock.NowNs));
        _rig.Advance(990_000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        _rig.Advance(20_000);
        Assert.Equal(0x08, _rig.TakeInterrupt());
        _rig.Advance(50_000_000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        Assert.Equal(long.MaxValue, _rig.Scheduler.NextDeadlineNs);
        int expected = (int)((1193 - Pit8254.NsToTicks(51_010_000)) & 0xFFFF);
        Assert.Equal(expected, LatchAndRead(0));
        // A new count restarts the one-shot.
        Program(0, 0, 100);
        _rig.Advance(Pit8254.TicksToNs(100));
        Assert.Equal(0x08, _rig.TakeInterrupt());
    }

    [Fact]
    public void ReadBackReturnsStatusThenCount()
    {
        Program(0, 2, 500);
        _rig.Io.Out8(0x43, 0xC2); // read-back count and status of counter 0
        byte status = _rig.Io.In8(0x40);
        Assert.Equal(0x80 | 0x30 | 2 << 1, status); // OUT high, lo/hi access, mode 2, binary
        int count = _rig.Io.In8(0x40) | _rig.Io.In8(0x40) << 8;
        Assert.Equal(500, count);
        _rig.Io.Out8(0x43, 0x30); // mode 0 on counter 0, no count yet: null count set, OUT low
        _rig.Io.Out8(0x43, 0xE2); // status only
        Assert.Equal(0x40 | 0x30, _rig.Io.In8(0x40));
    }

    [Fact]
    public void BcdCountsInDecimal()
    {
        Program(0, 2, 0x1000, bcd: true); // 1000 decimal
        _rig.Advance(Pit8254.TicksToNs(100));
        Assert.Equal(0x0900, LatchAndRead(0));
        _rig.Advance(Pit8254.TicksToNs(1000));
        Assert.Equal(0x0900, LatchAndRead(0)); // period is 1000 ticks
    }

    [Fact]
    public void LowByteOnlyAccessLoadsImmediately()
    {
        _rig.Io.Out8(0x43, 0x14); // counter 0, lobyte only, mode 2
        _rig.Io.Out8(0x40, 100);
        _rig.Advance(Pit8254.TicksToNs(30));
        _rig.Io.Out8(0x43, 0x00);
        Assert.Equal(70, _rig.Io.In8(0x40));
    }

    [Fact]
    public void Counter2IsGatedByPort61AndOutIsReadable()
    {
        // Linux's TSC calibration: gate off, mode 0 counter 2, gate on, poll OUT2 (port 0x61 bit 5).
        _rig.Io.Out8(0x61, 0x00);
        Program(2, 0, 0x2000);
        _rig.Advance(Pit8254.TicksToNs(0x4000));
        Assert.Equal(0x2000, LatchAndRead(2)); // gate low: no counting
        Assert.Equal(0, _rig.Io.In8(0x61) & 0x20);
        _rig.Io.Out8(0x61, 0x01);
        _rig.Advance(Pit8254.TicksToNs(0x1000));
        Assert.Equal(0x1000, LatchAndRead(2));
        Assert.Equal(0, _rig.Io.In8(0x61) & 0x20);
        _rig.Advance(Pit8254.TicksToNs(0x1000));
        Assert.Equal(0x20, _rig.Io.In8(0x61) & 0x20);
        Assert.Equal(-1, _rig.TakeInterrupt()); // counter 2 has no IRQ
    }

    [Fact]
    public void Mode3SquareWaveOnCounter2()
    {
        _rig.Io.Out8(0x61, 0x03);
        Assert.True(_portB.SpeakerOn);
        Program(2, 3, 1000);
        _rig.Advance(Pit8254.TicksToNs(200));
        Assert.True(_pit.Channel2Output);
        Assert.Equal(1000 - 400, LatchAndRead(2)); // decrements by two
        _rig.Advance(Pit8254.TicksToNs(400));
        Assert.False(_pit.Channel2Output);
        _rig.Advance(Pit8254.TicksToNs(400));
        Assert.True(_pit.Channel2Output);
    }

    [Fact]
    public void RefreshToggleFlipsWithGuestTime()
    {
        int a = _rig.Io.In8(0x61) & 0x10;
        _rig.Advance(SystemControlPortB.RefreshPeriodNs);
        int b = _rig.Io.In8(0x61) & 0x10;
        Assert.NotEqual(a, b);
        _rig.Io.Out8(0x61, 0x0D);
        Assert.Equal(0x0D, _rig.Io.In8(0x61) & 0x0F);
    }

    [Fact]
    public void Mode4StrobesOnceAtTerminalCount()
    {
        Program(0, 4, 300);
        Assert.True(_pit.Channel(0).OutAt(_rig.Clock.NowNs));
        _rig.Advance(Pit8254.TicksToNs(300) + 10);
        Assert.False(_pit.Channel(0).OutAt(_rig.Clock.NowNs)); // low for one tick
        _rig.Advance(Pit8254.TicksToNs(2));
        Assert.Equal(0x08, _rig.TakeInterrupt());
        _rig.Advance(Pit8254.TicksToNs(100_000));
        Assert.Equal(-1, _rig.TakeInterrupt());
    }

    [Fact]
    public void ResetStopsCounter0Interrupts()
    {
        Program(0, 2, 1000);
        Assert.NotEqual(long.MaxValue, _rig.Scheduler.NextDeadlineNs);
        _pit.Reset();
        _portB.Reset();
        Assert.Equal(long.MaxValue, _rig.Scheduler.NextDeadlineNs);
        _rig.Advance(10_000_000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        Assert.False(_pit.Channel2Gate);
    }

    [Fact]
    public void StateRoundTripsIntoAFreshTimerAtTheSameGuestTime()
    {
        Program(0, 2, 2000);
        Program(2, 0, 0x3000);
        _rig.Io.Out8(0x61, 0x01);
        _rig.Advance(Pit8254.TicksToNs(500));
        var state = _pit.SaveState();
        var other = new DeviceTestRig();
        other.Clock.Advance(_rig.Clock.NowNs);
        var copy = new Pit8254(other.Io, other.Pic, other.Scheduler);
        copy.LoadState(state);
        Assert.Equal(_pit.Channel(0).CountAt(_rig.Clock.NowNs), copy.Channel(0).CountAt(other.Clock.NowNs));
        Assert.Equal(_pit.Channel(2).CountAt(_rig.Clock.NowNs), copy.Channel(2).CountAt(other.Clock.NowNs));
        Assert.Equal(_rig.Scheduler.NextDeadlineNs, other.Scheduler.NextDeadlineNs);
        other.Advance(Pit8254.TicksToNs(1500));
        Assert.Equal(0x08, other.TakeInterrupt());
    }
}

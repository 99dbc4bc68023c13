using VmPortal.Emulator.Devices.Rtc;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Devices.Rtc;

public class Mc146818RtcTests
{
    private sealed class FixedHostTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static readonly DateTimeOffset HostNow = new(2026, 11, 25, 9, 59, 58, 500, TimeSpan.Zero); // a Wednesday
    private readonly DeviceTestRig _rig;
    private readonly Mc146818Rtc _rtc;

    public Mc146818RtcTests()
    {
        _rig = new DeviceTestRig(new MachineClock(new FixedHostTime(HostNow), manual: true));
        _rig.Clock.Start();
        _rtc = new Mc146818Rtc(_rig.Io, _rig.Pic, _rig.Scheduler);
    }

    private byte Read(int reg) { _rig.Io.Out8(0x70, (byte)reg); return _rig.Io.In8(0x71); }
    private void Write(int reg, byte v) { _rig.Io.Out8(0x70, (byte)reg); _rig.Io.Out8(0x71, v); }

    [Fact]
    public void TimeStartsFromHostClockInBcdAndFollowsGuestTime()
    {
        Assert.Equal(0x58, Read(0x00));
        Assert.Equal(0x59, Read(0x02));
        Assert.Equal(0x09, Read(0x04));
        Assert.Equal(0x04, Read(0x06)); // Wednesday = 4 (Sunday = 1)
        Assert.Equal(0x25, Read(0x07));
        Assert.Equal(0x11, Read(0x08));
        Assert.Equal(0x26, Read(0x09));
        Assert.Equal(0x20, Read(0x32));
        _rig.Advance(2_000_000_000);
        Assert.Equal(0x00, Read(0x00));
        Assert.Equal(0x00, Read(0x02));
        Assert.Equal(0x10, Read(0x04));
    }

    [Fact]
    public void BinaryAnd12HourFormats()
    {
        _rig.Advance(4L * 3600 * 1_000_000_000); // 13:59:58.5
        Write(0x0B, 0x04); // binary, 12-hour
        Assert.Equal(0x81, Read(0x04)); // 1 PM
        Assert.Equal(59, Read(0x02));
        Assert.Equal(26, Read(0x09));
        Write(0x0B, 0x06); // binary, 24-hour
        Assert.Equal(13, Read(0x04));
    }

    [Fact]
    public void UpdateInProgressIsSetJustBeforeEachSecond()
    {
        Assert.Equal(0, Read(0x0A) & 0x80); // 0.5 s into the second
        _rig.Advance(500_000_000 - 100_000);
        Assert.Equal(0x80, Read(0x0A) & 0x80);
        _rig.Advance(200_000);
        Assert.Equal(0, Read(0x0A) & 0x80);
        Assert.Equal(0x26, Read(0x0A)); // divider and rate as after reset
        Assert.Equal(0x80, Read(0x0D)); // valid RAM and time
    }

    [Fact]
    public void GuestSetsTheClockWithTheSetBit()
    {
        Write(0x0B, 0x82); // SET, BCD, 24h
        Write(0x00, 0x30); Write(0x02, 0x15); Write(0x04, 0x08);
        Write(0x07, 0x01); Write(0x08, 0x02); Write(0x09, 0x99); Write(0x32, 0x19);
        _rig.Advance(5_000_000_000);
        Assert.Equal(0x30, Read(0x00)); // frozen while SET
        Write(0x0B, 0x02);
        _rig.Advance(3_000_000_000);
        Assert.Equal(0x33, Read(0x00));
        Assert.Equal(0x15, Read(0x02));
        Assert.Equal(0x99, Read(0x09));
        Assert.Equal(0x19, Read(0x32));
        Assert.Equal(new DateTime(1999, 2, 1, 8, 15, 33), _rtc.Now.AddTicks(-(_rtc.Now.Ticks % TimeSpan.TicksPerSecond)));
    }

    [Fact]
    public void PeriodicInterruptOnIrq8UntilRegisterCIsRead()
    {
        Write(0x0A, 0x26); // 1024 Hz
        Write(0x0B, 0x42); // PIE
        long period = Mc146818Rtc.PeriodicRateNs(6);
        Assert.Equal(976_562, period);
        _rig.Advance(period - 1000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        _rig.Advance(1000);
        Assert.Equal(0x70, _rig.TakeInterrupt());
        _rig.Advance(period);
        Assert.Equal(-1, _rig.TakeInterrupt()); // line still high: no new edge until C is read
        Assert.Equal(0xC0, Read(0x0C));
        Assert.Equal(0x00, Read(0x0C) & 0xC0);
        _rig.Advance(period);
        Assert.Equal(0x70, _rig.TakeInterrupt());
        Write(0x0B, 0x02); // PIE off: no more timer
        Read(0x0C);
        Assert.Equal(long.MaxValue, _rig.Scheduler.NextDeadlineNs);
    }

    [Fact]
    public void UpdateEndedAndAlarmInterrupts()
    {
        Write(0x01, 0x01); Write(0x03, 0x00); Write(0x05, 0x10); // alarm at 10:00:01
        Write(0x0B, 0x32); // UIE + AIE
        _rig.Advance(400_000_000);
        Assert.Equal(-1, _rig.TakeInterrupt());
        _rig.Advance(200_000_000); // crosses 09:59:59
        Assert.Equal(0x70, _rig.TakeInterrupt());
        Assert.Equal(0x90, Read(0x0C));
        _rig.AdvanceInSteps(2_000_000_000, 100_000_000); // 10:00:00 and 10:00:01
        Assert.Equal(0xB0, Read(0x0C) & 0xB0); // alarm matched at 10:00:01
    }

    [Fact]
    public void NmiMaskBitIsReported()
    {
        bool? seen = null;
        _rtc.NmiMaskChanged += m => seen = m;
        _rig.Io.Out8(0x70, 0x8F);
        Assert.True(_rtc.NmiMasked);
        Assert.True(seen);
        _rig.Io.Out8(0x70, 0x0F);
        Assert.False(seen);
    }

    [Fact]
    public void CmosRamKeepsBytesAndHelpersFillWhatSeaBiosReads()
    {
        Write(0x40, 0xA5);
        Assert.Equal(0xA5, Read(0x40));
        CmosLayout.SetMemory(_rtc, 64UL * 1024 * 1024);
        CmosLayout.SetFloppies(_rtc, CmosFloppyType.Mb1_44);
        CmosLayout.SetBootOrder(_rtc, [CmosBootDevice.CdRom, CmosBootDevice.HardDisk, CmosBootDevice.Floppy]);
        Assert.Equal(0x80, Read(0x15)); Assert.Equal(0x02, Read(0x16));
        Assert.Equal(0x00, Read(0x34)); Assert.Equal(0x03, Read(0x35)); // (64-16) MiB / 64 KiB = 0x300
        Assert.Equal(0x00, Read(0x30)); Assert.Equal(0xFC, Read(0x31)); // 63 MiB in KiB
        Assert.Equal(0x40, Read(0x10));
        Assert.Equal(0x01, Read(0x14) & 0xC1);
        Assert.Equal(0x23, Read(0x3D));
        Assert.Equal(0x10, Read(0x38));
        int sum = 0;
        for (int i = 0x10; i <= 0x2D; i++) sum += Read(i);
        Assert.Equal(sum, Read(0x2E) << 8 | Read(0x2F));
        // SeaBIOS's formula gives back the RAM size.
        int rs = (Read(0x34) << 16 | Read(0x35) << 24) + 16 * 1024 * 1024;
        Assert.Equal(64 * 1024 * 1024, rs);
    }

    [Fact]
    public void ResetPinClearsInterruptEnablesButKeepsTime()
    {
        Write(0x0B, 0x72);
        Write(0x40, 0x99);
        _rtc.Reset();
        Assert.Equal(0x02, Read(0x0B));
        Assert.Equal(0x99, Read(0x40));
        Assert.Equal(0x58, Read(0x00));
        Assert.Equal(long.MaxValue, _rig.Scheduler.NextDeadlineNs);
    }
}

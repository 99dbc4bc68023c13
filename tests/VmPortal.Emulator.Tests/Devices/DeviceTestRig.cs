using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Devices;

/// <summary>An I/O bus, the real PIC pair initialised like SeaBIOS does (vectors 08h/70h), and a manual clock.</summary>
public sealed class DeviceTestRig
{
    public IoBus Io { get; } = new();
    public MachineClock Clock { get; }
    public TimerScheduler Scheduler { get; }
    public DualPic Pic { get; }

    public DeviceTestRig(MachineClock? clock = null)
    {
        Clock = clock ?? new MachineClock(manual: true);
        Scheduler = new TimerScheduler(Clock);
        Pic = new DualPic(Io);
        Io.Out8(0x20, 0x11); Io.Out8(0x21, 0x08); Io.Out8(0x21, 0x04); Io.Out8(0x21, 0x01);
        Io.Out8(0xA0, 0x11); Io.Out8(0xA1, 0x70); Io.Out8(0xA1, 0x02); Io.Out8(0xA1, 0x01);
        Io.Out8(0x21, 0x00); Io.Out8(0xA1, 0x00);
    }

    /// <summary>Moves guest time forward and fires due device timers, as the machine loop does between CPU slices.</summary>
    public void Advance(long ns)
    {
        Clock.Advance(ns);
        Scheduler.RunDue(Clock.NowNs);
    }

    /// <summary>Advances in small steps so periodic timers fire at their own deadlines.</summary>
    public void AdvanceInSteps(long ns, long step)
    {
        for (long done = 0; done < ns; done += step) Advance(Math.Min(step, ns - done));
    }

    /// <summary>Acknowledges the pending interrupt (if any) and sends the EOIs; returns the vector or -1.</summary>
    public int TakeInterrupt()
    {
        if (!Pic.HasPendingInterrupt) return -1;
        int v = Pic.AcknowledgeInterrupt();
        if (v >= 0x70) Io.Out8(0xA0, 0x20);
        Io.Out8(0x20, 0x20);
        return v;
    }
}

using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Tests;

public class IoBusTests
{
    [Fact]
    public void UnclaimedPortsReadAllOnesAndReportWhenTraced()
    {
        var bus = new IoBus { TraceUnclaimed = true };
        var seen = new List<(ushort, bool)>();
        bus.UnclaimedAccess += (port, size, write, value) => seen.Add((port, write));
        Assert.Equal(0xFF, bus.In8(0x1234));
        Assert.Equal(0xFFFF, bus.In16(0x1234));
        Assert.Equal(0xFFFF_FFFFu, bus.In32(0x1234));
        bus.Out8(0x80, 1);
        Assert.Contains((ushort)0x80, seen.Where(s => s.Item2).Select(s => s.Item1));
    }

    [Fact]
    public void WideAccessToByteDeviceIsSplitIntoBytes()
    {
        var bus = new IoBus();
        var regs = new byte[4];
        bus.Register(0x300, 4, (p, s) => regs[p - 0x300], (p, s, v) => regs[p - 0x300] = (byte)v);
        bus.Out32(0x300, 0x11223344);
        Assert.Equal(new byte[] { 0x44, 0x33, 0x22, 0x11 }, regs);
        Assert.Equal(0x2233u, bus.In16(0x301));
    }
}

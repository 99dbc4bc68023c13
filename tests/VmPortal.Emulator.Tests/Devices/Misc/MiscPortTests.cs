using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Misc;

public class MiscPortTests
{
    [Fact]
    public void Port92DrivesA20AndPulsesReset()
    {
        var io = new IoBus();
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        var port = new SystemControlPortA(io, mem);
        int resets = 0;
        port.ResetRequested += () => resets++;
        mem.A20Enabled = false;
        mem.Write8(0x100000, 0x5A);
        Assert.Equal(0x5A, mem.Read8(0)); // wraps while A20 is off
        io.Out8(0x92, 0x02);
        Assert.True(mem.A20Enabled);
        Assert.Equal(0x02, io.In8(0x92));
        mem.Write8(0x100000, 0xA5);
        Assert.Equal(0x5A, mem.Read8(0));
        Assert.Equal(0, resets);
        io.Out8(0x92, 0x03);
        Assert.Equal(1, resets);
        Assert.Equal(0x02, io.In8(0x92)); // reset bit reads back 0
        io.Out8(0x92, 0x00);
        Assert.False(mem.A20Enabled);
    }

    [Fact]
    public void DebugConsoleEchoesBytesAndIdentifiesItself()
    {
        var io = new IoBus();
        var con = new DebugConsole(io);
        var text = new List<byte>();
        con.Output += text.Add;
        foreach (char c in "SeaBIOS\n") io.Out8(0xE9, (byte)c);
        Assert.Equal("SeaBIOS\n", System.Text.Encoding.ASCII.GetString(text.ToArray()));
        Assert.Equal(0xE9, io.In8(0xE9));
    }

    [Fact]
    public void FerrRaisesIrq13UntilPortF0IsWritten()
    {
        var rig = new DeviceTestRig();
        var latch = new FpuErrorLatch(rig.Io, rig.Pic);
        latch.SetFerr(true);
        Assert.Equal(0x75, rig.TakeInterrupt()); // IRQ 13
        Assert.False(latch.IgnoreNumericError);
        rig.Io.Out8(0xF0, 0);
        Assert.True(latch.IgnoreNumericError);  // the handler's FNCLEX will not fault again
        latch.SetFerr(false);
        Assert.False(latch.IgnoreNumericError);
        latch.SetFerr(true);
        Assert.Equal(0x75, rig.TakeInterrupt()); // a new error latches again
    }
}

using VmPortal.Emulator.Devices.Serial;

namespace VmPortal.Emulator.Tests.Devices.Serial;

public class Uart16550Tests
{
    private readonly DeviceTestRig _rig = new();
    private readonly Uart16550 _com1;
    private readonly List<byte> _sent = new();
    private const ushort B = 0x3F8;

    public Uart16550Tests()
    {
        _com1 = new Uart16550(_rig.Io, _rig.Pic);
        _com1.Transmit += _sent.Add;
    }

    private byte In(int reg) => _rig.Io.In8((ushort)(B + reg));
    private void Out(int reg, byte v) => _rig.Io.Out8((ushort)(B + reg), v);

    [Fact]
    public void TransmitsBytesAndReportsEmptyTransmitter()
    {
        Out(3, 0x03);
        foreach (char c in "login:") Out(0, (byte)c);
        Assert.Equal("login:", System.Text.Encoding.ASCII.GetString(_sent.ToArray()));
        Assert.Equal(0x60, In(5));
    }

    [Fact]
    public void DivisorLatchIsReachedThroughDlab()
    {
        Out(3, 0x83);
        Out(0, 0x01); Out(1, 0x00);
        Assert.Equal(0x01, In(0)); Assert.Equal(0x00, In(1));
        Out(3, 0x03);
        Assert.Equal(1, _com1.Divisor);
        Out(1, 0x05);
        Assert.Equal(0x05, In(1)); // IER again
        Assert.Empty(_sent);
    }

    [Fact]
    public void ReceivedDataInterruptsAtTriggerLevelOrOnCharacterTimeout()
    {
        Out(2, 0x41); // FIFO on, trigger 4
        Out(1, 0x01); // received-data interrupt
        Out(4, 0x08); // OUT2 routes the interrupt
        _com1.Receive("ab"u8);
        _com1.PumpHostInput();
        Assert.Equal(0xCC, In(2)); // FIFO enabled + character timeout
        Assert.Equal(0x0C, _rig.TakeInterrupt()); // IRQ 4
        Assert.Equal((byte)'a', In(0));
        Assert.Equal((byte)'b', In(0));
        Assert.Equal(0xC1, In(2));
        Assert.Equal(0x60, In(5));
        _com1.Receive("cdefg"u8);
        _com1.PumpHostInput();
        Assert.Equal(0xC4, In(2)); // trigger level reached
        var got = new List<byte>();
        while ((In(5) & 0x01) != 0) got.Add(In(0));
        Assert.Equal("cdefg"u8.ToArray(), got);
    }

    [Fact]
    public void InterruptPrioritiesLineStatusThenDataThenThre()
    {
        Out(4, 0x18); // loopback + OUT2
        Out(0, 0x11); Out(0, 0x22); // FIFO off: second byte overruns the holding register
        Out(1, 0x07);
        Assert.Equal(0x06, In(2)); // line status first
        Assert.Equal(0x63, In(5)); // overrun + data ready, cleared by the read
        Assert.Equal(0x04, In(2)); // received data
        Assert.Equal(0x11, In(0));
        Assert.Equal(0x02, In(2)); // THR empty, acknowledged by this read
        Assert.Equal(0x01, In(2));
        Assert.Empty(_sent); // loopback does not reach the host
    }

    [Fact]
    public void LoopbackWiresModemControlToModemStatus()
    {
        Out(4, 0x1A); // loop, OUT2, RTS — the Linux 8250 probe
        Assert.Equal(0x90, In(6) & 0xF0); // DCD and CTS
        Out(4, 0x1F);
        byte msr = In(6);
        Assert.Equal(0xF0, msr & 0xF0);
        Assert.Equal(0x02, msr & 0x0F & 0x02); // DSR changed
        Assert.Equal(0x00, In(6) & 0x0F);      // deltas cleared by reading
        Out(4, 0x00);
        Assert.Equal(0xB0, In(6) & 0xF0);      // outside loopback: a connected peer
    }

    [Fact]
    public void ThreInterruptWhenEnabledAndGatedByOut2()
    {
        Out(1, 0x02);
        Assert.Equal(-1, _rig.TakeInterrupt()); // OUT2 off: no IRQ
        Out(4, 0x08);
        Assert.Equal(0x0C, _rig.TakeInterrupt());
        Assert.Equal(0x02, In(2));
        Assert.Equal(0x01, In(2));
        Out(0, (byte)'x');
        Assert.Equal(0x02, In(2)); // sent at once, THR empty again
    }

    [Fact]
    public void ScratchRegisterHoldsAByte()
    {
        Out(7, 0x5A);
        Assert.Equal(0x5A, In(7));
    }

    [Fact]
    public void Com2UsesItsOwnPortsAndIrq3()
    {
        var com2 = new Uart16550(_rig.Io, _rig.Pic, Uart16550.Com2Port, Uart16550.Com2Irq);
        _rig.Io.Out8(0x2F9, 0x01);
        _rig.Io.Out8(0x2FC, 0x08);
        com2.Receive([0x42]);
        com2.PumpHostInput();
        Assert.Equal(0x0B, _rig.TakeInterrupt());
        Assert.Equal(0x42, _rig.Io.In8(0x2F8));
        Assert.Equal(0x60, In(5)); // COM1 unaffected
    }

    [Fact]
    public void ConcurrentHostWritersLoseNothingAndKeepTheirOrder()
    {
        Out(2, 0x01);
        const int perThread = 2000;
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            byte tag = (byte)(t << 6);
            threads[t] = new Thread(() =>
            {
                for (int i = 0; i < perThread; i++) _com1.Receive([(byte)(tag | i % 64)]);
            });
            threads[t].Start();
        }
        var got = new List<byte>();
        while (threads.Any(th => th.IsAlive) || (In(5) & 1) != 0)
            while ((In(5) & 1) != 0) got.Add(In(0));
        Assert.Equal(perThread * threads.Length, got.Count);
        for (int t = 0; t < threads.Length; t++)
        {
            var mine = got.Where(b => b >> 6 == t).Select(b => b & 63).ToList();
            for (int i = 0; i < mine.Count; i++) Assert.Equal(i % 64, mine[i]);
        }
    }

    [Fact]
    public void ResetClearsRegistersButKeepsHostInput()
    {
        Out(1, 0x0F); Out(3, 0x03); Out(4, 0x0B);
        _com1.Receive("x"u8);
        _com1.Reset();
        Assert.Equal(0, In(1)); Assert.Equal(0, In(3)); Assert.Equal(0, In(4));
        Assert.Equal(0x61, In(5)); // the queued byte arrives after the reset
        Assert.Equal((byte)'x', In(0));
    }
}

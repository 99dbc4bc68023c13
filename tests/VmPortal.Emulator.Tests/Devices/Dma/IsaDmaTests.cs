using VmPortal.Emulator.Devices.Dma;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Dma;

public class IsaDmaTests
{
    private readonly IoBus _io = new();
    private readonly PhysicalMemory _memory = new(4 * 1024 * 1024);
    private readonly IsaDma _dma;

    public IsaDmaTests() => _dma = new IsaDma(_io, _memory);

    [Fact]
    public void ByteChannelRegistersThroughFlipFlopAndReadBack()
    {
        _io.Out8(0x0C, 0);
        _io.Out8(0x02, 0x34); _io.Out8(0x02, 0x12); // channel 1 address
        _io.Out8(0x03, 0xFF); _io.Out8(0x03, 0x00); // count 255 → 256 bytes
        _io.Out8(0x83, 0x07);                       // channel 1 page
        var ch = _dma.Channel(1);
        Assert.Equal(0x1234, ch.CurrentAddress);
        Assert.Equal(0x071234u, ch.PhysicalAddress);
        Assert.Equal(256, ch.RemainingBytes);
        _io.Out8(0x0C, 0);
        Assert.Equal(0x34, _io.In8(0x02));
        Assert.Equal(0x12, _io.In8(0x02));
        Assert.True(ch.Masked);
        Assert.Equal(0xFF, _io.In8(0x0F)); // all masked after power-on (upper nibble reads 1s)
        _io.Out8(0x0A, 0x01);
        Assert.False(ch.Masked);
        _io.Out8(0x0F, 0x0F);
        Assert.True(ch.Masked);
        _io.Out8(0x0E, 0);
        Assert.False(ch.Masked);
    }

    [Fact]
    public void WriteTransferStopsAtTerminalCountAndMasksTheChannel()
    {
        _io.Out8(0x0B, 0x45); // channel 1, write (device → memory), single mode
        _io.Out8(0x0C, 0);
        _io.Out8(0x02, 0x00); _io.Out8(0x02, 0x10);
        _io.Out8(0x03, 0x03); _io.Out8(0x03, 0x00); // 4 bytes
        _io.Out8(0x0A, 0x01);
        var ch = _dma.Channel(1);
        int n = ch.WriteToMemory([1, 2, 3, 4, 5, 6]);
        Assert.Equal(4, n);
        Assert.Equal(0x04030201u, _memory.Read32(0x1000));
        Assert.Equal(0, _memory.Read8(0x1004));
        Assert.True(ch.TerminalCount);
        Assert.True(ch.Masked);
        Assert.Equal(0x02, _io.In8(0x08) & 0x0F); // TC bit for channel 1, cleared by the read
        Assert.Equal(0x00, _io.In8(0x08) & 0x0F);
    }

    [Fact]
    public void AutoInitReloadsAndDecrementCountsDown()
    {
        _io.Out8(0x0B, 0x78); // channel 0, read (memory → device), auto-init, decrement
        _io.Out8(0x0C, 0);
        _io.Out8(0x00, 0x03); _io.Out8(0x00, 0x20);
        _io.Out8(0x01, 0x01); _io.Out8(0x01, 0x00); // 2 bytes
        _io.Out8(0x87, 0x00);
        _io.Out8(0x0A, 0x00);
        _memory.WriteBytes(0x2002, [0xAA, 0xBB]);
        var ch = _dma.Channel(0);
        var buf = new byte[5];
        Assert.Equal(2, ch.ReadFromMemory(buf)); // a transfer ends at terminal count
        Assert.Equal(new byte[] { 0xBB, 0xAA }, buf[..2]);
        Assert.True(ch.TerminalCount);
        Assert.False(ch.Masked);                 // auto-init: reloaded, still armed
        Assert.Equal(0x2003, ch.CurrentAddress);
        Assert.Equal(2, ch.ReadFromMemory(buf));
        Assert.Equal(new byte[] { 0xBB, 0xAA }, buf[..2]);
    }

    [Fact]
    public void SixteenBitChannelsUseWordAddressesAndTheirPageRegister()
    {
        _io.Out8(0xD6, 0x45); // channel 5, write
        _io.Out8(0xD8, 0);
        _io.Out8(0xC4, 0x00); _io.Out8(0xC4, 0x08); // word address 0x0800 → byte 0x1000 in the page
        _io.Out8(0xC6, 0x01); _io.Out8(0xC6, 0x00); // 2 words
        _io.Out8(0x8B, 0x02);
        _io.Out8(0xD4, 0x01);
        var ch = _dma.Channel(5);
        Assert.Equal(0x21000u, ch.PhysicalAddress);
        Assert.Equal(4, ch.WriteToMemory([9, 8, 7, 6, 5]));
        Assert.Equal(0x06070809u, _memory.Read32(0x21000));
    }

    [Fact]
    public void Port80KeepsThePostCode()
    {
        var codes = new List<byte>();
        _dma.PostCodeWritten += codes.Add;
        _io.Out8(0x80, 0x12);
        _io.Out8(0x80, 0x34);
        Assert.Equal(0x34, _dma.LastPostCode);
        Assert.Equal(0x34, _io.In8(0x80));
        Assert.Equal(new byte[] { 0x12, 0x34 }, codes);
    }

    [Fact]
    public void StateRoundTripsChannelsAndPages()
    {
        _io.Out8(0x0B, 0x46);
        _io.Out8(0x0C, 0);
        _io.Out8(0x04, 0x00); // flip-flop now points at the high byte
        _io.Out8(0x81, 0x03);
        _io.Out8(0x0A, 0x02);
        var state = _dma.SaveState();
        var copy = new IsaDma(new IoBus(), _memory);
        copy.LoadState(state);
        var ch = copy.Channel(2);
        Assert.Equal(0x46, ch.Mode);
        Assert.Equal(0x03, ch.Page);
        Assert.False(ch.Masked);
        Assert.Equal(0x46, copy.Channel(2).SaveState().Mode);
        Assert.Equal(state.Dma1.FlipFlopHigh, copy.Controller1.SaveState().FlipFlopHigh);
    }
}

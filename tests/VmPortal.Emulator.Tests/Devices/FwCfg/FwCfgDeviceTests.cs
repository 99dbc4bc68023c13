using System.Buffers.Binary;
using System.Text;
using VmPortal.Emulator.Devices.FwCfg;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.FwCfg;

public class FwCfgDeviceTests
{
    private readonly IoBus _io = new();
    private readonly PhysicalMemory _memory = new(4 * 1024 * 1024);
    private readonly FwCfgDevice _cfg;

    public FwCfgDeviceTests() => _cfg = new FwCfgDevice(_io, _memory);

    private byte[] ReadItem(ushort key, int length)
    {
        _io.Out16(0x510, key);
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = _io.In8(0x511);
        return b;
    }

    [Fact]
    public void SignatureAndIdThroughPorts()
    {
        Assert.Equal("QEMU"u8.ToArray(), ReadItem(0, 4));
        uint id = BinaryPrimitives.ReadUInt32LittleEndian(ReadItem(1, 4));
        Assert.Equal(3u, id); // traditional + DMA
        Assert.Equal(new byte[] { 0, 0 }, ReadItem(0, 6)[4..]); // past the end: zeros
        var noDma = new FwCfgDevice(new IoBus(), _memory, enableDma: false);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(noDma.GetItem(1)!));
    }

    [Fact]
    public void FileDirectoryListsFilesSeaBiosLoads()
    {
        _cfg.SetE820([(0UL, 0x800_0000UL, FwCfgDevice.E820Ram), (0xFFFC_0000UL, 0x4_0000UL, FwCfgDevice.E820Reserved)]);
        _cfg.SetBootOrder(FwCfgBootPaths.Ide(1, 0), FwCfgBootPaths.Ide(0, 0), FwCfgBootPaths.Floppy(0));
        _cfg.SetBootMenu(false, 0);
        var head = ReadItem(0x19, 4);
        uint count = BinaryPrimitives.ReadUInt32BigEndian(head);
        Assert.Equal(3u, count);
        _io.Out16(0x510, 0x19);
        for (int i = 0; i < 4; i++) _io.In8(0x511);
        var files = new Dictionary<string, (uint Size, ushort Select)>();
        for (int f = 0; f < count; f++)
        {
            var e = new byte[64];
            for (int i = 0; i < 64; i++) e[i] = _io.In8(0x511);
            string name = Encoding.ASCII.GetString(e, 8, 56).TrimEnd('\0');
            files[name] = (BinaryPrimitives.ReadUInt32BigEndian(e), BinaryPrimitives.ReadUInt16BigEndian(e.AsSpan(4)));
        }
        Assert.Equal(40u, files["etc/e820"].Size);
        var e820 = ReadItem(files["etc/e820"].Select, 40);
        Assert.Equal(0x800_0000UL, BinaryPrimitives.ReadUInt64LittleEndian(e820.AsSpan(8)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(e820.AsSpan(36)));
        var order = Encoding.ASCII.GetString(ReadItem(files["bootorder"].Select, (int)files["bootorder"].Size)).TrimEnd('\0');
        Assert.Equal("/pci@i0cf8/ide@1,1/drive@1/disk@0\n/pci@i0cf8/ide@1,1/drive@0/disk@0\n/pci@i0cf8/isa@1/fdc@03f0/floppy@0", order);
        Assert.Equal(2u, files["etc/boot-menu-wait"].Size);
    }

    private void WriteAccess(uint at, uint control, uint length, uint address)
    {
        var a = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(a, control);
        BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(4), length);
        BinaryPrimitives.WriteUInt64BigEndian(a.AsSpan(8), address);
        _memory.WriteBytes(at, a);
    }

    private void Kick(uint at)
    {
        _io.Out32(0x514, 0);
        _io.Out32(0x518, BinaryPrimitives.ReverseEndianness(at)); // cpu_to_be32, as SeaBIOS writes it
    }

    [Fact]
    public void DmaSelectReadAndSkip()
    {
        ushort key = _cfg.AddFile("etc/test", Encoding.ASCII.GetBytes("0123456789"));
        WriteAccess(0x1000, (uint)key << 16 | FwCfgDevice.DmaSelect | FwCfgDevice.DmaRead, 4, 0x2000);
        Kick(0x1000);
        var got = new byte[4];
        _memory.ReadBytes(0x2000, got);
        Assert.Equal("0123"u8.ToArray(), got);
        Assert.Equal(0u, _memory.Read32(0x1000)); // control cleared: done, no error
        WriteAccess(0x1000, FwCfgDevice.DmaSkip, 3, 0);
        Kick(0x1000);
        _memory.WriteBytes(0x3000, [0xEE, 0xEE, 0xEE, 0xEE, 0xEE]);
        WriteAccess(0x1000, FwCfgDevice.DmaRead, 5, 0x3000);
        Kick(0x1000);
        var rest = new byte[5];
        _memory.ReadBytes(0x3000, rest);
        Assert.Equal(new byte[] { (byte)'7', (byte)'8', (byte)'9', 0, 0 }, rest); // past the end: zeros
        WriteAccess(0x1000, FwCfgDevice.DmaWrite, 1, 0x3000);
        Kick(0x1000);
        Assert.Equal(FwCfgDevice.DmaError, BinaryPrimitives.ReadUInt32BigEndian(BitConverter.GetBytes(_memory.Read32(0x1000))));
    }

    [Fact]
    public void RamSizeAndReplacingAFileKeepsItsKey()
    {
        _cfg.SetRamSize(128UL << 20);
        Assert.Equal(128UL << 20, BinaryPrimitives.ReadUInt64LittleEndian(ReadItem(3, 8)));
        ushort a = _cfg.AddFile("bootorder", [1]);
        ushort b = _cfg.AddFile("bootorder", [2, 3]);
        Assert.Equal(a, b);
        Assert.Equal(new byte[] { 2, 3 }, ReadItem(b, 2));
        Assert.Equal(0x51, _io.In8(0x514)); // 'Q' of the DMA signature
    }

    [Fact]
    public void HugeDmaLengthIsBoundedByRam()
    {
        _memory.Write8(0x3F_FFFF, 0x77);
        WriteAccess(0x1000, (uint)FwCfgDevice.KeySignature << 16 | FwCfgDevice.DmaSelect | FwCfgDevice.DmaRead, 0xFFFF_0000, 0x2000);
        Kick(0x1000);
        Assert.Equal((byte)'Q', _memory.Read8(0x2000));
        Assert.Equal(0, _memory.Read8(0x3F_FFFF)); // zero-filled up to the end of RAM
    }

    [Fact]
    public void StateKeepsTheReadPosition()
    {
        _io.Out16(0x510, 0);
        _io.In8(0x511); _io.In8(0x511);
        var io = new IoBus();
        var copy = new FwCfgDevice(io, _memory);
        copy.LoadState(_cfg.SaveState());
        Assert.Equal((byte)'M', io.In8(0x511));
        Assert.Equal((byte)'U', io.In8(0x511));
    }
}

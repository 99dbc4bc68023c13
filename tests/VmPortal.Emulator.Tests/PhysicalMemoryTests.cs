using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests;

public class PhysicalMemoryTests
{
    private sealed class Recorder : IMmioDevice
    {
        public readonly List<(uint, int, uint)> Writes = new();
        public uint MmioRead(uint address, int size) => address & 0xFF;
        public void MmioWrite(uint address, int size, uint value) => Writes.Add((address, size, value));
    }

    [Fact]
    public void RamRoundTripsAcrossPageBoundary()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.Write32(0x1FFE, 0xDEADBEEF);
        Assert.Equal(0xDEADBEEFu, mem.Read32(0x1FFE));
        Assert.Equal(0xBEEF, mem.Read16(0x1FFE));
        Assert.Equal(0xDE, mem.Read8(0x2001));
    }

    [Fact]
    public void A20GateWrapsAtOneMegabyte()
    {
        var mem = new PhysicalMemory(4 * 1024 * 1024);
        mem.Write8(0x100010, 0x5A);
        mem.A20Enabled = false;
        Assert.Equal(0, mem.Read8(0x000010));
        mem.Write8(0x100010, 0x77);
        Assert.Equal(0x77, mem.Read8(0x000010));
        mem.A20Enabled = true;
        Assert.Equal(0x5A, mem.Read8(0x100010));
    }

    [Fact]
    public void RomIgnoresWritesAndMmioSeesAccesses()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.LoadRom(0xFFFF_0000, new byte[] { 1, 2, 3 });
        mem.Write8(0xFFFF_0000, 9);
        Assert.Equal(1, mem.Read8(0xFFFF_0000));
        var dev = new Recorder();
        mem.MapMmio(0xE000_0000, 0x1000, dev);
        mem.Write16(0xE000_0010, 0xABCD);
        Assert.Equal((0xE000_0010u, 2, 0xABCDu), dev.Writes.Single());
        Assert.Equal(0x10u, mem.Read8(0xE000_0010));
        Assert.Equal(0xFF, mem.Read8(0xC000_0000)); // unmapped
    }

    [Fact]
    public void WritesToCodePagesAreReported()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        var hits = new List<uint>();
        mem.CodePageWritten = p => hits.Add(p);
        mem.MarkCodePage(5);
        mem.Write8(0x5123, 1);
        mem.Write8(0x6000, 1);
        Assert.Equal(new uint[] { 5 }, hits);
    }
}

using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Ata;

/// <summary>
/// What the guest's cache commands and large transfers do to the image: FLUSH CACHE (+EXT), FUA writes and writes with
/// the write cache off call <see cref="IDiskImage.Flush"/> before they complete (an image whose Flush fails makes the
/// command fail), and a multi-sector DMA transfer reaches the image as one call, not one per sector.
/// </summary>
public class AtaDurabilityTests
{
    /// <summary>A real in-memory image that also counts the calls it gets (and can be told to fail Flush).</summary>
    private sealed class CountingImage(int sectors) : IDiskImage
    {
        private readonly MemoryDiskImage _inner = new(sectors * 512);
        public readonly List<(bool Write, long Sector, int Bytes)> Calls = new();
        public int Flushes;
        public bool FailFlush;
        public long Length => _inner.Length;
        public long SectorCount => _inner.SectorCount;
        public bool IsReadOnly => false;
        public ReadOnlySpan<byte> Data => _inner.Data;
        public void Read(long sector, Span<byte> buffer) { Calls.Add((false, sector, buffer.Length)); _inner.Read(sector, buffer); }
        public void Write(long sector, ReadOnlySpan<byte> buffer) { Calls.Add((true, sector, buffer.Length)); _inner.Write(sector, buffer); }
        public void Flush() { if (FailFlush) throw new IOException("disk full"); Flushes++; }
        public void Dispose() { }
    }

    private static (AtaTestRig Rig, CountingImage Image) Rig()
    {
        var rig = new AtaTestRig();
        var img = new CountingImage(4096);
        rig.Ide.Primary.Attach(0, new AtaHardDisk(img));
        rig.Ide.WriteConfig(0x20, 4, 0xC000); // BAR4: bus master at 0xC000
        rig.Ide.WriteConfig(0x04, 2, 0x05);   // I/O + bus master
        rig.Select(0);
        return (rig, img);
    }

    private const ushort Bm = 0xC000;

    /// <summary>PRD table at 0x1000 with 64 KiB entries at 0x100000, 0x110000, …</summary>
    private static void Prd(AtaTestRig rig, int bytes)
    {
        int n = (bytes + 0xFFFF) / 0x10000;
        for (int i = 0; i < n; i++)
        {
            int len = Math.Min(0x10000, bytes - i * 0x10000);
            rig.Memory.Write32((uint)(0x1000 + i * 8), (uint)(0x100000 + i * 0x10000));
            rig.Memory.Write32((uint)(0x1004 + i * 8), (uint)(len & 0xFFFF) | (i == n - 1 ? 0x8000_0000u : 0));
        }
        rig.Bus.Out32(Bm + 4, 0x1000);
    }

    [Fact]
    public void FlushCacheCompletesAfterTheImageFlushedAndFailsWhenItCannot()
    {
        var (rig, img) = Rig();
        rig.Command(AtaProtocol.CmdFlushCache);
        Assert.Equal(1, img.Flushes);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        rig.Command(AtaProtocol.CmdFlushCacheExt);
        Assert.Equal(2, img.Flushes);
        img.FailFlush = true;
        rig.Command(AtaProtocol.CmdFlushCacheExt);
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr);
    }

    [Fact]
    public void FuaWritesAndWritesWithTheCacheOffFlush()
    {
        var (rig, img) = Rig();
        var data = new byte[8 * 512];
        new Random(1).NextBytes(data);
        rig.Memory.WriteBytes(0x100000, data);

        Prd(rig, data.Length);
        rig.Bus.Out8(Bm, IdeBusMaster.CommandStart);
        rig.Lba48(64, 8);
        rig.Command(AtaProtocol.CmdWriteDmaExt);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        Assert.Equal(0, img.Flushes); // write-back cache: no flush
        rig.Bus.Out8(Bm, 0);

        rig.Bus.Out8(Bm, IdeBusMaster.CommandStart);
        rig.Lba48(128, 8);
        rig.Command(AtaProtocol.CmdWriteDmaFuaExt);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        Assert.Equal(1, img.Flushes);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(data, img.Data.Slice(128 * 512, data.Length).ToArray());
        rig.Bus.Out8(Bm, 0);

        // WRITE MULTIPLE FUA EXT (PIO, 16 sectors per block from power-on)
        rig.Lba48(300, 2);
        rig.Command(AtaProtocol.CmdWriteMultipleFuaExt);
        rig.WriteBlock(data.AsSpan(0, 1024));
        Assert.Equal(2, img.Flushes);
        Assert.Equal(data[..1024], img.Data.Slice(300 * 512, 1024).ToArray());

        // SET FEATURES 82h: write cache off → every write is flushed before it completes
        rig.Bus.Out8(AtaTestRig.Base + 1, AtaProtocol.FeatureDisableWriteCache);
        rig.Command(AtaProtocol.CmdSetFeatures);
        Assert.Equal(0, rig.Identify()[85] & (1 << 5));
        rig.Lba28(400, 1);
        rig.Command(AtaProtocol.CmdWriteSectors);
        rig.WriteBlock(data.AsSpan(0, 512));
        Assert.Equal(3, img.Flushes);
    }

    [Fact]
    public void A256SectorDmaTransferIsOneImageCall()
    {
        var (rig, img) = Rig();
        var data = new byte[256 * 512];
        new Random(2).NextBytes(data);
        rig.Memory.WriteBytes(0x100000, data);
        Prd(rig, data.Length);
        rig.Bus.Out8(Bm, IdeBusMaster.CommandStart);
        rig.Lba48(1000, 256);
        rig.Command(AtaProtocol.CmdWriteDmaExt);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        Assert.Equal([(true, 1000L, 256 * 512)], img.Calls);
        rig.Bus.Out8(Bm, 0);

        img.Calls.Clear();
        rig.Memory.WriteBytes(0x100000, new byte[data.Length]);
        Prd(rig, data.Length);
        rig.Bus.Out8(Bm, IdeBusMaster.CommandStart | IdeBusMaster.CommandToMemory);
        rig.Lba48(1000, 256);
        rig.Command(AtaProtocol.CmdReadDmaExt);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        Assert.Equal([(false, 1000L, 256 * 512)], img.Calls);
        var back = new byte[data.Length];
        rig.Memory.ReadBytes(0x100000, back);
        Assert.Equal(data, back);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);

        // PIO READ MULTIPLE: one image call per 16-sector block
        img.Calls.Clear();
        rig.Lba28(2000, 32);
        rig.Command(AtaProtocol.CmdReadMultiple);
        rig.ReadBlock(16 * 512);
        rig.ReadBlock(16 * 512);
        Assert.Equal([(false, 2000L, 16 * 512), (false, 2016L, 16 * 512)], img.Calls);
    }

    [Fact]
    public void IdentifyAdvertisesWhatLibataNeeds()
    {
        var (rig, _) = Rig();
        var w = rig.Identify();
        Assert.Equal(0x8010, w[47]);                       // READ/WRITE MULTIPLE up to 16 sectors
        Assert.Equal(0x110, w[59]);                        // multiple mode on, 16 sectors
        Assert.Equal(0x300, w[49] & 0x300);                // LBA and DMA
        Assert.Equal(0x7, w[53] & 0x7);                    // words 64–70 and 88 valid
        Assert.Equal(0x3F, w[88] & 0x3F);                  // UDMA 0–5 supported
        Assert.Equal(0x7, w[63] & 0x7);                    // MWDMA 0–2 supported
        Assert.Equal((1 << 13) | (1 << 12) | (1 << 10), w[83] & ((1 << 13) | (1 << 12) | (1 << 10))); // FLUSH EXT, FLUSH, LBA48
        Assert.Equal(1 << 6, w[84] & (1 << 6));            // WRITE DMA/MULTIPLE FUA EXT
        Assert.Equal(1 << 6, w[87] & (1 << 6));
        Assert.Equal(4096L, w[100] | (long)w[101] << 16);  // LBA48 capacity
    }
}

using System.Security.Cryptography;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

public sealed class DiskImageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-disk-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public void MemoryImageReadsWhatWasWrittenAndZeroFillsPastTheEnd()
    {
        var img = new MemoryDiskImage(3 * 512);
        var data = Pattern(1024, 1);
        img.Write(1, data);
        var back = new byte[1024];
        img.Read(1, back);
        Assert.Equal(data, back);
        Assert.Equal(3, img.SectorCount);
        var tail = new byte[1024];
        tail.AsSpan().Fill(0xAA);
        img.Read(2, tail); // sector 2 exists, sector 3 does not
        Assert.Equal(data[512..], tail[..512]);
        Assert.All(tail[512..], b => Assert.Equal(0, b));
        var ro = new MemoryDiskImage(new byte[512], readOnly: true);
        Assert.Throws<InvalidOperationException>(() => ro.Write(0, new byte[512]));
        Assert.Throws<ArgumentException>(() => img.Read(0, new byte[100]));
    }

    [Fact]
    public void RawImageRoundTripsAndHonoursReadOnly()
    {
        string path = Path.Combine(_dir, "disk.img");
        var data = Pattern(3 * 512, 2);
        using (var img = RawDiskImage.Create(path, 1024 * 1024))
        {
            Assert.False(img.IsReadOnly);
            Assert.Equal(2048, img.SectorCount);
            img.Write(100, data);
            img.Flush();
        }
        Assert.Equal(1024 * 1024, new FileInfo(path).Length);
        Assert.Equal(data, File.ReadAllBytes(path).AsSpan(100 * 512, data.Length).ToArray());
        using (var ro = new RawDiskImage(path, readOnly: true))
        {
            var back = new byte[3 * 512];
            ro.Read(100, back);
            Assert.Equal(data, back);
            Assert.True(ro.IsReadOnly);
            Assert.Throws<InvalidOperationException>(() => ro.Write(0, new byte[512]));
        }
    }

    [Fact]
    public void RawImageOfOddSizeReadsTheTailPaddedWithZeros()
    {
        string path = Path.Combine(_dir, "odd.bin");
        var data = Pattern(700, 3);
        File.WriteAllBytes(path, data);
        using var img = new RawDiskImage(path, readOnly: true);
        Assert.Equal(2, img.SectorCount);
        var back = new byte[1024];
        img.Read(0, back);
        Assert.Equal(data, back[..700]);
        Assert.All(back[700..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void CowOverlayRoundTripsAndNeverTouchesTheBase()
    {
        string basePath = Path.Combine(_dir, "base.img");
        string overlayPath = Path.Combine(_dir, "vm.cow");
        var baseBytes = Pattern(1024 * 1024 + 512, 4); // not a multiple of the cluster size
        File.WriteAllBytes(basePath, baseBytes);
        byte[] baseHash = SHA256.HashData(baseBytes);
        var expected = (byte[])baseBytes.Clone();

        var w1 = Pattern(512, 5);     // inside cluster 0, not at its start
        var w2 = Pattern(3 * 512, 6); // straddles clusters 1 and 2 (64 KiB clusters)
        var w3 = Pattern(512, 7);     // the odd last sector
        using (var baseImg = new RawDiskImage(basePath, readOnly: true))
        using (var cow = CowDiskImage.Create(overlayPath, baseImg))
        {
            var before = new byte[8192];
            cow.Read(0, before);
            Assert.Equal(baseBytes[..8192], before); // an empty overlay reads through to the base
            cow.Write(3, w1);
            cow.Write(255, w2);
            cow.Write(2048, w3);
            cow.Flush();
            w1.CopyTo(expected, 3 * 512);
            w2.CopyTo(expected, 255 * 512);
            w3.CopyTo(expected, 2048 * 512);
            Assert.Equal(4, cow.AllocatedClusters);
            AssertWholeImage(cow, expected);
        }
        Assert.Equal(baseHash, SHA256.HashData(File.ReadAllBytes(basePath)));

        // Reopen: the overlay alone remembers the writes; a second write to an allocated cluster goes in place.
        using (var baseImg = new RawDiskImage(basePath, readOnly: true))
        using (var cow = CowDiskImage.Open(overlayPath, baseImg))
        {
            AssertWholeImage(cow, expected);
            var w4 = Pattern(512, 8);
            long lengthBefore = new FileInfo(overlayPath).Length;
            cow.Write(4, w4);
            w4.CopyTo(expected, 4 * 512);
            Assert.Equal(lengthBefore, new FileInfo(overlayPath).Length);
            AssertWholeImage(cow, expected);
        }
        Assert.Equal(baseHash, SHA256.HashData(File.ReadAllBytes(basePath)));
    }

    [Fact]
    public void CowOpenRejectsForeignFilesAndMismatchedBases()
    {
        string overlayPath = Path.Combine(_dir, "a.cow");
        var baseImg = new MemoryDiskImage(new byte[128 * 1024], readOnly: true);
        CowDiskImage.Create(overlayPath, baseImg).Dispose();
        Assert.Throws<InvalidDataException>(() => CowDiskImage.Open(overlayPath, new MemoryDiskImage(64 * 1024)));
        string junk = Path.Combine(_dir, "junk.cow");
        File.WriteAllBytes(junk, Pattern(8192, 9));
        Assert.Throws<InvalidDataException>(() => CowDiskImage.Open(junk, baseImg));
        using var ok = CowDiskImage.Open(overlayPath, baseImg);
        Assert.Equal(0, ok.AllocatedClusters);
    }

    private static void AssertWholeImage(IDiskImage img, byte[] expected)
    {
        var all = new byte[img.SectorCount * 512];
        img.Read(0, all);
        Assert.Equal(expected, all[..expected.Length]);
    }
}

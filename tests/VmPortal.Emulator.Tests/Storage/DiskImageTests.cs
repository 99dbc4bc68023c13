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
}

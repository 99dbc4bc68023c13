using System.Buffers.Binary;
using System.Security.Cryptography;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>Images we create and write pass <c>qemu-img check</c> and <c>qemu-img compare</c> against the expected bytes.</summary>
public sealed class ImageWriteTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-write-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Seeded random writes (unaligned, cluster-straddling) to both the image and a byte-array reference.</summary>
    private static void RandomWrites(DiskImageBase img, byte[] reference, int seed, int count, int maxLength)
    {
        var r = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            int len = r.Next(1, maxLength);
            long off = r.NextInt64(0, reference.Length - len);
            var data = new byte[len];
            if (r.Next(5) == 0) data.AsSpan().Fill((byte)r.Next(256)); else r.NextBytes(data);
            img.WriteAt(off, data);
            data.CopyTo(reference, off);
        }
    }

    [Fact]
    public void BlankQcow2AfterRandomWritesIsCleanAndEqualsTheReference()
    {
        string path = Path.Combine(_dir, "blank.qcow2");
        DiskImageFile.CreateQcow2(path, 5 * 1024 * 1024 + 512);
        QemuImg.AssertCheckClean(path);
        var reference = new byte[5 * 1024 * 1024 + 512];
        using (var img = DiskImageFile.OpenImage(path, readOnly: false))
        {
            RandomWrites(img, reference, 1, 200, 200_000);
            img.Flush();
            RandomWrites(img, reference, 2, 50, 3000);
        }
        QemuImg.AssertCheckClean(path);
        QemuImg.AssertSameAsRaw(path, "qcow2", reference, _dir);
        Assert.Empty(DiskImageFile.Check(path));
        var json = QemuImg.Img("info", "--output=json", path);
        Assert.Contains("\"format\": \"qcow2\"", json);
    }

    [Fact]
    public void OverlayWritesLeaveTheBaseUntouchedAndQemuSeesTheMergedDisk()
    {
        string basePath = Path.Combine(_dir, "base.img");
        var reference = QemuImg.SampleDisk(4 * 1024 * 1024, 3);
        File.WriteAllBytes(basePath, reference);
        var baseHash = SHA256.HashData(File.ReadAllBytes(basePath));
        string ov = Path.Combine(_dir, "ov.qcow2");
        DiskImageFile.CreateQcow2(ov, 0, "base.img"); // size from the base, name relative to the overlay
        var info = DiskImageFile.Probe(ov);
        Assert.Equal((reference.Length, "base.img", (DiskFormat?)DiskFormat.Raw), (info.VirtualSize, info.BackingFile, info.BackingFormat));
        using (var img = DiskImageFile.OpenImage(ov, readOnly: false))
            RandomWrites(img, reference, 4, 150, 100_000);
        QemuImg.AssertCheckClean(ov);
        QemuImg.AssertSameAsRaw(ov, "qcow2", reference, _dir);
        Assert.Equal(baseHash, SHA256.HashData(File.ReadAllBytes(basePath)));
        Assert.Contains("backing file format: raw", QemuImg.Img("info", ov));
    }

    [Theory]
    [InlineData("v3-compressed", new[] { "-c", "-O", "qcow2" })]
    [InlineData("v2", new[] { "-O", "qcow2", "-o", "compat=0.10" })]
    [InlineData("512-clusters", new[] { "-O", "qcow2", "-o", "cluster_size=512" })]
    [InlineData("refcount-bits-2", new[] { "-O", "qcow2", "-o", "refcount_bits=2,cluster_size=4096" })]
    public void WritingIntoQemuMadeImagesKeepsThemClean(string name, string[] convertOptions)
    {
        string src = Path.Combine(_dir, "src.raw");
        var reference = QemuImg.SampleDisk(3 * 1024 * 1024, 5);
        File.WriteAllBytes(src, reference);
        string path = Path.Combine(_dir, name + ".qcow2");
        QemuImg.Img(["convert", "-f", "raw", .. convertOptions, src, path]);
        using (var img = DiskImageFile.OpenImage(path, readOnly: false))
            RandomWrites(img, reference, name.Length, 120, 70_000);
        QemuImg.AssertCheckClean(path);
        QemuImg.AssertSameAsRaw(path, "qcow2", reference, _dir);
    }

    [Fact]
    public void SmallClustersGrowTheRefcountTableAndStayClean()
    {
        // 512-byte clusters: one refcount table cluster covers 64 blocks × 256 clusters = 8 MiB of file
        string path = Path.Combine(_dir, "small.qcow2");
        QemuImg.Img("create", "-f", "qcow2", "-o", "cluster_size=512", path, "12M");
        var reference = new byte[12 * 1024 * 1024];
        using (var img = DiskImageFile.OpenImage(path, readOnly: false))
        {
            var chunk = new byte[1 << 20];
            new Random(9).NextBytes(chunk);
            for (int i = 0; i < 11; i++)
            {
                img.WriteAt(i * (long)chunk.Length + 512 * i, chunk);
                chunk.CopyTo(reference, i * chunk.Length + 512 * i);
            }
        }
        Assert.True(new FileInfo(path).Length > 8 * 1024 * 1024);
        QemuImg.AssertCheckClean(path);
        QemuImg.AssertSameAsRaw(path, "qcow2", reference, _dir);
    }

    [Fact]
    public void ResizeGrowsQcow2RawAndVhdAndQemuAgrees()
    {
        string q = Path.Combine(_dir, "grow.qcow2");
        DiskImageFile.CreateQcow2(q, 4 * 1024 * 1024);
        using (var img = DiskImageFile.OpenImage(q, readOnly: false)) img.WriteAt(1000, new byte[] { 1, 2, 3 });
        long newSize = 600L * 1024 * 1024 + 4096; // past 512 MiB: the L1 table moves
        DiskImageFile.Resize(q, newSize);
        using (var img = DiskImageFile.OpenImage(q, readOnly: false))
        {
            Assert.Equal(newSize, img.Length);
            img.WriteAt(newSize - 3, new byte[] { 7, 8, 9 });
        }
        QemuImg.AssertCheckClean(q);
        Assert.Contains("\"virtual-size\": " + newSize, QemuImg.Img("info", "--output=json", q));
        var tail = new byte[4096];
        using (var img = DiskImageFile.OpenImage(q, readOnly: true))
        {
            img.ReadAt(newSize - 4096, tail);
            Assert.Equal(new byte[] { 7, 8, 9 }, tail[^3..]);
            img.ReadAt(0, tail);
            Assert.Equal(new byte[] { 1, 2, 3 }, tail[1000..1003]);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => DiskImageFile.Resize(q, 1024 * 1024));

        string raw = Path.Combine(_dir, "grow.raw");
        DiskImageFile.Create(raw, DiskFormat.Raw, 1024 * 1024);
        DiskImageFile.Resize(raw, 3 * 1024 * 1024);
        Assert.Equal(3 * 1024 * 1024, new FileInfo(raw).Length);

        string vhd = Path.Combine(_dir, "grow.vhd");
        DiskImageFile.Create(vhd, DiskFormat.Vhd, 3 * 1024 * 1024, vhdFixed: true);
        using (var img = DiskImageFile.OpenImage(vhd, readOnly: false)) img.WriteAt(5, new byte[] { 4, 5, 6 });
        DiskImageFile.Resize(vhd, 5 * 1024 * 1024);
        long vhdSize = DiskImageFile.Probe(vhd).VirtualSize;
        Assert.InRange(vhdSize, 5 * 1024 * 1024, 5 * 1024 * 1024 + 128 * 1024); // rounded up to a CHS capacity
        var expected = new byte[vhdSize];
        expected[5] = 4; expected[6] = 5; expected[7] = 6;
        Assert.Equal(expected, QemuImg.ToRaw(vhd, "vpc", _dir));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void VhdWeWriteEqualsTheReferenceForQemu(bool isFixed)
    {
        string path = Path.Combine(_dir, isFixed ? "f.vhd" : "d.vhd");
        DiskImageFile.Create(path, DiskFormat.Vhd, 5 * 1024 * 1024, vhdFixed: isFixed);
        long size = DiskImageFile.Probe(path).VirtualSize;
        Assert.InRange(size, 5 * 1024 * 1024, 5 * 1024 * 1024 + 128 * 1024); // rounded up to a CHS capacity, like QEMU
        var reference = new byte[size];
        using (var img = DiskImageFile.OpenImage(path, readOnly: false))
        {
            Assert.Equal(DiskFormat.Vhd, img.Format);
            RandomWrites(img, reference, 11, 80, 300_000);
        }
        if (!isFixed) Assert.Contains("\"virtual-size\": " + size, QemuImg.Img("info", "--output=json", path));
        QemuImg.AssertSameAsRaw(path, "vpc", reference, _dir);
        Assert.Empty(DiskImageFile.Check(path));
    }

    [Fact]
    public void ConvertFlattensAChainIntoEveryWritableFormat()
    {
        string basePath = Path.Combine(_dir, "base.qcow2");
        var reference = QemuImg.SampleDisk(3 * 1024 * 1024, 21);
        File.WriteAllBytes(basePath + ".raw", reference);
        QemuImg.Img("convert", "-c", "-O", "qcow2", basePath + ".raw", basePath);
        string ov = Path.Combine(_dir, "ov.qcow2");
        DiskImageFile.CreateQcow2(ov, 0, basePath);
        using (var img = DiskImageFile.OpenImage(ov, readOnly: false)) RandomWrites(img, reference, 22, 40, 50_000);
        foreach (var (fmt, qfmt) in new[] { (DiskFormat.Qcow2, "qcow2"), (DiskFormat.Raw, "raw"), (DiskFormat.Vhd, "vpc") })
        {
            string dst = Path.Combine(_dir, "flat." + qfmt);
            long last = 0;
            DiskImageFile.Convert(ov, dst, fmt, new Progress<long>(v => last = v));
            Assert.Equal(fmt, DiskImageFile.Probe(dst).Format);
            Assert.Null(DiskImageFile.Probe(dst).BackingFile);
            QemuImg.AssertSameAsRaw(dst, qfmt, reference, _dir);
            if (fmt == DiskFormat.Qcow2) QemuImg.AssertCheckClean(dst);
        }
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void AnUnknownHeaderExtensionIsKept()
    {
        string path = Path.Combine(_dir, "ext.qcow2");
        DiskImageFile.CreateQcow2(path, 1024 * 1024);
        // insert an extension of a type nobody knows at the start of the extension area (offset 112)
        var head = new byte[512];
        using (var fs = File.Open(path, FileMode.Open)) { fs.ReadExactly(head); }
        var ext = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(ext, 0x0ddba11);
        BinaryPrimitives.WriteUInt32BigEndian(ext.AsSpan(4), 5);
        "hello"u8.CopyTo(ext.AsSpan(8));
        using (var fs = File.Open(path, FileMode.Open)) { fs.Position = 112; fs.Write(ext); fs.Write(new byte[8]); }
        QemuImg.AssertCheckClean(path);
        using (var img = DiskImageFile.OpenImage(path, readOnly: false)) img.WriteAt(70_000, new byte[100_000].Select((_, i) => (byte)i).ToArray());
        var after = new byte[128];
        using (var fs = File.Open(path, FileMode.Open)) { fs.Position = 112; fs.ReadExactly(after); }
        Assert.Equal(ext, after[..16]);
        QemuImg.AssertCheckClean(path);
    }

    [Fact]
    public void FlushWritesMetadataSoAnUnclosedImageIsCleanForQemu()
    {
        string path = Path.Combine(_dir, "flushed.qcow2");
        DiskImageFile.CreateQcow2(path, 2 * 1024 * 1024);
        var reference = new byte[2 * 1024 * 1024];
        var img = DiskImageFile.OpenImage(path, readOnly: false);
        RandomWrites(img, reference, 31, 60, 40_000);
        img.Flush();
        // not disposed: what a killed process leaves after the guest's last flush
        Assert.Equal(0, QemuImg.Run("cp", path, path + ".copy").Exit); // the file is locked against .NET readers
        QemuImg.AssertCheckClean(path + ".copy");
        QemuImg.AssertSameAsRaw(path + ".copy", "qcow2", reference, _dir);
        img.Dispose();
    }
}

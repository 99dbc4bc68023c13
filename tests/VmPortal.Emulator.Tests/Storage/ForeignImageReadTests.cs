using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>Images made by qemu-img read byte-identical to qemu-img's own raw conversion of them.</summary>
public sealed class ForeignImageReadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-foreign-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] ReadAll(string path)
    {
        using var img = DiskImageFile.OpenImage(path, readOnly: true);
        var all = new byte[img.Length];
        // odd-sized reads so runs start and end inside clusters
        for (long off = 0; off < all.Length;)
        {
            int n = (int)Math.Min(all.Length - off, 37 * 1024 + 512);
            img.ReadAt(off, all.AsSpan((int)off, n));
            off += n;
        }
        return all;
    }

    [Theory]
    [InlineData("qcow2", DiskFormat.Qcow2, new[] { "-O", "qcow2" })]
    [InlineData("qcow2-v2", DiskFormat.Qcow2, new[] { "-O", "qcow2", "-o", "compat=0.10" })]
    [InlineData("qcow2-compressed", DiskFormat.Qcow2, new[] { "-c", "-O", "qcow2" })]
    [InlineData("qcow2-v2-compressed-4k", DiskFormat.Qcow2, new[] { "-c", "-O", "qcow2", "-o", "compat=0.10,cluster_size=4096" })]
    [InlineData("qcow2-512-refcount8", DiskFormat.Qcow2, new[] { "-O", "qcow2", "-o", "cluster_size=512,refcount_bits=8" })]
    [InlineData("qcow2-refcount1", DiskFormat.Qcow2, new[] { "-O", "qcow2", "-o", "refcount_bits=1" })]
    [InlineData("vhd-dynamic", DiskFormat.Vhd, new[] { "-O", "vpc", "-o", "subformat=dynamic" })]
    [InlineData("vhd-fixed", DiskFormat.Vhd, new[] { "-O", "vpc", "-o", "subformat=fixed" })]
    [InlineData("vhd-dynamic-forcesize", DiskFormat.Vhd, new[] { "-O", "vpc", "-o", "subformat=dynamic,force_size=on" })]
    [InlineData("vmdk", DiskFormat.Vmdk, new[] { "-O", "vmdk", "-o", "subformat=monolithicSparse" })]
    public void QemuMadeImageReadsLikeItsRawConversion(string name, DiskFormat format, string[] convertOptions)
    {
        string src = Path.Combine(_dir, "src.raw");
        File.WriteAllBytes(src, QemuImg.SampleDisk(3 * 1024 * 1024 + 64 * 1024, seed: name.Length));
        string img = Path.Combine(_dir, name + ".img"); // the extension says nothing: the header decides
        QemuImg.Img(["convert", "-f", "raw", .. convertOptions, src, img]);
        string qfmt = format switch { DiskFormat.Vhd => "vpc", DiskFormat.Vmdk => "vmdk", _ => "qcow2" };
        var expected = QemuImg.ToRaw(img, qfmt, _dir);

        var info = DiskImageFile.Probe(img);
        Assert.Equal(format, info.Format);
        Assert.Equal(expected.Length, info.VirtualSize);
        Assert.Equal(new FileInfo(img).Length, info.FileSize);
        Assert.True(expected.AsSpan().SequenceEqual(ReadAll(img)), $"{name}: our read differs from qemu-img's raw conversion");
        Assert.Empty(DiskImageFile.Check(img));
    }

    [Fact]
    public void BackingChainsWithZeroClustersAndRelativeNamesReadLikeQemu()
    {
        // raw base ← v2 qcow2 (backing format recorded) ← v3 qcow2 with zero clusters and data; relative names
        string sub = Directory.CreateDirectory(Path.Combine(_dir, "vms")).FullName;
        File.WriteAllBytes(Path.Combine(_dir, "base.raw"), QemuImg.SampleDisk(2 * 1024 * 1024, 7));
        string mid = Path.Combine(sub, "mid.qcow2");
        QemuImg.Img("create", "-f", "qcow2", "-o", "compat=0.10", "-b", "../base.raw", "-F", "raw", mid);
        QemuImg.Io(mid, "qcow2", "write -P 0x5a 65536 70000", "write -P 0x11 1500000 3000");
        string top = Path.Combine(sub, "top.qcow2");
        QemuImg.Img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top);
        QemuImg.Io(top, "qcow2", "write -z 0 131072", "write -P 0x77 1048576 4096", "write -z 1441792 65536");
        var expected = QemuImg.ToRaw(top, "qcow2", _dir);

        var info = DiskImageFile.Probe(top);
        Assert.Equal(("mid.qcow2", (DiskFormat?)DiskFormat.Qcow2), (info.BackingFile, info.BackingFormat));
        Assert.Equal(DiskFormat.Raw, DiskImageFile.Probe(mid).BackingFormat);
        Assert.True(expected.AsSpan().SequenceEqual(ReadAll(top)));
        using var img = DiskImageFile.OpenImage(top, readOnly: true);
        Assert.Equal(DiskFormat.Qcow2, img.Backing!.Format);
        Assert.Equal(DiskFormat.Raw, img.Backing.Backing!.Format);
    }

    [Fact]
    public void ProbeMatchesQemuImgInfo()
    {
        string img = Path.Combine(_dir, "x.qcow2");
        QemuImg.Img("create", "-f", "qcow2", img, "123456789");
        string json = QemuImg.Img("info", "--output=json", img);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var info = DiskImageFile.Probe(img);
        Assert.Equal(doc.RootElement.GetProperty("virtual-size").GetInt64(), info.VirtualSize);
        Assert.Equal(doc.RootElement.GetProperty("actual-size").GetInt64() > 0, info.FileSize > 0);
        Assert.Null(info.BackingFile);
    }
}

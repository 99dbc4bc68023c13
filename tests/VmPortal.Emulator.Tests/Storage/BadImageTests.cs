using System.Buffers.Binary;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>Damaged and hostile files are refused with an <see cref="InvalidDataException"/> that names the problem.</summary>
public sealed class BadImageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-bad-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string QemuQcow2(string name, string size = "4M", params string[] options)
    {
        string p = Path.Combine(_dir, name);
        QemuImg.Img(["create", "-f", "qcow2", .. options, p, size]);
        return p;
    }

    private static void Patch(string path, long offset, byte[] bytes)
    {
        using var fs = File.Open(path, FileMode.Open);
        fs.Position = offset;
        fs.Write(bytes);
    }

    private static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64BigEndian(b, v); return b; }

    private static string Refused(string path, bool readOnly = true)
    {
        var e1 = Assert.Throws<InvalidDataException>(() => DiskImageFile.Open(path, readOnly));
        Assert.Contains(Path.GetFileName(path), e1.Message);
        Assert.NotEmpty(DiskImageFile.Check(path));
        return e1.Message;
    }

    [Fact]
    public void TruncatedQcow2()
    {
        string p = QemuQcow2("t.qcow2");
        using (var fs = File.Open(p, FileMode.Open)) fs.SetLength(40);
        Assert.Contains("truncated", Refused(p));
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => DiskImageFile.Probe(p)).Message);

        string q = Path.Combine(_dir, "t2.qcow2");
        DiskImageFile.CreateQcow2(q, 4 << 20);
        using (var fs = File.Open(q, FileMode.Open)) fs.SetLength(3 * 65536); // the L1 table is gone
        Assert.Contains("L1 table", Refused(q));
    }

    [Fact]
    public void GarbageAfterTheMagic()
    {
        string p = Path.Combine(_dir, "g.qcow2");
        var b = new byte[200_000];
        new Random(1).NextBytes(b);
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x514649FB);
        File.WriteAllBytes(p, b);
        Refused(p);
        Assert.Throws<InvalidDataException>(() => DiskImageFile.Probe(p));
    }

    [Fact]
    public void HugeClaimedSizes()
    {
        string p = QemuQcow2("h.qcow2");
        Patch(p, 24, U64(1UL << 60));
        Assert.Contains("larger than the supported maximum", Refused(p));

        string v = Path.Combine(_dir, "h.vhd");
        QemuImg.Img("create", "-f", "vpc", "-o", "subformat=fixed,force_size=on", v, "1M");
        var footer = File.ReadAllBytes(v)[^512..];
        BinaryPrimitives.WriteUInt64BigEndian(footer.AsSpan(48), 1UL << 50);
        BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(64), VhdDiskImage.Checksum(footer, 64));
        Patch(v, new FileInfo(v).Length - 512, footer);
        Assert.Contains("larger than the supported maximum", Refused(v));
    }

    [Fact]
    public void VhdWithBadChecksumOrTruncated()
    {
        string v = Path.Combine(_dir, "c.vhd");
        QemuImg.Img("create", "-f", "vpc", "-o", "subformat=dynamic", v, "4M");
        Patch(v, new FileInfo(v).Length - 512 + 64, new byte[] { 1, 2, 3, 4 });
        Patch(v, 64, new byte[] { 1, 2, 3, 4 });
        Assert.Contains("checksum", Refused(v));

        string f = Path.Combine(_dir, "f.vhd");
        QemuImg.Img("create", "-f", "vpc", "-o", "subformat=fixed", f, "4M");
        var footer = File.ReadAllBytes(f)[^512..];
        using (var fs = File.Open(f, FileMode.Open)) fs.SetLength(1024 * 1024);
        Patch(f, 1024 * 1024, footer); // a footer claiming 4 MiB on a 1 MiB file
        Assert.Contains("truncated", Refused(f));
    }

    [Fact]
    public void LoopedBackingChain()
    {
        string a = Path.Combine(_dir, "a.qcow2"), b = Path.Combine(_dir, "b.qcow2");
        QemuImg.Img("create", "-f", "qcow2", b, "1M");
        QemuImg.Img("create", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a);
        QemuImg.Img("rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", b);
        Assert.Contains("loops", Refused(a));
        Assert.Contains("loops", Assert.Throws<InvalidDataException>(() => DiskImageFile.Open(a, readOnly: false)).Message);
    }

    [Fact]
    public void MissingBackingFileIsNamed()
    {
        string basePath = Path.Combine(_dir, "gone-base.raw");
        File.WriteAllBytes(basePath, new byte[1 << 20]);
        string ov = Path.Combine(_dir, "ov.qcow2");
        DiskImageFile.CreateQcow2(ov, 0, basePath);
        File.Delete(basePath);
        var e = Assert.Throws<InvalidDataException>(() => DiskImageFile.Open(ov, readOnly: false));
        Assert.Contains("gone-base.raw", e.Message);
        Assert.Contains("not found", e.Message);
        Assert.Contains(DiskImageFile.Check(ov), p => p.Contains("gone-base.raw"));
        Assert.Throws<InvalidDataException>(() => DiskImageFile.CreateQcow2(Path.Combine(_dir, "x.qcow2"), 0, basePath));
    }

    [Fact]
    public void IncompatibleFeatureBitsAreRefusedByName()
    {
        string p = QemuQcow2("i.qcow2");
        Patch(p, 72, U64(1UL << 40));
        Assert.Contains("unknown incompatible feature", Refused(p));
        Patch(p, 72, U64(1UL << 4));
        Assert.Contains("extended L2", Refused(p));
        Patch(p, 72, U64(2)); // corrupt: readable, not writable
        using (DiskImageFile.Open(p, readOnly: true)) { }
        Assert.Contains("corrupt", Assert.Throws<InvalidDataException>(() => DiskImageFile.Open(p, readOnly: false)).Message);
    }

    [Fact]
    public void TablesPointingPastTheEnd()
    {
        string p = Path.Combine(_dir, "p.qcow2");
        DiskImageFile.CreateQcow2(p, 4 << 20);
        using (var img = DiskImageFile.OpenImage(p, readOnly: false)) img.WriteAt(0, new byte[4096].Select(_ => (byte)1).ToArray());
        // L1 entry 0 at offset 3×64 KiB: point it far past the end
        Patch(p, 3 * 65536, U64((1UL << 63) | (1UL << 40)));
        Assert.Contains("past the end", Refused(p));

        string q = Path.Combine(_dir, "q.qcow2");
        DiskImageFile.CreateQcow2(q, 4 << 20);
        using (var img = DiskImageFile.OpenImage(q, readOnly: false)) img.WriteAt(0, new byte[512].Select(_ => (byte)1).ToArray());
        // the first L2 table: where L1 entry 0 (at 3×64 KiB) points; its entry 0 → far past the end
        var l1 = new byte[8];
        using (var fs = File.OpenRead(q)) { fs.Position = 3 * 65536; fs.ReadExactly(l1); }
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(l1) & 0x00FF_FFFF_FFFF_FE00UL);
        Patch(q, l2, U64((1UL << 63) | (1UL << 39)));
        using var img2 = DiskImageFile.OpenImage(q, readOnly: true);
        var e = Assert.Throws<InvalidDataException>(() => img2.ReadAt(0, new byte[512]));
        Assert.Contains("past the end", e.Message);
        Assert.Contains(DiskImageFile.Check(q), m => m.Contains("past the end"));
    }

    [Fact]
    public void EmptyAndDescriptorOnlyFiles()
    {
        string e = Path.Combine(_dir, "empty.img");
        File.WriteAllBytes(e, Array.Empty<byte>());
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => DiskImageFile.Probe(e)).Message);
        string d = Path.Combine(_dir, "d.vmdk");
        File.WriteAllText(d, "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentSparse\"\n");
        Assert.Contains("descriptor", Assert.Throws<InvalidDataException>(() => DiskImageFile.Probe(d)).Message);
    }
}

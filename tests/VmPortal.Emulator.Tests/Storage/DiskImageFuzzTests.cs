using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>Seeded random reads and writes at unaligned offsets with cluster-straddling sizes, against a byte-array reference.</summary>
public sealed class DiskImageFuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-fuzz-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("qcow2-overlay", 1)]
    [InlineData("qcow2-overlay-on-compressed", 2)]
    [InlineData("qcow2-4k-clusters", 3)]
    [InlineData("vhd-dynamic", 4)]
    [InlineData("raw", 5)]
    public void RandomReadsAndWritesMatchTheReference(string kind, int seed)
    {
        int Size = 3 * 1024 * 1024 + 5 * 512;
        var reference = new byte[Size];
        string path = Path.Combine(_dir, "disk");
        string qfmt = "qcow2";
        switch (kind)
        {
            case "qcow2-overlay":
                reference = QemuImg.SampleDisk(Size, seed);
                File.WriteAllBytes(Path.Combine(_dir, "base.raw"), reference);
                DiskImageFile.CreateQcow2(path, 0, "base.raw");
                break;
            case "qcow2-overlay-on-compressed":
                reference = QemuImg.SampleDisk(Size, seed);
                File.WriteAllBytes(Path.Combine(_dir, "base.raw"), reference);
                QemuImg.Img("convert", "-c", "-O", "qcow2", "-o", "cluster_size=16384", Path.Combine(_dir, "base.raw"), Path.Combine(_dir, "base.qcow2"));
                DiskImageFile.CreateQcow2(path, 0, "base.qcow2");
                break;
            case "qcow2-4k-clusters":
                QemuImg.Img("create", "-f", "qcow2", "-o", "cluster_size=4096", path, Size.ToString());
                break;
            case "vhd-dynamic":
                DiskImageFile.Create(path, DiskFormat.Vhd, Size);
                qfmt = "vpc";
                break;
            default:
                DiskImageFile.Create(path, DiskFormat.Raw, Size);
                qfmt = "raw";
                break;
        }
        var r = new Random(seed);
        var img = DiskImageFile.OpenImage(path, readOnly: false);
        Array.Resize(ref reference, (int)img.Length); // a VHD is rounded up to a CHS capacity
        Size = reference.Length;
        try
        {
            for (int i = 0; i < 1500; i++)
            {
                int len = r.Next(4) == 0 ? r.Next(1, 300_000) : r.Next(1, 9000);
                long off = r.NextInt64(0, Size - len + 1);
                switch (r.Next(10))
                {
                    case < 4:
                        var data = new byte[len];
                        r.NextBytes(data);
                        img.WriteAt(off, data);
                        data.CopyTo(reference, off);
                        break;
                    case 9:
                        // close and reopen: everything must come back from the file
                        img.Dispose();
                        img = DiskImageFile.OpenImage(path, readOnly: false);
                        break;
                    case 8:
                        img.Flush();
                        break;
                    default:
                        var got = new byte[len];
                        img.ReadAt(off, got);
                        Assert.True(got.AsSpan().SequenceEqual(reference.AsSpan((int)off, len)), $"step {i}: read at {off}+{len} differs");
                        break;
                }
            }
            // sector API and reads past the end
            var tail = new byte[2048];
            img.Read(img.SectorCount - 2, tail);
            Assert.True(tail.AsSpan(0, 1024).SequenceEqual(reference.AsSpan(Size - 1024)));
            Assert.All(tail[1024..], b => Assert.Equal(0, b));
        }
        finally { img.Dispose(); }
        if (qfmt == "qcow2") QemuImg.AssertCheckClean(path);
        QemuImg.AssertSameAsRaw(path, qfmt, reference, _dir);
    }
}

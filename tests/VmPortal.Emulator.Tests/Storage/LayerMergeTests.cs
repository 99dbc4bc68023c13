using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>
/// <see cref="DiskImageFile.MergeBackingLayer"/> and <see cref="DiskImageFile.SetBackingFile"/> (snapshot deletion) on
/// chains made by QEMU: the merged image reads exactly what it read before (qemu-img compare against its conversion
/// made before the merge), records the layer's backing file and format, and passes qemu-img check.
/// </summary>
public sealed class LayerMergeTests : IDisposable
{
    private const int MiB = 1024 * 1024;
    private readonly string _dir = Directory.CreateTempSubdirectory("vmportal-merge-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void MergingALayerKeepsWhatTheImageReadsAndSkipsTheLayer()
    {
        // base (raw, data everywhere) ← layer (data, a zero cluster over base data, small-cluster image) ← child
        var baseData = QemuImg.SampleDisk(8 * MiB, 7);
        File.WriteAllBytes(P("base.raw"), baseData);
        QemuImg.Img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", P("base.raw"), "-F", "raw", P("layer.qcow2"));
        QemuImg.Io(P("layer.qcow2"), "qcow2", "write -P 0x11 0 128k", "write -z 1M 64k", "write -P 0x22 3M 4k", "write -P 0x33 7M 100k");
        QemuImg.Img("create", "-q", "-f", "qcow2", "-b", "layer.qcow2", "-F", "qcow2", P("child.qcow2")); // relative name
        QemuImg.Io(P("child.qcow2"), "qcow2", "write -P 0x44 64k 64k", "write -P 0x55 3M 64k");
        var before = QemuImg.ToRaw(P("child.qcow2"), "qcow2", _dir);

        long copied = DiskImageFile.MergeBackingLayer(P("child.qcow2"));

        Assert.True(copied > 0);
        var info = DiskImageFile.Probe(P("child.qcow2"));
        Assert.Equal(P("base.raw"), info.BackingFile);
        Assert.Equal(DiskFormat.Raw, info.BackingFormat);
        QemuImg.AssertCheckClean(P("child.qcow2"));
        File.Delete(P("layer.qcow2")); // nothing needs it any more
        QemuImg.AssertSameAsRaw(P("child.qcow2"), "qcow2", before, _dir);
        Assert.Contains("backing file format: raw", QemuImg.Img("info", P("child.qcow2")));
    }

    [Fact]
    public void MergingTheBottomLayerLeavesAnImageWithoutBacking()
    {
        QemuImg.Img("create", "-q", "-f", "qcow2", P("root.qcow2"), "4M");
        QemuImg.Io(P("root.qcow2"), "qcow2", "write -P 0x66 0 1M");
        DiskImageFile.CreateQcow2(P("top.qcow2"), 0, P("root.qcow2"));
        using (var img = DiskImageFile.OpenImage(P("top.qcow2"), readOnly: false)) img.WriteAt(512 * 1024, new byte[4096]);
        var before = QemuImg.ToRaw(P("top.qcow2"), "qcow2", _dir);

        DiskImageFile.MergeBackingLayer(P("top.qcow2"));

        Assert.Null(DiskImageFile.Probe(P("top.qcow2")).BackingFile);
        File.Delete(P("root.qcow2"));
        QemuImg.AssertCheckClean(P("top.qcow2"));
        QemuImg.AssertSameAsRaw(P("top.qcow2"), "qcow2", before, _dir);
        Assert.Throws<InvalidDataException>(() => DiskImageFile.MergeBackingLayer(P("top.qcow2"))); // nothing left to merge
    }

    [Fact]
    public void SetBackingFileRecordsANewBackingAndKeepsTheData()
    {
        File.WriteAllBytes(P("a.raw"), QemuImg.SampleDisk(2 * MiB, 3));
        File.Copy(P("a.raw"), P("b.raw"));
        DiskImageFile.CreateQcow2(P("ov.qcow2"), 0, P("a.raw"));
        using (var img = DiskImageFile.OpenImage(P("ov.qcow2"), readOnly: false)) img.WriteAt(0, new byte[] { 1, 2, 3 });
        var before = QemuImg.ToRaw(P("ov.qcow2"), "qcow2", _dir);

        DiskImageFile.SetBackingFile(P("ov.qcow2"), P("b.raw"));

        Assert.Equal(P("b.raw"), DiskImageFile.Probe(P("ov.qcow2")).BackingFile);
        QemuImg.AssertCheckClean(P("ov.qcow2"));
        QemuImg.AssertSameAsRaw(P("ov.qcow2"), "qcow2", before, _dir);
        Assert.ThrowsAny<Exception>(() => DiskImageFile.SetBackingFile(P("ov.qcow2"), P("missing.raw")));
        Assert.Equal(P("b.raw"), DiskImageFile.Probe(P("ov.qcow2")).BackingFile); // unchanged after the refusal
    }
}

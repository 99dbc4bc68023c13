using Microsoft.Extensions.Options;
using VmPortal.Core.Images;

namespace VmPortal.Core.Tests;

public sealed class ImageCatalogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "vmportal-imgtest-" + Guid.NewGuid().ToString("N"));

    public ImageCatalogTests()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "cache"));
        Directory.CreateDirectory(Path.Combine(_dir, "store"));
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private ImageCatalog Catalog() => new(Options.Create(new ImageStoreOptions
    {
        BuiltInPath = Path.Combine(_dir, "cache"),
        StorePath = Path.Combine(_dir, "store"),
    }));

    [Theory]
    [InlineData("debian-i386-rescue.iso", "debian-i386-rescue-iso")]
    [InlineData("debian-i386-rescue.initrd.gz", "debian-i386-rescue-initrd-gz")]
    [InlineData("ipxe.lkrn", "ipxe-lkrn")]
    public void Slugs_are_stable(string file, string slug) => Assert.Equal(slug, ImageCatalog.Slug(file));

    [Fact]
    public void Lists_only_present_files_with_friendly_names_and_kinds()
    {
        Assert.Empty(Catalog().List());
        File.WriteAllBytes(Path.Combine(_dir, "cache", "ipxe.lkrn"), new byte[123]);
        File.WriteAllBytes(Path.Combine(_dir, "cache", "debian-i386-rescue.initrd.gz"), new byte[7]);
        File.WriteAllBytes(Path.Combine(_dir, "cache", "unrelated.txt"), new byte[7]);
        File.WriteAllBytes(Path.Combine(_dir, "store", "my disk.img"), new byte[9]);
        File.WriteAllBytes(Path.Combine(_dir, "store", "tools.iso"), new byte[9]);

        var list = Catalog().List();
        Assert.Equal(["builtin:debian-i386-rescue-initrd-gz", "builtin:ipxe-lkrn", "upload:my disk.img", "upload:tools.iso"], list.Select(i => i.Id).ToArray());
        var ipxe = list.Single(i => i.Id == "builtin:ipxe-lkrn");
        Assert.Equal(ImageKinds.Kernel, ipxe.Kind);
        Assert.Equal(123, ipxe.SizeBytes);
        Assert.StartsWith("iPXE", ipxe.Name);
        Assert.Equal(ImageKinds.Initrd, list[0].Kind);
        Assert.Equal(ImageKinds.Disk, list[2].Kind);
        Assert.Equal(ImageKinds.Iso, list[3].Kind);
        Assert.NotNull(Catalog().Find("upload:tools.iso"));
        Assert.Null(Catalog().Find("upload:../etc/passwd"));
    }

    [Fact]
    public void TheDebianSystemDiskIsABuiltInDiskNamedDebian12()
    {
        File.WriteAllBytes(Path.Combine(_dir, "cache", "debian-12-i386.img"), new byte[512]);
        var img = Assert.Single(Catalog().List());
        Assert.Equal("builtin:debian-12-i386-img", img.Id);
        Assert.Equal(ImageKinds.Disk, img.Kind);
        Assert.StartsWith("Debian 12", img.Name);
        Assert.True(img.BuiltIn);
    }
}

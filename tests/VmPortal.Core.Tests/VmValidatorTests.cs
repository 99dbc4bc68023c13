using VmPortal.Core.Images;
using VmPortal.Core.Vms;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Tests;

public sealed class VmValidatorTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("web-01")]
    [InlineData("db_primary.prod")]
    [InlineData("A1")]
    public void Good_names_pass(string name) => Assert.Null(VmValidator.NameError(name));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("-x")]
    [InlineData(".x")]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("a;b")]
    [InlineData("é")]
    public void Bad_names_fail(string? name) => Assert.NotNull(VmValidator.NameError(name));

    [Fact]
    public void Name_length_limit_is_63()
    {
        Assert.Null(VmValidator.NameError(new string('a', 63)));
        Assert.NotNull(VmValidator.NameError(new string('a', 64)));
    }

    [Theory]
    [InlineData(15, false)]
    [InlineData(16, true)]
    [InlineData(16384, true)]
    [InlineData(16385, false)]
    [InlineData(-1, false)]
    public void Memory_bounds(int memory, bool ok) => Assert.Equal(ok, VmValidator.MemoryError(memory) is null);

    [Theory]
    [InlineData("52:54:00:12:34:56", true)]
    [InlineData("", true)]
    [InlineData("01:00:5e:00:00:01", false)] // multicast
    [InlineData("52:54:00:12:34", false)]
    [InlineData("zz:54:00:12:34:56", false)]
    public void Mac_rules(string mac, bool ok) => Assert.Equal(ok, VmValidator.MacError(mac) is null);

    [Fact]
    public void Image_ids_are_checked_against_the_catalog()
    {
        var images = new List<ImageInfo>
        {
            new("builtin:debian-i386-rescue-iso", "Debian", ImageKinds.Iso, 1, true, "debian-i386-rescue.iso", DateTimeOffset.UnixEpoch),
            new("upload:base.img", "base.img", ImageKinds.Disk, 1, false, "base.img", DateTimeOffset.UnixEpoch),
        };
        var ok = new VmSpec
        {
            Name = "x", MemoryMiB = 64, CdromImageId = "builtin:debian-i386-rescue-iso",
            Disks = [new DiskSpec { SizeMiB = 10, BackingImageId = "upload:base.img" }],
            BootOrder = [BootDevice.Cdrom, BootDevice.Disk],
        };
        Assert.Empty(VmValidator.Validate(ok, images));

        var bad = new VmSpec
        {
            Name = "x", MemoryMiB = 64, CdromImageId = "upload:base.img",
            Disks = [new DiskSpec { SizeMiB = 10, BackingImageId = "builtin:debian-i386-rescue-iso" }, new DiskSpec { SizeMiB = 10, BackingImageId = "nope" }],
        };
        var errors = VmValidator.Validate(bad, images);
        Assert.Contains("cdromImageId", errors.Keys);
        Assert.Contains("disks[0].backingImageId", errors.Keys);
        Assert.Contains("disks[1].backingImageId", errors.Keys);
    }

    [Fact]
    public void Too_many_disks_and_duplicate_boot_devices_fail()
    {
        var spec = new VmSpec
        {
            Name = "x", MemoryMiB = 64,
            Disks = Enumerable.Range(0, VirtualMachine.MaxDisks + 1).Select(_ => new DiskSpec { SizeMiB = 1 }).ToList(),
            BootOrder = [BootDevice.Disk, BootDevice.Disk],
        };
        var errors = VmValidator.Validate(spec, null);
        Assert.Contains("disks", errors.Keys);
        Assert.Contains("bootOrder", errors.Keys);
    }
}

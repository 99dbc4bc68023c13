namespace VmPortal.Data.Entities;

/// <summary>
/// A catalog entry: a ready machine a user can provision in a second (name it, set a password or key, Create).
/// Admins manage templates; users see the published ones. A VM made from a template is an ordinary VM afterwards
/// (its disk an overlay of the template's base image), so changing or deleting a template never touches its VMs.
/// </summary>
public sealed class VmTemplate
{
    public const int NameMaxLength = 63;
    public const int DescriptionMaxLength = 1000;

    private VmTemplate() { }

    public VmTemplate(string name, DateTimeOffset now)
    {
        Id = Guid.CreateVersion7();
        Rename(name);
        CreatedAt = now;
        UpdatedAt = now;
    }

    public Guid Id { get; private set; }
    public string Name { get; private set; } = "";
    /// <summary>Lower-case name; unique (index).</summary>
    public string NormalizedName { get; private set; } = "";
    public string Description { get; set; } = "";
    /// <summary>Operating system shown in the catalog, e.g. "Debian 12 (bookworm) i386".</summary>
    public string Os { get; set; } = "";
    /// <summary>Catalog icon: one of <c>TemplateIcons.All</c>.</summary>
    public string Icon { get; set; } = "linux";
    /// <summary>Base disk image (kind disk): each VM gets a qcow2 overlay of it.</summary>
    public string? DiskImageId { get; set; }
    /// <summary>ISO in the CD-ROM drive.</summary>
    public string? CdromImageId { get; set; }
    public int MemoryMiB { get; set; } = 256;
    /// <summary>Largest memory a user may choose.</summary>
    public int MaxMemoryMiB { get; set; } = 1024;
    /// <summary>Default disk size (0: the base image's size).</summary>
    public long DiskSizeMiB { get; set; }
    /// <summary>Largest disk a user may choose.</summary>
    public long MaxDiskSizeMiB { get; set; } = 16 * 1024;
    public List<BootDevice> BootOrder { get; set; } = [BootDevice.Disk, BootDevice.Cdrom];
    /// <summary>Attach a cloud-init seed (hostname, user, password/keys) to each VM made from it.</summary>
    public bool CloudInit { get; set; } = true;
    /// <summary>Hostname of a new VM: <c>{name}</c> is replaced by the VM's name.</summary>
    public string HostnamePattern { get; set; } = "{name}";
    /// <summary>User created on first boot when the requester names none.</summary>
    public string DefaultUser { get; set; } = "debian";
    public bool NicEnabled { get; set; } = true;
    public string Network { get; set; } = "default";
    /// <summary>Visible to every user in the catalog (otherwise admins only).</summary>
    public bool Published { get; set; } = true;
    /// <summary>A lease for each VM made from it: the VM expires this many hours after it is made (null: no lease).</summary>
    public int? LeaseHours { get; set; }
    /// <summary>Hours between a template lease's expiry (the VM is stopped) and the VM's deletion (null: 24).</summary>
    public int? LeaseGraceHours { get; set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public uint Version { get; private set; }

    public void Rename(string name)
    {
        Name = name;
        NormalizedName = name.ToLowerInvariant();
    }
}

/// <summary>The catalog's icons.</summary>
public static class TemplateIcons
{
    public static readonly string[] All = ["linux", "debian", "memtest", "network", "disk", "generic"];
}

namespace VmPortal.Data.Entities;

/// <summary>
/// A snapshot of a VM (table <c>vm_snapshots</c>): the frozen qcow2 layer of each of its disks at that moment and,
/// with memory, the machine state file. Snapshots form a tree through <see cref="ParentId"/>; exactly one snapshot of
/// a VM (or none) is <see cref="IsCurrent"/>: the one its running disks continue from ("You are here").
/// Files live in the VM's disk directory (docs/portal.md "Snapshots").
/// </summary>
public sealed class VmSnapshot
{
    public const int NameMaxLength = 40;
    public const int DescriptionMaxLength = 1000;

    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid VmId { get; set; }
    public Guid? ParentId { get; set; }
    public string Name { get; set; } = "";
    public string Description { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Whether <see cref="StateFile"/> holds the running machine's state (RAM, CPU, devices).</summary>
    public bool IncludesMemory { get; set; }
    /// <summary>The machine state file's name in the VM's directory, or null without memory.</summary>
    public string? StateFile { get; set; }
    /// <summary>Bytes on disk of the frozen layers plus the state file (when taken; merges later move data around).</summary>
    public long SizeBytes { get; set; }
    /// <summary>The position the VM's disks continue from: the newest snapshot taken or the last one reverted to.</summary>
    public bool IsCurrent { get; set; }
    /// <summary>Frozen layer per disk.</summary>
    public List<VmSnapshotLayer> Layers { get; set; } = [];
}

/// <summary>The frozen overlay of one disk in a snapshot (a file name in the VM's directory).</summary>
public sealed class VmSnapshotLayer
{
    public Guid DiskId { get; set; }
    public string File { get; set; } = "";
}

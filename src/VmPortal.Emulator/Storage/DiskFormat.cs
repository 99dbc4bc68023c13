namespace VmPortal.Emulator.Storage;

/// <summary>Disk image file formats, detected from the file's header (never from its name).</summary>
public enum DiskFormat
{
    /// <summary>Plain bytes: sector n at byte n×512.</summary>
    Raw,
    /// <summary>QEMU copy-on-write v2/v3 (read and write, backing chains).</summary>
    Qcow2,
    /// <summary>Virtual PC / Hyper-V VHD, fixed or dynamic (read and write).</summary>
    Vhd,
    /// <summary>VMware monolithic sparse VMDK (read only).</summary>
    Vmdk,
}

/// <summary>What <see cref="DiskImageFile.Probe"/> learns from a header.</summary>
/// <param name="Format">The format found in the header.</param>
/// <param name="VirtualSize">Size of the disk the guest sees, in bytes.</param>
/// <param name="FileSize">Size of the file on the host, in bytes.</param>
/// <param name="BackingFile">The backing file name as stored in the image (may be relative to the image's directory), or null.</param>
/// <param name="BackingFormat">The backing format recorded in the image, or null when none is recorded.</param>
public sealed record DiskImageInfo(DiskFormat Format, long VirtualSize, long FileSize, string? BackingFile, DiskFormat? BackingFormat);

using VmPortal.Emulator.Firmware;

namespace VmPortal.Core.Images;

/// <summary>
/// Checks that an uploaded file is what its name says it is, from its content: an ISO 9660 file system for a CD
/// image, a Linux boot-protocol kernel (bzImage, iPXE's .lkrn, memtest86+'s .bin) for a kernel, a cpio archive
/// (plain or compressed) for an initrd; disk images through <see cref="ImageService.DiskContentError"/>.
/// </summary>
public static class ImageContent
{
    private const int IsoSector = 2048;

    /// <summary>Why the file at <paramref name="path"/> is not a usable image of its kind, or null.</summary>
    public static string? Error(string kind, string path, string fileName) => kind switch
    {
        ImageKinds.Iso => IsoError(path),
        ImageKinds.Kernel => KernelError(path),
        ImageKinds.Initrd => InitrdError(path),
        _ => ImageService.DiskContentError(path, fileName),
    };

    /// <summary>An ISO 9660 image: a primary volume descriptor ("CD001", type 1) at sector 16, a whole number of sectors.</summary>
    public static string? IsoError(string path)
    {
        using var f = File.OpenRead(path);
        if (f.Length < 17 * IsoSector)
            return $"Not an ISO image: {f.Length} bytes is shorter than an ISO 9660 file system (at least {17 * IsoSector}).";
        // Volume descriptors from sector 16 until the terminator (type 255): a primary one (type 1) must be among them.
        var d = new byte[7];
        for (long sector = 16; sector < 16 + 32 && (sector + 1) * IsoSector <= f.Length; sector++)
        {
            f.Position = sector * IsoSector;
            f.ReadExactly(d);
            if (d[1] != 'C' || d[2] != 'D' || d[3] != '0' || d[4] != '0' || d[5] != '1')
                return $"Not an ISO image: no ISO 9660 volume descriptor at sector {sector} (a CD image starts its file system at byte {16 * IsoSector}).";
            if (d[0] == 1) return f.Length % IsoSector == 0 ? null
                : $"The ISO image is {f.Length} bytes, not a whole number of {IsoSector}-byte sectors (truncated?).";
            if (d[0] == 255) break;
        }
        return "Not an ISO image: it has ISO 9660 volume descriptors but no primary one.";
    }

    /// <summary>A kernel the machine can boot directly: the Linux boot protocol header ("HdrS") that SeaBIOS's loader needs.</summary>
    public static string? KernelError(string path)
    {
        var length = new FileInfo(path).Length;
        if (length > 64L << 20) return $"The kernel is {length >> 20} MiB; a bootable kernel image is at most 64 MiB.";
        try
        {
            LinuxKernelImage.Parse(File.ReadAllBytes(path));
            return null;
        }
        catch (InvalidDataException e)
        {
            return $"Not a kernel the VM can boot (Linux boot protocol): {e.Message}";
        }
    }

    /// <summary>An initrd: a cpio archive ("070701"/"070702"), plain or compressed (gzip, xz, zstd, bzip2, lz4, lzma).</summary>
    public static string? InitrdError(string path)
    {
        var head = new byte[6];
        using (var f = File.OpenRead(path))
        {
            if (f.Length < head.Length) return $"Not an initrd: {f.Length} bytes.";
            f.ReadExactly(head);
        }
        bool ok = head is [(byte)'0', (byte)'7', (byte)'0', (byte)'7', (byte)'0', (byte)'1' or (byte)'2'] // cpio newc/crc
                  || head is [0x1F, 0x8B or 0x9E, ..]                               // gzip
                  || head is [0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00] // xz
                  || head is [0x28, 0xB5, 0x2F, 0xFD, ..]                           // zstd
                  || head is [(byte)'B', (byte)'Z', (byte)'h', ..]                   // bzip2
                  || head is [0x02, 0x21, 0x4C, 0x18, ..]                           // lz4 legacy
                  || head is [0x5D, 0x00, 0x00, ..]                                 // lzma
                  || head is [0x89, (byte)'L', (byte)'Z', (byte)'O', ..];           // lzop
        return ok ? null : "Not an initrd: it is neither a cpio archive nor a compressed one (gzip, xz, zstd, bzip2, lz4, lzma, lzo).";
    }
}

using Microsoft.Extensions.Options;

namespace VmPortal.Core.Images;

/// <summary>Kinds of images a VM can use.</summary>
public static class ImageKinds
{
    public const string Iso = "iso";
    public const string Kernel = "kernel";
    public const string Initrd = "initrd";
    public const string Disk = "disk";
}

/// <summary>An image the portal can attach to a VM.</summary>
/// <param name="Id">Stable id: <c>builtin:&lt;file-slug&gt;</c> or <c>upload:&lt;file-name&gt;</c>.</param>
public sealed record ImageInfo(string Id, string Name, string Kind, long SizeBytes, bool BuiltIn, string FileName, DateTimeOffset ModifiedAt)
{
    /// <summary>Absolute path on the host (not exposed over REST).</summary>
    public string Path { get; init; } = "";
    /// <summary>Disk images: the format read from the file's header ("raw", "qcow2", "vhd", "vmdk").</summary>
    public string? Format { get; init; }
    /// <summary>Disk images: the size the guest sees, in bytes.</summary>
    public long? VirtualSizeBytes { get; init; }
    /// <summary>Disk images whose header cannot be read: why (such an image cannot back a disk).</summary>
    public string? Problem { get; init; }
}

public sealed class ImageStoreOptions
{
    /// <summary>Built-in guest images (made by scripts/build-guest-images.sh); env VMPORTAL_IMAGE_CACHE.</summary>
    public string BuiltInPath { get; set; } = "";
    /// <summary>Uploaded images (config Images:StorePath, default ./.data/images).</summary>
    public string StorePath { get; set; } = ".data/images";
}

/// <summary>
/// Lists images from the built-in cache and the upload store. Absent files are not listed.
/// Ids are stable across restarts: they derive from file names only.
/// </summary>
public sealed class ImageCatalog(IOptions<ImageStoreOptions> options)
{
    /// <summary>The built-in guest images, by file name.</summary>
    public static readonly IReadOnlyList<(string File, string Name, string Kind)> BuiltIns =
    [
        ("debian-i386-rescue.iso", "Debian Linux (i386) rescue shell", ImageKinds.Iso),
        ("debian-i386-rescue-fb.iso", "Debian Linux (i386) rescue shell — 1024×768 framebuffer console", ImageKinds.Iso),
        ("debian-i386-rescue.vmlinuz", "Debian Linux (i386) rescue shell — kernel", ImageKinds.Kernel),
        ("debian-i386-rescue.initrd.gz", "Debian Linux (i386) rescue shell — initrd", ImageKinds.Initrd),
        ("memtest86plus.iso", "memtest86+", ImageKinds.Iso),
        ("memtest86plus.bin", "memtest86+ — kernel", ImageKinds.Kernel),
        ("ipxe.iso", "iPXE", ImageKinds.Iso),
        ("ipxe.lkrn", "iPXE — kernel", ImageKinds.Kernel),
        ("debian-12-i386.img", "Debian 12 (bookworm) i386 — system disk", ImageKinds.Disk),
    ];

    /// <summary>Default location of the built-in images: $VMPORTAL_IMAGE_CACHE or ~/.cache/vmportal/images.</summary>
    public static string DefaultBuiltInPath() =>
        Environment.GetEnvironmentVariable("VMPORTAL_IMAGE_CACHE") is { Length: > 0 } env
            ? env
            : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "vmportal", "images");

    /// <summary>"debian-i386-rescue.initrd.gz" → "debian-i386-rescue-initrd-gz".</summary>
    public static string Slug(string fileName)
    {
        var chars = fileName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray();
        return new string(chars).Trim('-');
    }

    public IReadOnlyList<ImageInfo> List()
    {
        var o = options.Value;
        var result = new List<ImageInfo>();
        var builtInDir = string.IsNullOrEmpty(o.BuiltInPath) ? DefaultBuiltInPath() : o.BuiltInPath;
        foreach (var (file, name, kind) in BuiltIns)
        {
            var path = System.IO.Path.Combine(builtInDir, file);
            var fi = new FileInfo(path);
            if (!fi.Exists) continue;
            result.Add(WithDiskInfo(new ImageInfo("builtin:" + Slug(file), name, kind, fi.Length, true, file, fi.LastWriteTimeUtc) { Path = fi.FullName }));
        }
        var store = System.IO.Path.GetFullPath(o.StorePath);
        if (Directory.Exists(store))
        {
            foreach (var fi in new DirectoryInfo(store).EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                if (fi.Name.StartsWith('.')) continue;
                result.Add(WithDiskInfo(new ImageInfo("upload:" + fi.Name, fi.Name, KindOf(fi.Name), fi.Length, false, fi.Name, fi.LastWriteTimeUtc) { Path = fi.FullName }));
            }
        }
        return result;
    }

    public ImageInfo? Find(string id) => List().FirstOrDefault(i => i.Id == id);

    /// <summary>A disk image with its format and virtual size from its header (or the reason it cannot be read).</summary>
    private static ImageInfo WithDiskInfo(ImageInfo image)
    {
        if (image.Kind != ImageKinds.Disk) return image;
        try
        {
            var info = VmPortal.Emulator.Storage.DiskImageFile.Probe(image.Path);
            return image with { Format = info.Format.ToString().ToLowerInvariant(), VirtualSizeBytes = info.VirtualSize };
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return image with { Problem = e.Message };
        }
    }

    /// <summary>The kind of an uploaded file, from its name: .iso, initrd, vmlinuz/.lkrn/.bin kernels, anything else a disk.</summary>
    public static string KindOf(string fileName)
    {
        var lower = fileName.ToLowerInvariant();
        if (lower.EndsWith(".iso")) return ImageKinds.Iso;
        if (lower.Contains("initrd")) return ImageKinds.Initrd;
        if (lower.Contains("vmlinuz") || lower.EndsWith(".lkrn") || lower.EndsWith(".bin")) return ImageKinds.Kernel;
        return ImageKinds.Disk;
    }
}

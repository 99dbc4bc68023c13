using Microsoft.Extensions.Options;
using VmPortal.Core.Images;
using VmPortal.Data.Entities;
using VmPortal.Emulator.Storage;

namespace VmPortal.Core.Disks;

public sealed class DiskStoreOptions
{
    /// <summary>Where VM disks live: one directory per VM (config Disks:StorePath, default ./.data/disks).</summary>
    public string StorePath { get; set; } = ".data/disks";
}

/// <summary>A disk operation the user asked for that cannot be done (the message says why).</summary>
public sealed class DiskStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The VMs' disk files. Every disk is a qcow2 file in <c>&lt;store&gt;/&lt;vm id&gt;/</c>: blank, or an overlay whose
/// backing file is a base image from the <see cref="ImageCatalog"/> (read-only; linked by absolute path, so
/// <c>qemu-img info</c> shows the chain). Creating an overlay writes only its header and tables, so it costs the
/// same whatever the base's size. Files are created before the definition is saved and deleted after the
/// definition is gone, so a failure never leaves a definition pointing at a missing file.
/// </summary>
public sealed class VmDiskStore(IOptions<DiskStoreOptions> options, ImageCatalog images)
{
    private const long MiB = 1024 * 1024;

    public string Root => Path.GetFullPath(options.Value.StorePath);

    public string VmDirectory(Guid vmId) => Path.Combine(Root, vmId.ToString("N"));

    public string PathOf(Guid vmId, VmDisk disk) => Path.Combine(VmDirectory(vmId), disk.File);

    /// <summary>Path of the VM's cloud-init seed ISO (made at each start from the definition).</summary>
    public string SeedPath(Guid vmId) => Path.Combine(VmDirectory(vmId), "seed.iso");

    /// <summary>
    /// Creates the file of every disk that has none yet (assigning its id and file name).
    /// Returns the files created, so a caller whose save fails can remove them with <see cref="DeleteFiles"/>.
    /// </summary>
    public List<string> CreateMissing(Guid vmId, IEnumerable<VmDisk> disks)
    {
        var created = new List<string>();
        try
        {
            foreach (var disk in disks)
            {
                if (!string.IsNullOrEmpty(disk.File)) continue;
                if (disk.Id == Guid.Empty) disk.Id = Guid.CreateVersion7();
                disk.File = $"disk-{disk.Id:N}.qcow2";
                var path = PathOf(vmId, disk);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                string? backing = null;
                if (disk.BackingImageId is { Length: > 0 } imageId)
                {
                    var image = images.Find(imageId) ?? throw new DiskStoreException($"The base image '{imageId}' does not exist.");
                    backing = image.Path;
                }
                try
                {
                    DiskImageFile.CreateQcow2(path, disk.SizeMiB * MiB, backing);
                }
                catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or FileNotFoundException)
                {
                    throw new DiskStoreException($"Cannot create the disk: {e.Message}", e);
                }
                created.Add(path);
            }
        }
        catch
        {
            DeleteFiles(created);
            throw;
        }
        return created;
    }

    /// <summary>Grows a stopped VM's disk to <paramref name="newSizeMiB"/> (qcow2 virtual size; the guest sees it at its next start).</summary>
    public void Grow(Guid vmId, VmDisk disk, long newSizeMiB)
    {
        if (newSizeMiB < disk.SizeMiB) throw new DiskStoreException($"A disk cannot shrink (from {disk.SizeMiB} MiB to {newSizeMiB} MiB).");
        if (newSizeMiB == disk.SizeMiB) return;
        try
        {
            DiskImageFile.Resize(PathOf(vmId, disk), newSizeMiB * MiB);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new DiskStoreException($"Cannot grow the disk: {e.Message}", e);
        }
        disk.SizeMiB = newSizeMiB;
    }

    public static void DeleteFiles(IEnumerable<string> paths)
    {
        foreach (var p in paths)
        {
            try { File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Deletes a VM's whole directory (its disks and seed).</summary>
    public void DeleteVm(Guid vmId)
    {
        var dir = VmDirectory(vmId);
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Checks that a disk can be opened (its file and its whole backing chain): null when fine, else the reason.
    /// </summary>
    public string? Problem(Guid vmId, VmDisk disk, int index)
    {
        if (string.IsNullOrEmpty(disk.File)) return $"disk {index} has no file (it was never created)";
        var path = PathOf(vmId, disk);
        if (!File.Exists(path)) return $"the file of disk {index} is missing ({path})";
        try
        {
            using var image = DiskImageFile.Open(path, readOnly: true);
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or FileNotFoundException)
        {
            return $"disk {index} cannot be opened: {e.Message}";
        }
    }

    /// <summary>
    /// Writes a flattened copy of a disk (backing chain merged) in <paramref name="format"/> to a temporary file in the
    /// store and returns its path; the caller streams it and deletes it.
    /// </summary>
    public string ExportToTemp(Guid vmId, VmDisk disk, DiskFormat format)
    {
        var temp = Path.Combine(VmDirectory(vmId), $".export-{Guid.NewGuid():N}");
        try
        {
            DiskImageFile.Convert(PathOf(vmId, disk), temp, format);
            return temp;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            DeleteFiles([temp]);
            throw new DiskStoreException($"Cannot export the disk: {e.Message}", e);
        }
    }
}

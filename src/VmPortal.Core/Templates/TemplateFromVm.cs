using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VmPortal.Core.Images;
using VmPortal.Core.Runtime;
using VmPortal.Core.Tasks;
using VmPortal.Core.Vms;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Emulator.Storage;

namespace VmPortal.Core.Templates;

/// <summary><c>POST /api/vms/{id}/template</c>: the new template's name and catalog fields (the rest comes from the VM).</summary>
public sealed record TemplateFromVmSpec(string? Name, string? Description = null, string? Os = null, string? Icon = null,
    bool? Published = null, List<Guid>? GroupIds = null);

/// <summary>
/// Makes a catalog template from a stopped VM (admins). The VM's disk — its overlay and everything under it — is
/// converted into one standalone qcow2 in the image store (<c>upload:&lt;name&gt;-&lt;id&gt;.qcow2</c>, written to a
/// hidden file and renamed when complete); that file becomes the template's read-only base: the portal never
/// writes a base image and refuses to delete one while a VM or template uses it, and every VM provisioned from the
/// template gets its own overlay over it. The VM itself is not changed and stays usable. The template takes the VM's
/// memory, disk size, CD-ROM, boot order, network and first-boot user; a VM with more than one disk is refused (a
/// template has one base disk). Runs as a task (progress in bytes, cancellable between chunks; the partial file is
/// removed). A VM started while its disk is copied makes the task fail (409) and the copy is removed.
/// </summary>
public sealed class TemplateFromVm(IDbContextFactory<PortalDbContext> dbFactory, TemplateService templates, IOptions<ImageStoreOptions> imageOptions,
    Disks.VmDiskStore disks, IServiceProvider services)
{
    /// <summary>Checks the request before a task is made: NotFound (VM or not an admin), Invalid (name), Conflict (running, taken, disks).</summary>
    public async Task<OpResult<VirtualMachine>> CheckAsync(Caller caller, Guid vmId, TemplateFromVmSpec spec, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == vmId, ct);
        if (vm is null || !caller.CanAccess(vm.OwnerId)) return OpResult<VirtualMachine>.NotFound($"VM {vmId} not found.");
        if (!caller.IsAdmin) return OpResult<VirtualMachine>.NotFound("Only administrators make templates.");
        if (VmValidator.NameError(spec.Name?.Trim()) is { } nameError) return OpResult<VirtualMachine>.Invalid("name", nameError);
        var normalized = spec.Name!.Trim().ToLowerInvariant();
        if (await db.Templates.AnyAsync(t => t.NormalizedName == normalized, ct))
            return OpResult<VirtualMachine>.Conflict($"A template named '{spec.Name!.Trim()}' already exists.");
        if (vm.Disks.Count > 1)
            return OpResult<VirtualMachine>.Conflict($"A template has one base disk; '{vm.Name}' has {vm.Disks.Count}. Remove the others first.");
        if (vm.Disks.Count == 0 && vm.CdromImageId is null)
            return OpResult<VirtualMachine>.Conflict($"'{vm.Name}' has neither a disk nor an ISO to make a template of.");
        if (!IsStopped(vm)) return OpResult<VirtualMachine>.Conflict($"Stop '{vm.Name}' before making a template of it.");
        return OpResult<VirtualMachine>.Ok(vm);
    }

    /// <summary>The task's work: the disk becomes a base image, then the template is saved (its result).</summary>
    public async Task<TemplateDto> CreateAsync(Caller caller, Guid vmId, TemplateFromVmSpec spec, TaskContext task)
    {
        var ct = task.CancellationToken;
        var check = await CheckAsync(caller, vmId, spec, ct);
        if (!check.IsOk) throw TaskErrors.ToException(check);
        var vm = check.Value!;
        var name = spec.Name!.Trim();
        string? imageId = null, file = null;
        if (vm.Disks is [var disk])
        {
            var store = Path.GetFullPath(imageOptions.Value.StorePath);
            Directory.CreateDirectory(store);
            var fileName = $"{name}-{Guid.NewGuid().ToString("N")[..8]}.qcow2";
            file = Path.Combine(store, fileName);
            var temp = Path.Combine(store, $".{fileName}.tmp");
            var total = Math.Max(1, disk.SizeMiB << 20);
            task.Step($"converting the disk of '{vm.Name}' ({disk.SizeMiB} MiB) into the base image {fileName}");
            try
            {
                await Task.Run(() => DiskImageFile.Convert(disks.PathOf(vm.Id, disk), temp, DiskFormat.Qcow2, new SyncProgress(n =>
                {
                    ct.ThrowIfCancellationRequested();
                    task.Report(n, total, $"copying: {n >> 20} of {total >> 20} MiB");
                })), ct);
                File.Move(temp, file);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                throw new TaskFailedException(409, "Conflict", $"The disk of '{vm.Name}' could not be read: {e.Message}");
            }
            finally
            {
                try { File.Delete(temp); } catch (IOException) { }
            }
            imageId = "upload:" + fileName;
            task.Log($"base image {imageId} written ({new FileInfo(file).Length >> 20} MiB allocated)");
        }
        try
        {
            await using (var db = await dbFactory.CreateDbContextAsync(CancellationToken.None))
            {
                var now = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == vm.Id, CancellationToken.None);
                if (now is null || !IsStopped(now) || now.StateChangedAt != vm.StateChangedAt)
                    throw new TaskFailedException(409, "Conflict", $"'{vm.Name}' was started or deleted while its disk was copied; nothing was made.");
            }
            var r = await templates.CreateAsync(caller, new TemplateSpec
            {
                Name = name,
                Description = spec.Description ?? (vm.Description.Length > 0 ? vm.Description : $"Made from the VM '{vm.Name}'."),
                Os = spec.Os ?? "",
                Icon = spec.Icon,
                ImageId = imageId,
                CdromImageId = vm.CdromImageId,
                MemoryMiB = vm.MemoryMiB,
                MaxMemoryMiB = Math.Max(vm.MemoryMiB, 1024),
                DiskSizeMiB = vm.Disks.FirstOrDefault()?.SizeMiB,
                BootOrder = vm.BootOrder.ToList(),
                CloudInit = vm.CloudInit is not null || imageId is not null,
                DefaultUser = vm.CloudInit?.User is { Length: > 0 } user ? user : null,
                NicEnabled = vm.Nic.Enabled,
                Network = vm.Nic.Network,
                Published = spec.Published,
                GroupIds = spec.GroupIds,
            }, CancellationToken.None);
            if (!r.IsOk) throw TaskErrors.ToException(r);
            task.Step($"template '{r.Value!.Name}' ({r.Value.Id}) made from '{vm.Name}'");
            return r.Value;
        }
        catch
        {
            if (file is not null) try { File.Delete(file); } catch (IOException) { }
            throw;
        }
    }

    private bool IsStopped(VirtualMachine vm)
    {
        if (!vm.IsStopped) return false;
        var host = services.GetService(typeof(VmHost)) as VmHost;
        return host is null || !host.TryFind(vm.Id, out var hosted) || !Console.VmLifecycle.HasMachine(hosted.State);
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}

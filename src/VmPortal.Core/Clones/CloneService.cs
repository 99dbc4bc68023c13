using Microsoft.EntityFrameworkCore;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Core.Disks;
using VmPortal.Core.Images;
using VmPortal.Core.Quotas;
using VmPortal.Core.Runtime;
using VmPortal.Core.Tasks;
using VmPortal.Core.Vms;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Emulator.Storage;

namespace VmPortal.Core.Clones;

public enum CloneMode
{
    /// <summary>Each disk keeps sharing the source's read-only base image; only the source's own changes are copied.</summary>
    Linked,
    /// <summary>Each disk becomes one standalone qcow2 with its base merged in (independent of any image).</summary>
    Full,
}

/// <summary><c>POST /api/vms/{id}/clone</c>: the new VM's name and how its disks are made (default linked).</summary>
public sealed record CloneSpec(string? Name, CloneMode? Mode = null, string? Description = null);

/// <summary>
/// Clones a stopped VM into a new VM of the caller: same hardware, a new MAC address, first-boot settings with the
/// new name as hostname (cloud-init sees a new instance id, so it configures the copy afresh), and new disks.
/// <para>
/// <b>Linked</b> (default): a portal disk is a qcow2 overlay over an immutable base image (built-in or uploaded,
/// never written, and not deletable while a VM uses it). A linked clone copies only the overlay — the source's own
/// changes — and the copy keeps the same base, so it costs the size of the changes, not of the base, and the source
/// stays independent of its clones (it can be changed, deleted, snapshotted). The issue's other design (the source's
/// overlay frozen into a shared base, with new overlays for source and clone) would make a clone cost nothing, but a
/// source's deletion would then depend on its clones (reference-counted bases) and it lengthens the source's chain;
/// not chosen for now. A disk whose chain holds more than its base image (e.g. snapshot overlays) is flattened.
/// <b>Full</b>: every disk is converted into one standalone qcow2 (base merged in; zeros left unallocated).
/// </para>
/// Runs as a task (progress in bytes). Quotas are checked first (to fail fast) and again atomically when the new VM
/// is saved (the owner's lock), exactly like a create. A source that is started while its disks are copied makes
/// the clone fail (409) and the copies are removed.
/// </summary>
public sealed class CloneService(IDbContextFactory<PortalDbContext> dbFactory, VmDiskStore disks, ImageCatalog images, AuditLog audit,
    TimeProvider clock, IServiceProvider services)
{
    public const string AuditClone = "vm.clone";
    private const int CopyChunk = 1 << 20;

    /// <summary>Validates the request and the source (NotFound / Invalid / Conflict / QuotaExceeded) before a task is made.</summary>
    public async Task<OpResult<VirtualMachine>> CheckAsync(Caller caller, Guid sourceId, CloneSpec spec, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var source = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == sourceId, ct);
        if (source is null || !caller.CanAccess(source.OwnerId)) return OpResult<VirtualMachine>.NotFound($"VM {sourceId} not found.");
        if (VmValidator.NameError(spec.Name) is { } nameError) return OpResult<VirtualMachine>.Invalid("name", nameError);
        if (spec.Mode is { } m && !Enum.IsDefined(m)) return OpResult<VirtualMachine>.Invalid("mode", "mode must be linked or full.");
        if (spec.Description is { Length: > VirtualMachine.DescriptionMaxLength })
            return OpResult<VirtualMachine>.Invalid("description", $"At most {VirtualMachine.DescriptionMaxLength} characters.");
        if (!IsStopped(source)) return OpResult<VirtualMachine>.Conflict($"Stop '{source.Name}' before cloning it (it is {RunState(source)}).");
        var normalized = spec.Name!.ToLowerInvariant();
        if (await db.VirtualMachines.AnyAsync(v => v.OwnerId == caller.UserId && v.NormalizedName == normalized, ct))
            return OpResult<VirtualMachine>.Conflict($"{caller.UserName} already has a VM named '{spec.Name}'.");
        if (await QuotaService.CheckCreateAsync(db, caller.UserId, source.Disks.Sum(d => d.SizeMiB), ct) is { } refusal)
            return OpResult<VirtualMachine>.QuotaExceeded(refusal);
        return OpResult<VirtualMachine>.Ok(source);
    }

    /// <summary>The task's work: copies the disks, then saves the new VM under the owner's quota lock.</summary>
    public async Task<VmDto> CloneAsync(Caller caller, Guid sourceId, CloneSpec spec, TaskContext task)
    {
        var ct = task.CancellationToken;
        var check = await CheckAsync(caller, sourceId, spec, ct);
        if (!check.IsOk) throw TaskErrors.ToException(check);
        var source = check.Value!;
        var mode = spec.Mode ?? CloneMode.Linked;
        var now = clock.GetUtcNow();
        var clone = new VirtualMachine(caller.UserId, spec.Name!, now)
        {
            Description = spec.Description ?? source.Description,
            MemoryMiB = source.MemoryMiB,
            CdromImageId = source.CdromImageId,
            BootOrder = source.BootOrder.ToList(),
            Nic = new VmNic { Enabled = source.Nic.Enabled, Model = source.Nic.Model, Network = source.Nic.Network, MacAddress = VmService.NewMac() },
            CloudInit = source.CloudInit is { } ci ? new VmCloudInit
            {
                Hostname = VmValidator.HostnameFrom(spec.Name!), User = ci.User, PasswordHash = ci.PasswordHash,
                SshAuthorizedKeys = ci.SshAuthorizedKeys.ToList(),
            } : null,
            StartAtBoot = false,
        };
        task.Step($"cloning '{source.Name}' as '{clone.Name}' ({mode.ToString().ToLowerInvariant()}, {source.Disks.Count} disk(s))");

        // plan: what each disk copies (linked: the overlay file; full or a longer chain: the flattened chain)
        var plan = new List<(VmDisk From, VmDisk To, bool Flatten, long Bytes)>();
        foreach (var d in source.Disks)
        {
            var path = disks.PathOf(source.Id, d);
            var flatten = mode == CloneMode.Full || !OverlayOfBaseOnly(path, d);
            if (mode == CloneMode.Linked && flatten) task.Log($"disk {d.Id}: its chain holds more than the base image; flattened");
            var to = new VmDisk { Id = Guid.CreateVersion7(), SizeMiB = d.SizeMiB, Bus = d.Bus, BackingImageId = flatten ? null : d.BackingImageId };
            to.File = $"disk-{to.Id:N}.qcow2";
            plan.Add((d, to, flatten, flatten ? d.SizeMiB << 20 : new FileInfo(path).Length));
        }
        long total = Math.Max(1, plan.Sum(p => p.Bytes)), done = 0;
        var created = new List<string>();
        try
        {
            Directory.CreateDirectory(disks.VmDirectory(clone.Id));
            foreach (var (from, to, flatten, bytes) in plan)
            {
                var src = disks.PathOf(source.Id, from);
                var dst = disks.PathOf(clone.Id, to);
                created.Add(dst);
                var before = done;
                var reporter = new SyncProgress(n =>
                {
                    ct.ThrowIfCancellationRequested();
                    task.Report(before + n, total, $"copying disk {created.Count} of {plan.Count}: {(before + n) >> 20} of {total >> 20} MiB");
                });
                await Task.Run(() =>
                {
                    if (flatten) DiskImageFile.Convert(src, dst, DiskFormat.Qcow2, reporter);
                    else CopyFile(src, dst, reporter);
                }, ct);
                done += bytes;
                task.Log($"disk {created.Count}: {(flatten ? "flattened" : "overlay copied")} ({bytes >> 20} MiB)");
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            disks.DeleteVm(clone.Id);
            throw new TaskFailedException(409, "Conflict", $"The disks of '{source.Name}' could not be copied: {e.Message}");
        }
        catch
        {
            disks.DeleteVm(clone.Id);
            throw;
        }
        clone.Disks = plan.Select(p => p.To).ToList();

        task.Report(total, total, "saving the new VM");
        await using var db = await dbFactory.CreateDbContextAsync(CancellationToken.None);
        await using var tx = await db.Database.BeginTransactionAsync(CancellationToken.None);
        try
        {
            // the source must still be stopped and unchanged (nothing wrote its disks while they were copied)
            var now2 = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == source.Id, CancellationToken.None);
            if (now2 is null || !IsStopped(now2) || now2.StateChangedAt != source.StateChangedAt)
                throw new TaskFailedException(409, "Conflict", $"'{source.Name}' was started or deleted while its disks were copied; the clone was discarded.");
            await QuotaService.LockOwnerAsync(db, caller.UserId, CancellationToken.None);
            if (await QuotaService.CheckCreateAsync(db, caller.UserId, clone.Disks.Sum(d => d.SizeMiB), CancellationToken.None) is { } refusal)
                throw new QuotaExceededException(refusal);
            db.VirtualMachines.Add(clone);
            audit.Add(db, caller.UserId, caller.UserName, AuditClone, "vm", clone.Id.ToString(),
                $"name={clone.Name} source={source.Id} ({source.Name}) mode={mode.ToString().ToLowerInvariant()} disks={clone.Disks.Count}");
            await db.SaveChangesAsync(CancellationToken.None);
            await tx.CommitAsync(CancellationToken.None);
        }
        catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            disks.DeleteVm(clone.Id);
            throw new TaskFailedException(409, "Conflict", $"{caller.UserName} already has a VM named '{clone.Name}'.");
        }
        catch
        {
            disks.DeleteVm(clone.Id);
            throw;
        }
        task.Step($"created '{clone.Name}' ({clone.Id})");
        return VmDto.From(clone, caller.UserName);
    }

    /// <summary>True when the disk file is a blank qcow2 or an overlay straight over its listed base image.</summary>
    private bool OverlayOfBaseOnly(string path, VmDisk disk)
    {
        var info = DiskImageFile.Probe(path);
        if (info.BackingFile is null) return disk.BackingImageId is null;
        if (disk.BackingImageId is null || images.Find(disk.BackingImageId) is not { } image) return false;
        var backing = DiskImageFile.ResolveBacking(path, info.BackingFile);
        return string.Equals(Path.GetFullPath(backing), Path.GetFullPath(image.Path), StringComparison.Ordinal);
    }

    private static void CopyFile(string src, string dst, IProgress<long> progress)
    {
        var tmp = dst + ".tmp";
        try
        {
            using (var input = new FileStream(src, FileMode.Open, FileAccess.Read, FileShare.Read, CopyChunk))
            using (var output = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyChunk))
            {
                var buf = new byte[CopyChunk];
                long n = 0;
                int read;
                while ((read = input.Read(buf)) > 0)
                {
                    output.Write(buf, 0, read);
                    n += read;
                    progress.Report(n);
                }
                output.Flush(flushToDisk: true);
            }
            File.Move(tmp, dst);
        }
        finally
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }
    }

    private bool IsStopped(VirtualMachine vm)
    {
        if (!vm.IsStopped) return false;
        var host = services.GetService(typeof(VmHost)) as VmHost;
        return host is null || !host.TryFind(vm.Id, out var hosted) || !Console.VmLifecycle.HasMachine(hosted.State);
    }

    private string RunState(VirtualMachine vm)
    {
        var host = services.GetService(typeof(VmHost)) as VmHost;
        return host is not null && host.TryFind(vm.Id, out var hosted) ? hosted.State.ToString().ToLowerInvariant() : vm.State.ToString().ToLowerInvariant();
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (so a cancellation thrown in it stops the copy).</summary>
    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}

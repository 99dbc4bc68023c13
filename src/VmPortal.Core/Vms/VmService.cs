using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Core.CloudInit;
using VmPortal.Core.Disks;
using VmPortal.Core.Images;
using VmPortal.Core.Quotas;
using VmPortal.Core.Templates;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Vms;

/// <summary>
/// VM inventory use cases. Visibility: admins see every VM, users their own; a VM the caller may not see is
/// reported as not found. Each call uses its own DbContext (safe from Blazor circuits and endpoints alike).
/// </summary>
public sealed class VmService(IDbContextFactory<PortalDbContext> dbFactory, ImageCatalog images, VmDiskStore disks, TemplateService templates,
    Networks.NetworkHost networks, AuditLog audit, TimeProvider clock)
{
    public const int MaxPageSize = 500;

    /// <summary>Whether <paramref name="page"/> of <paramref name="pageSize"/> starts at an offset a query can take (64-bit check).</summary>
    public static bool PageInRange(int page, int pageSize) => page >= 1 && (long)(page - 1) * pageSize <= int.MaxValue;

    public async Task<PagedResult<VmDto>> ListAsync(Caller caller, VmQuery query, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = Visible(db, caller);
        if (!string.IsNullOrWhiteSpace(query.Name))
        {
            var pattern = "%" + EscapeLike(query.Name.Trim().ToLowerInvariant()) + "%";
            q = q.Where(v => EF.Functions.Like(v.NormalizedName, pattern, "\\"));
        }
        if (query.OwnerId is { } owner) q = q.Where(v => v.OwnerId == owner);
        if (!string.IsNullOrWhiteSpace(query.Search))
        {
            var term = query.Search.Trim();
            var pattern = "%" + EscapeLike(term) + "%";
            var state = Enum.GetValues<VmState>().Where(s => s.ToString().Contains(term, StringComparison.OrdinalIgnoreCase)).ToList();
            q = q.Where(v => EF.Functions.ILike(v.Name, pattern, "\\") || EF.Functions.ILike(v.Owner!.UserName!, pattern, "\\")
                             || EF.Functions.ILike(v.Description, pattern, "\\") || state.Contains(v.State));
        }
        var pageSize = Math.Clamp(query.PageSize, 1, MaxPageSize);
        var page = Math.Max(1, query.Page);
        if (!PageInRange(page, pageSize)) return new PagedResult<VmDto>([], await q.CountAsync(ct), page, pageSize);
        var d = query.Descending;
        var ordered = query.Sort switch
        {
            VmSortKeys.State => d ? q.OrderByDescending(v => v.State) : q.OrderBy(v => v.State),
            VmSortKeys.Owner => d ? q.OrderByDescending(v => v.Owner!.UserName) : q.OrderBy(v => v.Owner!.UserName),
            VmSortKeys.Memory => d ? q.OrderByDescending(v => v.MemoryMiB) : q.OrderBy(v => v.MemoryMiB),
            VmSortKeys.Created => d ? q.OrderByDescending(v => v.CreatedAt) : q.OrderBy(v => v.CreatedAt),
            VmSortKeys.Updated => d ? q.OrderByDescending(v => v.UpdatedAt) : q.OrderBy(v => v.UpdatedAt),
            _ => d ? q.OrderByDescending(v => v.NormalizedName) : q.OrderBy(v => v.NormalizedName),
        };
        var rows = await ordered.ThenBy(v => v.Id)
            .Skip((int)((long)(page - 1) * pageSize)).Take(pageSize)
            // the total rides along as an uncorrelated subquery (PostgreSQL evaluates it once): one round trip per page
            .Select(v => new { Vm = v, OwnerName = v.Owner!.UserName, Total = q.Count() })
            .ToListAsync(ct);
        // a page past the end has no row to carry the total
        var total = rows.Count > 0 ? rows[0].Total : page == 1 ? 0 : await q.CountAsync(ct);
        return new PagedResult<VmDto>(rows.Select(r => VmDto.From(r.Vm, r.OwnerName ?? "")).ToList(), total, page, pageSize);
    }

    public async Task<VmDto?> GetAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var row = await Visible(db, caller).Where(v => v.Id == id)
            .Select(v => new { Vm = v, OwnerName = v.Owner!.UserName }).FirstOrDefaultAsync(ct);
        return row is null ? null : VmDto.From(row.Vm, row.OwnerName ?? "");
    }

    /// <summary>
    /// Creates a VM (from a full spec, or provisioned from a catalog template when <see cref="VmSpec.TemplateId"/> is
    /// set) with its disk files, within the owner's quota.
    /// </summary>
    public async Task<OpResult<VmDto>> CreateAsync(Caller caller, VmSpec spec, CancellationToken ct = default)
    {
        Guid? templateId = spec.TemplateId;
        if (templateId is not null)
        {
            var (expanded, templateErrors, notFound) = await templates.ExpandAsync(caller, spec, ct);
            if (notFound is not null) return OpResult<VmDto>.NotFound(notFound);
            if (templateErrors is not null) return OpResult<VmDto>.Invalid(templateErrors);
            spec = expanded!;
        }
        var errors = VmValidator.Validate(spec, images.List());
        CheckNetwork(spec, errors);
        await Networks.PortForwardRules.CheckAsync(dbFactory, networks, null, spec.Nic, errors, ct);
        var ownerId = spec.OwnerId ?? caller.UserId;
        if (ownerId != caller.UserId && !caller.IsAdmin) errors["ownerId"] = ["Only administrators can create VMs for other users."];
        if (errors.Count > 0) return OpResult<VmDto>.Invalid(errors);

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var owner = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == ownerId, ct);
        if (owner is null) return OpResult<VmDto>.Invalid("ownerId", "Unknown user.");

        var now = clock.GetUtcNow();
        var vm = new VirtualMachine(ownerId, spec.Name!, now);
        Apply(vm, spec);
        vm.Disks = NewDisks(spec.Disks);
        ApplyCloudInit(vm, spec.CloudInit);
        if (string.IsNullOrEmpty(vm.Nic.MacAddress)) vm.Nic.MacAddress = NewMac();
        if (await NameTakenAsync(db, ownerId, vm.NormalizedName, null, ct))
            return OpResult<VmDto>.Conflict($"{owner.UserName} already has a VM named '{vm.Name}'.");

        // quota: count and insert under the owner's lock, in one transaction
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await QuotaService.LockOwnerAsync(db, ownerId, ct);
        if (await QuotaService.CheckCreateAsync(db, ownerId, vm.Disks.Sum(d => d.SizeMiB), ct) is { } refusal)
            return OpResult<VmDto>.QuotaExceeded(refusal);

        try { disks.CreateMissing(vm.Id, vm.Disks); }
        catch (DiskStoreException e) { return OpResult<VmDto>.Invalid("disks", e.Message); }

        db.VirtualMachines.Add(vm);
        audit.Add(db, caller.UserId, caller.UserName, AuditActions.VmCreate, "vm", vm.Id.ToString(),
            $"name={vm.Name} owner={owner.UserName} memory={vm.MemoryMiB}MiB disks={DiskSummary(vm)}" + (templateId is { } tid ? $" template={tid}" : ""));
        if (spec.TemplateLease is { } lease)
        {
            // the template's lease: the VM expires that long after it is made (the usual warning, power-off, grace, delete)
            var expires = now + TimeSpan.FromHours(lease.Hours);
            db.Leases.Add(new VmLease
            {
                VmId = vm.Id, ExpiresAt = expires, DeleteAt = expires + TimeSpan.FromHours(lease.GraceHours),
                SetByName = $"template {lease.TemplateName}", UpdatedAt = now,
            });
            audit.Add(db, caller.UserId, caller.UserName, Leases.LeaseService.AuditSet, "vm", vm.Id.ToString(),
                $"name={vm.Name} expires={expires:u} delete={expires + TimeSpan.FromHours(lease.GraceHours):u} (template {lease.TemplateName}: {lease.Hours} h)");
        }
        try
        {
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        catch (DbUpdateException e) when (IsUniqueViolation(e))
        {
            disks.DeleteVm(vm.Id);
            return OpResult<VmDto>.Conflict($"{owner.UserName} already has a VM named '{vm.Name}'.");
        }
        catch
        {
            disks.DeleteVm(vm.Id);
            throw;
        }
        return OpResult<VmDto>.Ok(VmDto.From(vm, owner.UserName ?? ""));
    }

    /// <summary>Replaces a VM's definition. <paramref name="expectedVersion"/> must match the stored token.</summary>
    public async Task<OpResult<VmDto>> UpdateAsync(Caller caller, Guid id, VmSpec spec, uint? expectedVersion, CancellationToken ct = default)
    {
        var errors = VmValidator.Validate(spec, images.List());
        CheckNetwork(spec, errors);
        await Networks.PortForwardRules.CheckAsync(dbFactory, networks, id, spec.Nic, errors, ct);
        if (expectedVersion is null) errors["version"] = ["The VM's version (from the last read) is required."];
        if (errors.Count > 0) return OpResult<VmDto>.Invalid(errors);

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await Visible(db, caller).Include(v => v.Owner).FirstOrDefaultAsync(v => v.Id == id, ct);
        if (vm is null) return OpResult<VmDto>.NotFound($"VM {id} not found.");
        if (spec.OwnerId is { } newOwner && newOwner != vm.OwnerId)
            return OpResult<VmDto>.Invalid("ownerId", "The owner of a VM cannot be changed.");
        if (vm.Version != expectedVersion)
            return OpResult<VmDto>.Conflict("The VM was changed by someone else; reload it and try again.");

        var before = $"name={vm.Name} memory={vm.MemoryMiB}MiB disks={DiskSummary(vm)}";
        if (!string.Equals(vm.Name, spec.Name, StringComparison.Ordinal))
        {
            var normalized = spec.Name!.ToLowerInvariant();
            if (await NameTakenAsync(db, vm.OwnerId, normalized, vm.Id, ct))
                return OpResult<VmDto>.Conflict($"{vm.Owner!.UserName} already has a VM named '{spec.Name}'.");
            vm.Rename(spec.Name!);
        }

        // disks: keep (and grow) the ones named by id, add the ones without, remove the rest — only while stopped
        var plan = PlanDisks(vm, spec.Disks);
        if (plan.Error is { } planError) return OpResult<VmDto>.Invalid(planError.Field, planError.Message);
        if (plan.Changes && !vm.IsStopped)
            return OpResult<VmDto>.Conflict("Stop the VM before adding, removing or growing its disks.");

        var addMiB = plan.Disks.Where(d => string.IsNullOrEmpty(d.File)).Sum(d => d.SizeMiB)
                     + plan.Grow.Sum(g => g.SizeMiB - g.Disk.SizeMiB) - plan.Removed.Sum(d => d.SizeMiB);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await QuotaService.LockOwnerAsync(db, vm.OwnerId, ct);
        if (await QuotaService.CheckDiskGrowthAsync(db, vm.OwnerId, addMiB, ct) is { } refusal)
            return OpResult<VmDto>.QuotaExceeded(refusal);

        Apply(vm, spec);
        ApplyCloudInit(vm, spec.CloudInit);
        if (string.IsNullOrEmpty(vm.Nic.MacAddress)) vm.Nic.MacAddress = NewMac();
        List<string> created;
        try
        {
            foreach (var (disk, size) in plan.Grow) disks.Grow(vm.Id, disk, size);
            created = disks.CreateMissing(vm.Id, plan.Disks);
        }
        catch (DiskStoreException e) { return OpResult<VmDto>.Invalid("disks", e.Message); }
        vm.Disks = plan.Disks;
        vm.Touch(clock.GetUtcNow());
        db.Entry(vm).Property(v => v.Version).OriginalValue = expectedVersion.Value;
        audit.Add(db, caller.UserId, caller.UserName, AuditActions.VmUpdate, "vm", vm.Id.ToString(),
            $"{before} -> name={vm.Name} memory={vm.MemoryMiB}MiB disks={DiskSummary(vm)}");
        try
        {
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        }
        catch (DbUpdateConcurrencyException)
        {
            VmDiskStore.DeleteFiles(created);
            return OpResult<VmDto>.Conflict("The VM was changed by someone else; reload it and try again.");
        }
        catch (DbUpdateException e) when (IsUniqueViolation(e))
        {
            VmDiskStore.DeleteFiles(created);
            return OpResult<VmDto>.Conflict($"{vm.Owner!.UserName} already has a VM named '{spec.Name}'.");
        }
        VmDiskStore.DeleteFiles(plan.Removed.Where(d => d.File.Length > 0).Select(d => disks.PathOf(vm.Id, d)));
        return OpResult<VmDto>.Ok(VmDto.From(vm, vm.Owner!.UserName ?? ""));
    }

    /// <summary>Deletes a stopped VM; <paramref name="expectedVersion"/> is checked when given.</summary>
    public async Task<OpResult<bool>> DeleteAsync(Caller caller, Guid id, uint? expectedVersion = null, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await Visible(db, caller).Include(v => v.Owner).FirstOrDefaultAsync(v => v.Id == id, ct);
        if (vm is null) return OpResult<bool>.NotFound($"VM {id} not found.");
        if (expectedVersion is { } ev && ev != vm.Version)
            return OpResult<bool>.Conflict("The VM was changed by someone else; reload it and try again.");
        try { vm.EnsureDeletable(); }
        catch (VmStateException e) { return OpResult<bool>.Conflict(e.Message); }
        db.VirtualMachines.Remove(vm);
        audit.Add(db, caller.UserId, caller.UserName, AuditActions.VmDelete, "vm", vm.Id.ToString(), $"name={vm.Name} owner={vm.Owner?.UserName}");
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateConcurrencyException)
        {
            return OpResult<bool>.Conflict("The VM was changed or deleted by someone else.");
        }
        disks.DeleteVm(vm.Id);
        return OpResult<bool>.Ok(true);
    }

    private static IQueryable<VirtualMachine> Visible(PortalDbContext db, Caller caller) =>
        caller.IsAdmin ? db.VirtualMachines : db.VirtualMachines.Where(v => v.OwnerId == caller.UserId);

    private static void Apply(VirtualMachine vm, VmSpec spec)
    {
        vm.Description = spec.Description ?? "";
        vm.MemoryMiB = spec.MemoryMiB!.Value;
        vm.CdromImageId = string.IsNullOrEmpty(spec.CdromImageId) ? null : spec.CdromImageId;
        if (spec.BootOrder is not null) vm.BootOrder = spec.BootOrder.ToList();
        var nic = spec.Nic;
        vm.Nic = new VmNic
        {
            Enabled = nic?.Enabled ?? vm.Nic.Enabled,
            Model = nic?.Model ?? vm.Nic.Model,
            MacAddress = (nic?.MacAddress is { Length: > 0 } mac ? mac : vm.Nic.MacAddress).ToLowerInvariant(),
            Network = nic?.Network ?? vm.Nic.Network,
            PortForwards = nic?.PortForwards is { } pf ? Networks.PortForwardRules.ToEntities(pf) : Networks.PortForwardRules.Copy(vm.Nic.PortForwards),
        };
        if (spec.StartAtBoot is { } sab) vm.StartAtBoot = sab;
    }

    private void CheckNetwork(VmSpec spec, Dictionary<string, string[]> errors)
    {
        if (spec.Nic?.Network is { Length: > 0 } net && !errors.ContainsKey("nic.network") && !networks.Exists(net))
            errors["nic.network"] = [$"There is no network '{net}' (networks: {string.Join(", ", networks.Names)})."];
    }

    private static VmDisk NewDisk(DiskSpec d) => new()
    {
        SizeMiB = d.SizeMiB!.Value,
        BackingImageId = string.IsNullOrEmpty(d.BackingImageId) ? null : d.BackingImageId,
        Bus = d.Bus ?? "ide",
    };

    private static List<VmDisk> NewDisks(List<DiskSpec>? specs) => (specs ?? []).Select(NewDisk).ToList();

    private sealed record DiskPlan(List<VmDisk> Disks, List<(VmDisk Disk, long SizeMiB)> Grow, List<VmDisk> Removed, bool Changes,
        (string Field, string Message)? Error = null);

    /// <summary>The disks an update leads to: existing ones named by id (grown if larger), new ones, and those removed.</summary>
    private static DiskPlan PlanDisks(VirtualMachine vm, List<DiskSpec>? specs)
    {
        var result = new List<VmDisk>();
        var grow = new List<(VmDisk, long)>();
        var kept = new HashSet<Guid>();
        specs ??= [];
        for (var i = 0; i < specs.Count; i++)
        {
            var s = specs[i];
            if (s.Id is not { } id || id == Guid.Empty) { result.Add(NewDisk(s)); continue; }
            var existing = vm.Disks.FirstOrDefault(d => d.Id == id);
            if (existing is null || !kept.Add(id))
                return new DiskPlan([], [], [], false, ($"disks[{i}].id", "This VM has no such disk (leave the id out to add a new disk)."));
            var backing = string.IsNullOrEmpty(s.BackingImageId) ? null : s.BackingImageId;
            if (backing != existing.BackingImageId)
                return new DiskPlan([], [], [], false, ($"disks[{i}].backingImageId", "A disk's base image cannot change; remove the disk and add a new one."));
            if (s.SizeMiB < existing.SizeMiB)
                return new DiskPlan([], [], [], false, ($"disks[{i}].sizeMiB", $"A disk cannot shrink (it has {existing.SizeMiB} MiB)."));
            if (s.SizeMiB > existing.SizeMiB) grow.Add((existing, s.SizeMiB!.Value));
            if (s.Bus is { } bus) existing.Bus = bus;
            result.Add(existing);
        }
        var removed = vm.Disks.Where(d => !kept.Contains(d.Id)).ToList();
        var added = result.Any(d => string.IsNullOrEmpty(d.File));
        var reordered = !result.Select(d => d.Id).SequenceEqual(vm.Disks.Where(d => kept.Contains(d.Id)).Select(d => d.Id));
        return new DiskPlan(result, grow, removed, added || removed.Count > 0 || grow.Count > 0 || reordered);
    }

    /// <summary>Sets, keeps (null spec) or removes (empty spec) the first-boot settings; a new password is stored as a hash only.</summary>
    private static void ApplyCloudInit(VirtualMachine vm, CloudInitSpec? spec)
    {
        if (spec is null) return;
        if (string.IsNullOrEmpty(spec.Hostname) && string.IsNullOrEmpty(spec.User) && spec.SshAuthorizedKeys is not { Count: > 0 } && string.IsNullOrEmpty(spec.Password))
        {
            vm.CloudInit = null;
            return;
        }
        var keepHash = vm.CloudInit?.PasswordHash ?? "";
        vm.CloudInit = new VmCloudInit
        {
            Hostname = spec.Hostname ?? "",
            User = spec.User ?? "",
            PasswordHash = spec.Password is null ? keepHash : spec.Password.Length == 0 ? "" : Sha512Crypt.Hash(spec.Password),
            SshAuthorizedKeys = (spec.SshAuthorizedKeys ?? []).Select(k => k.Trim()).ToList(),
        };
    }

    private static string DiskSummary(VirtualMachine vm) =>
        vm.Disks.Count == 0 ? "none" : string.Join(",", vm.Disks.Select(d => $"{d.SizeMiB}MiB" + (d.BackingImageId is { } b ? $"<{b}" : "")));

    private static Task<bool> NameTakenAsync(PortalDbContext db, Guid ownerId, string normalized, Guid? except, CancellationToken ct) =>
        db.VirtualMachines.AnyAsync(v => v.OwnerId == ownerId && v.NormalizedName == normalized && v.Id != except, ct);

    private static bool IsUniqueViolation(DbUpdateException e) =>
        e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    private static string EscapeLike(string s) => s.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");

    /// <summary>A random MAC in QEMU's locally administered 52:54:00 range.</summary>
    public static string NewMac()
    {
        Span<byte> b = stackalloc byte[3];
        RandomNumberGenerator.Fill(b);
        return $"52:54:00:{b[0]:x2}:{b[1]:x2}:{b[2]:x2}";
    }
}

using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Core.Images;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Vms;

/// <summary>
/// VM inventory use cases. Visibility: admins see every VM, users their own; a VM the caller may not see is
/// reported as not found. Each call uses its own DbContext (safe from Blazor circuits and endpoints alike).
/// </summary>
public sealed class VmService(IDbContextFactory<PortalDbContext> dbFactory, ImageCatalog images, AuditLog audit, TimeProvider clock)
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
        var total = await q.CountAsync(ct);
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
            .Select(v => new { Vm = v, OwnerName = v.Owner!.UserName })
            .ToListAsync(ct);
        return new PagedResult<VmDto>(rows.Select(r => VmDto.From(r.Vm, r.OwnerName ?? "")).ToList(), total, page, pageSize);
    }

    public async Task<VmDto?> GetAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var row = await Visible(db, caller).Where(v => v.Id == id)
            .Select(v => new { Vm = v, OwnerName = v.Owner!.UserName }).FirstOrDefaultAsync(ct);
        return row is null ? null : VmDto.From(row.Vm, row.OwnerName ?? "");
    }

    public async Task<OpResult<VmDto>> CreateAsync(Caller caller, VmSpec spec, CancellationToken ct = default)
    {
        var errors = VmValidator.Validate(spec, images.List());
        var ownerId = spec.OwnerId ?? caller.UserId;
        if (ownerId != caller.UserId && !caller.IsAdmin) errors["ownerId"] = ["Only administrators can create VMs for other users."];
        if (errors.Count > 0) return OpResult<VmDto>.Invalid(errors);

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var owner = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == ownerId, ct);
        if (owner is null) return OpResult<VmDto>.Invalid("ownerId", "Unknown user.");

        var now = clock.GetUtcNow();
        var vm = new VirtualMachine(ownerId, spec.Name!, now);
        Apply(vm, spec);
        if (string.IsNullOrEmpty(vm.Nic.MacAddress)) vm.Nic.MacAddress = NewMac();
        if (await NameTakenAsync(db, ownerId, vm.NormalizedName, null, ct))
            return OpResult<VmDto>.Conflict($"{owner.UserName} already has a VM named '{vm.Name}'.");

        db.VirtualMachines.Add(vm);
        audit.Add(db, caller.UserId, caller.UserName, AuditActions.VmCreate, "vm", vm.Id.ToString(),
            $"name={vm.Name} owner={owner.UserName} memory={vm.MemoryMiB}MiB");
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (IsUniqueViolation(e))
        {
            return OpResult<VmDto>.Conflict($"{owner.UserName} already has a VM named '{vm.Name}'.");
        }
        return OpResult<VmDto>.Ok(VmDto.From(vm, owner.UserName ?? ""));
    }

    /// <summary>Replaces a VM's definition. <paramref name="expectedVersion"/> must match the stored token.</summary>
    public async Task<OpResult<VmDto>> UpdateAsync(Caller caller, Guid id, VmSpec spec, uint? expectedVersion, CancellationToken ct = default)
    {
        var errors = VmValidator.Validate(spec, images.List());
        if (expectedVersion is null) errors["version"] = ["The VM's version (from the last read) is required."];
        if (errors.Count > 0) return OpResult<VmDto>.Invalid(errors);

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await Visible(db, caller).Include(v => v.Owner).FirstOrDefaultAsync(v => v.Id == id, ct);
        if (vm is null) return OpResult<VmDto>.NotFound($"VM {id} not found.");
        if (spec.OwnerId is { } newOwner && newOwner != vm.OwnerId)
            return OpResult<VmDto>.Invalid("ownerId", "The owner of a VM cannot be changed.");
        if (vm.Version != expectedVersion)
            return OpResult<VmDto>.Conflict("The VM was changed by someone else; reload it and try again.");

        var before = $"name={vm.Name} memory={vm.MemoryMiB}MiB disks={vm.Disks.Count}";
        if (!string.Equals(vm.Name, spec.Name, StringComparison.Ordinal))
        {
            var normalized = spec.Name!.ToLowerInvariant();
            if (await NameTakenAsync(db, vm.OwnerId, normalized, vm.Id, ct))
                return OpResult<VmDto>.Conflict($"{vm.Owner!.UserName} already has a VM named '{spec.Name}'.");
            vm.Rename(spec.Name!);
        }
        Apply(vm, spec);
        if (string.IsNullOrEmpty(vm.Nic.MacAddress)) vm.Nic.MacAddress = NewMac();
        vm.Touch(clock.GetUtcNow());
        db.Entry(vm).Property(v => v.Version).OriginalValue = expectedVersion.Value;
        audit.Add(db, caller.UserId, caller.UserName, AuditActions.VmUpdate, "vm", vm.Id.ToString(),
            $"{before} -> name={vm.Name} memory={vm.MemoryMiB}MiB disks={vm.Disks.Count}");
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateConcurrencyException)
        {
            return OpResult<VmDto>.Conflict("The VM was changed by someone else; reload it and try again.");
        }
        catch (DbUpdateException e) when (IsUniqueViolation(e))
        {
            return OpResult<VmDto>.Conflict($"{vm.Owner!.UserName} already has a VM named '{spec.Name}'.");
        }
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
        vm.Disks = (spec.Disks ?? []).Select(d => new VmDisk
        {
            SizeMiB = d.SizeMiB!.Value,
            BackingImageId = string.IsNullOrEmpty(d.BackingImageId) ? null : d.BackingImageId,
            Bus = d.Bus ?? "ide",
        }).ToList();
        var nic = spec.Nic;
        vm.Nic = new VmNic
        {
            Enabled = nic?.Enabled ?? vm.Nic.Enabled,
            Model = nic?.Model ?? vm.Nic.Model,
            MacAddress = (nic?.MacAddress is { Length: > 0 } mac ? mac : vm.Nic.MacAddress).ToLowerInvariant(),
            Network = nic?.Network ?? vm.Nic.Network,
        };
        if (spec.StartAtBoot is { } sab) vm.StartAtBoot = sab;
    }

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

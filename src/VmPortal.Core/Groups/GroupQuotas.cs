using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Quotas;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Groups;

/// <summary>
/// Quotas shared by a group's members: the sum over every member's VMs must stay within the group's limits (a VM of a
/// user in two groups counts in both). Checked by <see cref="QuotaService"/> after the owner's own quota, under
/// advisory locks on the owner and then on each of the owner's groups (in id order, so two requests never wait on
/// each other in a circle).
/// </summary>
public static class GroupQuotas
{
    // the (int, int) advisory-lock key space is separate from the bigint one the per-owner locks use
    private const int LockClass = 0x67727570; // "grup"

    public static async Task LockGroupsOfAsync(PortalDbContext db, Guid ownerId, CancellationToken ct)
    {
        var groups = await QuotaGroupsOfAsync(db, ownerId, ct);
        foreach (var g in groups.OrderBy(g => g))
        {
            var key = BitConverter.ToInt32(g.ToByteArray(), 0);
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({LockClass}, {key})", ct);
        }
    }

    /// <summary>The owner's groups that have a quota row.</summary>
    private static Task<List<Guid>> QuotaGroupsOfAsync(PortalDbContext db, Guid ownerId, CancellationToken ct) =>
        db.GroupMembers.Where(m => m.UserId == ownerId && db.GroupQuotas.Any(q => q.GroupId == m.GroupId))
            .Select(m => m.GroupId).ToListAsync(ct);

    public static async Task<QuotaDto> QuotaOfAsync(PortalDbContext db, Guid groupId, CancellationToken ct = default)
    {
        var q = await db.GroupQuotas.AsNoTracking().FirstOrDefaultAsync(x => x.GroupId == groupId, ct);
        return q is null ? QuotaDto.Unlimited : new QuotaDto(q.MaxVms, q.MaxRunningVms, q.MaxMemoryMiB, q.MaxDiskGiB);
    }

    public static async Task<QuotaUsage> UsageAsync(PortalDbContext db, Guid groupId, CancellationToken ct = default, Guid? exceptVm = null)
    {
        var vms = await db.VirtualMachines.AsNoTracking()
            .Where(v => db.GroupMembers.Any(m => m.GroupId == groupId && m.UserId == v.OwnerId) && v.Id != exceptVm)
            .Select(v => new { v.State, v.MemoryMiB, v.Disks }).ToListAsync(ct);
        var running = vms.Where(v => v.State is not (VmState.Stopped or VmState.Crashed)).ToList();
        return new QuotaUsage(vms.Count, running.Count, running.Sum(v => (long)v.MemoryMiB), vms.Sum(v => v.Disks.Sum(d => d.SizeMiB)) / 1024.0);
    }

    private static async Task<List<(string Name, QuotaDto Quota, Guid Id)>> QuotasOfOwnerAsync(PortalDbContext db, Guid ownerId, CancellationToken ct)
    {
        var rows = await (from m in db.GroupMembers
                          join g in db.Groups on m.GroupId equals g.Id
                          join q in db.GroupQuotas on g.Id equals q.GroupId
                          where m.UserId == ownerId
                          orderby g.NormalizedName
                          select new { g.Id, g.Name, q.MaxVms, q.MaxRunningVms, q.MaxMemoryMiB, q.MaxDiskGiB }).AsNoTracking().ToListAsync(ct);
        return rows.Select(r => (r.Name, new QuotaDto(r.MaxVms, r.MaxRunningVms, r.MaxMemoryMiB, r.MaxDiskGiB), r.Id)).ToList();
    }

    public static async Task<string?> CheckCreateAsync(PortalDbContext db, Guid ownerId, long diskMiB, CancellationToken ct)
    {
        foreach (var (name, quota, id) in await QuotasOfOwnerAsync(db, ownerId, ct))
        {
            if (quota.MaxVms is null && quota.MaxDiskGiB is null) continue;
            var usage = await UsageAsync(db, id, ct);
            if (quota.MaxVms is int maxVms && usage.Vms + 1 > maxVms)
                return $"VM quota of group '{name}' exceeded: its members have {usage.Vms} of {maxVms} VMs.";
            if (quota.MaxDiskGiB is int maxDisk && usage.DiskGiB + diskMiB / 1024.0 > maxDisk)
                return $"Disk quota of group '{name}' exceeded: its members use {usage.DiskGiB:0.##} GiB + {diskMiB / 1024.0:0.##} GiB requested > {maxDisk} GiB.";
        }
        return null;
    }

    public static async Task<string?> CheckDiskGrowthAsync(PortalDbContext db, Guid ownerId, long addMiB, CancellationToken ct)
    {
        if (addMiB <= 0) return null;
        foreach (var (name, quota, id) in await QuotasOfOwnerAsync(db, ownerId, ct))
        {
            if (quota.MaxDiskGiB is not int maxDisk) continue;
            var usage = await UsageAsync(db, id, ct);
            if (usage.DiskGiB + addMiB / 1024.0 > maxDisk)
                return $"Disk quota of group '{name}' exceeded: its members use {usage.DiskGiB:0.##} GiB + {addMiB / 1024.0:0.##} GiB more > {maxDisk} GiB.";
        }
        return null;
    }

    public static async Task<string?> CheckStartAsync(PortalDbContext db, Guid ownerId, Guid vmId, int memoryMiB, CancellationToken ct)
    {
        foreach (var (name, quota, id) in await QuotasOfOwnerAsync(db, ownerId, ct))
        {
            if (quota.MaxRunningVms is null && quota.MaxMemoryMiB is null) continue;
            var usage = await UsageAsync(db, id, ct, exceptVm: vmId);
            if (quota.MaxRunningVms is int maxRunning && usage.RunningVms + 1 > maxRunning)
                return $"Running-VM quota of group '{name}' exceeded: {usage.RunningVms} of {maxRunning} of its members' VMs already run.";
            if (quota.MaxMemoryMiB is int maxMem && usage.RunningMemoryMiB + memoryMiB > maxMem)
                return $"Memory quota of group '{name}' exceeded: its members' running VMs use {usage.RunningMemoryMiB} MiB + {memoryMiB} MiB for this one > {maxMem} MiB.";
        }
        return null;
    }
}

using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Quotas;

/// <summary>A user's limits (null: unlimited), as REST and the UI show them.</summary>
public sealed record QuotaDto(int? MaxVms, int? MaxRunningVms, int? MaxMemoryMiB, int? MaxDiskGiB)
{
    public static readonly QuotaDto Unlimited = new(null, null, null, null);
}

/// <summary>What a user uses now: VMs, running VMs (starting, running, paused or stopping), their memory, disk GiB.</summary>
public sealed record QuotaUsage(int Vms, int RunningVms, long RunningMemoryMiB, double DiskGiB);

public sealed record QuotaView(Guid UserId, QuotaDto Quota, QuotaUsage Usage);

/// <summary>
/// Per-user quotas. Checks run inside the caller's transaction after <see cref="LockOwnerAsync"/>: a PostgreSQL
/// transaction-scoped advisory lock keyed by the owner serializes every create and start of that owner's VMs, so
/// the count read and the row written are one atomic step — concurrent requests can never pass a limit together.
/// </summary>
public sealed class QuotaService(IDbContextFactory<PortalDbContext> dbFactory, AuditLog audit)
{
    public const string AuditSet = "quota.set";

    /// <summary>The user's quota and usage: admins for anyone, users for themselves; null when not allowed or unknown.</summary>
    public async Task<QuotaView?> GetAsync(Caller caller, Guid userId, CancellationToken ct = default)
    {
        if (!caller.IsAdmin && caller.UserId != userId) return null;
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        if (!await db.Users.AnyAsync(u => u.Id == userId, ct)) return null;
        return new QuotaView(userId, await QuotaOfAsync(db, userId, ct), await UsageAsync(db, userId, ct));
    }

    /// <summary>The field errors of a set of limits (users' and groups' alike): each is null (no limit) or 0 or more.</summary>
    public static Dictionary<string, string[]> LimitErrors(QuotaDto quota)
    {
        var errors = new Dictionary<string, string[]>();
        void Check(string field, int? value) { if (value is < 0) errors[field] = ["Must be 0 or more (or null for no limit)."]; }
        Check("maxVms", quota.MaxVms);
        Check("maxRunningVms", quota.MaxRunningVms);
        Check("maxMemoryMiB", quota.MaxMemoryMiB);
        Check("maxDiskGiB", quota.MaxDiskGiB);
        return errors;
    }

    public async Task<OpResult<QuotaView>> SetAsync(Caller caller, Guid userId, QuotaDto quota, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<QuotaView>.NotFound("User not found.");
        var errors = LimitErrors(quota);
        if (errors.Count > 0) return OpResult<QuotaView>.Invalid(errors);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null) return OpResult<QuotaView>.NotFound("User not found.");
        var row = await db.UserQuotas.FirstOrDefaultAsync(q => q.UserId == userId, ct);
        if (row is null) db.UserQuotas.Add(row = new UserQuota { UserId = userId });
        row.MaxVms = quota.MaxVms;
        row.MaxRunningVms = quota.MaxRunningVms;
        row.MaxMemoryMiB = quota.MaxMemoryMiB;
        row.MaxDiskGiB = quota.MaxDiskGiB;
        audit.Add(db, caller.UserId, caller.UserName, AuditSet, "user", userId.ToString(),
            $"user={user.UserName} vms={Show(quota.MaxVms)} running={Show(quota.MaxRunningVms)} memory={Show(quota.MaxMemoryMiB)}MiB disk={Show(quota.MaxDiskGiB)}GiB");
        await db.SaveChangesAsync(ct);
        return OpResult<QuotaView>.Ok(new QuotaView(userId, quota, await UsageAsync(db, userId, ct)));
    }

    private static string Show(int? v) => v?.ToString() ?? "unlimited";

    /// <summary>Serializes quota checks of one owner until the transaction ends (call inside a transaction).</summary>
    /// <remarks>Then locks the owner's groups that have a quota (<see cref="Groups.GroupQuotas"/>), in id order.</remarks>
    public static async Task LockOwnerAsync(PortalDbContext db, Guid ownerId, CancellationToken ct = default)
    {
        var key = BitConverter.ToInt64(ownerId.ToByteArray(), 0);
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({key})", ct);
        await Groups.GroupQuotas.LockGroupsOfAsync(db, ownerId, ct);
    }

    public static async Task<QuotaDto> QuotaOfAsync(PortalDbContext db, Guid userId, CancellationToken ct = default)
    {
        var q = await db.UserQuotas.AsNoTracking().FirstOrDefaultAsync(x => x.UserId == userId, ct);
        return q is null ? QuotaDto.Unlimited : new QuotaDto(q.MaxVms, q.MaxRunningVms, q.MaxMemoryMiB, q.MaxDiskGiB);
    }

    public static async Task<QuotaUsage> UsageAsync(PortalDbContext db, Guid userId, CancellationToken ct = default)
    {
        var vms = await db.VirtualMachines.AsNoTracking().Where(v => v.OwnerId == userId)
            .Select(v => new { v.State, v.MemoryMiB, v.Disks }).ToListAsync(ct);
        var running = vms.Where(v => v.State is not (VmState.Stopped or VmState.Crashed or VmState.Suspended)).ToList();
        return new QuotaUsage(vms.Count, running.Count, running.Sum(v => (long)v.MemoryMiB),
            vms.Sum(v => v.Disks.Sum(d => d.SizeMiB)) / 1024.0);
    }

    /// <summary>Why creating a VM with <paramref name="diskMiB"/> of disks would exceed the owner's quota, or null.</summary>
    public static async Task<string?> CheckCreateAsync(PortalDbContext db, Guid ownerId, long diskMiB, CancellationToken ct = default) =>
        await CheckOwnCreateAsync(db, ownerId, diskMiB, ct) ?? await Groups.GroupQuotas.CheckCreateAsync(db, ownerId, diskMiB, ct);

    private static async Task<string?> CheckOwnCreateAsync(PortalDbContext db, Guid ownerId, long diskMiB, CancellationToken ct)
    {
        var quota = await QuotaOfAsync(db, ownerId, ct);
        if (quota == QuotaDto.Unlimited) return null;
        var usage = await UsageAsync(db, ownerId, ct);
        if (quota.MaxVms is int maxVms && usage.Vms + 1 > maxVms)
            return $"VM quota exceeded: {usage.Vms} of {maxVms} VMs exist.";
        if (quota.MaxDiskGiB is int maxDisk && usage.DiskGiB + diskMiB / 1024.0 > maxDisk)
            return $"Disk quota exceeded: {usage.DiskGiB:0.##} GiB used + {diskMiB / 1024.0:0.##} GiB requested > {maxDisk} GiB.";
        return null;
    }

    /// <summary>Why growing the owner's disks by <paramref name="addMiB"/> would exceed the quota, or null.</summary>
    public static async Task<string?> CheckDiskGrowthAsync(PortalDbContext db, Guid ownerId, long addMiB, CancellationToken ct = default) =>
        await CheckOwnDiskGrowthAsync(db, ownerId, addMiB, ct) ?? await Groups.GroupQuotas.CheckDiskGrowthAsync(db, ownerId, addMiB, ct);

    private static async Task<string?> CheckOwnDiskGrowthAsync(PortalDbContext db, Guid ownerId, long addMiB, CancellationToken ct)
    {
        if (addMiB <= 0) return null;
        var quota = await QuotaOfAsync(db, ownerId, ct);
        if (quota.MaxDiskGiB is not int maxDisk) return null;
        var usage = await UsageAsync(db, ownerId, ct);
        return usage.DiskGiB + addMiB / 1024.0 > maxDisk
            ? $"Disk quota exceeded: {usage.DiskGiB:0.##} GiB used + {addMiB / 1024.0:0.##} GiB more > {maxDisk} GiB."
            : null;
    }

    /// <summary>Why starting VM <paramref name="vmId"/> (<paramref name="memoryMiB"/>) would exceed the owner's quota, or null.</summary>
    public static async Task<string?> CheckStartAsync(PortalDbContext db, Guid ownerId, Guid vmId, int memoryMiB, CancellationToken ct = default) =>
        await CheckOwnStartAsync(db, ownerId, vmId, memoryMiB, ct) ?? await Groups.GroupQuotas.CheckStartAsync(db, ownerId, vmId, memoryMiB, ct);

    private static async Task<string?> CheckOwnStartAsync(PortalDbContext db, Guid ownerId, Guid vmId, int memoryMiB, CancellationToken ct)
    {
        var quota = await QuotaOfAsync(db, ownerId, ct);
        if (quota.MaxRunningVms is null && quota.MaxMemoryMiB is null) return null;
        var running = await db.VirtualMachines.AsNoTracking()
            .Where(v => v.OwnerId == ownerId && v.Id != vmId && v.State != VmState.Stopped && v.State != VmState.Crashed && v.State != VmState.Suspended)
            .Select(v => v.MemoryMiB).ToListAsync(ct);
        if (quota.MaxRunningVms is int maxRunning && running.Count + 1 > maxRunning)
            return $"Running-VM quota exceeded: {running.Count} of {maxRunning} VMs already run.";
        if (quota.MaxMemoryMiB is int maxMem && running.Sum() + memoryMiB > maxMem)
            return $"Memory quota exceeded: running VMs use {running.Sum()} MiB + {memoryMiB} MiB for this one > {maxMem} MiB.";
        return null;
    }
}

/// <summary>A request refused because it would exceed a quota (the message names the quota and the numbers).</summary>
public sealed class QuotaExceededException(string message) : InvalidOperationException(message);

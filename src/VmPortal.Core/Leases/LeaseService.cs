using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Core.Audit;
using VmPortal.Core.Runtime;
using VmPortal.Core.Vms;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Leases;

/// <summary><c>PUT /api/vms/{id}/lease</c>: <c>expiresAt</c> (null removes the lease) and the grace before deletion (hours, default 24).</summary>
public sealed record LeaseSpec(DateTimeOffset? ExpiresAt, int? GraceHours = null);

/// <summary>A VM's lease; <c>Warning</c>: it ends within <see cref="LeaseService.WarnBefore"/> (the UI warns the owner).</summary>
public sealed record LeaseDto(Guid VmId, DateTimeOffset ExpiresAt, DateTimeOffset DeleteAt, DateTimeOffset? StoppedAt, string SetBy, bool Warning, bool Expired);

/// <summary>What one pass of the reaper did.</summary>
public sealed record ReapResult(IReadOnlyList<Guid> Stopped, IReadOnlyList<Guid> Deleted);

/// <summary>
/// Leases: optional expiry per VM. The owner may set a lease or shorten it; extending or removing one is for admins.
/// <see cref="ReapAsync"/> (run every minute by the portal's lease reaper, and by tests with the time they choose)
/// powers off VMs whose lease has expired (again, if someone started one after expiry) and deletes them once the grace
/// period has passed. Every step is audited (<c>vm.lease-set</c>, <c>vm.lease-expired</c>, <c>vm.lease-deleted</c>).
/// </summary>
public sealed class LeaseService(IDbContextFactory<PortalDbContext> dbFactory, VmService vms, AuditLog audit, TimeProvider clock,
    IServiceProvider services, ILogger<LeaseService>? log = null)
{
    public static readonly TimeSpan WarnBefore = TimeSpan.FromHours(24);
    public const int DefaultGraceHours = 24;
    public const int MaxGraceHours = 24 * 90;
    public const string AuditSet = "vm.lease-set";
    public const string AuditExpired = "vm.lease-expired";
    public const string AuditDeleted = "vm.lease-deleted";
    private static readonly Caller System = new(Guid.Empty, "lease", IsAdmin: true);
    private readonly ILogger logger = (ILogger?)log ?? NullLogger.Instance;

    public async Task<OpResult<LeaseDto?>> GetAsync(Caller caller, Guid vmId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await db.VirtualMachines.AsNoTracking().Where(v => v.Id == vmId).Select(v => new { v.OwnerId }).FirstOrDefaultAsync(ct);
        if (vm is null || !caller.CanAccess(vm.OwnerId)) return OpResult<LeaseDto?>.NotFound($"VM {vmId} not found.");
        var lease = await db.Leases.AsNoTracking().FirstOrDefaultAsync(l => l.VmId == vmId, ct);
        return OpResult<LeaseDto?>.Ok(lease is null ? null : Dto(lease));
    }

    public async Task<OpResult<LeaseDto?>> SetAsync(Caller caller, Guid vmId, LeaseSpec spec, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == vmId, ct);
        if (vm is null || !caller.CanAccess(vm.OwnerId)) return OpResult<LeaseDto?>.NotFound($"VM {vmId} not found.");
        var now = clock.GetUtcNow();
        var lease = await db.Leases.FirstOrDefaultAsync(l => l.VmId == vmId, ct);
        if (spec.GraceHours is < 0 or > MaxGraceHours)
            return OpResult<LeaseDto?>.Invalid("graceHours", $"graceHours must be from 0 to {MaxGraceHours}.");
        if (spec.ExpiresAt is not { } expires)
        {
            if (lease is null) return OpResult<LeaseDto?>.Ok(null);
            if (!caller.IsAdmin) return OpResult<LeaseDto?>.Invalid("expiresAt", "Only an administrator can remove a lease.");
            db.Leases.Remove(lease);
            audit.Add(db, caller.UserId, caller.UserName, AuditSet, "vm", vmId.ToString(), $"name={vm.Name} lease removed");
            await db.SaveChangesAsync(ct);
            return OpResult<LeaseDto?>.Ok(null);
        }
        if (expires <= now) return OpResult<LeaseDto?>.Invalid("expiresAt", "expiresAt must be in the future.");
        if (!caller.IsAdmin && lease is not null && expires > lease.ExpiresAt)
            return OpResult<LeaseDto?>.Invalid("expiresAt", $"Only an administrator can extend a lease; this one ends at {lease.ExpiresAt:u}.");
        var grace = TimeSpan.FromHours(spec.GraceHours ?? (lease is null ? DefaultGraceHours : (int)(lease.DeleteAt - lease.ExpiresAt).TotalHours));
        if (lease is null) db.Leases.Add(lease = new VmLease { VmId = vmId });
        lease.ExpiresAt = expires;
        lease.DeleteAt = expires + grace;
        lease.StoppedAt = null;
        lease.SetByName = caller.UserName;
        lease.UpdatedAt = now;
        audit.Add(db, caller.UserId, caller.UserName, AuditSet, "vm", vmId.ToString(), $"name={vm.Name} expires={expires:u} delete={lease.DeleteAt:u}");
        await db.SaveChangesAsync(ct);
        return OpResult<LeaseDto?>.Ok(Dto(lease));
    }

    /// <summary>
    /// One pass at <paramref name="now"/>: power off the VMs whose lease expired (<paramref name="stop"/>, default the
    /// host's power-off), then delete those past their grace period (<paramref name="forget"/> drops a deleted VM from the
    /// host and its consoles).
    /// </summary>
    public async Task<ReapResult> ReapAsync(DateTimeOffset now, Func<Guid, Task>? forget = null, CancellationToken ct = default)
    {
        var host = services.GetService(typeof(VmHost)) as VmHost;
        List<VmLease> due;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            due = await db.Leases.AsNoTracking().Where(l => l.ExpiresAt <= now).ToListAsync(ct);
        var stopped = new List<Guid>();
        var deleted = new List<Guid>();
        foreach (var lease in due)
        {
            try
            {
                var running = host is not null && host.TryFind(lease.VmId, out var hosted) && Console.VmLifecycle.HasMachine(hosted.State);
                if (running)
                {
                    await host!.Get(lease.VmId).PowerOffAsync();
                    stopped.Add(lease.VmId);
                }
                if (lease.StoppedAt is null || running)
                {
                    await using var db = await dbFactory.CreateDbContextAsync(ct);
                    await WaitStoppedInDbAsync(db, lease.VmId, ct);
                    await db.Leases.Where(l => l.VmId == lease.VmId).ExecuteUpdateAsync(s => s.SetProperty(l => l.StoppedAt, now), ct);
                    await audit.WriteAsync(null, System.UserName, AuditExpired, "vm", lease.VmId.ToString(),
                        $"lease expired at {lease.ExpiresAt:u}; {(running ? "powered off" : "was not running")}; deletion at {lease.DeleteAt:u}", ct: ct);
                }
                if (lease.DeleteAt <= now)
                {
                    var r = await vms.DeleteAsync(System, lease.VmId, null, ct);
                    if (r.IsOk)
                    {
                        if (forget is not null) await forget(lease.VmId);
                        else if (host is not null) await host.RemoveAsync(lease.VmId);
                        deleted.Add(lease.VmId);
                        await audit.WriteAsync(null, System.UserName, AuditDeleted, "vm", lease.VmId.ToString(),
                            $"lease expired at {lease.ExpiresAt:u}; deleted after the grace period", ct: ct);
                    }
                    else logger.LogWarning("Lease of VM {Id}: delete refused: {Reason}", lease.VmId, r.Message);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Lease of VM {Id} could not be enforced", lease.VmId);
            }
        }
        return new ReapResult(stopped, deleted);
    }

    // the host's state reaches the database through the state sync (an event); wait for it briefly so a delete sees Stopped
    private static async Task WaitStoppedInDbAsync(PortalDbContext db, Guid vmId, CancellationToken ct)
    {
        for (var i = 0; i < 100; i++)
        {
            var state = await db.VirtualMachines.AsNoTracking().Where(v => v.Id == vmId).Select(v => (VmState?)v.State).FirstOrDefaultAsync(ct);
            if (state is null or VmState.Stopped or VmState.Crashed) return;
            await Task.Delay(50, ct);
        }
    }

    private LeaseDto Dto(VmLease l)
    {
        var now = clock.GetUtcNow();
        return new LeaseDto(l.VmId, l.ExpiresAt, l.DeleteAt, l.StoppedAt, l.SetByName, l.ExpiresAt - now <= WarnBefore, l.StoppedAt is not null || l.ExpiresAt <= now);
    }
}

using Microsoft.EntityFrameworkCore;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Core.Quotas;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Groups;

/// <summary>What an admin sends to create or rename a group.</summary>
public sealed record GroupSpec(string? Name, string? Description);

public sealed record GroupMemberDto(Guid UserId, string UserName);

public sealed record GroupDto(Guid Id, string Name, string Description, DateTimeOffset CreatedAt, IReadOnlyList<GroupMemberDto> Members, QuotaDto Quota);

/// <summary>A group's quota and what its members use together.</summary>
public sealed record GroupQuotaView(Guid GroupId, QuotaDto Quota, QuotaUsage Usage);

/// <summary>
/// User groups (admins manage them; a user sees the groups they belong to). Groups restrict catalog templates
/// (<see cref="TemplateAccess"/>) and carry a quota their members share (<see cref="GroupQuotas"/>).
/// </summary>
public sealed class GroupService(IDbContextFactory<PortalDbContext> dbFactory, AuditLog audit, TimeProvider clock)
{
    public const string AuditCreate = "group.create";
    public const string AuditUpdate = "group.update";
    public const string AuditDelete = "group.delete";
    public const string AuditMemberAdd = "group.member-add";
    public const string AuditMemberRemove = "group.member-remove";
    public const string AuditQuota = "group.quota-set";

    public async Task<IReadOnlyList<GroupDto>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = db.Groups.AsNoTracking();
        if (!caller.IsAdmin) q = q.Where(g => db.GroupMembers.Any(m => m.GroupId == g.Id && m.UserId == caller.UserId));
        var groups = await q.OrderBy(g => g.NormalizedName).ToListAsync(ct);
        var ids = groups.Select(g => g.Id).ToList();
        var members = await (from m in db.GroupMembers join u in db.Users on m.UserId equals u.Id
                             where ids.Contains(m.GroupId) orderby u.UserName
                             select new { m.GroupId, u.Id, u.UserName }).ToListAsync(ct);
        var quotas = await db.GroupQuotas.AsNoTracking().Where(x => ids.Contains(x.GroupId)).ToDictionaryAsync(x => x.GroupId, ct);
        return groups.Select(g => new GroupDto(g.Id, g.Name, g.Description, g.CreatedAt,
            members.Where(m => m.GroupId == g.Id).Select(m => new GroupMemberDto(m.Id, m.UserName ?? "")).ToList(),
            quotas.TryGetValue(g.Id, out var gq) ? new QuotaDto(gq.MaxVms, gq.MaxRunningVms, gq.MaxMemoryMiB, gq.MaxDiskGiB) : QuotaDto.Unlimited)).ToList();
    }

    public async Task<GroupDto?> GetAsync(Caller caller, Guid id, CancellationToken ct = default) =>
        (await ListAsync(caller, ct)).FirstOrDefault(g => g.Id == id);

    public async Task<OpResult<GroupDto>> CreateAsync(Caller caller, GroupSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<GroupDto>.NotFound("Only administrators manage groups.");
        if (Validate(spec) is { Count: > 0 } errors) return OpResult<GroupDto>.Invalid(errors);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var g = new UserGroup(spec.Name!.Trim(), clock.GetUtcNow()) { Description = spec.Description ?? "" };
        db.Groups.Add(g);
        audit.Add(db, caller.UserId, caller.UserName, AuditCreate, "group", g.Id.ToString(), $"name={g.Name}");
        try { await db.SaveChangesAsync(ct); }
        catch (DbUpdateException e) when (IsUnique(e)) { return OpResult<GroupDto>.Conflict($"A group named '{g.Name}' already exists."); }
        return OpResult<GroupDto>.Ok(new GroupDto(g.Id, g.Name, g.Description, g.CreatedAt, [], QuotaDto.Unlimited));
    }

    public async Task<OpResult<GroupDto>> UpdateAsync(Caller caller, Guid id, GroupSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<GroupDto>.NotFound("Only administrators manage groups.");
        if (Validate(spec) is { Count: > 0 } errors) return OpResult<GroupDto>.Invalid(errors);
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var g = await db.Groups.FirstOrDefaultAsync(x => x.Id == id, ct);
            if (g is null) return OpResult<GroupDto>.NotFound($"Group {id} not found.");
            var before = g.Name;
            g.Rename(spec.Name!.Trim());
            g.Description = spec.Description ?? "";
            audit.Add(db, caller.UserId, caller.UserName, AuditUpdate, "group", g.Id.ToString(), $"name={before} -> {g.Name}");
            try { await db.SaveChangesAsync(ct); }
            catch (DbUpdateException e) when (IsUnique(e)) { return OpResult<GroupDto>.Conflict($"A group named '{g.Name}' already exists."); }
        }
        return OpResult<GroupDto>.Ok((await GetAsync(caller, id, ct))!);
    }

    /// <summary>Deletes a group; its memberships, template restrictions and quota go with it.</summary>
    public async Task<OpResult<bool>> DeleteAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<bool>.NotFound("Only administrators manage groups.");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var g = await db.Groups.FirstOrDefaultAsync(x => x.Id == id, ct);
        if (g is null) return OpResult<bool>.NotFound($"Group {id} not found.");
        db.Groups.Remove(g);
        audit.Add(db, caller.UserId, caller.UserName, AuditDelete, "group", g.Id.ToString(), $"name={g.Name}");
        await db.SaveChangesAsync(ct);
        return OpResult<bool>.Ok(true);
    }

    public async Task<OpResult<GroupDto>> AddMemberAsync(Caller caller, Guid id, Guid userId, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<GroupDto>.NotFound("Only administrators manage groups.");
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var g = await db.Groups.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
            if (g is null) return OpResult<GroupDto>.NotFound($"Group {id} not found.");
            var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == userId, ct);
            if (user is null) return OpResult<GroupDto>.Invalid("userId", "Unknown user.");
            if (!await db.GroupMembers.AnyAsync(m => m.GroupId == id && m.UserId == userId, ct))
            {
                db.GroupMembers.Add(new UserGroupMember { GroupId = id, UserId = userId });
                audit.Add(db, caller.UserId, caller.UserName, AuditMemberAdd, "group", id.ToString(), $"group={g.Name} user={user.UserName}");
                try { await db.SaveChangesAsync(ct); }
                catch (DbUpdateException e) when (IsUnique(e)) { } // added meanwhile: the same outcome
            }
        }
        return OpResult<GroupDto>.Ok((await GetAsync(caller, id, ct))!);
    }

    public async Task<OpResult<GroupDto>> RemoveMemberAsync(Caller caller, Guid id, Guid userId, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<GroupDto>.NotFound("Only administrators manage groups.");
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var g = await db.Groups.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
            if (g is null) return OpResult<GroupDto>.NotFound($"Group {id} not found.");
            var m = await db.GroupMembers.FirstOrDefaultAsync(x => x.GroupId == id && x.UserId == userId, ct);
            if (m is null) return OpResult<GroupDto>.NotFound("That user is not a member of this group.");
            db.GroupMembers.Remove(m);
            var name = await db.Users.Where(u => u.Id == userId).Select(u => u.UserName).FirstOrDefaultAsync(ct);
            audit.Add(db, caller.UserId, caller.UserName, AuditMemberRemove, "group", id.ToString(), $"group={g.Name} user={name}");
            await db.SaveChangesAsync(ct);
        }
        return OpResult<GroupDto>.Ok((await GetAsync(caller, id, ct))!);
    }

    /// <summary>A group's quota and its members' usage (admins, or members of the group).</summary>
    public async Task<GroupQuotaView?> GetQuotaAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        if (!await db.Groups.AnyAsync(g => g.Id == id, ct)) return null;
        if (!caller.IsAdmin && !await db.GroupMembers.AnyAsync(m => m.GroupId == id && m.UserId == caller.UserId, ct)) return null;
        return new GroupQuotaView(id, await GroupQuotas.QuotaOfAsync(db, id, ct), await GroupQuotas.UsageAsync(db, id, ct));
    }

    public async Task<OpResult<GroupQuotaView>> SetQuotaAsync(Caller caller, Guid id, QuotaDto quota, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<GroupQuotaView>.NotFound("Only administrators manage groups.");
        var errors = QuotaService.LimitErrors(quota);
        if (errors.Count > 0) return OpResult<GroupQuotaView>.Invalid(errors);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var g = await db.Groups.AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
        if (g is null) return OpResult<GroupQuotaView>.NotFound($"Group {id} not found.");
        var row = await db.GroupQuotas.FirstOrDefaultAsync(q => q.GroupId == id, ct);
        if (row is null) db.GroupQuotas.Add(row = new GroupQuota { GroupId = id });
        row.MaxVms = quota.MaxVms;
        row.MaxRunningVms = quota.MaxRunningVms;
        row.MaxMemoryMiB = quota.MaxMemoryMiB;
        row.MaxDiskGiB = quota.MaxDiskGiB;
        audit.Add(db, caller.UserId, caller.UserName, AuditQuota, "group", id.ToString(),
            $"group={g.Name} vms={quota.MaxVms?.ToString() ?? "unlimited"} running={quota.MaxRunningVms?.ToString() ?? "unlimited"} " +
            $"memory={quota.MaxMemoryMiB?.ToString() ?? "unlimited"}MiB disk={quota.MaxDiskGiB?.ToString() ?? "unlimited"}GiB");
        await db.SaveChangesAsync(ct);
        return OpResult<GroupQuotaView>.Ok(new GroupQuotaView(id, quota, await GroupQuotas.UsageAsync(db, id, ct)));
    }

    private static Dictionary<string, string[]> Validate(GroupSpec spec)
    {
        var errors = new Dictionary<string, string[]>();
        var name = spec.Name?.Trim();
        if (string.IsNullOrEmpty(name)) errors["name"] = ["Name is required."];
        else if (name.Length > UserGroup.NameMaxLength) errors["name"] = [$"At most {UserGroup.NameMaxLength} characters."];
        else if (name.Any(char.IsControl)) errors["name"] = ["No control characters."];
        if (spec.Description is { Length: > UserGroup.DescriptionMaxLength }) errors["description"] = [$"At most {UserGroup.DescriptionMaxLength} characters."];
        return errors;
    }

    private static bool IsUnique(DbUpdateException e) => e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };
}

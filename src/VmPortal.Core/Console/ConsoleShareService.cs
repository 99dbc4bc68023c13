using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Console;

/// <summary>A share link as lists show it (the token itself is never shown again).</summary>
public sealed record ConsoleShareDto(Guid Id, Guid VmId, string Prefix, string Label, string CreatedBy,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? RevokedAt, bool Active);

/// <summary>A freshly made link: <see cref="Token"/> (and the URL built from it) is shown once and never stored.</summary>
public sealed record CreatedConsoleShare(Guid Id, Guid VmId, string Token, string Label, DateTimeOffset ExpiresAt);

/// <summary>What a valid token opens: one VM's console, view-only, until <see cref="ExpiresAt"/>.</summary>
public sealed record ConsoleShareGrant(Guid ShareId, Guid VmId, string VmName, string Prefix, DateTimeOffset ExpiresAt);

/// <summary>
/// View-only console links (<c>/console/shared/{token}</c>): made, listed and revoked by the VM's owner or an admin.
/// Tokens are "vms_" + 43 base64url characters (32 random bytes); only their SHA-256 (hex) is stored. Every link
/// expires (at most <see cref="MaxExpiresInHours"/> hours). Revoking a link, or moving its expiry, raises
/// <see cref="ShareChanged"/> so viewers that are already watching are cut off at once.
/// </summary>
public sealed class ConsoleShareService(IDbContextFactory<PortalDbContext> dbFactory, AuditLog audit, TimeProvider clock)
{
    public const string TokenPrefix = "vms_";
    public const int MaxExpiresInHours = 30 * 24;
    public const int MaxActivePerVm = 50;
    public const string AuditCreate = "console-share.create";
    public const string AuditRevoke = "console-share.revoke";
    public const string AuditOpen = "console-share.open";

    /// <summary>A link's expiry changed or it was revoked: (share id, new expiry; <c>DateTimeOffset.MinValue</c> when revoked).</summary>
    public event Action<Guid, DateTimeOffset>? ShareChanged;

    public static string Hash(string token) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token))).ToLowerInvariant();

    /// <summary>Whether <paramref name="token"/> has the shape of a share token (cheap check before any lookup).</summary>
    public static bool LooksLikeToken(string? token) =>
        token is { Length: > 4 and <= 100 } && token.StartsWith(TokenPrefix, StringComparison.Ordinal);

    public async Task<OpResult<CreatedConsoleShare>> CreateAsync(Caller caller, Guid vmId, int? expiresInHours, string? label,
        CancellationToken ct = default)
    {
        if (expiresInHours is null)
            return OpResult<CreatedConsoleShare>.Invalid("expiresInHours", $"expiresInHours is required (1 to {MaxExpiresInHours}).");
        if (expiresInHours is < 1 or > MaxExpiresInHours)
            return OpResult<CreatedConsoleShare>.Invalid("expiresInHours", $"expiresInHours must be between 1 and {MaxExpiresInHours} (30 days).");
        label = (label ?? "").Trim();
        if (label.Length > ConsoleShare.LabelMaxLength)
            return OpResult<CreatedConsoleShare>.Invalid("label", $"label must be at most {ConsoleShare.LabelMaxLength} characters.");
        if (label.Any(char.IsControl))
            return OpResult<CreatedConsoleShare>.Invalid("label", "label must not contain control characters.");

        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await VisibleVmAsync(db, caller, vmId, ct);
        if (vm is null) return OpResult<CreatedConsoleShare>.NotFound($"VM {vmId} not found.");
        var now = clock.GetUtcNow();
        var active = await db.ConsoleShares.CountAsync(s => s.VmId == vmId && s.RevokedAt == null && s.ExpiresAt > now, ct);
        if (active >= MaxActivePerVm)
            return OpResult<CreatedConsoleShare>.Conflict($"This VM already has {active} active share links; revoke some first.");

        var token = TokenPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var share = new ConsoleShare
        {
            VmId = vmId,
            TokenHash = Hash(token),
            Prefix = token[..8],
            Label = label,
            CreatedById = caller.UserId,
            CreatedByName = caller.UserName,
            CreatedAt = now,
            ExpiresAt = now.AddHours(expiresInHours.Value),
        };
        db.ConsoleShares.Add(share);
        audit.Add(db, caller.UserId, caller.UserName, AuditCreate, "vm", vmId.ToString(),
            $"vm={vm.Name} share={share.Id} prefix={share.Prefix} expires={share.ExpiresAt:u}{(label.Length > 0 ? $" label={label}" : "")}");
        await db.SaveChangesAsync(ct);
        return OpResult<CreatedConsoleShare>.Ok(new CreatedConsoleShare(share.Id, vmId, token, label, share.ExpiresAt));
    }

    /// <summary>The VM's links, newest first (revoked and expired ones included, marked inactive).</summary>
    public async Task<OpResult<IReadOnlyList<ConsoleShareDto>>> ListAsync(Caller caller, Guid vmId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        if (await VisibleVmAsync(db, caller, vmId, ct) is null) return OpResult<IReadOnlyList<ConsoleShareDto>>.NotFound($"VM {vmId} not found.");
        var now = clock.GetUtcNow();
        var rows = await db.ConsoleShares.AsNoTracking().Where(s => s.VmId == vmId).OrderByDescending(s => s.CreatedAt).ToListAsync(ct);
        return OpResult<IReadOnlyList<ConsoleShareDto>>.Ok(rows.Select(s => ToDto(s, now)).ToList());
    }

    /// <summary>Revokes a link of the VM (idempotent) and cuts off its viewers.</summary>
    public async Task<OpResult<bool>> RevokeAsync(Caller caller, Guid vmId, Guid shareId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vm = await VisibleVmAsync(db, caller, vmId, ct);
        if (vm is null) return OpResult<bool>.NotFound($"VM {vmId} not found.");
        var share = await db.ConsoleShares.FirstOrDefaultAsync(s => s.Id == shareId && s.VmId == vmId, ct);
        if (share is null) return OpResult<bool>.NotFound($"Share link {shareId} not found.");
        if (share.RevokedAt is null)
        {
            share.RevokedAt = clock.GetUtcNow();
            audit.Add(db, caller.UserId, caller.UserName, AuditRevoke, "vm", vmId.ToString(),
                $"vm={vm.Name} share={share.Id} prefix={share.Prefix}");
            await db.SaveChangesAsync(ct);
        }
        ShareChanged?.Invoke(share.Id, DateTimeOffset.MinValue);
        return OpResult<bool>.Ok(true);
    }

    /// <summary>What <paramref name="token"/> opens; null when unknown, revoked, expired or malformed.</summary>
    public async Task<ConsoleShareGrant?> ResolveAsync(string? token, CancellationToken ct = default)
    {
        if (!LooksLikeToken(token)) return null;
        var hash = Hash(token!);
        var now = clock.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var row = await db.ConsoleShares.AsNoTracking().Where(s => s.TokenHash == hash)
            .Select(s => new { s.Id, s.VmId, s.Prefix, s.ExpiresAt, s.RevokedAt, VmName = s.Vm!.Name })
            .FirstOrDefaultAsync(ct);
        if (row is null || row.RevokedAt is not null || row.ExpiresAt <= now) return null;
        return new ConsoleShareGrant(row.Id, row.VmId, row.VmName, row.Prefix, row.ExpiresAt);
    }

    /// <summary>Records that someone opened the console through a link (who, if signed in, and from where).</summary>
    public Task RecordOpenAsync(ConsoleShareGrant grant, Caller? viewer, string? remoteAddress, CancellationToken ct = default) =>
        audit.WriteAsync(viewer?.UserId, viewer?.UserName ?? "(anonymous)", AuditOpen, "vm", grant.VmId.ToString(),
            $"vm={grant.VmName} share={grant.ShareId} prefix={grant.Prefix} from={remoteAddress ?? "?"}", ct: ct);

    /// <summary>Whether the link is still valid now (re-checked by long-lived viewers).</summary>
    public async Task<bool> IsActiveAsync(Guid shareId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var now = clock.GetUtcNow();
        return await db.ConsoleShares.AnyAsync(s => s.Id == shareId && s.RevokedAt == null && s.ExpiresAt > now, ct);
    }

    /// <summary>Test hook and admin tool: moves a link's expiry (e.g. into the past); viewers follow the new expiry.</summary>
    public async Task SetExpiryAsync(Guid shareId, DateTimeOffset expiresAt, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.ConsoleShares.Where(s => s.Id == shareId).ExecuteUpdateAsync(s => s.SetProperty(x => x.ExpiresAt, expiresAt), ct);
        ShareChanged?.Invoke(shareId, expiresAt);
    }

    public DateTimeOffset Now => clock.GetUtcNow();

    private static ConsoleShareDto ToDto(ConsoleShare s, DateTimeOffset now) =>
        new(s.Id, s.VmId, s.Prefix, s.Label, s.CreatedByName, s.CreatedAt, s.ExpiresAt, s.RevokedAt, s.IsActive(now));

    private static Task<VirtualMachine?> VisibleVmAsync(PortalDbContext db, Caller caller, Guid vmId, CancellationToken ct) =>
        db.VirtualMachines.AsNoTracking().FirstOrDefaultAsync(v => v.Id == vmId && (caller.IsAdmin || v.OwnerId == caller.UserId), ct);
}

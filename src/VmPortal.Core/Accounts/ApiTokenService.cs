using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Accounts;

public sealed record ApiTokenDto(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt,
    DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt, bool Active);

/// <summary>A freshly minted token: <see cref="Token"/> is shown once and never stored.</summary>
public sealed record CreatedApiToken(Guid Id, string Name, string Token, DateTimeOffset ExpiresAt);

/// <summary>The user behind a valid token.</summary>
public sealed record TokenIdentity(Guid UserId, string UserName, IReadOnlyList<string> Roles, Guid TokenId);

/// <summary>
/// Personal API tokens: "vmp_" + 43 base64url characters (32 random bytes). Only the SHA-256 (hex) is stored.
/// </summary>
public sealed class ApiTokenService(IDbContextFactory<PortalDbContext> dbFactory, AuditLog audit, TimeProvider clock)
{
    public const string TokenPrefix = "vmp_";
    public const int MaxExpiresInDays = 365;
    public const int NameMaxLength = 100;

    public static string Hash(string token) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token))).ToLowerInvariant();

    public static string? ValidateRequest(string? name, int? expiresInDays, out string field)
    {
        field = "name";
        if (string.IsNullOrWhiteSpace(name)) return "Token name is required.";
        if (name.Length > NameMaxLength) return $"Token name must be at most {NameMaxLength} characters.";
        field = "expiresInDays";
        if (expiresInDays is < 1 or > MaxExpiresInDays) return $"expiresInDays must be between 1 and {MaxExpiresInDays}.";
        return null;
    }

    public async Task<OpResult<CreatedApiToken>> CreateAsync(Guid userId, string userName, string? name, int? expiresInDays, CancellationToken ct = default)
    {
        if (ValidateRequest(name, expiresInDays, out var field) is { } error) return OpResult<CreatedApiToken>.Invalid(field, error);
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var token = TokenPrefix + secret;
        var now = clock.GetUtcNow();
        var entity = new ApiToken
        {
            UserId = userId,
            Name = name!.Trim(),
            Prefix = token[..8],
            Hash = Hash(token),
            CreatedAt = now,
            ExpiresAt = now.AddDays(expiresInDays ?? 30),
        };
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        db.ApiTokens.Add(entity);
        audit.Add(db, userId, userName, AuditActions.TokenCreate, "token", entity.Id.ToString(), $"name={entity.Name} expires={entity.ExpiresAt:u}");
        await db.SaveChangesAsync(ct);
        return OpResult<CreatedApiToken>.Ok(new CreatedApiToken(entity.Id, entity.Name, token, entity.ExpiresAt));
    }

    public async Task<IReadOnlyList<ApiTokenDto>> ListAsync(Guid userId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var now = clock.GetUtcNow();
        var rows = await db.ApiTokens.AsNoTracking().Where(t => t.UserId == userId).OrderByDescending(t => t.CreatedAt).ToListAsync(ct);
        return rows.Select(t => new ApiTokenDto(t.Id, t.Name, t.Prefix, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt, t.IsActive(now))).ToList();
    }

    /// <summary>Revokes one of the caller's tokens (admins may revoke anyone's).</summary>
    public async Task<OpResult<bool>> RevokeAsync(Caller caller, Guid tokenId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await db.ApiTokens.FirstOrDefaultAsync(x => x.Id == tokenId && (caller.IsAdmin || x.UserId == caller.UserId), ct);
        if (t is null) return OpResult<bool>.NotFound("Token not found.");
        if (t.RevokedAt is null)
        {
            t.RevokedAt = clock.GetUtcNow();
            audit.Add(db, caller.UserId, caller.UserName, AuditActions.TokenRevoke, "token", t.Id.ToString(), $"name={t.Name}");
            await db.SaveChangesAsync(ct);
        }
        return OpResult<bool>.Ok(true);
    }

    /// <summary>Resolves a bearer token to its user; null when unknown, revoked, expired or the user is disabled (not when password sign-in is throttled).</summary>
    public async Task<TokenIdentity?> AuthenticateAsync(string token, CancellationToken ct = default)
    {
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length > 100) return null;
        var hash = Hash(token);
        var now = clock.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await db.ApiTokens.Include(x => x.User).FirstOrDefaultAsync(x => x.Hash == hash, ct);
        if (t?.User is null || !t.IsActive(now) || t.User.IsDisabled) return null;
        // A token is its own credential: password-guessing throttles and lockouts of the account do not touch it.
        var roles = await (from ur in db.UserRoles
                           join r in db.Roles on ur.RoleId equals r.Id
                           where ur.UserId == t.UserId
                           select r.Name!).ToListAsync(ct);
        if (t.LastUsedAt is null || now - t.LastUsedAt > TimeSpan.FromMinutes(1))
        {
            t.LastUsedAt = now;
            await db.SaveChangesAsync(ct);
        }
        return new TokenIdentity(t.UserId, t.User.UserName ?? "", roles, t.Id);
    }

    /// <summary>Test hook and admin tool: moves a token's expiry (e.g. into the past).</summary>
    public async Task SetExpiryAsync(Guid tokenId, DateTimeOffset expiresAt, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.ApiTokens.Where(t => t.Id == tokenId).ExecuteUpdateAsync(s => s.SetProperty(t => t.ExpiresAt, expiresAt), ct);
    }
}

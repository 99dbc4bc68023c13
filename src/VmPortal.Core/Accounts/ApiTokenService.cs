using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Audit;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Accounts;

public sealed record ApiTokenDto(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt,
    DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt, bool Active, IReadOnlyList<string>? Scopes = null,
    int? RateLimitPerMinute = null, string? LastUsedAddress = null);

/// <summary>A freshly minted token: <see cref="Token"/> is shown once and never stored.</summary>
public sealed record CreatedApiToken(Guid Id, string Name, string Token, DateTimeOffset ExpiresAt, IReadOnlyList<string>? Scopes = null,
    int? RateLimitPerMinute = null);

/// <summary>The user behind a valid token.</summary>
/// <remarks><paramref name="Scopes"/> empty: all of the owner's rights. A scoped token without <c>admin</c> does not carry the Admin role.</remarks>
public sealed record TokenIdentity(Guid UserId, string UserName, IReadOnlyList<string> Roles, Guid TokenId,
    IReadOnlyList<string>? Scopes = null, int? RateLimitPerMinute = null);

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

    /// <summary>
    /// Mints a token. <paramref name="scopes"/> (see <see cref="TokenScopes"/>) narrow it; none = all of the owner's
    /// rights; <c>admin</c> only for an administrator (a token never exceeds its owner). <paramref name="rateLimitPerMinute"/>:
    /// its own request limit (1–100000; null = the portal's default).
    /// </summary>
    public async Task<OpResult<CreatedApiToken>> CreateAsync(Guid userId, string userName, string? name, int? expiresInDays, CancellationToken ct = default,
        IReadOnlyList<string>? scopes = null, int? rateLimitPerMinute = null, bool ownerIsAdmin = false)
    {
        if (ValidateRequest(name, expiresInDays, out var field) is { } error) return OpResult<CreatedApiToken>.Invalid(field, error);
        var scopeList = (scopes ?? []).Select(x => x?.Trim() ?? "").Distinct().ToList();
        if (scopeList.FirstOrDefault(x => !TokenScopes.All.Contains(x)) is { } unknown)
            return OpResult<CreatedApiToken>.Invalid("scopes", $"Unknown scope '{unknown}'. Scopes: {string.Join(", ", TokenScopes.All)}.");
        if (scopeList.Contains(TokenScopes.Admin) && !ownerIsAdmin)
            return OpResult<CreatedApiToken>.Invalid("scopes", "The admin scope needs an administrator's account (a token never exceeds its owner's rights).");
        if (rateLimitPerMinute is < 1 or > 100_000) return OpResult<CreatedApiToken>.Invalid("rateLimitPerMinute", "rateLimitPerMinute must be from 1 to 100000 (or left out for the default).");
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
            Scopes = string.Join(' ', scopeList),
            RateLimitPerMinute = rateLimitPerMinute,
        };
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        db.ApiTokens.Add(entity);
        audit.Add(db, userId, userName, AuditActions.TokenCreate, "token", entity.Id.ToString(),
            $"name={entity.Name} expires={entity.ExpiresAt:u} scopes={(scopeList.Count == 0 ? "all" : entity.Scopes)}" +
            (rateLimitPerMinute is { } rl ? $" rate={rl}/min" : ""));
        await db.SaveChangesAsync(ct);
        return OpResult<CreatedApiToken>.Ok(new CreatedApiToken(entity.Id, entity.Name, token, entity.ExpiresAt, scopeList, rateLimitPerMinute));
    }

    public async Task<IReadOnlyList<ApiTokenDto>> ListAsync(Guid userId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var now = clock.GetUtcNow();
        var rows = await db.ApiTokens.AsNoTracking().Where(t => t.UserId == userId).OrderByDescending(t => t.CreatedAt).ToListAsync(ct);
        return rows.Select(t => new ApiTokenDto(t.Id, t.Name, t.Prefix, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt, t.IsActive(now),
            TokenScopes.Parse(t.Scopes), t.RateLimitPerMinute, t.LastUsedAddress)).ToList();
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
    public async Task<TokenIdentity?> AuthenticateAsync(string token, CancellationToken ct = default, string? address = null)
    {
        if (!token.StartsWith(TokenPrefix, StringComparison.Ordinal) || token.Length > 100) return null;
        var hash = Hash(token);
        var now = clock.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        // one round trip: the token, its user's name and state, and the user's roles (every API request comes here)
        var t = await db.ApiTokens.AsNoTracking().Where(x => x.Hash == hash)
            .Select(x => new
            {
                x.Id, x.UserId, x.ExpiresAt, x.RevokedAt, x.Scopes, x.RateLimitPerMinute, x.LastUsedAt, x.LastUsedAddress,
                UserName = x.User!.UserName, Disabled = x.User.IsDisabled,
                Roles = db.UserRoles.Where(ur => ur.UserId == x.UserId).Join(db.Roles, ur => ur.RoleId, r => r.Id, (ur, r) => r.Name!).ToList(),
            })
            .FirstOrDefaultAsync(ct);
        if (t is null || t.RevokedAt is not null || t.ExpiresAt <= now || t.Disabled) return null;
        // A token is its own credential: password-guessing throttles and lockouts of the account do not touch it.
        var roles = t.Roles;
        if (t.LastUsedAt is null || now - t.LastUsedAt > TimeSpan.FromMinutes(1) || (address is not null && address != t.LastUsedAddress))
        {
            var at = address is null ? t.LastUsedAddress : address.Length > 64 ? address[..64] : address;
            await db.ApiTokens.Where(x => x.Id == t.Id).ExecuteUpdateAsync(s => s
                .SetProperty(x => x.LastUsedAt, now)
                .SetProperty(x => x.LastUsedAddress, at), ct);
        }
        var scopes = TokenScopes.Parse(t.Scopes);
        // a scoped token carries the Admin role only with the admin scope: it never has more than it was given
        if (scopes.Count > 0 && !scopes.Contains(TokenScopes.Admin)) roles.Remove(PortalRoles.Admin);
        return new TokenIdentity(t.UserId, t.UserName ?? "", roles, t.Id, scopes, t.RateLimitPerMinute);
    }

    /// <summary>Test hook and admin tool: moves a token's expiry (e.g. into the past).</summary>
    public async Task SetExpiryAsync(Guid tokenId, DateTimeOffset expiresAt, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await db.ApiTokens.Where(t => t.Id == tokenId).ExecuteUpdateAsync(s => s.SetProperty(t => t.ExpiresAt, expiresAt), ct);
    }
}

namespace VmPortal.Data.Entities;

/// <summary>A personal API token. Only the SHA-256 of the secret is stored.</summary>
public sealed class ApiToken
{
    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid UserId { get; set; }
    public PortalUser? User { get; set; }
    public string Name { get; set; } = "";
    /// <summary>First characters of the token (e.g. "vmp_ab12"), shown in lists to recognise it.</summary>
    public string Prefix { get; set; } = "";
    /// <summary>Lower-case hex SHA-256 of the whole token string.</summary>
    public string Hash { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    /// <summary>Client address of the last use (recorded with <see cref="LastUsedAt"/>).</summary>
    public string? LastUsedAddress { get; set; }
    /// <summary>Space-separated scopes (<c>vms:read vms:power</c> …); empty: all of the owner's rights.</summary>
    public string Scopes { get; set; } = "";
    /// <summary>Requests per minute this token may make; null: the portal's default.</summary>
    public int? RateLimitPerMinute { get; set; }

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && ExpiresAt > now;
}

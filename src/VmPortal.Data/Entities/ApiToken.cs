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

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && ExpiresAt > now;
}

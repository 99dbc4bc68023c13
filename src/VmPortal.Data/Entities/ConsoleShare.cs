namespace VmPortal.Data.Entities;

/// <summary>
/// A view-only link to a VM's console (<c>/console/shared/{token}</c>). Only the SHA-256 of the token is stored; the
/// token itself is shown once when the link is made. Deleting the VM deletes its links.
/// </summary>
public sealed class ConsoleShare
{
    public const int LabelMaxLength = 100;

    public Guid Id { get; set; } = Guid.CreateVersion7();
    public Guid VmId { get; set; }
    public VirtualMachine? Vm { get; set; }
    /// <summary>Lower-case hex SHA-256 of the whole token string.</summary>
    public string TokenHash { get; set; } = "";
    /// <summary>First characters of the token (e.g. "vms_ab12"), shown in lists to recognise a link.</summary>
    public string Prefix { get; set; } = "";
    /// <summary>What the creator wrote to remember who the link is for (may be empty).</summary>
    public string Label { get; set; } = "";
    public Guid CreatedById { get; set; }
    public string CreatedByName { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && ExpiresAt > now;
}

namespace VmPortal.Data.Entities;

/// <summary>
/// A VM's expiry: at <see cref="ExpiresAt"/> the VM is stopped, at <see cref="DeleteAt"/> (after the grace period)
/// deleted. One row per VM (deleted with it). Owners may set or shorten a lease; only admins extend or remove one.
/// </summary>
public sealed class VmLease
{
    public Guid VmId { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset DeleteAt { get; set; }
    /// <summary>When the lease reaper stopped the VM (null until then).</summary>
    public DateTimeOffset? StoppedAt { get; set; }
    public string SetByName { get; set; } = "";
    public DateTimeOffset UpdatedAt { get; set; }
}

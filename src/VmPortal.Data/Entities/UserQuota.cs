namespace VmPortal.Data.Entities;

/// <summary>
/// Limits of one user (null: no limit). Enforced atomically: creating and starting VMs take a per-owner PostgreSQL
/// advisory lock in the transaction that counts and writes, so concurrent requests can never pass a limit together.
/// </summary>
public sealed class UserQuota
{
    public Guid UserId { get; set; }
    /// <summary>VM definitions the user may own.</summary>
    public int? MaxVms { get; set; }
    /// <summary>VMs that may run (or start, pause, stop) at once.</summary>
    public int? MaxRunningVms { get; set; }
    /// <summary>Total memory of the user's running VMs.</summary>
    public int? MaxMemoryMiB { get; set; }
    /// <summary>Total virtual size of the user's disks, in GiB.</summary>
    public int? MaxDiskGiB { get; set; }
}

namespace VmPortal.Data.Entities;

/// <summary>
/// A group of users, managed by admins. Groups decide who may use a catalog template (a template with no groups is
/// for everyone) and carry an optional quota shared by their members (<see cref="GroupQuota"/>).
/// </summary>
public sealed class UserGroup
{
    public const int NameMaxLength = 63;
    public const int DescriptionMaxLength = 500;

    private UserGroup() { }

    public UserGroup(string name, DateTimeOffset now)
    {
        Id = Guid.CreateVersion7();
        Rename(name);
        CreatedAt = now;
    }

    public Guid Id { get; private set; }
    public string Name { get; private set; } = "";
    /// <summary>Lower-case name; unique (index).</summary>
    public string NormalizedName { get; private set; } = "";
    public string Description { get; set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }

    public void Rename(string name)
    {
        Name = name;
        NormalizedName = name.ToLowerInvariant();
    }
}

/// <summary>Membership of a user in a group (both cascade on delete).</summary>
public sealed class UserGroupMember
{
    public Guid GroupId { get; set; }
    public Guid UserId { get; set; }
}

/// <summary>A group allowed to use a template. A template without any row is open to everyone.</summary>
public sealed class TemplateGroup
{
    public Guid TemplateId { get; set; }
    public Guid GroupId { get; set; }
}

/// <summary>
/// Limits shared by a group's members (null: no limit): their VMs, running VMs, running memory and disks summed.
/// Checked together with the member's own <see cref="UserQuota"/> under the same locks.
/// </summary>
public sealed class GroupQuota
{
    public Guid GroupId { get; set; }
    public int? MaxVms { get; set; }
    public int? MaxRunningVms { get; set; }
    public int? MaxMemoryMiB { get; set; }
    public int? MaxDiskGiB { get; set; }
}

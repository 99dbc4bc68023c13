namespace VmPortal.Data.Entities;

/// <summary>One audited action (who did what to which object, when).</summary>
public sealed class AuditEvent
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    public Guid? UserId { get; set; }
    public string UserName { get; set; } = "";
    /// <summary>Dotted action name, e.g. "vm.create", "user.sign-in", "token.create".</summary>
    public string Action { get; set; } = "";
    public string TargetType { get; set; } = "";
    public string? TargetId { get; set; }
    public string Details { get; set; } = "";
    public bool Success { get; set; } = true;
}

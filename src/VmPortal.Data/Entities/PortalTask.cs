namespace VmPortal.Data.Entities;

/// <summary>Where a <see cref="PortalTask"/> is: waiting for its target, working, or ended (one of three ways).</summary>
public enum PortalTaskStatus
{
    Queued = 0,
    Running = 1,
    Succeeded = 2,
    Failed = 3,
    Cancelled = 4,
}

/// <summary>
/// A long operation (start, shutdown, clone, provision …) followed by its caller: what it does to which object, who
/// asked, its progress <c>{completed, total, message}</c>, log lines, and how it ended (the result as JSON, or the
/// error as problem details). Rows are written by <c>VmPortal.Core.Tasks.TaskService</c>; a task that was queued or
/// running when the portal stopped is marked failed at the next start.
/// </summary>
public sealed class PortalTask
{
    public const int LogMaxLength = 64 * 1024;

    public Guid Id { get; set; } = Guid.CreateVersion7();
    /// <summary>Dotted name, e.g. <c>vm.start</c>, <c>vm.clone</c>, <c>vm.provision</c>.</summary>
    public string Type { get; set; } = "";
    /// <summary>Kind of object worked on (<c>vm</c>, <c>template</c> …) and its id and name as they were.</summary>
    public string TargetType { get; set; } = "";
    public string? TargetId { get; set; }
    public string TargetName { get; set; } = "";
    public Guid? UserId { get; set; }
    public string UserName { get; set; } = "";
    public PortalTaskStatus Status { get; set; }
    public long Completed { get; set; }
    public long Total { get; set; }
    public string Message { get; set; } = "";
    /// <summary>Log lines (<c>HH:mm:ss.fff message</c>, newline-separated), capped at <see cref="LogMaxLength"/>.</summary>
    public string Log { get; set; } = "";
    /// <summary>The result (JSON, camelCase) of a task that succeeded.</summary>
    public string? ResultJson { get; set; }
    /// <summary>Problem details of a task that failed or was cancelled: HTTP status the synchronous call would have had, title, detail.</summary>
    public int? ErrorStatus { get; set; }
    public string? ErrorTitle { get; set; }
    public string? ErrorDetail { get; set; }
    public bool CancelRequested { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }

    public bool IsFinished => Status is PortalTaskStatus.Succeeded or PortalTaskStatus.Failed or PortalTaskStatus.Cancelled;
}

using VmPortal.Core.Console;
using VmPortal.Core.Disks;
using VmPortal.Core.Quotas;
using VmPortal.Core.Runtime;

namespace VmPortal.Core.Tasks;

/// <summary>
/// Turns what a task's work threw into the problem details its synchronous twin would answer: a state that forbids
/// the action or a host without room 409 "Conflict", a quota 409 "Quota exceeded", bad input 400, anything else 500.
/// </summary>
public static class TaskErrors
{
    public static TaskError From(Exception e) => e switch
    {
        TaskFailedException f => new TaskError(f.Status, f.Title, f.Message),
        QuotaExceededException q => new TaskError(409, "Quota exceeded", q.Message),
        VmLifecycleException l => new TaskError(409, "Conflict", l.Message),
        VmHostException h => new TaskError(409, "Conflict", h.Message),
        ConsoleInputException i => new TaskError(400, "Bad request", i.Message),
        DiskStoreException d => new TaskError(409, "Conflict", d.Message),
        OperationCanceledException => new TaskError(503, "Aborted", "The task was aborted (the portal is shutting down)."),
        _ => new TaskError(500, "The task failed", e.Message),
    };

    /// <summary>A failed <see cref="OpResult{T}"/> as a task error (throw the result of this).</summary>
    public static TaskFailedException ToException<T>(OpResult<T> r) => r.Status switch
    {
        OpStatus.NotFound => new TaskFailedException(404, "Not found", r.Message ?? "Not found."),
        OpStatus.Conflict => new TaskFailedException(409, "Conflict", r.Message ?? "Conflict."),
        OpStatus.QuotaExceeded => new TaskFailedException(409, "Quota exceeded", r.Message ?? "Quota exceeded."),
        OpStatus.Invalid => new TaskFailedException(400, "One or more fields are invalid.",
            r.Errors is { Count: > 0 } errs ? string.Join(" ", errs.Select(kv => $"{kv.Key}: {string.Join(" ", kv.Value)}")) : r.Message ?? "Invalid."),
        _ => new TaskFailedException(400, "Bad request", r.Message ?? "Bad request."),
    };
}

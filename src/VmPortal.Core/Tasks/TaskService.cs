using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Tasks;

/// <summary>Progress of a task: <c>completed</c> of <c>total</c> units (bytes, steps; total 0 = unknown) and what it does now.</summary>
public sealed record TaskProgress(long Completed, long Total, string Message);

/// <summary>Why a task failed or was cancelled, as problem details: the HTTP status the synchronous call would have answered.</summary>
public sealed record TaskError(int Status, string Title, string Detail);

/// <summary>A task as REST and the UI show it.</summary>
public sealed record TaskDto(
    Guid Id, string Type, string TargetType, string? TargetId, string TargetName, Guid? UserId, string UserName,
    PortalTaskStatus Status, TaskProgress Progress, JsonElement? Result, TaskError? Error, bool CancelRequested,
    DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? EndedAt)
{
    public bool Finished => Status is PortalTaskStatus.Succeeded or PortalTaskStatus.Failed or PortalTaskStatus.Cancelled;

    public static TaskDto From(PortalTask t) => new(t.Id, t.Type, t.TargetType, t.TargetId, t.TargetName, t.UserId, t.UserName,
        t.Status, new TaskProgress(t.Completed, t.Total, t.Message),
        t.ResultJson is { } json ? JsonDocument.Parse(json).RootElement.Clone() : null,
        t.ErrorStatus is { } status ? new TaskError(status, t.ErrorTitle ?? "", t.ErrorDetail ?? "") : null,
        t.CancelRequested, t.CreatedAt, t.StartedAt, t.EndedAt);
}

/// <summary>What a task works on: <c>vm</c> + id + name, for the task list and for queueing (one task per target at a time).</summary>
public sealed record TaskTarget(string Type, string? Id, string Name)
{
    public static TaskTarget Vm(Guid id, string name) => new("vm", id.ToString(), name);
}

/// <summary>Filters of <see cref="TaskService.ListAsync"/>. <c>All</c>: every user's tasks (admins only).</summary>
public sealed record TaskQuery(PortalTaskStatus? Status = null, string? TargetId = null, bool All = false, int Take = 50);

/// <summary>A task that ends with a chosen problem (status, title, detail), e.g. 409 for a state that forbids the action.</summary>
public class TaskFailedException(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
}

/// <summary>
/// Runs long operations as persisted tasks (table <c>tasks</c>). <see cref="StartAsync"/> writes the row (Queued),
/// returns at once, and runs the work in the background: tasks on the same target run one after the other (a
/// per-target queue), the work reports progress and log lines through its <see cref="TaskContext"/> (written to the
/// database at most every <see cref="FlushInterval"/> and at the end), and ends Succeeded with a JSON result, Failed
/// with problem details (<see cref="TaskErrors.From"/> maps the domain's exceptions), or Cancelled when
/// <see cref="CancelAsync"/> was called and the work gave up. Visibility follows the VMs': a user sees their own
/// tasks, admins everyone's; another user's task is "not found". A task left Queued or Running by a portal that
/// stopped is marked Failed by <see cref="RecoverAsync"/> at the next start. Reusable: any feature passes its work
/// as a delegate (snapshots, uploads, exports).
/// </summary>
public sealed class TaskService(IDbContextFactory<PortalDbContext> dbFactory, TimeProvider clock, ILogger<TaskService>? log = null)
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(250);
    public const int MaxTake = 500;
    /// <summary>Longest <c>?wait=</c> of a long poll.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(300);
    public const string RestartError = "Interrupted by a portal restart";

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private readonly ILogger logger = (ILogger?)log ?? NullLogger.Instance;
    private readonly ConcurrentDictionary<Guid, TaskContext> running = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> targetGates = new();

    /// <summary>Raised (on a background thread) whenever a task is created, makes progress or ends.</summary>
    public event Action<TaskDto>? Changed;

    /// <summary>
    /// Records a task and starts <paramref name="work"/> in the background; returns the task as it was created
    /// (Queued). The work's return value becomes the task's result (serialized as camelCase JSON).
    /// </summary>
    public async Task<TaskDto> StartAsync(Caller caller, string type, TaskTarget target, Func<TaskContext, Task<object?>> work,
        CancellationToken ct = default)
    {
        var row = new PortalTask
        {
            Type = type,
            TargetType = target.Type,
            TargetId = target.Id,
            TargetName = Trim(target.Name, 256),
            UserId = caller.UserId,
            UserName = caller.UserName,
            Status = PortalTaskStatus.Queued,
            Message = "queued",
            CreatedAt = clock.GetUtcNow(),
        };
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            db.Tasks.Add(row);
            await db.SaveChangesAsync(ct);
        }
        var context = new TaskContext(this, row);
        running[row.Id] = context;
        var dto = TaskDto.From(row);
        Raise(dto);
        _ = Task.Run(() => RunAsync(context, target, work));
        return dto;
    }

    private async Task RunAsync(TaskContext context, TaskTarget target, Func<TaskContext, Task<object?>> work)
    {
        var gate = targetGates.GetOrAdd($"{target.Type}:{target.Id ?? target.Name}", _ => new SemaphoreSlim(1, 1));
        var entered = false;
        try
        {
            try
            {
                await gate.WaitAsync(context.CancellationToken);
                entered = true;
            }
            catch (OperationCanceledException)
            {
                await FinishAsync(context, PortalTaskStatus.Cancelled, null, new TaskError(409, "Cancelled", "The task was cancelled before it started."));
                return;
            }
            context.MarkStarted(clock.GetUtcNow());
            await FlushAsync(context);
            object? result;
            try
            {
                result = await work(context);
            }
            catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
            {
                context.Log("cancelled");
                await FinishAsync(context, PortalTaskStatus.Cancelled, null, new TaskError(409, "Cancelled", "The task was cancelled by " + (context.CancelledBy ?? "a user") + "."));
                return;
            }
            catch (Exception e)
            {
                var error = TaskErrors.From(e);
                if (error.Status >= 500) logger.LogError(e, "Task {Id} ({Type}) failed", context.Id, context.Type);
                context.Log("failed: " + error.Detail);
                await FinishAsync(context, PortalTaskStatus.Failed, null, error);
                return;
            }
            context.Log("done");
            await FinishAsync(context, PortalTaskStatus.Succeeded, result is null ? null : JsonSerializer.Serialize(result, result.GetType(), Json), null);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Task {Id} could not be recorded", context.Id);
            context.Complete();
        }
        finally
        {
            if (entered) gate.Release();
            running.TryRemove(context.Id, out _);
        }
    }

    private async Task FinishAsync(TaskContext context, PortalTaskStatus status, string? resultJson, TaskError? error)
    {
        var now = clock.GetUtcNow();
        context.Finish(status, now);
        if (status == PortalTaskStatus.Succeeded && context.Total > 0) context.Report(context.Total, context.Total, context.Message);
        var (completed, total, message, logText) = context.Snapshot();
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            // only a task still open is ended: a row that a restarted portal already marked failed stays as it is
            await db.Tasks.Where(t => t.Id == context.Id && (t.Status == PortalTaskStatus.Queued || t.Status == PortalTaskStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(t => t.Status, status)
                    .SetProperty(t => t.Completed, completed)
                    .SetProperty(t => t.Total, total)
                    .SetProperty(t => t.Message, Trim(message, 1000))
                    .SetProperty(t => t.Log, logText)
                    .SetProperty(t => t.ResultJson, resultJson)
                    .SetProperty(t => t.ErrorStatus, error == null ? null : error.Status)
                    .SetProperty(t => t.ErrorTitle, error == null ? null : Trim(error.Title, 200))
                    .SetProperty(t => t.ErrorDetail, error == null ? null : Trim(error.Detail, 4000))
                    .SetProperty(t => t.StartedAt, context.StartedAt)
                    .SetProperty(t => t.EndedAt, now));
        }
        context.Complete();
        if (await FindAsync(context.Id) is { } dto) Raise(dto);
    }

    /// <summary>Writes a running task's progress and log now (called by its context at most every <see cref="FlushInterval"/>).</summary>
    internal async Task FlushAsync(TaskContext context)
    {
        var (completed, total, message, logText) = context.Snapshot();
        var status = context.Status;
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            await db.Tasks.Where(t => t.Id == context.Id && (t.Status == PortalTaskStatus.Queued || t.Status == PortalTaskStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(t => t.Status, status)
                    .SetProperty(t => t.Completed, completed)
                    .SetProperty(t => t.Total, total)
                    .SetProperty(t => t.Message, Trim(message, 1000))
                    .SetProperty(t => t.Log, logText)
                    .SetProperty(t => t.StartedAt, context.StartedAt));
        }
        Raise(context.ToDto());
    }

    private void Raise(TaskDto dto)
    {
        try { Changed?.Invoke(dto); }
        catch (Exception e) { logger.LogWarning(e, "A task listener failed"); }
    }

    /// <summary>The task if <paramref name="caller"/> may see it (its owner or an admin), else null.</summary>
    public async Task<TaskDto?> GetAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        var dto = await FindAsync(id, ct);
        return dto is not null && (caller.IsAdmin || dto.UserId == caller.UserId) ? dto : null;
    }

    private async Task<TaskDto?> FindAsync(Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var row = await db.Tasks.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, ct);
        if (row is null) return null;
        // a running task's newest progress is in memory (the row is at most FlushInterval behind)
        return running.TryGetValue(id, out var live) && !row.IsFinished ? live.ToDto() : TaskDto.From(row);
    }

    /// <summary>
    /// The task once it has ended or <paramref name="wait"/> has passed, whichever comes first (a long poll; at most
    /// <see cref="MaxWait"/>). Null when the caller may not see it.
    /// </summary>
    public async Task<TaskDto?> WaitAsync(Caller caller, Guid id, TimeSpan wait, CancellationToken ct = default)
    {
        var dto = await GetAsync(caller, id, ct);
        if (dto is null || dto.Finished || wait <= TimeSpan.Zero) return dto;
        if (running.TryGetValue(id, out var live))
        {
            try { await live.Completion.WaitAsync(wait < MaxWait ? wait : MaxWait, clock, ct); }
            catch (TimeoutException) { }
        }
        return await GetAsync(caller, id, ct);
    }

    /// <summary>The log lines of a task the caller may see.</summary>
    public async Task<string?> LogAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        if (await GetAsync(caller, id, ct) is null) return null;
        if (running.TryGetValue(id, out var live)) return live.Snapshot().Log;
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.Tasks.Where(t => t.Id == id).Select(t => t.Log).FirstOrDefaultAsync(ct);
    }

    /// <summary>Newest first: the caller's tasks (admins with <c>All</c>: everyone's).</summary>
    public async Task<IReadOnlyList<TaskDto>> ListAsync(Caller caller, TaskQuery query, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = db.Tasks.AsNoTracking();
        if (!(caller.IsAdmin && query.All)) q = q.Where(t => t.UserId == caller.UserId);
        if (query.Status is { } status) q = q.Where(t => t.Status == status);
        if (!string.IsNullOrEmpty(query.TargetId)) q = q.Where(t => t.TargetId == query.TargetId);
        var rows = await q.OrderByDescending(t => t.CreatedAt).ThenByDescending(t => t.Id)
            .Take(Math.Clamp(query.Take, 1, MaxTake)).ToListAsync(ct);
        return rows.Select(r => running.TryGetValue(r.Id, out var live) && !r.IsFinished ? live.ToDto() : TaskDto.From(r)).ToList();
    }

    /// <summary>
    /// Asks a queued or running task to stop: a queued one ends Cancelled at once, a running one when its work next
    /// checks its token (work that cannot stop half-way, such as a power command, finishes normally). NotFound when
    /// the caller may not see it; Conflict when it has already ended.
    /// </summary>
    public async Task<OpResult<TaskDto>> CancelAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        var dto = await GetAsync(caller, id, ct);
        if (dto is null) return OpResult<TaskDto>.NotFound($"Task {id} not found.");
        if (dto.Finished || !running.TryGetValue(id, out var live))
            return OpResult<TaskDto>.Conflict($"The task has already ended ({dto.Status.ToString().ToLowerInvariant()}).");
        live.RequestCancel(caller.UserName);
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            await db.Tasks.Where(t => t.Id == id).ExecuteUpdateAsync(s => s.SetProperty(t => t.CancelRequested, true), ct);
        return OpResult<TaskDto>.Ok(live.ToDto());
    }

    /// <summary>
    /// At portal start: every task still Queued or Running belongs to a process that is gone; mark it Failed (503,
    /// <see cref="RestartError"/>). Returns how many were marked.
    /// </summary>
    public async Task<int> RecoverAsync(CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var open = db.Tasks.Where(t => t.Status == PortalTaskStatus.Queued || t.Status == PortalTaskStatus.Running);
        if (!running.IsEmpty)
        {
            var mine = running.Keys.ToList();
            open = open.Where(t => !mine.Contains(t.Id));
        }
        return await open.ExecuteUpdateAsync(s => s
            .SetProperty(t => t.Status, PortalTaskStatus.Failed)
            .SetProperty(t => t.ErrorStatus, 503)
            .SetProperty(t => t.ErrorTitle, RestartError)
            .SetProperty(t => t.ErrorDetail, "The portal stopped while this task was queued or running, so it did not finish. Check the target's state and run it again.")
            .SetProperty(t => t.EndedAt, now), ct);
    }

    internal DateTimeOffset Now => clock.GetUtcNow();

    internal static string Trim(string s, int max) => s.Length <= max ? s : s[..max];
}

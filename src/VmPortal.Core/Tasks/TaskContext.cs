using System.Text;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Tasks;

/// <summary>
/// Handed to a task's work: its cancellation token, progress (<see cref="Report"/>, also usable as an
/// <see cref="IProgress{T}"/> of bytes through <see cref="BytesProgress"/>) and log lines. Thread-safe; changes reach
/// the database at most every <see cref="TaskService.FlushInterval"/> (and always at the end).
/// </summary>
public sealed class TaskContext
{
    private readonly TaskService service;
    private readonly PortalTask row;
    private readonly object gate = new();
    private readonly StringBuilder log = new();
    private readonly CancellationTokenSource cancel = new();
    private readonly TaskCompletionSource completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long completed, total;
    private string message;
    private DateTimeOffset lastFlush = DateTimeOffset.MinValue;
    private int flushScheduled;

    internal TaskContext(TaskService service, PortalTask row)
    {
        this.service = service;
        this.row = row;
        message = row.Message;
    }

    public Guid Id => row.Id;
    public string Type => row.Type;
    /// <summary>Set when someone cancels the task; work that can stop half-way checks it.</summary>
    public CancellationToken CancellationToken => cancel.Token;
    internal string? CancelledBy { get; private set; }
    internal PortalTaskStatus Status { get; private set; } = PortalTaskStatus.Queued;
    internal DateTimeOffset? StartedAt { get; private set; }
    internal long Total { get { lock (gate) return total; } }
    internal string Message { get { lock (gate) return message; } }
    internal Task Completion => completion.Task;

    /// <summary>Sets the progress: <paramref name="done"/> of <paramref name="of"/> units (0 = unknown), and what happens now.</summary>
    public void Report(long done, long of, string? now = null)
    {
        lock (gate)
        {
            completed = Math.Max(0, done);
            total = Math.Max(0, of);
            if (now is not null) message = now;
        }
        ScheduleFlush();
    }

    /// <summary>Sets the message only (and logs it).</summary>
    public void Step(string now)
    {
        lock (gate) message = now;
        Log(now);
    }

    /// <summary>Appends a log line (timestamped).</summary>
    public void Log(string line)
    {
        lock (gate)
        {
            var entry = $"{service.Now:HH:mm:ss.fff} {line}\n";
            if (log.Length + entry.Length <= PortalTask.LogMaxLength) log.Append(entry);
        }
        ScheduleFlush();
    }

    /// <summary>A byte-count progress for copy routines (<paramref name="totalBytes"/> known up front).</summary>
    public IProgress<long> BytesProgress(long totalBytes, string what) =>
        new Progress(this, totalBytes, what);

    private sealed class Progress(TaskContext ctx, long totalBytes, string what) : IProgress<long>
    {
        public void Report(long value) => ctx.Report(value, totalBytes, $"{what}: {value >> 20} of {totalBytes >> 20} MiB");
    }

    internal void MarkStarted(DateTimeOffset now)
    {
        lock (gate)
        {
            Status = PortalTaskStatus.Running;
            StartedAt = now;
            if (message == "queued") message = "running";
        }
    }

    internal void RequestCancel(string by)
    {
        CancelledBy ??= by;
        row.CancelRequested = true;
        cancel.Cancel();
    }

    internal void Finish(PortalTaskStatus status, DateTimeOffset now)
    {
        lock (gate)
        {
            // Status stays Queued/Running until the final row is written: readers switch to the row then
            row.EndedAt = now;
            if (status != PortalTaskStatus.Succeeded && message is "running" or "queued") message = status.ToString().ToLowerInvariant();
            else if (status == PortalTaskStatus.Succeeded) message = message is "running" ? "done" : message;
        }
    }

    internal void Complete() => completion.TrySetResult();

    internal (long Completed, long Total, string Message, string Log) Snapshot()
    {
        lock (gate) return (completed, total, message, log.ToString());
    }

    internal TaskDto ToDto()
    {
        lock (gate)
        {
            return new TaskDto(row.Id, row.Type, row.TargetType, row.TargetId, row.TargetName, row.UserId, row.UserName,
                Status, new TaskProgress(completed, total, message), null, null, row.CancelRequested, row.CreatedAt, StartedAt, null);
        }
    }

    // progress reaches the database (and listeners) at most every FlushInterval, from one background write at a time
    private void ScheduleFlush()
    {
        if (Interlocked.Exchange(ref flushScheduled, 1) == 1) return;
        var wait = lastFlush + TaskService.FlushInterval - service.Now;
        _ = Task.Run(async () =>
        {
            try
            {
                if (wait > TimeSpan.Zero) await Task.Delay(wait);
                Volatile.Write(ref flushScheduled, 0);
                lastFlush = service.Now;
                if (!completion.Task.IsCompleted && Status is PortalTaskStatus.Running or PortalTaskStatus.Queued)
                    await service.FlushAsync(this);
            }
            catch (Exception)
            {
                Volatile.Write(ref flushScheduled, 0); // the next report tries again; the final write carries everything
            }
        });
    }
}

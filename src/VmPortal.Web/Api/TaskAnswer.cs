using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Tasks;

namespace VmPortal.Web.Api;

/// <summary>
/// How every action that works on a VM answers (power actions, create/provision, clone, template from a VM): the
/// action always runs as a task (<see cref="TaskService"/>), so it is listed on the Tasks page and has a log.
/// <list type="bullet">
/// <item>By default the answer is <c>202 Accepted</c> + <c>Location: /api/tasks/{id}</c> with the task as the body, at
/// once — the one shape scripts follow (like Proxmox's task id): read <c>.id</c>, then <c>GET /api/tasks/{id}?wait=N</c>.</item>
/// <item>With <c>Prefer: wait=N</c> (RFC 7240 §4.3; 1–300 s) the server holds the answer until the task has ended, at
/// most N s: then it is what the action produces (200 with the power state, 201 with the new VM, or the problem
/// details: 409, 504 …) plus <c>Link: &lt;/api/tasks/{id}&gt;; rel="monitor"</c>; if the task has not ended by then,
/// the 202 above.</item>
/// </list>
/// What the request itself shows to be wrong (400 bad input, 404 unknown VM, a refused clone) is answered at once
/// without a task; what depends on the VM's state when the work runs (409, quota) ends the task failed, because
/// tasks on one VM run in order (a stop queued behind a start must not be judged by the state before the start).
/// </summary>
internal static class TaskAnswer
{
    /// <summary>The wait the client asked for with <c>Prefer: wait=N</c> (capped at <see cref="TaskService.MaxWait"/>), or null.</summary>
    public static TimeSpan? PreferredWait(HttpRequest request)
    {
        foreach (var value in request.Headers["Prefer"])
            foreach (var part in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = part.Split(';')[0].Split('=', 2, StringSplitOptions.TrimEntries);
                if (kv.Length == 2 && kv[0].Equals("wait", StringComparison.OrdinalIgnoreCase)
                    && int.TryParse(kv[1].Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                    return TimeSpan.FromSeconds(Math.Min(seconds, TaskService.MaxWait.TotalSeconds));
            }
        return null;
    }

    /// <summary>Marker in <see cref="HttpContext.Items"/>: this request started a task (the task audits its outcome).</summary>
    public const string TaskItem = "vmportal.task";

    /// <summary>
    /// Starts <paramref name="work"/> as a task and answers as described on the class. <paramref name="synchronous"/>
    /// turns the work's result into the held answer (runs on the request, so it may set headers).
    /// </summary>
    public static async Task<IResult> RunAsync(HttpContext http, string type, TaskTarget target,
        Func<TaskContext, Task<object?>> work, Func<object?, IResult> synchronous)
    {
        var caller = http.User.Caller();
        var tasks = http.RequestServices.GetRequiredService<TaskService>();
        var outcome = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = await tasks.StartAsync(caller, type, target, async ctx =>
        {
            try
            {
                var r = await work(ctx);
                outcome.TrySetResult(r);
                return r;
            }
            catch (Exception e)
            {
                outcome.TrySetException(e);
                throw;
            }
        });
        http.Items[TaskItem] = task.Id;
        if (PreferredWait(http.Request) is { } wait && wait > TimeSpan.Zero)
        {
            TaskDto? ended;
            try { ended = await tasks.WaitAsync(caller, task.Id, wait, http.RequestAborted); }
            catch (OperationCanceledException) { ended = null; } // the client went away; the task runs on
            if (ended is { Finished: true })
            {
                http.Response.Headers.Link = $"</api/tasks/{task.Id}>; rel=\"monitor\"";
                http.Response.Headers["Preference-Applied"] = $"wait={(int)wait.TotalSeconds}";
                if (outcome.Task.IsCompletedSuccessfully) return synchronous(outcome.Task.Result);
                if (outcome.Task.Exception?.InnerException is AnswerException a) return a.Answer;
                var error = ended.Error ?? (outcome.Task.Exception?.InnerException is { } ex ? TaskErrors.From(ex) : new TaskError(500, "The task failed", "The task failed."));
                return ApiResults.Problem(error.Status, error.Title, error.Detail);
            }
        }
        if (AsksRespondAsync(http.Request)) http.Response.Headers["Preference-Applied"] = "respond-async";
        return TasksApi.Accepted(task);
    }

    /// <summary>Whether the request says <c>Prefer: respond-async</c> (what the default answer does anyway).</summary>
    internal static bool AsksRespondAsync(HttpRequest request) =>
        request.Headers["Prefer"].Any(v => (v ?? "").Split(',').Any(p => p.Split(';')[0].Trim().Equals("respond-async", StringComparison.OrdinalIgnoreCase)));
}

/// <summary>
/// A task's failure that carries the exact answer of the held (synchronous) response — e.g. a validation problem with
/// its field errors, or a 504 with extensions — while the task records status, title and detail.
/// </summary>
internal sealed class AnswerException(IResult answer, int status, string title, string detail) : TaskFailedException(status, title, detail)
{
    public IResult Answer { get; } = answer;

    /// <summary>A problem result (as the endpoints build them) as a task failure.</summary>
    public static AnswerException From(IResult problem) => problem switch
    {
        ProblemHttpResult p => new(p, p.StatusCode, p.ProblemDetails.Title ?? "Failed", p.ProblemDetails.Detail ?? p.ProblemDetails.Title ?? "Failed"),
        ValidationProblem v => new(v, 400, v.ProblemDetails.Title ?? "One or more fields are invalid.",
            string.Join(" ", v.ProblemDetails.Errors.Select(kv => $"{kv.Key}: {string.Join(" ", kv.Value)}"))),
        IStatusCodeHttpResult s => new(problem, s.StatusCode ?? 500, "Failed", "The action failed."),
        _ => new(problem, 500, "Failed", "The action failed."),
    };
}

using System.Security.Claims;
using VmPortal.Core.Disks;
using VmPortal.Core.Console;
using VmPortal.Emulator.Storage;
using VmPortal.Web.Runtime;
using VmPortal.Core.Tasks;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// A stopped VM's disk, flattened (its base image merged in), as qcow2 (default), raw or vhd. Owner or admin; another
/// user's VM is 404; a running VM is 409. Each is a task (<c>vm.disk-export</c>, <see cref="DiskExportTasks"/>):
/// <list type="bullet">
/// <item><c>GET /api/vms/{id}/disks/{index}?format=</c> converts and streams it in one request (as before); the task
/// shows the conversion, then the bytes sent, and ends when the download has ended (<c>X-Task-Id</c> names it;
/// cancelling it cuts the download off).</item>
/// <item><c>POST /api/vms/{id}/disks/{index}/export {"format"}</c> answers 202 + <c>Location: /api/tasks/{id}</c>; the
/// task's result names the file and <c>download</c>: <c>GET /api/tasks/{id}/download</c> (kept for
/// <c>Exports:KeepHours</c>, default 24 h).</item>
/// </list>
/// Disks are added, removed and grown through the VM's definition (<c>PUT /api/vms/{id}</c>).
/// </summary>
public static class VmDisksApi
{
    public static RouteGroupBuilder MapVmDisksApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}/disks").WithTags("VM disks").RequireAuthorization();
        g.MapGet("/{index:int}", Download)
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Download a stopped VM's disk, flattened: ?format=qcow2 (default), raw or vhd (a task vm.disk-export while it converts and sends; X-Task-Id)");
        g.MapPost("/{index:int}/export", Export)
            .Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Export a stopped VM's disk to a file (a task vm.disk-export: 202 + Location; its result's download is GET /api/tasks/{id}/download)");
        app.MapGet("/api/tasks/{id:guid}/download", DownloadExport).WithTags("Tasks").RequireAuthorization()
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("The file an export task made (range requests allowed); 409 while the task runs, 404 when it failed or the file expired");
        return g;
    }

    /// <summary>The body of <c>POST …/export</c>.</summary>
    /// <param name="Format">qcow2 (default), raw or vhd.</param>
    public sealed record DiskExportRequest(string? Format);

    private static async Task<(VirtualMachine? Vm, DiskFormat Format, IResult? Refusal)> CheckAsync(Guid id, int index, string? format,
        ClaimsPrincipal user, VmRuntime runtime, DiskExportTasks exports, CancellationToken ct)
    {
        if (DiskExportTasks.ParseFormat(format) is not { } fmt)
            return (null, default, ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "format must be qcow2, raw or vhd."));
        var vm = await runtime.FindAsync(user.Caller(), id, ct);
        if (vm is null) return (null, fmt, ApiResults.Problem(StatusCodes.Status404NotFound, "Not found", $"VM {id} not found."));
        if (index < 0 || index >= vm.Disks.Count)
            return (null, fmt, ApiResults.Problem(StatusCodes.Status404NotFound, "Not found", $"VM '{vm.Name}' has no disk {index} (it has {vm.Disks.Count})."));
        if (exports.Problem(vm, index) is { } problem)
            return (null, fmt, ApiResults.Problem(StatusCodes.Status409Conflict, "Conflict", problem));
        return (vm, fmt, null);
    }

    public static async Task<IResult> Download(Guid id, int index, string? format, ClaimsPrincipal user, VmRuntime runtime,
        DiskExportTasks exports, HttpContext http, CancellationToken ct)
    {
        var (vm, fmt, refusal) = await CheckAsync(id, index, format, user, runtime, exports, ct);
        if (refusal is not null) return refusal;
        var started = await exports.StartAsync(user.Caller(), vm!, index, fmt, keep: false, http.RequestAborted);
        http.Items[TaskAnswer.TaskItem] = started.Task.Id;
        http.Response.Headers["X-Task-Id"] = started.Task.Id.ToString();
        http.Response.Headers.Link = $"</api/tasks/{started.Task.Id}>; rel=\"monitor\"";
        DiskExportTasks.DiskDownload download;
        try { download = (await started.Ready)!; }
        catch (TaskFailedException f) { return ApiResults.Problem(f.Status, f.Title, f.Message); }
        catch (OperationCanceledException) { return ApiResults.Problem(StatusCodes.Status409Conflict, "Cancelled", "The export was cancelled."); }

        // the temporary file is deleted when the task ends; the open handle reads on until then
        long sent = 0;
        await using var file = new FileStream(download.Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16,
            FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(download.Cancelled, http.RequestAborted);
        try
        {
            http.Response.ContentType = "application/octet-stream";
            http.Response.ContentLength = download.Size;
            http.Response.Headers.ContentDisposition = new Microsoft.Net.Http.Headers.ContentDispositionHeaderValue("attachment")
            {
                FileNameStar = download.FileName, FileName = download.FileName,
            }.ToString();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await file.ReadAsync(buffer, stop.Token)) > 0)
            {
                await http.Response.Body.WriteAsync(buffer.AsMemory(0, n), stop.Token);
                sent += n;
                download.Sent(sent);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            http.Abort(); // cancelled or the client left: the response ends short, the client sees a broken download
        }
        finally
        {
            download.End(sent);
        }
        return Results.Empty;
    }

    public static async Task<IResult> Export(Guid id, int index, DiskExportRequest? body, ClaimsPrincipal user, VmRuntime runtime,
        DiskExportTasks exports, HttpContext http, CancellationToken ct)
    {
        var (vm, fmt, refusal) = await CheckAsync(id, index, body?.Format, user, runtime, exports, ct);
        if (refusal is not null) return refusal;
        var started = await exports.StartAsync(user.Caller(), vm!, index, fmt, keep: true);
        http.Items[TaskAnswer.TaskItem] = started.Task.Id;
        return TasksApi.Accepted(started.Task);
    }

    public static async Task<IResult> DownloadExport(Guid id, ClaimsPrincipal user, TaskService tasks, DiskExportTasks exports, CancellationToken ct)
    {
        var task = await tasks.GetAsync(user.Caller(), id, ct);
        if (task is null || task.Type != DiskExportTasks.TaskType) return ApiResults.NotFound($"Export task {id} not found.");
        if (!task.Finished) return ApiResults.Problem(StatusCodes.Status409Conflict, "Conflict", "The export is still running; wait for the task (GET /api/tasks/{id}?wait=60).");
        if (task.Status != PortalTaskStatus.Succeeded || exports.KeptFile(id) is not { } path)
            return ApiResults.NotFound(task.Status == PortalTaskStatus.Succeeded
                ? "The exported file is gone (exports are kept for a limited time, or it was a direct download)."
                : $"The export did not succeed ({task.Status.ToString().ToLowerInvariant()}): nothing to download.");
        return Results.File(path, "application/octet-stream", Path.GetFileName(path), enableRangeProcessing: true);
    }
}

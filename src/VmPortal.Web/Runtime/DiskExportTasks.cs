using VmPortal.Core;
using VmPortal.Core.Audit;
using VmPortal.Core.Console;
using VmPortal.Core.Disks;
using VmPortal.Core.Tasks;
using VmPortal.Data.Entities;
using VmPortal.Emulator.Storage;

namespace VmPortal.Web.Runtime;

/// <summary>The result of an export task: the file it made and where to download it (until <c>expiresAt</c>).</summary>
public sealed record DiskExportDto(Guid VmId, string VmName, int Disk, string Format, string FileName, long SizeBytes,
    long VirtualSizeBytes, string Download, DateTimeOffset? ExpiresAt);

/// <summary>
/// A running export: the task as created, and once the file is converted: for a download the file to send (see
/// <see cref="DiskExportTasks.DiskDownload"/>), for a kept export null. Fails with the task's
/// <see cref="TaskFailedException"/> (409 …) or <see cref="OperationCanceledException"/> when cancelled.
/// </summary>
public sealed record StartedDiskExport(TaskDto Task, Task<DiskExportTasks.DiskDownload?> Ready, string FileName);

/// <summary>
/// Disk exports as tasks (type <c>vm.disk-export</c>, target the VM, so an export queues behind the VM's other tasks
/// and a start waits for it). The work converts the disk's whole chain into one file of the chosen format with
/// progress in bytes (cancellable between 1 MiB chunks; a VM started meanwhile makes it fail with 409). Two uses:
/// <list type="bullet">
/// <item><b>Download</b> (<c>GET /api/vms/{id}/disks/{n}?format=</c>): the task then stays running while the response
/// streams the file — progress is bytes sent — and ends succeeded when the last byte has gone, failed (400, "Download
/// incomplete") when the client went away, cancelled (the response is cut off) when someone cancels it. The file is a
/// temporary one, deleted when the response ends.</item>
/// <item><b>Export</b> (<c>POST /api/vms/{id}/disks/{n}/export</c>): the file is kept in the disk store's
/// <c>.exports/&lt;task id&gt;/</c> for <see cref="Keep"/> (<c>Exports:KeepHours</c>, default 24) and downloaded with
/// <c>GET /api/tasks/{id}/download</c> (range requests work, so a broken download resumes).</item>
/// </list>
/// Both are audited (<c>vm.disk-export</c>) when the task ends, with the outcome.
/// </summary>
public sealed class DiskExportTasks(TaskService tasks, VmDiskStore store, VmRuntime runtime, AuditLog audit, IConfiguration config,
    TimeProvider clock, ILogger<DiskExportTasks> log)
{
    public const string TaskType = "vm.disk-export";
    public const string AuditAction = "vm.disk-export";

    /// <summary>How long a kept export stays downloadable.</summary>
    public TimeSpan Keep => TimeSpan.FromHours(config.GetValue<double?>("Exports:KeepHours") ?? 24);

    public string ExportsRoot => Path.Combine(store.Root, ".exports");

    public static string Extension(DiskFormat f) => f switch { DiskFormat.Raw => "raw", DiskFormat.Vhd => "vhd", _ => "qcow2" };

    /// <summary>The formats an export writes: qcow2 (default), raw, vhd (VMDK is read only); null for anything else.</summary>
    public static DiskFormat? ParseFormat(string? format) => format?.ToLowerInvariant() switch
    {
        null or "" or "qcow2" => DiskFormat.Qcow2,
        "raw" => DiskFormat.Raw,
        "vhd" or "vpc" => DiskFormat.Vhd,
        _ => null,
    };

    /// <summary>Why the disk cannot be exported now (running VM, broken chain), or null.</summary>
    public string? Problem(VirtualMachine vm, int index)
    {
        if (runtime.Host.TryFind(vm.Id, out var hosted) && hosted.State != VmRunState.Stopped && hosted.State != VmRunState.Crashed)
            return $"Stop '{vm.Name}' before exporting its disk.";
        return store.Problem(vm.Id, vm.Disks[index], index) is { } p ? $"Cannot export: {p}." : null;
    }

    /// <summary>
    /// Starts the export of disk <paramref name="index"/>. <paramref name="keep"/>: a kept file for a later download;
    /// otherwise a temporary file whose sending the caller reports through <see cref="ProgressStream"/> (opened on
    /// <see cref="StartedDiskExport.Ready"/>).
    /// </summary>
    public async Task<StartedDiskExport> StartAsync(Caller caller, VirtualMachine vm, int index, DiskFormat format, bool keep,
        CancellationToken requestAborted = default)
    {
        var ready = new TaskCompletionSource<DiskDownload?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sent = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var ext = Extension(format);
        var fileName = $"{vm.Name}-disk{index}.{ext}";
        SweepExpired();
        var task = await tasks.StartAsync(caller, TaskType, TaskTarget.Vm(vm.Id, vm.Name), async ctx =>
        {
            // a download also stops when its client goes away; a kept export does not depend on the request
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.CancellationToken, keep ? CancellationToken.None : requestAborted);
            var ct = linked.Token;
            string? path = null;
            DiskDownload? download = null;
            try
            {
                if (Problem(vm, index) is { } problem) throw new TaskFailedException(409, "Conflict", problem);
                var disk = vm.Disks[index];
                var total = Math.Max(1, disk.SizeMiB << 20);
                string dir;
                if (keep)
                {
                    dir = Path.Combine(ExportsRoot, ctx.Id.ToString("N"));
                    Directory.CreateDirectory(dir);
                    path = Path.Combine(dir, fileName);
                }
                else path = Path.Combine(store.VmDirectory(vm.Id), $".export-{Guid.NewGuid():N}");
                ctx.Step($"converting disk {index} of '{vm.Name}' ({disk.SizeMiB} MiB) to {ext}");
                var target = path;
                await Task.Run(() => DiskImageFile.Convert(store.PathOf(vm.Id, disk), target, format, new SyncProgress(n =>
                {
                    ct.ThrowIfCancellationRequested();
                    ctx.Report(n, total, $"converting: {n >> 20} of {total >> 20} MiB");
                })), ct);
                // a VM started while its disk was read may have changed it underneath: the copy is not trustworthy
                if (runtime.Host.TryFind(vm.Id, out var h) && h.State != VmRunState.Stopped && h.State != VmRunState.Crashed)
                    throw new TaskFailedException(409, "Conflict", $"'{vm.Name}' was started while its disk was exported; nothing was made.");
                var size = new FileInfo(path).Length;
                ctx.Log($"{fileName}: {size} bytes ({ext}, {total} bytes virtual)");
                if (keep)
                {
                    var expires = clock.GetUtcNow() + Keep;
                    await audit.WriteAsync(caller.UserId, caller.UserName, AuditAction, "vm", vm.Id.ToString(),
                        $"disk {index} exported as {ext}, {size} bytes (task {ctx.Id})");
                    ready.TrySetResult(null);
                    return new DiskExportDto(vm.Id, vm.Name, index, ext, fileName, size, total, $"/api/tasks/{ctx.Id}/download", expires);
                }
                // a download: the task lasts while the response streams the file
                ctx.Report(0, size, $"sending {fileName}: 0 of {size >> 20} MiB");
                download = new DiskDownload(path, size, fileName, ctx, sent);
                ready.TrySetResult(download);
                long done;
                using (ctx.CancellationToken.Register(() => sent.TrySetCanceled(ctx.CancellationToken)))
                using (requestAborted.Register(() => sent.TrySetResult(download.SentBytes)))
                    done = await sent.Task;
                if (done < size)
                    throw new TaskFailedException(400, "Download incomplete",
                        $"The client closed the connection after {done} of {size} bytes of {fileName}.");
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditAction, "vm", vm.Id.ToString(),
                    $"disk {index} downloaded as {ext}, {size} bytes (task {ctx.Id})");
                return new DiskExportDto(vm.Id, vm.Name, index, ext, fileName, size, total, $"/api/vms/{vm.Id}/disks/{index}?format={ext}", null);
            }
            catch (OperationCanceledException) when (!ctx.CancellationToken.IsCancellationRequested && requestAborted.IsCancellationRequested)
            {
                var failed = new TaskFailedException(400, "Download incomplete", $"The client closed the connection while disk {index} was converted.");
                ready.TrySetException(failed);
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditAction, "vm", vm.Id.ToString(),
                    $"disk {index} download as {ext} failed: {failed.Message} (task {ctx.Id})", success: false);
                throw failed;
            }
            catch (Exception e)
            {
                if (keep && path is not null) DeleteExport(ctx.Id);
                var error = TaskErrors.From(e is OperationCanceledException && ct.IsCancellationRequested ? new TaskFailedException(409, "Cancelled", "cancelled") : e);
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditAction, "vm", vm.Id.ToString(),
                    $"disk {index} export as {ext} {(ct.IsCancellationRequested ? "cancelled" : "failed: " + error.Detail)} (task {ctx.Id})", success: false);
                if (e is DiskStoreException or IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    var failed = new TaskFailedException(409, "Conflict", $"Cannot export the disk: {e.Message}");
                    ready.TrySetException(failed);
                    throw failed;
                }
                ready.TrySetException(e);
                throw;
            }
            finally
            {
                if (!keep && path is not null) VmDiskStore.DeleteFiles([path]); // (the response may still hold it open: it reads on)
            }
        });
        return new StartedDiskExport(task, ready.Task, fileName);
    }

    /// <summary>
    /// A converted file being sent by a download: the endpoint writes it to the response, calls <see cref="Sent"/>
    /// after each write (the task's progress) and <see cref="End"/> when it stops (the task ends succeeded when all
    /// was sent). <see cref="Cancelled"/> fires when someone cancels the task: the endpoint then cuts the response.
    /// </summary>
    public sealed class DiskDownload(string path, long size, string fileName, TaskContext ctx, TaskCompletionSource<long> sent)
    {
        public string Path { get; } = path;
        public long Size { get; } = size;
        public string FileName { get; } = fileName;
        public CancellationToken Cancelled => ctx.CancellationToken;
        private long sentBytes;
        public long SentBytes => Interlocked.Read(ref sentBytes);
        public void Sent(long bytes)
        {
            Interlocked.Exchange(ref sentBytes, bytes);
            ctx.Report(bytes, Size, $"sending {FileName}: {bytes >> 20} of {Size >> 20} MiB");
        }
        public void End(long bytes) => sent.TrySetResult(bytes);
    }

    /// <summary>A kept export's file, or null (unknown task, not an export, expired or not finished).</summary>
    public string? KeptFile(Guid taskId)
    {
        var dir = Path.Combine(ExportsRoot, taskId.ToString("N"));
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir).FirstOrDefault(f => !Path.GetFileName(f).StartsWith('.')) : null;
    }

    private void DeleteExport(Guid taskId)
    {
        try { Directory.Delete(Path.Combine(ExportsRoot, taskId.ToString("N")), recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException e) { log.LogWarning(e, "Could not delete export {Task}", taskId); }
    }

    /// <summary>Deletes kept exports older than <see cref="Keep"/> (called before each new export and at start).</summary>
    public int SweepExpired()
    {
        if (!Directory.Exists(ExportsRoot)) return 0;
        var removed = 0;
        var cutoff = clock.GetUtcNow() - Keep;
        foreach (var dir in Directory.EnumerateDirectories(ExportsRoot))
        {
            if (Directory.GetLastWriteTimeUtc(dir) > cutoff.UtcDateTime) continue;
            try { Directory.Delete(dir, recursive: true); removed++; }
            catch (IOException e) { log.LogWarning(e, "Could not delete the expired export {Dir}", dir); }
        }
        return removed;
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}

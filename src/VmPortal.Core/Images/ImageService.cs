using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using VmPortal.Core.Audit;
using VmPortal.Core.Tasks;
using VmPortal.Data;

namespace VmPortal.Core.Images;

/// <summary>
/// Uploads and deletes images in the image store (admins; enforced by callers). An upload is written to a hidden
/// temporary file and renamed when complete, so a half-written file is never listed. Built-in images are read-only.
/// <see cref="StartUpload"/> runs an upload as a task (<c>image.upload</c>): the task runs while the body streams
/// in (progress: bytes received of the announced length), then checks the content; cancelling it stops the upload.
/// </summary>
public sealed partial class ImageService(
    ImageCatalog catalog, IOptions<ImageStoreOptions> options, IDbContextFactory<PortalDbContext> dbFactory, AuditLog audit,
    TaskService tasks)
{
    public const string UploadTaskType = "image.upload";

    /// <summary>A running upload task: the task as created, when the body has been received, and how it ended.</summary>
    public sealed record UploadRun(TaskDto Task, Task Received, Task<OpResult<ImageInfo>> Outcome);

    /// <summary>
    /// Starts an upload of <paramref name="content"/> as a task; the name is checked first (invalid: no task, the
    /// result at once). <paramref name="expectedBytes"/> (e.g. Content-Length) is the progress total (null: unknown).
    /// <paramref name="aborted"/> is the request's abort token: a client that goes away ends the task failed (400,
    /// "Upload incomplete"), nothing stored. <paramref name="present"/> turns the stored image into the task's result.
    /// </summary>
    public async Task<(UploadRun? Run, OpResult<ImageInfo>? Refused)> StartUpload(Caller caller, string? fileName, Stream content,
        long maxBytes, long? expectedBytes, Func<ImageInfo, object> present, CancellationToken aborted)
    {
        if (FileNameError(fileName) is { } error) return (null, OpResult<ImageInfo>.Invalid("name", error));
        var store = Path.GetFullPath(options.Value.StorePath);
        Directory.CreateDirectory(store);
        if (NameTaken(store, fileName!) is { } taken) return (null, OpResult<ImageInfo>.Conflict(taken));
        var outcome = new TaskCompletionSource<OpResult<ImageInfo>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = await tasks.StartAsync(caller, UploadTaskType, new TaskTarget("image", "upload:" + fileName, fileName!), async ctx =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.CancellationToken, aborted);
            OpResult<ImageInfo> r;
            try
            {
                ctx.Step($"receiving {fileName}" + (expectedBytes is { } n ? $" ({n} bytes)" : ""));
                r = await UploadAsync(caller, fileName, content, maxBytes, linked.Token, ctx, expectedBytes, received);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && !ctx.CancellationToken.IsCancellationRequested
                                      && (aborted.IsCancellationRequested || e is Microsoft.AspNetCore.Http.BadHttpRequestException))
            {
                // the client closed the connection (or the body ended early): nothing is stored
                var failed = new TaskFailedException(400, "Upload incomplete", $"The upload of '{fileName}' ended early: {(e is OperationCanceledException ? "the client closed the connection" : e.Message)}. Nothing was stored.");
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.ImageUpload, "image", "upload:" + fileName, $"task={ctx.Id} {failed.Message}", success: false);
                outcome.TrySetException(failed);
                received.TrySetResult();
                throw failed;
            }
            catch (OperationCanceledException e)
            {
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.ImageUpload, "image", "upload:" + fileName, $"task={ctx.Id} cancelled; nothing stored", success: false);
                outcome.TrySetException(e);
                received.TrySetResult();
                throw;
            }
            catch (Exception e)
            {
                outcome.TrySetException(e);
                received.TrySetResult();
                throw;
            }
            received.TrySetResult();
            outcome.TrySetResult(r);
            if (!r.IsOk)
            {
                var failed = TaskErrors.ToException(r);
                await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.ImageUpload, "image", "upload:" + fileName, $"task={ctx.Id} refused: {failed.Message}", success: false);
                throw failed;
            }
            return present(r.Value!);
        }, CancellationToken.None);
        return (new UploadRun(task, received.Task, outcome.Task), null);
    }

    public const int FileNameMaxLength = 128;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex FileNameRegex();

    public static string? FileNameError(string? fileName)
    {
        if (string.IsNullOrWhiteSpace(fileName)) return "File name is required.";
        if (fileName.Length > FileNameMaxLength) return $"File name must be at most {FileNameMaxLength} characters.";
        if (!FileNameRegex().IsMatch(fileName) || fileName.Contains("..")) return "File name may contain letters, digits, '-', '_' and '.', and must start with a letter or digit.";
        return null;
    }

    /// <summary>
    /// Stores an upload. With a <paramref name="task"/> it reports bytes received (of <paramref name="expectedBytes"/>)
    /// and its steps, and <paramref name="received"/> is completed once the whole body has been read.
    /// </summary>
    public async Task<OpResult<ImageInfo>> UploadAsync(Caller caller, string? fileName, Stream content, long maxBytes, CancellationToken ct = default,
        TaskContext? task = null, long? expectedBytes = null, TaskCompletionSource? received = null)
    {
        if (FileNameError(fileName) is { } error) return OpResult<ImageInfo>.Invalid("name", error);
        var store = Path.GetFullPath(options.Value.StorePath);
        Directory.CreateDirectory(store);
        var target = Path.Combine(store, fileName!);
        if (NameTaken(store, fileName!) is { } taken) return OpResult<ImageInfo>.Conflict(taken);

        var temp = Path.Combine(store, $".upload-{Guid.NewGuid():N}");
        long written = 0;
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                int n;
                while ((n = await content.ReadAsync(buffer, ct)) > 0)
                {
                    written += n;
                    if (written > maxBytes) return OpResult<ImageInfo>.Invalid("file", $"The image is larger than {maxBytes} bytes.");
                    await file.WriteAsync(buffer.AsMemory(0, n), ct);
                    task?.Report(written, Math.Max(expectedBytes ?? 0, 0), $"receiving: {written >> 20}" + (expectedBytes is { } e ? $" of {e >> 20} MiB" : " MiB"));
                }
            }
            received?.TrySetResult();
            task?.Log($"received {written} bytes");
            if (written == 0) return OpResult<ImageInfo>.Invalid("file", "The image is empty.");
            task?.Step($"checking the content of {fileName}");
            if (ImageContent.Error(ImageCatalog.KindOf(fileName!), temp, fileName!) is { } contentError)
                return OpResult<ImageInfo>.Invalid("file", contentError);
            if (NameTaken(store, fileName!) is { } taken2) return OpResult<ImageInfo>.Conflict(taken2); // raced meanwhile
            try { File.Move(temp, target, overwrite: false); }
            catch (IOException) when (File.Exists(target)) { return OpResult<ImageInfo>.Conflict($"An image named '{fileName}' already exists."); }
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        var info = catalog.Find("upload:" + fileName) ?? throw new InvalidOperationException("uploaded image not listed");
        task?.Log($"stored as {info.Id}" + (info.Format is { } f ? $" ({f}, {info.VirtualSizeBytes} bytes virtual)" : ""));
        await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.ImageUpload, "image", info.Id,
            $"size={written}" + (task is null ? "" : $" task={task.Id}"), ct: CancellationToken.None);
        return OpResult<ImageInfo>.Ok(info);
    }

    /// <summary>
    /// Why <paramref name="fileName"/> cannot be a new upload's name, or null: names are unique regardless of case
    /// ("garbage.iso" and "GARBAGE.iso" would be one image to a user), and the built-in images' file names are reserved.
    /// </summary>
    private static string? NameTaken(string store, string fileName)
    {
        if (ImageCatalog.BuiltIns.Any(b => string.Equals(b.File, fileName, StringComparison.OrdinalIgnoreCase)))
            return $"'{fileName}' is the name of a built-in image; choose another name.";
        var existing = Directory.EnumerateFiles(store).Select(Path.GetFileName)
            .FirstOrDefault(n => n is not null && !n.StartsWith('.') && string.Equals(n, fileName, StringComparison.OrdinalIgnoreCase));
        return existing is null ? null : $"An image named '{existing}' already exists (names are compared without regard to case).";
    }

    /// <summary>
    /// Why an uploaded disk image cannot be a base image, or null: its header must read as raw, qcow2, VHD or VMDK
    /// (truncated files, garbage in a known format, absurd sizes and bad tables are named by the format reader),
    /// every sector must be readable through its tables, and it must stand alone — a backing file would let an
    /// upload read files of the host.
    /// </summary>
    public static string? DiskContentError(string path, string fileName)
    {
        try
        {
            var info = VmPortal.Emulator.Storage.DiskImageFile.Probe(path);
            var ext = Path.GetExtension(fileName).ToLowerInvariant();
            var named = ext switch
            {
                ".qcow2" or ".qcow" => "qcow2",
                ".vhd" or ".vpc" => "vhd",
                ".vmdk" => "vmdk",
                _ => null,
            };
            var actual = info.Format.ToString().ToLowerInvariant();
            if (named is not null && named != actual)
                return $"The file is named {ext} but its content is not a {named} image (it reads as {actual}: truncated or not that format).";
            if (info.BackingFile is not null)
                return $"The {info.Format.ToString().ToLowerInvariant()} image names a backing file ('{info.BackingFile}'); upload a standalone image (qemu-img convert flattens one).";
            if (info.VirtualSize <= 0) return "The disk image has no sectors.";
            using var image = VmPortal.Emulator.Storage.DiskImageFile.Open(path, readOnly: true);
            if (VmPortal.Emulator.Storage.DiskImageFile.Check(path) is { Count: > 0 } problems)
                return $"The {info.Format.ToString().ToLowerInvariant()} image is damaged: {string.Join("; ", problems.Take(3))}";
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            return $"Not a usable disk image: {e.Message}";
        }
    }

    public async Task<OpResult<bool>> DeleteAsync(Caller caller, string id, CancellationToken ct = default)
    {
        var info = catalog.Find(id);
        if (info is null) return OpResult<bool>.NotFound($"Image {id} not found.");
        if (info.BuiltIn) return OpResult<bool>.Conflict("Built-in images cannot be deleted.");
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            // disks are jsonb: load the few candidate rows and look inside
            var users = await db.VirtualMachines.AsNoTracking().Where(v => v.CdromImageId == id).Select(v => v.Name).ToListAsync(ct);
            var withDisks = await db.VirtualMachines.AsNoTracking().Select(v => new { v.Name, v.Disks }).ToListAsync(ct);
            users.AddRange(withDisks.Where(v => v.Disks.Any(d => d.BackingImageId == id)).Select(v => v.Name));
            users.AddRange((await db.Templates.AsNoTracking().Where(t => t.DiskImageId == id || t.CdromImageId == id).Select(t => t.Name).ToListAsync(ct))
                .Select(t => $"template {t}"));
            if (users.Count > 0) return OpResult<bool>.Conflict($"The image is used by: {string.Join(", ", users.Distinct().Take(10))}.");
        }
        File.Delete(info.Path);
        await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.ImageDelete, "image", id, "", ct: ct);
        return OpResult<bool>.Ok(true);
    }
}

using System.Security.Claims;
using VmPortal.Core.Disks;
using VmPortal.Core.Console;
using VmPortal.Emulator.Storage;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>GET /api/vms/{id}/disks/{index}?format=qcow2|raw</c>: downloads a stopped VM's disk, flattened (its base
/// image merged in), as qcow2 (default) or raw. Owner or admin; another user's VM is 404; a running VM is 409.
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
            .WithSummary("Download a stopped VM's disk, flattened: ?format=qcow2 (default) or raw");
        return g;
    }

    public static async Task<IResult> Download(Guid id, int index, string? format, ClaimsPrincipal user, VmRuntime runtime,
        VmDiskStore store, CancellationToken ct)
    {
        DiskFormat fmt;
        switch (format?.ToLowerInvariant())
        {
            case null or "" or "qcow2": fmt = DiskFormat.Qcow2; break;
            case "raw": fmt = DiskFormat.Raw; break;
            default:
                return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "format must be qcow2 or raw.");
        }
        var vm = await runtime.FindAsync(user.Caller(), id, ct);
        if (vm is null) return ApiResults.Problem(StatusCodes.Status404NotFound, "Not found", $"VM {id} not found.");
        if (index < 0 || index >= vm.Disks.Count)
            return ApiResults.Problem(StatusCodes.Status404NotFound, "Not found", $"VM '{vm.Name}' has no disk {index} (it has {vm.Disks.Count}).");
        if (runtime.Host.TryFind(id, out var hosted) && hosted.State != VmRunState.Stopped && hosted.State != VmRunState.Crashed)
            return ApiResults.Problem(StatusCodes.Status409Conflict, "Conflict", $"Stop '{vm.Name}' before downloading its disk.");
        if (store.Problem(vm.Id, vm.Disks[index], index) is { } problem)
            return ApiResults.Problem(StatusCodes.Status409Conflict, "Conflict", $"Cannot download: {problem}.");
        string temp;
        try
        {
            temp = await Task.Run(() => store.ExportToTemp(vm.Id, vm.Disks[index], fmt), ct);
        }
        catch (DiskStoreException e)
        {
            return ApiResults.Problem(StatusCodes.Status409Conflict, "Conflict", e.Message);
        }
        // the temporary copy disappears when the response stream is closed
        var stream = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous | FileOptions.SequentialScan);
        var ext = fmt == DiskFormat.Raw ? "raw" : "qcow2";
        return Results.File(stream, "application/octet-stream", $"{vm.Name}-disk{index}.{ext}");
    }
}

using System.Security.Claims;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Data.Entities;
using VmPortal.Core;
using VmPortal.Core.Images;
using VmPortal.Core.Tasks;

namespace VmPortal.Web.Api;

/// <summary>An image as the API shows it (no host paths).</summary>
/// <param name="Format">Disk images: raw, qcow2, vhd or vmdk (from the header).</param>
/// <param name="VirtualSizeBytes">Disk images: the size the guest sees.</param>
public sealed record ImageDto(string Id, string Name, string Kind, long SizeBytes, bool BuiltIn, string FileName, DateTimeOffset ModifiedAt,
    string? Format = null, long? VirtualSizeBytes = null)
{
    public static ImageDto From(ImageInfo i) => new(i.Id, i.Name, i.Kind, i.SizeBytes, i.BuiltIn, i.FileName, i.ModifiedAt, i.Format, i.VirtualSizeBytes);
}

/// <summary><c>/api/images</c>: images a VM can use (built-in guests and uploaded files).</summary>
public static class ImagesApi
{
    public static RouteGroupBuilder MapImagesApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/images").WithTags("Images").RequireAuthorization();
        g.MapGet("/", List).WithSummary("List images (ids: builtin:<slug>, upload:<file>)");
        g.MapPost("/", Upload).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .Produces<ImageDto>(StatusCodes.Status201Created).Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            // (no .Accepts(): its content-type match runs before authorization and answered 415 to anonymous callers)
            .WithSummary("Upload an image (Admin): raw body, ?name=<file name>; kind follows the extension. Runs as a task (image.upload): the answer waits for it (201, Link: rel=monitor); Prefer: respond-async answers 202 + Location once the body is received");
        g.MapDelete("/{id}", Delete).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Delete an uploaded image that no VM uses (Admin)");
        return g;
    }

    /// <summary>Largest accepted upload (bytes): config Images:MaxUploadBytes, default 8 GiB.</summary>
    public static long MaxUploadBytes(IConfiguration config) => config.GetValue<long?>("Images:MaxUploadBytes") ?? 8L << 30;

    /// <summary>
    /// An upload runs as a task (<c>image.upload</c>, listed on the Tasks page with bytes received of the
    /// Content-Length, then the content check; <c>POST /api/tasks/{id}/cancel</c> stops it and nothing is stored).
    /// The body can only be read while the request lasts, so the default answer is held until the task ends: 201 +
    /// the image (as before), or the problem (400/409), with <c>Link: &lt;/api/tasks/{id}&gt;; rel="monitor"</c>.
    /// With <c>Prefer: respond-async</c> the answer is <c>202</c> + <c>Location: /api/tasks/{id}</c> as soon as the
    /// whole body has been received; the content check goes on in the task. A bad name or a name taken is answered
    /// at once, without a task.
    /// </summary>
    public static async Task<IResult> Upload(
        string? name, HttpContext http, ClaimsPrincipal user, ImageService images, IConfiguration config, CancellationToken ct)
    {
        if (http.Request.ContentType is { Length: > 0 } type && !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            return ApiResults.Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                "Send the image as the raw request body with Content-Type: application/octet-stream.");
        var max = MaxUploadBytes(config);
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = max;
        if (http.Request.ContentLength is long len && len > max)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["file"] = [$"The image is larger than {max} bytes."] });
        var (run, refused) = await images.StartUpload(user.Caller(), name, http.Request.Body, max, http.Request.ContentLength,
            i => ImageDto.From(i), http.RequestAborted);
        if (refused is not null) return refused.Status == Core.OpStatus.Invalid ? ApiResults.Invalid(refused) : ApiResults.Failure(refused);
        var task = run!.Task;
        http.Items[TaskAnswer.TaskItem] = task.Id;
        http.Response.Headers.Link = $"</api/tasks/{task.Id}>; rel=\"monitor\"";
        if (TaskAnswer.AsksRespondAsync(http.Request))
        {
            await Task.WhenAny(run.Received, run.Outcome);
            if (!run.Outcome.IsCompleted)
            {
                http.Response.Headers["Preference-Applied"] = "respond-async";
                return TasksApi.Accepted(task);
            }
        }
        OpResult<ImageInfo> r;
        try { r = await run.Outcome; }
        catch (TaskFailedException f) { return ApiResults.Problem(f.Status, f.Title, f.Message); }
        catch (OperationCanceledException) { return ApiResults.Problem(StatusCodes.Status409Conflict, "Cancelled", "The upload was cancelled; nothing was stored."); }
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        var i = r.Value!;
        return TypedResults.Created($"/api/images/{Uri.EscapeDataString(i.Id)}", ImageDto.From(i));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(string id, ClaimsPrincipal user, ImageService images, CancellationToken ct)
    {
        var r = await images.DeleteAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }

    public static Ok<List<ImageDto>> List(ImageCatalog catalog, string? kind) =>
        TypedResults.Ok(catalog.List()
            .Where(i => string.IsNullOrEmpty(kind) || i.Kind == kind)
            .Select(ImageDto.From).ToList());
}

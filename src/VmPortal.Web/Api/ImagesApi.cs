using System.Security.Claims;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Data.Entities;
using VmPortal.Core.Images;

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
            // (no .Accepts(): its content-type match runs before authorization and answered 415 to anonymous callers)
            .WithSummary("Upload an image (Admin): raw body, ?name=<file name>; kind follows the extension");
        g.MapDelete("/{id}", Delete).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Delete an uploaded image that no VM uses (Admin)");
        return g;
    }

    /// <summary>Largest accepted upload (bytes): config Images:MaxUploadBytes, default 8 GiB.</summary>
    public static long MaxUploadBytes(IConfiguration config) => config.GetValue<long?>("Images:MaxUploadBytes") ?? 8L << 30;

    public static async Task<Results<Created<ImageDto>, ValidationProblem, ProblemHttpResult>> Upload(
        string? name, HttpContext http, ClaimsPrincipal user, ImageService images, IConfiguration config, CancellationToken ct)
    {
        if (http.Request.ContentType is { Length: > 0 } type && !type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
            return ApiResults.Problem(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type",
                "Send the image as the raw request body with Content-Type: application/octet-stream.");
        var max = MaxUploadBytes(config);
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = max;
        if (http.Request.ContentLength is long len && len > max)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["file"] = [$"The image is larger than {max} bytes."] });
        var r = await images.UploadAsync(user.Caller(), name, http.Request.Body, max, ct);
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

using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Images;

namespace VmPortal.Web.Api;

/// <summary>An image as the API shows it (no host paths).</summary>
public sealed record ImageDto(string Id, string Name, string Kind, long SizeBytes, bool BuiltIn, string FileName, DateTimeOffset ModifiedAt);

/// <summary><c>/api/images</c>: images a VM can use (built-in guests and uploaded files).</summary>
public static class ImagesApi
{
    public static RouteGroupBuilder MapImagesApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/images").WithTags("Images").RequireAuthorization();
        g.MapGet("/", List).WithSummary("List images (ids: builtin:<slug>, upload:<file>)");
        return g;
    }

    public static Ok<List<ImageDto>> List(ImageCatalog catalog, string? kind) =>
        TypedResults.Ok(catalog.List()
            .Where(i => string.IsNullOrEmpty(kind) || i.Kind == kind)
            .Select(i => new ImageDto(i.Id, i.Name, i.Kind, i.SizeBytes, i.BuiltIn, i.FileName, i.ModifiedAt)).ToList());
}

using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Templates;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>/api/templates</c>: the catalog. Everyone lists the published templates (admins all); admins create, replace
/// and delete them. Provision a VM from one with <c>POST /api/vms {"name", "templateId"}</c>.
/// </summary>
public static class TemplatesApi
{
    public static RouteGroupBuilder MapTemplatesApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/templates").WithTags("Templates").RequireAuthorization();
        g.MapGet("/", List).WithSummary("List the catalog (published templates; admins see all)");
        g.MapGet("/{id:guid}", Get).WithName("GetTemplate").WithSummary("Get one template");
        g.MapPost("/", Create).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Create a template (Admin): {name, imageId and/or cdromImageId, memoryMiB, maxMemoryMiB, diskSizeMiB, maxDiskSizeMiB, cloudInit, hostnamePattern, defaultUser, published, …}");
        g.MapPut("/{id:guid}", Update).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin)).WithSummary("Replace a template (Admin)");
        g.MapDelete("/{id:guid}", Delete).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Delete a template (Admin); VMs made from it are not affected");
        return g;
    }

    public static async Task<Ok<IReadOnlyList<TemplateDto>>> List(ClaimsPrincipal user, TemplateService templates, CancellationToken ct) =>
        TypedResults.Ok(await templates.ListAsync(user.Caller(), ct));

    public static async Task<Results<Ok<TemplateDto>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, TemplateService templates, CancellationToken ct) =>
        await templates.GetAsync(user.Caller(), id, ct) is { } t ? TypedResults.Ok(t) : ApiResults.NotFound($"Template {id} not found.");

    public static async Task<Results<CreatedAtRoute<TemplateDto>, ValidationProblem, ProblemHttpResult>> Create(
        TemplateSpec spec, ClaimsPrincipal user, TemplateService templates, CancellationToken ct)
    {
        var r = await templates.CreateAsync(user.Caller(), spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        return TypedResults.CreatedAtRoute(r.Value, "GetTemplate", new { id = r.Value!.Id });
    }

    public static async Task<Results<Ok<TemplateDto>, ValidationProblem, ProblemHttpResult>> Update(
        Guid id, TemplateSpec spec, ClaimsPrincipal user, TemplateService templates, CancellationToken ct)
    {
        var r = await templates.UpdateAsync(user.Caller(), id, spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(Guid id, ClaimsPrincipal user, TemplateService templates, CancellationToken ct)
    {
        var r = await templates.DeleteAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }
}

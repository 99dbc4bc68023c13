using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core;
using VmPortal.Core.Console;

namespace VmPortal.Web.Api;

/// <summary>Body of <c>POST /api/vms/{id}/console/shares</c>.</summary>
public sealed record CreateShareRequest(int? ExpiresInHours, string? Label);
/// <summary>A new link: <see cref="Url"/> and <see cref="Token"/> are shown this once.</summary>
public sealed record CreatedShareResponse(Guid Id, Guid VmId, string Token, string Url, string Label, DateTimeOffset ExpiresAt);

/// <summary>
/// <c>/api/vms/{id}/console/shares</c>: view-only links to a VM's console (owner or admin; another user's VM is 404).
/// POST makes one (<c>expiresInHours</c> required, 1…720) and answers 201 with its URL, shown once; GET lists them;
/// DELETE …/{shareId} revokes one and disconnects its viewers (204).
/// </summary>
public static class ConsoleShareApi
{
    /// <summary>Where a share link opens (no sign-in needed).</summary>
    public static string SharePath(string token) => $"/console/shared/{token}";

    public static RouteGroupBuilder MapConsoleShareApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}/console/shares").WithTags("VM console").RequireAuthorization();
        g.MapPost("/", Create).WithSummary("Make a view-only link to the console (expiresInHours 1…720); the URL is shown once");
        g.MapGet("/", List).WithSummary("The VM's view-only console links");
        g.MapDelete("/{shareId:guid}", Revoke).WithSummary("Revoke a link; its viewers are disconnected");
        return g;
    }

    public static async Task<Results<Created<CreatedShareResponse>, ValidationProblem, ProblemHttpResult>> Create(
        Guid id, CreateShareRequest? body, ClaimsPrincipal user, ConsoleShareService shares, HttpContext http, VmPortal.Web.Security.PublicUrls urls, CancellationToken ct)
    {
        if (body is null) return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "A JSON body {expiresInHours, label} is required.");
        var r = await shares.CreateAsync(user.Caller(), id, body.ExpiresInHours, body.Label, ct);
        if (r.Status == OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        var s = r.Value!;
        var url = urls.Absolute(http, SharePath(s.Token));
        return TypedResults.Created($"/api/vms/{id}/console/shares/{s.Id}", new CreatedShareResponse(s.Id, id, s.Token, url, s.Label, s.ExpiresAt));
    }

    public static async Task<Results<Ok<IReadOnlyList<ConsoleShareDto>>, ProblemHttpResult>> List(
        Guid id, ClaimsPrincipal user, ConsoleShareService shares, CancellationToken ct)
    {
        var r = await shares.ListAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Revoke(
        Guid id, Guid shareId, ClaimsPrincipal user, ConsoleShareService shares, CancellationToken ct)
    {
        var r = await shares.RevokeAsync(user.Caller(), id, shareId, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }
}

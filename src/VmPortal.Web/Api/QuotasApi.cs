using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Quotas;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// Quotas: <c>GET/PUT /api/users/{id}/quota</c> (Admin; body <c>{maxVms, maxRunningVms, maxMemoryMiB, maxDiskGiB}</c>,
/// null = no limit) and <c>GET /api/quota</c> (the caller's own quota and usage). A request that would exceed a
/// quota answers 409 with the title "Quota exceeded" and a detail naming the quota and the numbers.
/// </summary>
public static class QuotasApi
{
    public static void MapQuotasApi(this IEndpointRouteBuilder app)
    {
        var users = app.MapGroup("/api/users/{id:guid}/quota").WithTags("Quotas").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin));
        users.MapGet("/", Get).WithSummary("A user's quota and usage (Admin)");
        users.MapPut("/", Set).WithSummary("Set a user's quota (Admin): {maxVms, maxRunningVms, maxMemoryMiB, maxDiskGiB}, null = no limit");
        app.MapGet("/api/quota", Own).WithTags("Quotas").RequireAuthorization().WithSummary("The caller's quota and usage");
    }

    public static async Task<Results<Ok<QuotaView>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, QuotaService quotas, CancellationToken ct) =>
        await quotas.GetAsync(user.Caller(), id, ct) is { } q ? TypedResults.Ok(q) : ApiResults.NotFound($"User {id} not found.");

    public static async Task<Results<Ok<QuotaView>, ValidationProblem, ProblemHttpResult>> Set(
        Guid id, QuotaDto quota, ClaimsPrincipal user, QuotaService quotas, CancellationToken ct)
    {
        var r = await quotas.SetAsync(user.Caller(), id, quota, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<Ok<QuotaView>, ProblemHttpResult>> Own(ClaimsPrincipal user, QuotaService quotas, CancellationToken ct)
    {
        var caller = user.Caller();
        return await quotas.GetAsync(caller, caller.UserId, ct) is { } q ? TypedResults.Ok(q) : ApiResults.NotFound("User not found.");
    }
}

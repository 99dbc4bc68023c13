using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Leases;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>GET/PUT /api/vms/{id}/lease</c>: a VM's expiry (owner or admin). PUT <c>{expiresAt, graceHours}</c>: the owner
/// may set a lease or shorten it; extending or removing one (<c>expiresAt: null</c>) is for admins (400 otherwise).
/// At expiry the VM is powered off, after the grace period deleted. GET answers 204 when the VM has no lease.
/// </summary>
public static class LeaseApi
{
    public static void MapLeaseApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}/lease").WithTags("VMs").RequireAuthorization();
        g.MapGet("/", Get).WithSummary("The VM's lease (204: none); warning = it ends within 24 h");
        g.MapPut("/", Set).WithSummary("Set, shorten (owner) or extend/remove (admin) the VM's lease: {expiresAt, graceHours}");
    }

    public static async Task<Results<Ok<LeaseDto>, NoContent, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, LeaseService leases, CancellationToken ct)
    {
        var r = await leases.GetAsync(user.Caller(), id, ct);
        if (!r.IsOk) return ApiResults.Failure(r);
        return r.Value is { } l ? TypedResults.Ok(l) : TypedResults.NoContent();
    }

    public static async Task<Results<Ok<LeaseDto>, NoContent, ValidationProblem, ProblemHttpResult>> Set(Guid id, LeaseSpec spec, ClaimsPrincipal user,
        LeaseService leases, CancellationToken ct)
    {
        var r = await leases.SetAsync(user.Caller(), id, spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        return r.Value is { } l ? TypedResults.Ok(l) : TypedResults.NoContent();
    }
}

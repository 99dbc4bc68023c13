using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Networks;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>/api/networks</c>: the host's virtual networks with their addresses, outbound policy, DHCP leases, switch ports
/// (one per running NIC, with counters) and NAT counters. Everyone signed in lists them (users see only their own
/// VMs' leases and ports); admins create, replace and delete them.
/// </summary>
public static class NetworksApi
{
    public static RouteGroupBuilder MapNetworksApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/networks").WithTags("Networks").RequireAuthorization();
        g.MapGet("/", List).WithSummary("List networks with leases and port counters (users: their own VMs' only)");
        g.MapGet("/{name}", Get).WithName("GetNetwork").WithSummary("One network");
        g.MapGet("/{name}/leases", Leases).WithSummary("The network's DHCP leases");
        g.MapPost("/", Create).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Create a network (Admin): {name, mode: nat|isolated, subnet: \"10.0.3.0/24\", dhcp, outbound: loopback|deny|allow, gateway?, dns?, dhcpStart?, dhcpEnd?}");
        g.MapPut("/{name}", Update).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Replace a network's settings (Admin): kind, outbound policy, DHCP on/off and range change live; subnet, gateway and DNS 409 while VMs using it run");
        g.MapDelete("/{name}", Delete).RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("Delete a network (Admin); 409 while a VM or template uses it");
        return g;
    }

    public static async Task<Ok<IReadOnlyList<NetworkDto>>> List(ClaimsPrincipal user, NetworkService networks, CancellationToken ct) =>
        TypedResults.Ok(await networks.ListAsync(user.Caller(), ct));

    public static async Task<Results<Ok<NetworkDto>, ProblemHttpResult>> Get(string name, ClaimsPrincipal user, NetworkService networks, CancellationToken ct) =>
        await networks.GetAsync(user.Caller(), name, ct) is { } n ? TypedResults.Ok(n) : ApiResults.NotFound($"Network '{name}' not found.");

    public static async Task<Results<Ok<IReadOnlyList<LeaseDto>>, ProblemHttpResult>> Leases(string name, ClaimsPrincipal user, NetworkService networks, CancellationToken ct) =>
        await networks.GetAsync(user.Caller(), name, ct) is { } n ? TypedResults.Ok(n.Leases) : ApiResults.NotFound($"Network '{name}' not found.");

    public static async Task<Results<CreatedAtRoute<NetworkDto>, ValidationProblem, ProblemHttpResult>> Create(
        NetworkSpec spec, ClaimsPrincipal user, NetworkService networks, CancellationToken ct)
    {
        var r = await networks.CreateAsync(user.Caller(), spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        return TypedResults.CreatedAtRoute(r.Value, "GetNetwork", new { name = r.Value!.Name });
    }

    public static async Task<Results<Ok<NetworkDto>, ValidationProblem, ProblemHttpResult>> Update(
        string name, NetworkSpec spec, ClaimsPrincipal user, NetworkService networks, CancellationToken ct)
    {
        var r = await networks.UpdateAsync(user.Caller(), name, spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(string name, ClaimsPrincipal user, NetworkService networks, CancellationToken ct)
    {
        var r = await networks.DeleteAsync(user.Caller(), name, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }
}

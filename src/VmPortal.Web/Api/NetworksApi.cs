using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Networks;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>/api/networks</c>: the host's virtual networks (this slice: the built-in NAT network <c>default</c>) with their
/// addresses, outbound policy, DHCP leases, switch ports (one per running NIC, with counters) and NAT counters.
/// </summary>
public static class NetworksApi
{
    public static RouteGroupBuilder MapNetworksApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/networks").WithTags("Networks").RequireAuthorization();
        g.MapGet("/", (NetworkHost networks) => TypedResults.Ok(networks.List())).WithSummary("List networks with leases and port counters");
        g.MapGet("/{name}", Get).WithSummary("One network");
        g.MapGet("/{name}/leases", Leases).WithSummary("The network's DHCP leases");
        return g;
    }

    public static Results<Ok<NetworkDto>, ProblemHttpResult> Get(string name, NetworkHost networks) =>
        networks.Get(name) is { } n ? TypedResults.Ok(n) : ApiResults.NotFound($"Network '{name}' not found.");

    public static Results<Ok<IReadOnlyList<LeaseDto>>, ProblemHttpResult> Leases(string name, NetworkHost networks) =>
        networks.Get(name) is { } n ? TypedResults.Ok(n.Leases) : ApiResults.NotFound($"Network '{name}' not found.");
}

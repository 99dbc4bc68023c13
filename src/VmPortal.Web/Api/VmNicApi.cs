using System.Security.Claims;
using VmPortal.Core;
using VmPortal.Core.Console;
using VmPortal.Core.Networks;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Api;

/// <summary>The live state of a running VM's network card: network, switch-port counters, DHCP address, forwards, link.</summary>
public sealed record VmNicLiveDto(Guid Id, bool LinkUp, string? Network, string? Address, PortDto? Port, IReadOnlyList<string> Forwards);

/// <summary>Body of <c>POST /api/vms/{id}/nic/link</c>.</summary>
public sealed record NicLinkRequest(bool? Up);

/// <summary>
/// <c>GET /api/vms/{id}/nic</c>: the running VM's card (404 for a VM the caller may not see, 409 when it is not
/// running or has no card). <c>POST /api/vms/{id}/nic/link</c> <c>{"up": false}</c> pulls the running VM's cable,
/// <c>{"up": true}</c> plugs it in again: the guest sees the link change at once (its driver logs "Link is Down/Up");
/// it lasts until the VM stops (a guest reset keeps it); the NIC's stored <c>enabled</c> is the link at the next start.
/// </summary>
public static class VmNicApi
{
    public static RouteGroupBuilder MapVmNicApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms/{id:guid}/nic").WithTags("VM network card").RequireAuthorization();
        g.AddEndpointFilter<InputAuditFilter>();
        g.MapGet("", Get).WithSummary("The running VM's network card: link, network, address, port counters (409 when not running)");
        g.MapPost("/link", SetLink).WithSummary("Plug the running VM's network cable in (up: true) or pull it (up: false)");
        return g;
    }

    public static async Task<IResult> Get(Guid id, ClaimsPrincipal user, VmRuntime rt, NetworkHost networks)
    {
        if (await rt.FindAsync(Caller.From(user), id) is null) return ApiResults.NotFound($"VM {id} not found.");
        return Dto(id, rt, networks) is { } dto ? TypedResults.Ok(dto) : ApiResults.Conflict("The VM is not running or has no network card.");
    }

    public static async Task<IResult> SetLink(Guid id, NicLinkRequest body, ClaimsPrincipal user, VmRuntime rt, NetworkHost networks)
    {
        if (body.Up is not bool up) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["up"] = ["'up' (true or false) is required."] });
        if (await rt.FindAsync(Caller.From(user), id) is null) return ApiResults.NotFound($"VM {id} not found.");
        if (!rt.Host.TryFind(id, out var hosted) || hosted.State != VmRunState.Running)
            return ApiResults.Conflict("The VM is not running; its NIC's 'enabled' setting is the link at the next start.");
        var failure = await ConsoleApi.Guard(() => { hosted.SetNicLink(up); return Task.CompletedTask; });
        if (failure is not null) return failure;
        networks.SetVmLink(id, up);
        return Dto(id, rt, networks) is { } dto ? TypedResults.Ok(dto) : ApiResults.Conflict("The VM stopped.");
    }

    private static VmNicLiveDto? Dto(Guid id, VmRuntime rt, NetworkHost networks)
    {
        if (!rt.Host.TryFind(id, out var hosted) || hosted.NicLinkUp is not bool link) return null;
        var s = networks.VmNic(id);
        return new VmNicLiveDto(id, link, s?.Network, s?.Address, s?.Port, s?.Forwards ?? []);
    }
}

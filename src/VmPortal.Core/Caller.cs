using System.Security.Claims;
using VmPortal.Data.Entities;

namespace VmPortal.Core;

/// <summary>Who is asking: every use case takes one, and decides visibility from it.</summary>
public sealed record Caller(Guid UserId, string UserName, bool IsAdmin)
{
    /// <summary>Builds a caller from an authenticated principal (cookie or API token); null when anonymous.</summary>
    public static Caller? From(ClaimsPrincipal? user)
    {
        if (user?.Identity?.IsAuthenticated != true) return null;
        var id = user.FindFirstValue(ClaimTypes.NameIdentifier);
        if (!Guid.TryParse(id, out var guid)) return null;
        return new Caller(guid, user.Identity.Name ?? "", user.IsInRole(PortalRoles.Admin));
    }

    /// <summary>Whether this caller may see and change something owned by <paramref name="ownerId"/>.</summary>
    public bool CanAccess(Guid ownerId) => IsAdmin || ownerId == UserId;
}

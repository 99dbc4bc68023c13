using Microsoft.AspNetCore.Identity;

namespace VmPortal.Data.Entities;

/// <summary>A portal account (ASP.NET Core Identity user with a Guid key).</summary>
public sealed class PortalUser : IdentityUser<Guid>
{
    /// <summary>Disabled accounts cannot sign in and their API tokens stop working.</summary>
    public bool IsDisabled { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>The two roles of the portal.</summary>
public static class PortalRoles
{
    public const string Admin = "Admin";
    public const string User = "User";
    public static readonly string[] All = [Admin, User];
}

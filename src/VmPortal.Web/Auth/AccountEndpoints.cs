using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Auth;

/// <summary>
/// Cookie sign-in and sign-out. These are plain form posts (with antiforgery tokens) because a Blazor circuit
/// cannot write cookies; the sign-in page is statically rendered and posts here.
/// </summary>
public static class AccountEndpoints
{
    public static void MapAccountEndpoints(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/account").ExcludeFromDescription();
        g.MapPost("/login", Login);
        g.MapPost("/logout", Logout);
    }

    private static async Task<IResult> Login(
        [FromForm] string? userName, [FromForm] string? password, [FromForm] string? returnUrl,
        SignInManager<PortalUser> signIn, UserManager<PortalUser> users, AuditLog audit, HttpContext http)
    {
        var back = SafeReturnUrl(returnUrl);
        string Fail(string code) => $"/account/login?error={code}&returnUrl={Uri.EscapeDataString(back)}";
        if (string.IsNullOrWhiteSpace(userName) || string.IsNullOrEmpty(password)) return Results.LocalRedirect(Fail("missing"));

        var user = await users.FindByNameAsync(userName);
        if (user is null)
        {
            await audit.WriteAsync(null, userName, AuditActions.SignInFailed, "user", null, "unknown user", false);
            return Results.LocalRedirect(Fail("invalid"));
        }
        if (user.IsDisabled)
        {
            await audit.WriteAsync(user.Id, user.UserName!, AuditActions.SignInFailed, "user", user.Id.ToString(), "account disabled", false);
            return Results.LocalRedirect(Fail("disabled"));
        }
        var result = await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: true);
        if (result.Succeeded)
        {
            await audit.WriteAsync(user.Id, user.UserName!, AuditActions.SignIn, "user", user.Id.ToString(),
                $"from {http.Connection.RemoteIpAddress}");
            return Results.LocalRedirect(back);
        }
        await audit.WriteAsync(user.Id, user.UserName!, AuditActions.SignInFailed, "user", user.Id.ToString(),
            result.IsLockedOut ? "locked out" : "wrong password", false);
        return Results.LocalRedirect(Fail(result.IsLockedOut ? "locked" : "invalid"));
    }

    private static async Task<IResult> Logout(SignInManager<PortalUser> signIn, AuditLog audit, HttpContext http)
    {
        var caller = VmPortal.Core.Caller.From(http.User);
        await signIn.SignOutAsync();
        if (caller is not null)
            await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.SignOut, "user", caller.UserId.ToString());
        return Results.LocalRedirect("/account/login");
    }

    /// <summary>Only local paths; never //host or absolute URLs (open redirect).</summary>
    public static string SafeReturnUrl(string? url) =>
        !string.IsNullOrEmpty(url) && url.StartsWith('/') && !url.StartsWith("//") && !url.StartsWith("/\\") ? url : "/";
}

using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using VmPortal.Core.Accounts;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;
using VmPortal.Web.Security;

namespace VmPortal.Web.Auth;

/// <summary>
/// Cookie sign-in and sign-out. These are plain form posts (with antiforgery tokens) because a Blazor circuit
/// cannot write cookies; the sign-in page is statically rendered and posts here. Both check the antiforgery token
/// themselves so that an expired form leads back to the sign-in page with a message instead of a bare error.
/// </summary>
public static class AccountEndpoints
{
    public static void MapAccountEndpoints(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/account").ExcludeFromDescription().DisableAntiforgery();
        g.MapPost("/login", Login).RequireRateLimiting(SecuritySetup.CredentialsPolicy);
        g.MapPost("/logout", Logout);
    }

    private static async Task<IResult> Login(
        [FromForm] string? userName, [FromForm] string? password, [FromForm] string? returnUrl,
        PasswordGate gate, SignInManager<PortalUser> signIn, AuditLog audit, IAntiforgery antiforgery, HttpContext http)
    {
        var back = SafeReturnUrl(returnUrl);
        string Fail(string code) => $"/account/login?error={code}&returnUrl={Uri.EscapeDataString(back)}";
        if (!await antiforgery.IsRequestValidAsync(http)) return Results.Redirect(Fail("expired"));
        if (string.IsNullOrWhiteSpace(userName) || string.IsNullOrEmpty(password)) return Results.Redirect(Fail("missing"));

        var address = http.Connection.RemoteIpAddress?.ToString();
        var check = await gate.CheckAsync(userName.Trim(), password, address, "sign-in form");
        switch (check.Status)
        {
            case PasswordCheckStatus.Throttled:
                return Results.Redirect(Fail("throttled") + "&retryAfter=" + Math.Max(1, (int)Math.Ceiling(check.RetryAfter!.Value.TotalSeconds)));
            case PasswordCheckStatus.Invalid:
                return Results.Redirect(Fail("invalid"));
            case PasswordCheckStatus.Disabled:
                return Results.Redirect(Fail("disabled"));
        }
        var user = check.User!;
        var sid = SessionRegistry.NewSessionId();
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, [new Claim(SessionRegistry.SessionClaim, sid)]);
        await audit.WriteAsync(user.Id, user.UserName!, AuditActions.SignIn, "session", sid, $"sign-in form from {address}");
        return Results.Redirect(back);
    }

    private static async Task<IResult> Logout(SignInManager<PortalUser> signIn, AuditLog audit, SessionRegistry sessions,
        IAntiforgery antiforgery, HttpContext http)
    {
        if (!await antiforgery.IsRequestValidAsync(http))
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad request",
                detail: "The sign-out form expired or did not come from this portal; reload the page and sign out again.");
        var caller = VmPortal.Core.Caller.From(http.User);
        var sid = SessionRegistry.SessionOf(http.User);
        if (sid is not null) sessions.End(sid);
        await signIn.SignOutAsync();
        if (caller is not null)
            await audit.WriteAsync(caller.UserId, caller.UserName, AuditActions.SignOut, "session", sid,
                $"from {http.Connection.RemoteIpAddress}");
        return Results.Redirect("/account/login");
    }

    /// <summary>
    /// Only local paths: starts with a single '/', no "//" or "/\" (another host), no backslashes, control characters
    /// or white space (browsers drop tabs and newlines, so "/\t/evil" would become "//evil"). Anything else is "/".
    /// </summary>
    public static string SafeReturnUrl(string? url)
    {
        if (string.IsNullOrEmpty(url) || url.Length > 2048 || url[0] != '/') return "/";
        if (url.Length > 1 && url[1] is '/' or '\\') return "/";
        foreach (var c in url)
            if (char.IsControl(c) || char.IsWhiteSpace(c) || c == '\\') return "/";
        return url;
    }
}

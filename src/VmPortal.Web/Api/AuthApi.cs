using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Accounts;
using VmPortal.Web.Security;

namespace VmPortal.Web.Api;

/// <summary><c>scopes</c>: see <see cref="TokenScopes"/> (none: all of the owner's rights); <c>rateLimitPerMinute</c>: the token's own limit.</summary>
public sealed record CreateTokenRequest(string? Username, string? Password, string? Name, int? ExpiresInDays,
    List<string>? Scopes = null, int? RateLimitPerMinute = null);
public sealed record CreateTokenResponse(Guid Id, string Name, string Token, DateTimeOffset ExpiresAt, IReadOnlyList<string>? Scopes = null,
    int? RateLimitPerMinute = null);
public sealed record MeResponse(Guid Id, string UserName, IReadOnlyList<string> Roles);

/// <summary><c>/api/auth</c>: personal API tokens for scripts.</summary>
public static class AuthApi
{
    public static RouteGroupBuilder MapAuthApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/auth").WithTags("Auth");
        g.MapPost("/tokens", CreateToken).AllowAnonymous().RequireRateLimiting(SecuritySetup.CredentialsPolicy)
            .WithSummary("Mint a token with user name and password: {username, password, name, expiresInDays, scopes: [vms:read|vms:write|vms:power|console|images|admin], rateLimitPerMinute}");
        g.MapGet("/tokens", ListTokens).RequireAuthorization().WithSummary("The caller's tokens (never the secret)");
        g.MapDelete("/tokens/{id:guid}", RevokeToken).RequireAuthorization().WithSummary("Revoke a token");
        g.MapGet("/me", Me).RequireAuthorization().WithSummary("Who am I");
        return g;
    }

    public static async Task<Results<Created<CreateTokenResponse>, ValidationProblem, ProblemHttpResult>> CreateToken(
        CreateTokenRequest req, PasswordGate gate, ApiTokenService tokens, HttpContext http, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(req.Username)) errors["username"] = ["User name is required."];
        if (string.IsNullOrEmpty(req.Password)) errors["password"] = ["Password is required."];
        if (ApiTokenService.ValidateRequest(req.Name, req.ExpiresInDays, out var field) is { } e) errors[field] = [e];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors, title: "One or more fields are invalid.");

        var check = await gate.CheckAsync(req.Username!.Trim(), req.Password!, http.Connection.RemoteIpAddress?.ToString(), "api token request", ct);
        switch (check.Status)
        {
            case PasswordCheckStatus.Throttled:
                return ApiResults.TooManyRequests(http, check.RetryAfter!.Value, "Too many failed sign-in attempts from this address.");
            case PasswordCheckStatus.Invalid:
            case PasswordCheckStatus.Disabled: // told apart only on the sign-in page, to someone who knew the password
                return ApiResults.Unauthorized("Wrong user name or password.");
        }
        var user = check.User!;
        var isAdmin = await http.RequestServices.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<VmPortal.Data.Entities.PortalUser>>()
            .IsInRoleAsync(user, VmPortal.Data.Entities.PortalRoles.Admin);
        var r = await tokens.CreateAsync(user.Id, user.UserName!, req.Name, req.ExpiresInDays ?? 30, ct, req.Scopes, req.RateLimitPerMinute, isAdmin);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        var t = r.Value!;
        return TypedResults.Created($"/api/auth/tokens/{t.Id}", new CreateTokenResponse(t.Id, t.Name, t.Token, t.ExpiresAt, t.Scopes, t.RateLimitPerMinute));
    }

    public static async Task<Ok<IReadOnlyList<ApiTokenDto>>> ListTokens(ClaimsPrincipal user, ApiTokenService tokens, CancellationToken ct) =>
        TypedResults.Ok(await tokens.ListAsync(user.Caller().UserId, ct));

    public static async Task<Results<NoContent, ProblemHttpResult>> RevokeToken(Guid id, ClaimsPrincipal user, ApiTokenService tokens, CancellationToken ct)
    {
        var r = await tokens.RevokeAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }

    public static Ok<MeResponse> Me(ClaimsPrincipal user)
    {
        var c = user.Caller();
        return TypedResults.Ok(new MeResponse(c.UserId, c.UserName, user.FindAll(ClaimTypes.Role).Select(r => r.Value).ToList()));
    }
}

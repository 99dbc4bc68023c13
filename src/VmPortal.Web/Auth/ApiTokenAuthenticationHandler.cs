using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using VmPortal.Core.Accounts;

namespace VmPortal.Web.Auth;

/// <summary>Authenticates <c>Authorization: Bearer vmp_…</c> personal API tokens.</summary>
public sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiTokenService tokens)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";
    public const string TokenIdClaim = "vmportal:token_id";
    /// <summary>One claim per scope of a scoped token (none: all of the owner's rights).</summary>
    public const string ScopeClaim = "vmportal:scope";
    /// <summary>The token's own requests-per-minute limit, when it has one.</summary>
    public const string RateLimitClaim = "vmportal:rate_limit";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return AuthenticateResult.NoResult();
        var token = header["Bearer ".Length..].Trim();
        var who = await tokens.AuthenticateAsync(token, Context.RequestAborted, Context.Connection.RemoteIpAddress?.ToString());
        if (who is null) return AuthenticateResult.Fail("Invalid, expired or revoked token.");
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, who.UserId.ToString()),
            new(ClaimTypes.Name, who.UserName),
            new(TokenIdClaim, who.TokenId.ToString()),
        };
        claims.AddRange(who.Roles.Select(r => new Claim(ClaimTypes.Role, r)));
        claims.AddRange((who.Scopes ?? []).Select(s => new Claim(ScopeClaim, s)));
        if (who.RateLimitPerMinute is { } rate) claims.Add(new Claim(RateLimitClaim, rate.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}

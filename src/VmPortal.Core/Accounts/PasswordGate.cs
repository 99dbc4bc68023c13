using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Accounts;

public enum PasswordCheckStatus { Ok, Invalid, Disabled, Throttled }

/// <summary>The outcome of a password check; <see cref="RetryAfter"/> is set when throttled.</summary>
public sealed record PasswordCheck(PasswordCheckStatus Status, PortalUser? User, TimeSpan? RetryAfter = null);

/// <summary>
/// The one place a user name and password are checked (sign-in form, <c>POST /api/auth/tokens</c>):
/// throttled by <see cref="LoginThrottle"/>, audited, and the same answer in about the same time whether or not the
/// account exists (an unknown name still costs one password-hash verification). "Disabled" is told only to a
/// caller who knew the password.
/// </summary>
public sealed class PasswordGate(IServiceScopeFactory scopes, LoginThrottle throttle, AuditLog audit)
{
    private static readonly Lazy<string> DummyHash = new(() =>
        new PasswordHasher<PortalUser>().HashPassword(new PortalUser(), Convert.ToBase64String(RandomNumberGenerator.GetBytes(16))));

    /// <param name="channel">"sign-in form" or "api token request", for the audit log.</param>
    public async Task<PasswordCheck> CheckAsync(string userName, string password, string? address, string channel, CancellationToken ct = default)
    {
        if (throttle.RetryAfter(address, userName) is { } wait)
            return new PasswordCheck(PasswordCheckStatus.Throttled, null, wait);

        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByNameAsync(userName);
        bool ok;
        if (user is null)
        {
            // as expensive as checking a real account's password
            users.PasswordHasher.VerifyHashedPassword(new PortalUser(), DummyHash.Value, password);
            ok = false;
        }
        else ok = await users.CheckPasswordAsync(user, password);

        var from = $"from {address ?? "unknown address"}";
        if (!ok)
        {
            var tripped = throttle.RecordFailure(address, userName);
            await audit.WriteAsync(user?.Id, user?.UserName ?? userName, AuditActions.SignInFailed, "user", user?.Id.ToString(),
                $"{channel}; {(user is null ? "unknown user" : "wrong password")} {from}", false, ct);
            if (tripped)
                await audit.WriteAsync(user?.Id, user?.UserName ?? userName, AuditActions.SignInThrottled, "user", user?.Id.ToString(),
                    $"{channel}; too many failed passwords {from}: further attempts are refused for up to {throttle.Options.Window.TotalMinutes:0.#} minutes",
                    false, ct);
            return new PasswordCheck(PasswordCheckStatus.Invalid, null);
        }
        throttle.RecordSuccess(address, userName);
        if (user!.IsDisabled)
        {
            await audit.WriteAsync(user.Id, user.UserName!, AuditActions.SignInFailed, "user", user.Id.ToString(), $"{channel}; account disabled {from}", false, ct);
            return new PasswordCheck(PasswordCheckStatus.Disabled, user);
        }
        return new PasswordCheck(PasswordCheckStatus.Ok, user);
    }
}

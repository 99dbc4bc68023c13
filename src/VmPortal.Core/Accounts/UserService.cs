using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Accounts;

public sealed record UserDto(Guid Id, string UserName, string? Email, string Role, bool IsDisabled, bool IsLockedOut,
    DateTimeOffset CreatedAt, int VmCount);

/// <summary>
/// User administration (admin pages and the seeder). Each call runs in its own DI scope so that Identity's
/// UserManager never keeps a long-lived DbContext inside a Blazor circuit.
/// </summary>
public sealed class UserService(IServiceScopeFactory scopes, AuditLog audit, TimeProvider clock, LoginThrottle throttle)
{
    public async Task<IReadOnlyList<UserDto>> ListAsync(CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<VmPortal.Data.PortalDbContext>();
        var now = clock.GetUtcNow();
        var adminRoleId = await db.Roles.Where(r => r.Name == PortalRoles.Admin).Select(r => r.Id).FirstOrDefaultAsync(ct);
        var rows = await db.Users.AsNoTracking().OrderBy(u => u.UserName)
            .Select(u => new
            {
                u.Id, u.UserName, u.Email, u.IsDisabled, u.LockoutEnd, u.CreatedAt,
                IsAdmin = db.UserRoles.Any(ur => ur.UserId == u.Id && ur.RoleId == adminRoleId),
                Vms = db.VirtualMachines.Count(v => v.OwnerId == u.Id),
            }).ToListAsync(ct);
        return rows.Select(u => new UserDto(u.Id, u.UserName ?? "", u.Email, u.IsAdmin ? PortalRoles.Admin : PortalRoles.User,
            u.IsDisabled, !u.IsDisabled && (u.LockoutEnd > now || throttle.IsThrottled(u.UserName ?? "")), u.CreatedAt, u.Vms)).ToList();
    }

    public static string? UserNameError(string? userName)
    {
        if (string.IsNullOrWhiteSpace(userName)) return "User name is required.";
        if (userName.Length > 64) return "User name must be at most 64 characters.";
        if (!userName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '@')) return "User name may contain letters, digits, '-', '_', '.' and '@'.";
        return null;
    }

    /// <summary>Null when <paramref name="email"/> is empty (no address) or a plain address like name@example.org.</summary>
    public static string? EmailError(string? email)
    {
        if (string.IsNullOrWhiteSpace(email)) return null;
        const string message = "E-mail must be an address like name@example.org.";
        var e = email.Trim();
        if (e.Length > 254 || e.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '<' or '>' or '(' or ')' or ',' or ';' or '"')) return message;
        var at = e.LastIndexOf('@');
        if (at < 1 || at == e.Length - 1 || e.IndexOf('@') != at) return message;
        var domain = e[(at + 1)..];
        if (!domain.Contains('.') || domain.StartsWith('.') || domain.EndsWith('.') || domain.Contains("..")) return message;
        return System.Net.Mail.MailAddress.TryCreate(e, out var parsed) && parsed.Address == e ? null : message;
    }

    public async Task<OpResult<UserDto>> CreateAsync(Caller admin, string? userName, string? password, string role, string? email = null, CancellationToken ct = default)
    {
        if (UserNameError(userName) is { } ue) return OpResult<UserDto>.Invalid("userName", ue);
        if (EmailError(email) is { } ee) return OpResult<UserDto>.Invalid("email", ee);
        if (!PortalRoles.All.Contains(role)) return OpResult<UserDto>.Invalid("role", "Role must be Admin or User.");
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        if (await users.FindByNameAsync(userName!) is not null) return OpResult<UserDto>.Conflict($"User '{userName}' already exists.");
        var user = new PortalUser { UserName = userName, Email = string.IsNullOrWhiteSpace(email) ? null : email.Trim(), CreatedAt = clock.GetUtcNow(), LockoutEnabled = false };
        var result = await users.CreateAsync(user, password ?? "");
        if (!result.Succeeded) return OpResult<UserDto>.Invalid(IdentityErrors(result, "password"));
        await users.AddToRoleAsync(user, role);
        await audit.WriteAsync(admin.UserId, admin.UserName, AuditActions.UserCreate, "user", user.Id.ToString(), $"userName={userName} role={role}", ct: ct);
        return OpResult<UserDto>.Ok(new UserDto(user.Id, user.UserName!, user.Email, role, false, false, user.CreatedAt, 0));
    }

    public async Task<OpResult<bool>> SetDisabledAsync(Caller admin, Guid userId, bool disabled, CancellationToken ct = default)
    {
        if (userId == admin.UserId && disabled) return OpResult<bool>.Invalid("userId", "You cannot disable your own account.");
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null) return OpResult<bool>.NotFound("User not found.");
        user.IsDisabled = disabled;
        await users.UpdateAsync(user);
        if (!disabled) await users.SetLockoutEndDateAsync(user, null);
        await users.UpdateSecurityStampAsync(user); // ends existing cookie sessions
        await audit.WriteAsync(admin.UserId, admin.UserName, disabled ? AuditActions.UserDisable : AuditActions.UserEnable, "user", user.Id.ToString(), $"userName={user.UserName}", ct: ct);
        return OpResult<bool>.Ok(true);
    }

    public async Task<OpResult<bool>> ResetPasswordAsync(Caller admin, Guid userId, string? newPassword, CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null) return OpResult<bool>.NotFound("User not found.");
        var token = await users.GeneratePasswordResetTokenAsync(user);
        var result = await users.ResetPasswordAsync(user, token, newPassword ?? "");
        if (!result.Succeeded) return OpResult<bool>.Invalid(IdentityErrors(result, "password"));
        await users.SetLockoutEndDateAsync(user, null);
        await users.ResetAccessFailedCountAsync(user);
        throttle.Clear(user.UserName ?? "");
        await audit.WriteAsync(admin.UserId, admin.UserName, AuditActions.UserResetPassword, "user", user.Id.ToString(), $"userName={user.UserName}", ct: ct);
        return OpResult<bool>.Ok(true);
    }

    public async Task<OpResult<bool>> SetRoleAsync(Caller admin, Guid userId, string role, CancellationToken ct = default)
    {
        if (!PortalRoles.All.Contains(role)) return OpResult<bool>.Invalid("role", "Role must be Admin or User.");
        if (userId == admin.UserId && role != PortalRoles.Admin) return OpResult<bool>.Invalid("role", "You cannot remove your own admin role.");
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        var user = await users.FindByIdAsync(userId.ToString());
        if (user is null) return OpResult<bool>.NotFound("User not found.");
        var current = await users.GetRolesAsync(user);
        await users.RemoveFromRolesAsync(user, current);
        await users.AddToRoleAsync(user, role);
        await users.UpdateSecurityStampAsync(user);
        await audit.WriteAsync(admin.UserId, admin.UserName, AuditActions.UserUpdate, "user", user.Id.ToString(), $"userName={user.UserName} role={role}", ct: ct);
        return OpResult<bool>.Ok(true);
    }

    /// <summary>Creates the roles, and the <c>admin</c> account when no admin exists. Returns the generated password, if any.</summary>
    public async Task<(bool Created, string? GeneratedPassword)> SeedAsync(string? adminPassword, CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var roles = scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole<Guid>>>();
        foreach (var r in PortalRoles.All)
            if (!await roles.RoleExistsAsync(r)) await roles.CreateAsync(new IdentityRole<Guid>(r));
        var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
        if (await users.FindByNameAsync("admin") is not null) return (false, null);
        if ((await users.GetUsersInRoleAsync(PortalRoles.Admin)).Count > 0) return (false, null);
        var generated = string.IsNullOrEmpty(adminPassword);
        var password = generated ? GeneratePassword() : adminPassword!;
        var admin = new PortalUser { UserName = "admin", CreatedAt = clock.GetUtcNow(), LockoutEnabled = true };
        var result = await users.CreateAsync(admin, password);
        if (!result.Succeeded)
            throw new InvalidOperationException("Cannot create the admin account: " + string.Join(" ", result.Errors.Select(e => e.Description)));
        await users.AddToRoleAsync(admin, PortalRoles.Admin);
        await audit.WriteAsync(null, "system", AuditActions.UserCreate, "user", admin.Id.ToString(), "userName=admin role=Admin (first start)", ct: ct);
        return (true, generated ? password : null);
    }

    public static string GeneratePassword()
    {
        const string alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        var chars = new char[20];
        for (var i = 0; i < chars.Length; i++) chars[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        return new string(chars);
    }

    private static Dictionary<string, string[]> IdentityErrors(IdentityResult result, string field) =>
        new() { [field] = result.Errors.Select(e => e.Description).ToArray() };
}

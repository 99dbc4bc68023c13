using Microsoft.EntityFrameworkCore;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Audit;

/// <summary>Action names written to the audit log.</summary>
public static class AuditActions
{
    public const string VmCreate = "vm.create";
    public const string VmUpdate = "vm.update";
    public const string VmDelete = "vm.delete";
    public const string SignIn = "user.sign-in";
    public const string SignInFailed = "user.sign-in-failed";
    public const string SignInThrottled = "user.sign-in-throttled";
    public const string SignOut = "user.sign-out";
    public const string UserCreate = "user.create";
    public const string UserUpdate = "user.update";
    public const string UserDisable = "user.disable";
    public const string UserEnable = "user.enable";
    public const string UserResetPassword = "user.reset-password";
    public const string TokenCreate = "token.create";
    public const string TokenRevoke = "token.revoke";
    public const string ImageUpload = "image.upload";
    public const string ImageDelete = "image.delete";
    /// <summary>Power actions: "vm." + the action (start, stop, reset, pause, resume, ctrl-alt-del, shutdown …).</summary>
    public static string VmPower(string action) => "vm." + action;
    /// <summary>REST console input (counts only, never the text).</summary>
    public const string ConsoleType = "console.type";
    public const string ConsoleTypeCancel = "console.type.cancel";
    public const string ConsoleKeys = "console.keys";
    /// <summary>A console hub session's input, written when it ends (counts only).</summary>
    public const string ConsoleInput = "console.input";
    /// <summary>The host stopped a VM (portal shut down) or found it dead after a crash.</summary>
    public const string VmHostStopped = "vm.host-stopped";
    /// <summary>At portal start: files an interrupted snapshot operation left behind were removed (details name them).</summary>
    public const string SnapshotOrphansRemoved = "vm.snapshot-orphans-removed";
}

/// <summary>Records audit events and reads them back (admins only, enforced by callers).</summary>
public sealed class AuditLog(IDbContextFactory<PortalDbContext> dbFactory, TimeProvider clock)
{
    /// <summary>Adds an event to <paramref name="db"/> so it is saved in the same transaction as the change.</summary>
    public void Add(PortalDbContext db, Guid? userId, string userName, string action, string targetType, string? targetId,
        string details = "", bool success = true)
    {
        db.AuditEvents.Add(new AuditEvent
        {
            At = clock.GetUtcNow(),
            UserId = userId,
            UserName = Truncate(userName, 256),
            Action = action,
            TargetType = targetType,
            TargetId = targetId,
            Details = Truncate(details, 2000),
            Success = success,
        });
    }

    /// <summary>Writes one event on its own.</summary>
    public async Task WriteAsync(Guid? userId, string userName, string action, string targetType, string? targetId,
        string details = "", bool success = true, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        Add(db, userId, userName, action, targetType, targetId, details, success);
        await db.SaveChangesAsync(ct);
    }

    public async Task<IReadOnlyList<AuditEvent>> RecentAsync(int take = 500, string? search = null, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = db.AuditEvents.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(search))
        {
            var s = $"%{search.Trim()}%";
            q = q.Where(e => EF.Functions.ILike(e.UserName, s) || EF.Functions.ILike(e.Action, s) || EF.Functions.ILike(e.Details, s));
        }
        return await q.OrderByDescending(e => e.Id).Take(Math.Clamp(take, 1, 5000)).ToListAsync(ct);
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max];
}

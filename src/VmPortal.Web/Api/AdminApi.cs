using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Accounts;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

public sealed record CreateUserRequest(string? UserName, string? Password, string? Role, string? Email);
public sealed record AuditEventDto(long Id, DateTimeOffset At, Guid? UserId, string UserName, string Action, string TargetType, string? TargetId, string Details, bool Success);

/// <summary><c>/api/users</c> and <c>/api/audit</c>: administration (role Admin).</summary>
public static class AdminApi
{
    public static void MapAdminApi(this IEndpointRouteBuilder app)
    {
        var users = app.MapGroup("/api/users").WithTags("Users").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin));
        users.MapGet("/", ListUsers).WithSummary("List users");
        users.MapPost("/", CreateUser).WithSummary("Create a user {userName, password, role: Admin|User, email}");

        var audit = app.MapGroup("/api/audit").WithTags("Audit").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin));
        audit.MapGet("/", ListAudit).WithSummary("Recent audit events, newest first");
    }

    public static async Task<Ok<IReadOnlyList<UserDto>>> ListUsers(UserService svc, CancellationToken ct) =>
        TypedResults.Ok(await svc.ListAsync(ct));

    public static async Task<Results<Created<UserDto>, ValidationProblem, ProblemHttpResult>> CreateUser(
        CreateUserRequest req, ClaimsPrincipal user, UserService svc, CancellationToken ct)
    {
        var r = await svc.CreateAsync(user.Caller(), req.UserName, req.Password, req.Role ?? PortalRoles.User, req.Email, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        return TypedResults.Created($"/api/users/{r.Value!.Id}", r.Value);
    }

    public static async Task<Ok<List<AuditEventDto>>> ListAudit(AuditLog log, int? take, string? search, CancellationToken ct) =>
        TypedResults.Ok((await log.RecentAsync(take ?? 200, search, ct))
            .Select(e => new AuditEventDto(e.Id, e.At, e.UserId, e.UserName, e.Action, e.TargetType, e.TargetId, e.Details, e.Success)).ToList());
}

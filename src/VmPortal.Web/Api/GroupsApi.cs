using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Groups;
using VmPortal.Core.Quotas;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>Body of <c>POST /api/groups/{id}/members</c>.</summary>
public sealed record GroupMemberRequest(Guid? UserId);

/// <summary>
/// <c>/api/groups</c>: user groups. Admins create, rename and delete groups, add and remove members, and set a quota
/// the members share (<c>GET/PUT /api/groups/{id}/quota</c>, the same body as a user's quota). Users list the groups
/// they belong to. Templates name the groups allowed to use them (<c>groupIds</c>; none = everyone).
/// </summary>
public static class GroupsApi
{
    public static RouteGroupBuilder MapGroupsApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/groups").WithTags("Groups").RequireAuthorization();
        g.MapGet("/", List).WithSummary("Groups with their members and quota (admins: all; users: their own)");
        g.MapGet("/{id:guid}", Get).WithName("GetGroup").WithSummary("One group");
        var admin = g.MapGroup("").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin));
        admin.MapPost("/", Create).WithSummary("Create a group (Admin): {name, description}");
        admin.MapPut("/{id:guid}", Update).WithSummary("Rename a group (Admin)");
        admin.MapDelete("/{id:guid}", Delete).WithSummary("Delete a group (Admin); templates restricted to it only lose that group");
        admin.MapPost("/{id:guid}/members", AddMember).WithSummary("Add a user to the group (Admin): {userId}");
        admin.MapDelete("/{id:guid}/members/{userId:guid}", RemoveMember).WithSummary("Remove a user from the group (Admin)");
        g.MapGet("/{id:guid}/quota", GetQuota).WithSummary("The group's quota and its members' usage (admins, members)");
        admin.MapPut("/{id:guid}/quota", SetQuota).WithSummary("Set the group's quota (Admin): {maxVms, maxRunningVms, maxMemoryMiB, maxDiskGiB}, null = no limit");
        return g;
    }

    public static async Task<Ok<IReadOnlyList<GroupDto>>> List(ClaimsPrincipal user, GroupService groups, CancellationToken ct) =>
        TypedResults.Ok(await groups.ListAsync(user.Caller(), ct));

    public static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, GroupService groups, CancellationToken ct) =>
        await groups.GetAsync(user.Caller(), id, ct) is { } g ? TypedResults.Ok(g) : ApiResults.NotFound($"Group {id} not found.");

    public static async Task<Results<CreatedAtRoute<GroupDto>, ValidationProblem, ProblemHttpResult>> Create(GroupSpec spec, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        var r = await groups.CreateAsync(user.Caller(), spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.CreatedAtRoute(r.Value, "GetGroup", new { id = r.Value!.Id }) : ApiResults.Failure(r);
    }

    public static async Task<Results<Ok<GroupDto>, ValidationProblem, ProblemHttpResult>> Update(Guid id, GroupSpec spec, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        var r = await groups.UpdateAsync(user.Caller(), id, spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(Guid id, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        var r = await groups.DeleteAsync(user.Caller(), id, ct);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }

    public static async Task<Results<Ok<GroupDto>, ValidationProblem, ProblemHttpResult>> AddMember(Guid id, GroupMemberRequest body, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        if (body.UserId is not { } userId)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["userId"] = ["userId is required."] });
        var r = await groups.AddMemberAsync(user.Caller(), id, userId, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<Ok<GroupDto>, ProblemHttpResult>> RemoveMember(Guid id, Guid userId, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        var r = await groups.RemoveMemberAsync(user.Caller(), id, userId, ct);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }

    public static async Task<Results<Ok<GroupQuotaView>, ProblemHttpResult>> GetQuota(Guid id, ClaimsPrincipal user, GroupService groups, CancellationToken ct) =>
        await groups.GetQuotaAsync(user.Caller(), id, ct) is { } q ? TypedResults.Ok(q) : ApiResults.NotFound($"Group {id} not found.");

    public static async Task<Results<Ok<GroupQuotaView>, ValidationProblem, ProblemHttpResult>> SetQuota(Guid id, QuotaDto quota, ClaimsPrincipal user, GroupService groups, CancellationToken ct)
    {
        var r = await groups.SetQuotaAsync(user.Caller(), id, quota, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        return r.IsOk ? TypedResults.Ok(r.Value!) : ApiResults.Failure(r);
    }
}

using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using VmPortal.Core.Vms;

namespace VmPortal.Web.Api;

/// <summary><c>/api/vms</c>: the VM inventory. Callers see their own VMs; admins see all (filter with <c>ownerId</c>).</summary>
public static class VmsApi
{
    private static readonly string[] SortKeys =
        [VmSortKeys.Name, VmSortKeys.State, VmSortKeys.Owner, VmSortKeys.Memory, VmSortKeys.Created, VmSortKeys.Updated];

    public static RouteGroupBuilder MapVmsApi(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/vms").WithTags("VMs").RequireAuthorization();
        g.MapGet("/", List).WithSummary("List VMs (paged; filter by name substring, owner id, free-text search; sort by name|state|owner|memoryMiB|createdAt|updatedAt, desc=true)");
        g.MapGet("/{id:guid}", Get).WithName("GetVm").WithSummary("Get one VM (ETag = version)");
        g.MapPost("/", Create).WithSummary("Create a VM");
        g.MapPut("/{id:guid}", Update).WithSummary("Replace a VM's definition; needs `version` in the body or If-Match");
        g.MapDelete("/{id:guid}", Delete).WithSummary("Delete a stopped VM (If-Match optional)");
        return g;
    }

    public static async Task<Results<Ok<PagedResult<VmDto>>, ValidationProblem>> List(
        ClaimsPrincipal user, VmService vms, string? name, Guid? ownerId, int? page, int? pageSize,
        string? search, string? sort, bool? desc, CancellationToken ct)
    {
        if (page is < 1 || pageSize is < 1 or > VmService.MaxPageSize)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["page"] = [$"page must be >= 1 and pageSize between 1 and {VmService.MaxPageSize}."],
            });
        if (!VmService.PageInRange(page ?? 1, pageSize ?? 50))
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["page"] = [$"page is beyond the last possible page for pageSize {pageSize ?? 50} (at most {int.MaxValue / (long)(pageSize ?? 50) + 1})."],
            });
        if (sort is not null && !SortKeys.Contains(sort))
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["sort"] = [$"sort must be one of: {string.Join(", ", SortKeys)}."],
            });
        var result = await vms.ListAsync(user.Caller(),
            new VmQuery(name, ownerId, page ?? 1, pageSize ?? 50, search, sort, desc ?? false), ct);
        return TypedResults.Ok(result);
    }

    public static async Task<Results<Ok<VmDto>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, VmService vms, HttpContext http, CancellationToken ct)
    {
        var vm = await vms.GetAsync(user.Caller(), id, ct);
        if (vm is null) return ApiResults.NotFound($"VM {id} not found.");
        http.Response.Headers.ETag = ApiResults.ETag(vm.Version);
        return TypedResults.Ok(vm);
    }

    public static async Task<Results<CreatedAtRoute<VmDto>, Accepted<Core.Tasks.TaskDto>, ValidationProblem, ProblemHttpResult>> Create(
        VmSpec spec, ClaimsPrincipal user, VmService vms, HttpContext http, CancellationToken ct)
    {
        // Prefer: respond-async → 202 + Location of a task whose result is the new VM
        if (TasksApi.WantsAsync(http.Request)) return await VmCreateTask.StartAsync(http, user, spec);
        var r = await vms.CreateAsync(user.Caller(), spec, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        http.Response.Headers.ETag = ApiResults.ETag(r.Value!.Version);
        return TypedResults.CreatedAtRoute(r.Value, "GetVm", new { id = r.Value.Id });
    }

    public static async Task<Results<Ok<VmDto>, ValidationProblem, ProblemHttpResult>> Update(
        Guid id, VmSpec spec, ClaimsPrincipal user, VmService vms, HttpContext http,
        [FromHeader(Name = "If-Match")] string? ifMatch, CancellationToken ct)
    {
        uint? expected = spec.Version;
        if (ApiResults.TryParseIfMatch(ifMatch, out var v))
        {
            if (expected is { } bodyVersion && bodyVersion != v)
                return ApiResults.Problem(StatusCodes.Status400BadRequest, "Bad request", "If-Match and body version differ.");
            expected = v;
        }
        var r = await vms.UpdateAsync(user.Caller(), id, spec, expected, ct);
        if (r.Status == Core.OpStatus.Invalid) return ApiResults.Invalid(r);
        if (!r.IsOk) return ApiResults.Failure(r);
        http.Response.Headers.ETag = ApiResults.ETag(r.Value!.Version);
        return TypedResults.Ok(r.Value);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        Guid id, ClaimsPrincipal user, VmService vms, VmPortal.Web.Runtime.VmRuntime runtime,
        [FromHeader(Name = "If-Match")] string? ifMatch, CancellationToken ct)
    {
        uint? expected = ApiResults.TryParseIfMatch(ifMatch, out var v) ? v : null;
        var r = await vms.DeleteAsync(user.Caller(), id, expected, ct);
        if (r.IsOk) await runtime.ForgetAsync(id);
        return r.IsOk ? TypedResults.NoContent() : ApiResults.Failure(r);
    }
}

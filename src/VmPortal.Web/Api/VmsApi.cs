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
        g.MapPost("/", Create).WithSummary("Create a VM, or provision one from a template (a task: 202 + Location; Prefer: wait=N holds the answer: 201)")
            .Produces<Core.Tasks.TaskDto>(StatusCodes.Status202Accepted).Produces<VmDto>(StatusCodes.Status201Created)
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
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

    /// <summary>
    /// Creates a VM (or provisions one from a template with <c>templateId</c>) as a task: <c>vm.provision</c> with a
    /// template, else <c>vm.create</c>. 202 + <c>Location: /api/tasks/{id}</c> (the task's result is the VM); with
    /// <c>Prefer: wait=N</c> the held answer is 201 + <c>Location</c> of the VM + <c>ETag</c>, or 400 with field
    /// errors, 404 (template), 409 (name taken, "Quota exceeded").
    /// </summary>
    public static async Task<IResult> Create(VmSpec spec, ClaimsPrincipal user, VmService vms, HttpContext http)
    {
        var caller = user.Caller();
        var type = spec.TemplateId is null ? "vm.create" : "vm.provision";
        return await TaskAnswer.RunAsync(http, type, new Core.Tasks.TaskTarget("vm", null, spec.Name ?? ""), async ctx =>
        {
            ctx.Step(spec.TemplateId is { } t ? $"provisioning '{spec.Name}' from template {t}" : $"creating '{spec.Name}'");
            var r = await vms.CreateAsync(caller, spec, ctx.CancellationToken);
            if (r.Status == Core.OpStatus.Invalid) throw AnswerException.From(ApiResults.Invalid(r));
            if (!r.IsOk) throw AnswerException.From(ApiResults.Failure(r));
            ctx.Step($"created {r.Value!.Id}");
            return r.Value;
        }, result =>
        {
            var vm = (VmDto)result!;
            http.Response.Headers.ETag = ApiResults.ETag(vm.Version);
            return TypedResults.CreatedAtRoute(vm, "GetVm", new { id = vm.Id });
        });
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

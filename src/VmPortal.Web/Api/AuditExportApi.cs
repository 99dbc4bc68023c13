using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core.Audit;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Api;

/// <summary>
/// <c>GET /api/audit/export?format=csv|json&amp;action=vm.*&amp;user=&amp;targetId=&amp;from=&amp;to=&amp;success=&amp;search=&amp;take=</c>
/// (Admin): the audit log filtered, oldest first; CSV as an attachment (<c>audit-YYYYMMDD-HHMMSS.csv</c>).
/// </summary>
public static class AuditExportApi
{
    public static void MapAuditExportApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/audit/export", Export).WithTags("Audit").RequireAuthorization(p => p.RequireRole(PortalRoles.Admin))
            .WithSummary("The audit log with filters (action and user: exact or prefix*, targetId, from/to ISO 8601, success, search; take ≤ 100000), as CSV (default) or JSON, oldest first")
            .Produces<string>(200, "text/csv");
    }

    public static async Task<Results<FileContentHttpResult, Ok<List<AuditEventDto>>, ValidationProblem>> Export(
        AuditExport export, TimeProvider clock, string? format, string? action, string? user, string? targetId,
        DateTimeOffset? from, DateTimeOffset? to, bool? success, string? search, int? take, CancellationToken ct)
    {
        format ??= "csv";
        if (format is not ("csv" or "json"))
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["format"] = ["format must be csv or json."] });
        if (take is < 1 or > AuditExport.MaxRows)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["take"] = [$"take must be from 1 to {AuditExport.MaxRows}."] });
        if (from is { } f && to is { } t && t <= f)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["to"] = ["to must be after from."] });
        var rows = await export.QueryAsync(new AuditFilter(action, user, targetId, from, to, success, search, take ?? 10_000), ct);
        if (format == "json")
            return TypedResults.Ok(rows.Select(e => new AuditEventDto(e.Id, e.At, e.UserId, e.UserName, e.Action, e.TargetType, e.TargetId, e.Details, e.Success)).ToList());
        var bytes = System.Text.Encoding.UTF8.GetBytes(AuditExport.ToCsv(rows));
        return TypedResults.File(bytes, "text/csv; charset=utf-8", $"audit-{clock.GetUtcNow():yyyyMMdd-HHmmss}.csv");
    }
}

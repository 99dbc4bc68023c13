using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Audit;

/// <summary>Filters of the audit export: each is optional; text filters are case-insensitive (action and user: exact or prefix with a trailing <c>*</c>).</summary>
public sealed record AuditFilter(string? Action = null, string? User = null, string? TargetId = null, DateTimeOffset? From = null,
    DateTimeOffset? To = null, bool? Success = null, string? Search = null, int Take = 10_000);

/// <summary>
/// The audit log as CSV (RFC 4180: comma-separated, fields quoted when needed, CRLF line ends), oldest first, for
/// spreadsheets and archives. Cells that a spreadsheet would run as a formula (starting with <c>= + - @</c>, tab or CR)
/// get a leading apostrophe, so an attacker-chosen user name or VM name cannot become a formula.
/// </summary>
public sealed class AuditExport(IDbContextFactory<PortalDbContext> dbFactory)
{
    public const int MaxRows = 100_000;
    public const string Header = "id,at,user,userId,action,targetType,targetId,success,details";

    public async Task<IReadOnlyList<AuditEvent>> QueryAsync(AuditFilter f, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = db.AuditEvents.AsNoTracking();
        if (!string.IsNullOrWhiteSpace(f.Action)) q = q.Where(e => EF.Functions.ILike(e.Action, Pattern(f.Action), "\\"));
        if (!string.IsNullOrWhiteSpace(f.User)) q = q.Where(e => EF.Functions.ILike(e.UserName, Pattern(f.User), "\\"));
        if (!string.IsNullOrWhiteSpace(f.TargetId)) q = q.Where(e => e.TargetId == f.TargetId);
        if (f.From is { } from) q = q.Where(e => e.At >= from);
        if (f.To is { } to) q = q.Where(e => e.At < to);
        if (f.Success is { } ok) q = q.Where(e => e.Success == ok);
        if (!string.IsNullOrWhiteSpace(f.Search))
        {
            var s = "%" + Escape(f.Search.Trim()) + "%";
            q = q.Where(e => EF.Functions.ILike(e.UserName, s, "\\") || EF.Functions.ILike(e.Action, s, "\\") || EF.Functions.ILike(e.Details, s, "\\"));
        }
        // the newest Take rows, written oldest first
        var rows = await q.OrderByDescending(e => e.Id).Take(Math.Clamp(f.Take, 1, MaxRows)).ToListAsync(ct);
        rows.Reverse();
        return rows;
    }

    public static string ToCsv(IEnumerable<AuditEvent> events)
    {
        var sb = new StringBuilder(Header).Append("\r\n");
        foreach (var e in events)
        {
            sb.Append(e.Id.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(e.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)).Append(',')
              .Append(Cell(e.UserName)).Append(',')
              .Append(e.UserId?.ToString() ?? "").Append(',')
              .Append(Cell(e.Action)).Append(',')
              .Append(Cell(e.TargetType)).Append(',')
              .Append(Cell(e.TargetId ?? "")).Append(',')
              .Append(e.Success ? "true" : "false").Append(',')
              .Append(Cell(e.Details)).Append("\r\n");
        }
        return sb.ToString();
    }

    /// <summary>One CSV field: formula-looking text defused, quoted when it holds a comma, quote or line break.</summary>
    public static string Cell(string value)
    {
        if (value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r') value = "'" + value;
        return value.IndexOfAny([',', '"', '\r', '\n']) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }

    private static string Pattern(string s)
    {
        s = s.Trim();
        return s.EndsWith('*') ? Escape(s[..^1]) + "%" : Escape(s);
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");
}

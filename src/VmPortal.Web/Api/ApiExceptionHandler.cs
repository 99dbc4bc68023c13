using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

namespace VmPortal.Web.Api;

/// <summary>
/// Caller mistakes under <c>/api</c> that the framework reports as <see cref="BadHttpRequestException"/> (malformed
/// JSON, a wrong type, an unknown enum value, a bad query value, a truncated body), and requests the client aborted: 400 problem details with
/// <c>errors: { "&lt;field&gt;": ["…accepted values…"] }</c>, logged at information level without a stack trace.
/// </summary>
public sealed partial class ApiExceptionHandler(ILogger<ApiExceptionHandler> log, IProblemDetailsService problems,
    VmPortal.Web.Security.CallerMistakeLog limit) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (http.RequestAborted.IsCancellationRequested && exception is OperationCanceledException or IOException)
        {
            // the client went away (an aborted upload): its mistake, not the portal's
            if (limit.ShouldLog(http.Connection.RemoteIpAddress?.ToString(), out int left))
                log.LogInformation("Request {Method} {Path} from {Address} aborted by the client: {Message}{Suppressed}", http.Request.Method,
                    http.Request.Path, http.Connection.RemoteIpAddress, exception.Message, Suppressed(left));
            return true;
        }
        if (exception is not BadHttpRequestException bad) return false;
        if (limit.ShouldLog(http.Connection.RemoteIpAddress?.ToString(), out int suppressed))
            log.LogInformation("Bad request {Method} {Path} from {Address}: {Message}{Suppressed}", http.Request.Method, http.Request.Path,
                http.Connection.RemoteIpAddress, bad.InnerException?.Message ?? bad.Message, Suppressed(suppressed));
        if (http.Response.HasStarted || http.RequestAborted.IsCancellationRequested) return true;
        http.Response.StatusCode = bad.StatusCode;
        var (field, message) = Describe(bad);
        var details = new Microsoft.AspNetCore.Mvc.ProblemDetails
        {
            Status = bad.StatusCode,
            Title = bad.StatusCode == 400 ? "One or more fields are invalid." : "Bad request",
            Detail = field is null ? message : $"{field}: {message}",
        };
        if (field is not null) details.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [message] };
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = details, Exception = null });
    }

    internal static string Suppressed(int n) => n > 0 ? $" ({n} similar lines from this address left out)" : "";

    /// <summary>The field (JSON path without "$.", camelCase as sent) and a message naming what is accepted.</summary>
    public static (string? Field, string Message) Describe(BadHttpRequestException bad)
    {
        if (bad.InnerException is JsonException je)
        {
            var field = je.Path is { Length: > 0 } p ? p.TrimStart('$').TrimStart('.') : null;
            if (string.IsNullOrEmpty(field)) field = null;
            var target = TargetType(je.Message);
            string message;
            if (target is { IsEnum: true })
                message = "Unknown value. Accepted values: " + string.Join(", ", Enum.GetNames(target).Select(JsonNamingPolicy.CamelCase.ConvertName)) + ".";
            else if (target is not null && Type.GetTypeCode(target) is TypeCode.Int32 or TypeCode.Int64 or TypeCode.UInt32 or TypeCode.Int16)
                message = "Must be a whole number.";
            else if (target == typeof(bool)) message = "Must be true or false.";
            else if (target == typeof(string)) message = "Must be a string.";
            else if (target == typeof(Guid)) message = "Must be a UUID.";
            else if (target is not null && Type.GetTypeCode(target) is TypeCode.Double or TypeCode.Single or TypeCode.Decimal) message = "Must be a number.";
            else if (target is not null) message = $"Must be a {(target.IsArray || target.IsGenericType ? "list" : "JSON object")}.";
            else message = "Malformed JSON: " + FirstSentence(je.Message);
            return (field, message);
        }
        var m = ParameterRegex().Match(bad.Message);
        if (m.Success) return (m.Groups["name"].Value, $"Invalid value \"{Truncate(m.Groups["value"].Value)}\".");
        return (null, bad.Message);
    }

    private static Type? TargetType(string message)
    {
        var m = ConvertedToRegex().Match(message);
        if (!m.Success) return null;
        var name = m.Groups["type"].Value;
        var inner = InnerTypeRegex().Match(name); // List`1[[X, Assembly…]] or Nullable`1[[X, …]]
        var typeName = inner.Success ? inner.Groups["type"].Value : name;
        var t = Type.GetType(typeName) ?? AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(typeName)).FirstOrDefault(x => x is not null);
        if (t is not null && inner.Success && !name.StartsWith("System.Nullable", StringComparison.Ordinal) && !t.IsEnum) return typeof(List<>).MakeGenericType(t);
        return t;
    }

    private static string FirstSentence(string s) => s.Split(". Path:")[0].TrimEnd('.') + ".";
    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "…" : s;

    [GeneratedRegex(@"converted to (?<type>[^\s]+?)\. Path", RegexOptions.CultureInvariant)]
    private static partial Regex ConvertedToRegex();
    [GeneratedRegex(@"`1\[\[?(?<type>[^,\]\[]+)", RegexOptions.CultureInvariant)]
    private static partial Regex InnerTypeRegex();
    [GeneratedRegex("parameter \"(?:[^\"]* )?(?<name>\\w+)\" from \"(?<value>.*)\"", RegexOptions.CultureInvariant)]
    private static partial Regex ParameterRegex();
}

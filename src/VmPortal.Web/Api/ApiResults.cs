using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using VmPortal.Core;

namespace VmPortal.Web.Api;

/// <summary>Maps use-case outcomes to RFC 9457 problem details.</summary>
internal static class ApiResults
{
    public static ProblemHttpResult Problem(int status, string title, string? detail = null) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);

    public static ProblemHttpResult NotFound(string? detail) => Problem(StatusCodes.Status404NotFound, "Not found", detail);
    public static ProblemHttpResult Conflict(string? detail) => Problem(StatusCodes.Status409Conflict, "Conflict", detail);
    /// <summary>409 with the title "Quota exceeded" (scripts tell it from other conflicts by the title).</summary>
    public static ProblemHttpResult QuotaExceeded(string? detail) => Problem(StatusCodes.Status409Conflict, "Quota exceeded", detail);
    public static ProblemHttpResult Unauthorized(string? detail) => Problem(StatusCodes.Status401Unauthorized, "Unauthorized", detail);

    /// <summary>429 with <c>Retry-After</c> (whole seconds, at least 1).</summary>
    public static ProblemHttpResult TooManyRequests(HttpContext http, TimeSpan retryAfter, string detail)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
            detail: $"{detail} Try again in {seconds} s.", extensions: new Dictionary<string, object?> { ["retryAfterSeconds"] = seconds });
    }

    public static ValidationProblem Invalid<T>(OpResult<T> r) =>
        TypedResults.ValidationProblem(r.Errors ?? new Dictionary<string, string[]>(), title: "One or more fields are invalid.");

    public static ProblemHttpResult Failure<T>(OpResult<T> r) => r.Status switch
    {
        OpStatus.NotFound => NotFound(r.Message),
        OpStatus.Conflict => Conflict(r.Message),
        OpStatus.QuotaExceeded => QuotaExceeded(r.Message),
        _ => Problem(StatusCodes.Status400BadRequest, "Bad request", r.Message),
    };

    /// <summary>The authenticated caller; endpoints in groups that require authorization always have one.</summary>
    public static Caller Caller(this ClaimsPrincipal user) =>
        VmPortal.Core.Caller.From(user) ?? throw new InvalidOperationException("No authenticated user.");

    /// <summary>Parses an If-Match value like <c>"42"</c> or <c>W/"42"</c>.</summary>
    public static bool TryParseIfMatch(string? header, out uint version)
    {
        version = 0;
        if (string.IsNullOrWhiteSpace(header)) return false;
        var v = header.Trim();
        if (v.StartsWith("W/", StringComparison.Ordinal)) v = v[2..];
        return uint.TryParse(v.Trim('"'), out version);
    }

    public static string ETag(uint version) => $"\"{version}\"";
}

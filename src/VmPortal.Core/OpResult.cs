namespace VmPortal.Core;

/// <summary><c>QuotaExceeded</c>: refused by a quota (HTTP 409 "Quota exceeded"; the message names the quota and the numbers).</summary>
public enum OpStatus { Ok, NotFound, Invalid, Conflict, QuotaExceeded }

/// <summary>Outcome of a use case: a value, or why there is none. Endpoints map it to HTTP, pages to messages.</summary>
public sealed record OpResult<T>(OpStatus Status, T? Value, string? Message, IDictionary<string, string[]>? Errors)
{
    public bool IsOk => Status == OpStatus.Ok;
    public static OpResult<T> Ok(T value) => new(OpStatus.Ok, value, null, null);
    public static OpResult<T> NotFound(string message = "Not found.") => new(OpStatus.NotFound, default, message, null);
    public static OpResult<T> Conflict(string message) => new(OpStatus.Conflict, default, message, null);
    public static OpResult<T> QuotaExceeded(string message) => new(OpStatus.QuotaExceeded, default, message, null);
    public static OpResult<T> Invalid(IDictionary<string, string[]> errors) => new(OpStatus.Invalid, default, "Validation failed.", errors);
    public static OpResult<T> Invalid(string field, string error) => Invalid(new Dictionary<string, string[]> { [field] = [error] });
}

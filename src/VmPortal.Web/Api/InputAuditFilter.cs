using VmPortal.Core;
using VmPortal.Core.Audit;

namespace VmPortal.Web.Api;

/// <summary>
/// Audits every POST of the power and console-input endpoints (<c>/api/vms/{id}/start|stop|…</c>,
/// <c>…/console/type|keys</c>): actor, client address, the result's status, and for input only counts
/// (characters typed, keys pressed), never the content. Added to the route groups, so new actions are audited too.
/// </summary>
public sealed class InputAuditFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
    {
        var result = await next(ctx);
        var http = ctx.HttpContext;
        var action = http.Request.Path.Value?.TrimEnd('/').Split('/').LastOrDefault() ?? "";
        bool cancelTyping = HttpMethods.IsDelete(http.Request.Method) && action == "type";
        if (!HttpMethods.IsPost(http.Request.Method) && !cancelTyping) return result;
        if (http.Items.ContainsKey(TaskAnswer.TaskItem)) return result; // a task was started: it audits how the action ended
        var caller = Caller.From(http.User);
        var status = result is IStatusCodeHttpResult s ? s.StatusCode ?? 200 : http.Response.StatusCode;
        string auditAction, details;
        switch (action)
        {
            case "type" when cancelTyping:
                auditAction = AuditActions.ConsoleTypeCancel;
                details = "";
                break;
            case "type":
                auditAction = AuditActions.ConsoleType;
                details = $"{ctx.Arguments.OfType<TypeRequest>().FirstOrDefault()?.Text?.Length ?? 0} characters";
                break;
            case "keys":
                auditAction = AuditActions.ConsoleKeys;
                details = $"{ctx.Arguments.OfType<KeysRequest>().FirstOrDefault()?.Keys?.Count ?? 0} keys";
                break;
            case "wait" or "shares": return result; // reading, and share links audit themselves
            default:
                auditAction = AuditActions.VmPower(action.Length > 40 ? action[..40] : action);
                details = "";
                break;
        }
        var vmId = http.Request.RouteValues.TryGetValue("id", out var id) ? id?.ToString() : null;
        var audit = http.RequestServices.GetRequiredService<AuditLog>();
        await audit.WriteAsync(caller?.UserId, caller?.UserName ?? "anonymous", auditAction, "vm", vmId,
            $"{details}{(details.Length > 0 ? "; " : "")}REST from {http.Connection.RemoteIpAddress}; HTTP {status}", status is >= 200 and < 300);
        return result;
    }
}

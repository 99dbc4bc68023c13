using Microsoft.AspNetCore.SignalR;
using VmPortal.Web.Api;
using VmPortal.Web.Security;

namespace VmPortal.Web.Hubs;

/// <summary>
/// Hub calls refused with a <see cref="HubException"/> (a foreign VM, a bad key code, a full typing queue…) are the
/// caller's mistake: logged at information level without a stack trace, at most <see cref="CallerMistakeLog.PerWindow"/>
/// lines a minute per client address. Other exceptions pass on to SignalR's own error logging.
/// </summary>
public sealed class HubMistakeFilter(CallerMistakeLog limit, ILogger<HubMistakeFilter> log) : IHubFilter
{
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext context, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(context);
        }
        catch (HubException e)
        {
            var address = context.Context.GetHttpContext()?.Connection.RemoteIpAddress?.ToString();
            if (limit.ShouldLog(address, out int suppressed))
                log.LogInformation("Hub call {Method} from {Address} refused: {Message}{Suppressed}", context.HubMethodName, address,
                    e.Message, ApiExceptionHandler.Suppressed(suppressed));
            throw;
        }
    }
}

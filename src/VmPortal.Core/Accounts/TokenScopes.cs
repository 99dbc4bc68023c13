namespace VmPortal.Core.Accounts;

/// <summary>
/// What a scoped API token may do (<c>POST /api/auth/tokens {"scopes": [...]}</c>; none = all of its owner's rights):
/// <c>vms:read</c> (list and read VMs, templates, tasks, quotas, groups, images), <c>vms:write</c> (create, change,
/// delete, clone VMs; share links; cancel tasks), <c>vms:power</c> (start, stop, shutdown, reset, pause, resume,
/// Ctrl-Alt-Del), <c>console</c> (console REST and the console hub), <c>images</c> (upload and delete images), <c>admin</c>
/// (everything, and only for an administrator's token). The portal maps each request to the scope it needs
/// (<c>VmPortal.Web.Auth.TokenScopeMiddleware</c>); a token without it gets 403.
/// </summary>
public static class TokenScopes
{
    public const string VmsRead = "vms:read";
    public const string VmsWrite = "vms:write";
    public const string VmsPower = "vms:power";
    public const string Console = "console";
    public const string Images = "images";
    public const string Admin = "admin";

    public static readonly IReadOnlyList<string> All = [VmsRead, VmsWrite, VmsPower, Console, Images, Admin];

    public static IReadOnlyList<string> Parse(string? stored) =>
        string.IsNullOrWhiteSpace(stored) ? [] : stored.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

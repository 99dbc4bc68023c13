using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Groups;

/// <summary>
/// Who may use a catalog template: admins every template; a user a published one that either names no groups
/// (everyone) or names a group the user belongs to. A template the caller may not use is "not found" (404), exactly
/// like a missing one, in the catalog and in <c>POST /api/vms {templateId}</c>.
/// </summary>
public static class TemplateAccess
{
    public static IQueryable<VmTemplate> Usable(PortalDbContext db, IQueryable<VmTemplate> templates, Caller caller) =>
        caller.IsAdmin
            ? templates
            : templates.Where(t => t.Published
                && (!db.TemplateGroups.Any(tg => tg.TemplateId == t.Id)
                    || db.TemplateGroups.Any(tg => tg.TemplateId == t.Id
                        && db.GroupMembers.Any(m => m.GroupId == tg.GroupId && m.UserId == caller.UserId))));
}

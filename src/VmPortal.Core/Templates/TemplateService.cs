using Microsoft.EntityFrameworkCore;
using Npgsql;
using VmPortal.Core.Audit;
using VmPortal.Core.Images;
using VmPortal.Core.Vms;
using VmPortal.Data;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Templates;

/// <summary>What an admin sends to create or replace a template.</summary>
public sealed class TemplateSpec
{
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? Os { get; set; }
    public string? Icon { get; set; }
    /// <summary>Base disk image id (kind disk); each VM gets a qcow2 overlay of it.</summary>
    public string? ImageId { get; set; }
    public string? CdromImageId { get; set; }
    public int? MemoryMiB { get; set; }
    public int? MaxMemoryMiB { get; set; }
    /// <summary>Default disk size (null or 0: the base image's size).</summary>
    public long? DiskSizeMiB { get; set; }
    public long? MaxDiskSizeMiB { get; set; }
    public List<BootDevice>? BootOrder { get; set; }
    public bool? CloudInit { get; set; }
    public string? HostnamePattern { get; set; }
    public string? DefaultUser { get; set; }
    public bool? NicEnabled { get; set; }
    public string? Network { get; set; }
    public bool? Published { get; set; }
    /// <summary>Groups allowed to use the template; null or empty: everyone.</summary>
    public List<Guid>? GroupIds { get; set; }
    /// <summary>Each VM made from the template expires this many hours after it is made (1–8760; null: no lease).</summary>
    public int? LeaseHours { get; set; }
    /// <summary>Hours from that expiry (the VM is powered off) to its deletion (0–2160; null: 24).</summary>
    public int? LeaseGraceHours { get; set; }
}

public sealed record TemplateDto(Guid Id, string Name, string Description, string Os, string Icon, string? ImageId, string? CdromImageId,
    int MemoryMiB, int MaxMemoryMiB, long DiskSizeMiB, long MaxDiskSizeMiB, IReadOnlyList<BootDevice> BootOrder, bool CloudInit,
    string HostnamePattern, string DefaultUser, bool NicEnabled, string Network, bool Published, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    IReadOnlyList<Guid>? GroupIds = null, int? LeaseHours = null, int? LeaseGraceHours = null)
{
    /// <summary><paramref name="groupIds"/>: the groups allowed to use it (empty: everyone).</summary>
    public static TemplateDto From(VmTemplate t, IReadOnlyList<Guid>? groupIds = null) => new(t.Id, t.Name, t.Description, t.Os, t.Icon, t.DiskImageId, t.CdromImageId,
        t.MemoryMiB, t.MaxMemoryMiB, t.DiskSizeMiB, t.MaxDiskSizeMiB, t.BootOrder.ToList(), t.CloudInit, t.HostnamePattern,
        t.DefaultUser, t.NicEnabled, t.Network, t.Published, t.CreatedAt, t.UpdatedAt, groupIds ?? [], t.LeaseHours, t.LeaseHours is null ? null : t.LeaseGraceHours ?? Leases.LeaseService.DefaultGraceHours);
}

/// <summary>
/// The catalog: admins create, change and delete templates; users list the published ones and provision VMs from
/// them (<see cref="Expand"/> turns a short request — name, password or key — into a full <see cref="VmSpec"/>).
/// </summary>
public sealed class TemplateService(IDbContextFactory<PortalDbContext> dbFactory, ImageCatalog images, AuditLog audit, TimeProvider clock)
{
    public const string AuditCreate = "template.create";
    public const string AuditUpdate = "template.update";
    public const string AuditDelete = "template.delete";
    /// <summary>Longest lease a template gives its VMs: a year.</summary>
    public const int MaxLeaseHours = 24 * 365;

    public async Task<IReadOnlyList<TemplateDto>> ListAsync(Caller caller, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var q = Groups.TemplateAccess.Usable(db, db.Templates.AsNoTracking(), caller);
        var list = await q.OrderBy(t => t.NormalizedName).ToListAsync(ct);
        var groups = await GroupsOfAsync(db, list.Select(t => t.Id).ToList(), ct);
        return list.Select(t => TemplateDto.From(t, groups.GetValueOrDefault(t.Id))).ToList();
    }

    public async Task<TemplateDto?> GetAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await Groups.TemplateAccess.Usable(db, db.Templates.AsNoTracking(), caller).FirstOrDefaultAsync(x => x.Id == id, ct);
        return t is null ? null : TemplateDto.From(t, (await GroupsOfAsync(db, [t.Id], ct)).GetValueOrDefault(t.Id));
    }

    private static async Task<Dictionary<Guid, IReadOnlyList<Guid>>> GroupsOfAsync(PortalDbContext db, List<Guid> templateIds, CancellationToken ct) =>
        (await db.TemplateGroups.AsNoTracking().Where(tg => templateIds.Contains(tg.TemplateId)).ToListAsync(ct))
            .GroupBy(tg => tg.TemplateId).ToDictionary(g => g.Key, g => (IReadOnlyList<Guid>)g.Select(x => x.GroupId).OrderBy(x => x).ToList());

    /// <summary>Replaces the template's group restriction (validated: every id names a group).</summary>
    private static async Task<string?> SetGroupsAsync(PortalDbContext db, Guid templateId, List<Guid>? groupIds, CancellationToken ct)
    {
        var wanted = (groupIds ?? []).Distinct().ToList();
        var known = await db.Groups.Where(g => wanted.Contains(g.Id)).Select(g => g.Id).ToListAsync(ct);
        if (known.Count != wanted.Count) return $"Unknown group: {string.Join(", ", wanted.Except(known))}.";
        var existing = await db.TemplateGroups.Where(tg => tg.TemplateId == templateId).ToListAsync(ct);
        db.TemplateGroups.RemoveRange(existing.Where(tg => !wanted.Contains(tg.GroupId)));
        foreach (var g in wanted.Where(g => existing.All(e => e.GroupId != g)))
            db.TemplateGroups.Add(new TemplateGroup { TemplateId = templateId, GroupId = g });
        return null;
    }

    public async Task<OpResult<TemplateDto>> CreateAsync(Caller caller, TemplateSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<TemplateDto>.NotFound("Only administrators manage templates.");
        var errors = Validate(spec);
        if (errors.Count > 0) return OpResult<TemplateDto>.Invalid(errors);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = new VmTemplate(spec.Name!.Trim(), clock.GetUtcNow());
        Apply(t, spec);
        db.Templates.Add(t);
        if (await SetGroupsAsync(db, t.Id, spec.GroupIds, ct) is { } groupError) return OpResult<TemplateDto>.Invalid("groupIds", groupError);
        audit.Add(db, caller.UserId, caller.UserName, AuditCreate, "template", t.Id.ToString(),
            $"name={t.Name} image={t.DiskImageId ?? t.CdromImageId}" + (spec.GroupIds is { Count: > 0 } gs ? $" groups={string.Join(",", gs)}" : ""));
        try { await db.SaveChangesAsync(ct); }
        catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return OpResult<TemplateDto>.Conflict($"A template named '{t.Name}' already exists.");
        }
        return OpResult<TemplateDto>.Ok(TemplateDto.From(t, (spec.GroupIds ?? []).Distinct().Order().ToList()));
    }

    public async Task<OpResult<TemplateDto>> UpdateAsync(Caller caller, Guid id, TemplateSpec spec, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<TemplateDto>.NotFound("Only administrators manage templates.");
        var errors = Validate(spec);
        if (errors.Count > 0) return OpResult<TemplateDto>.Invalid(errors);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await db.Templates.FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return OpResult<TemplateDto>.NotFound($"Template {id} not found.");
        t.Rename(spec.Name!.Trim());
        Apply(t, spec);
        t.UpdatedAt = clock.GetUtcNow();
        if (await SetGroupsAsync(db, t.Id, spec.GroupIds, ct) is { } groupError) return OpResult<TemplateDto>.Invalid("groupIds", groupError);
        audit.Add(db, caller.UserId, caller.UserName, AuditUpdate, "template", t.Id.ToString(),
            $"name={t.Name}" + (spec.GroupIds is { Count: > 0 } gs ? $" groups={string.Join(",", gs)}" : ""));
        try { await db.SaveChangesAsync(ct); }
        catch (DbUpdateException e) when (e.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            return OpResult<TemplateDto>.Conflict($"A template named '{t.Name}' already exists.");
        }
        return OpResult<TemplateDto>.Ok(TemplateDto.From(t, (spec.GroupIds ?? []).Distinct().Order().ToList()));
    }

    public async Task<OpResult<bool>> DeleteAsync(Caller caller, Guid id, CancellationToken ct = default)
    {
        if (!caller.IsAdmin) return OpResult<bool>.NotFound("Only administrators manage templates.");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await db.Templates.FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return OpResult<bool>.NotFound($"Template {id} not found.");
        db.Templates.Remove(t);
        audit.Add(db, caller.UserId, caller.UserName, AuditDelete, "template", t.Id.ToString(), $"name={t.Name}");
        await db.SaveChangesAsync(ct);
        return OpResult<bool>.Ok(true);
    }

    private Dictionary<string, string[]> Validate(TemplateSpec spec)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string key, string? message)
        {
            if (message is null) return;
            if (!errors.TryGetValue(key, out var list)) errors[key] = list = [];
            list.Add(message);
        }
        Add("name", VmValidator.NameError(spec.Name?.Trim()));
        if (spec.Description is { Length: > VmTemplate.DescriptionMaxLength }) Add("description", $"At most {VmTemplate.DescriptionMaxLength} characters.");
        if (spec.Os is { Length: > 100 }) Add("os", "At most 100 characters.");
        if (spec.Icon is not null && !TemplateIcons.All.Contains(spec.Icon)) Add("icon", $"Icon must be one of: {string.Join(", ", TemplateIcons.All)}.");
        var all = images.List();
        ImageInfo? disk = null;
        if (string.IsNullOrEmpty(spec.ImageId) && string.IsNullOrEmpty(spec.CdromImageId))
            Add("imageId", "A template needs a base disk image (imageId) or an ISO (cdromImageId).");
        if (!string.IsNullOrEmpty(spec.ImageId))
        {
            disk = all.FirstOrDefault(i => i.Id == spec.ImageId);
            if (disk is null) Add("imageId", "Unknown image.");
            else if (disk.Kind != ImageKinds.Disk) Add("imageId", "The base image must be a disk image (for an ISO use cdromImageId).");
            else if (disk.Problem is { } p) Add("imageId", $"The image cannot be used: {p}");
        }
        if (!string.IsNullOrEmpty(spec.CdromImageId))
        {
            var iso = all.FirstOrDefault(i => i.Id == spec.CdromImageId);
            if (iso is null) Add("cdromImageId", "Unknown image.");
            else if (iso.Kind != ImageKinds.Iso) Add("cdromImageId", "The CD-ROM image must be an ISO image.");
        }
        Add("memoryMiB", VmValidator.MemoryError(spec.MemoryMiB ?? 256));
        Add("maxMemoryMiB", VmValidator.MemoryError(spec.MaxMemoryMiB ?? spec.MemoryMiB ?? 1024));
        if ((spec.MaxMemoryMiB ?? 1024) < (spec.MemoryMiB ?? 256)) Add("maxMemoryMiB", "The largest memory must be at least the default.");
        var baseMiB = disk?.VirtualSizeBytes is long vs ? (vs + (1 << 20) - 1) >> 20 : 0;
        if (spec.DiskSizeMiB is long size && size != 0)
        {
            Add("diskSizeMiB", VmValidator.DiskSizeError(size));
            if (size < baseMiB) Add("diskSizeMiB", $"At least the base image's size ({baseMiB} MiB).");
        }
        if (spec.MaxDiskSizeMiB is long max)
        {
            Add("maxDiskSizeMiB", VmValidator.DiskSizeError(max));
            if (max < Math.Max(baseMiB, spec.DiskSizeMiB ?? 0)) Add("maxDiskSizeMiB", "The largest disk must be at least the default size.");
        }
        if (spec.BootOrder is { } order && (order.Count == 0 || order.Distinct().Count() != order.Count || order.Any(d => !Enum.IsDefined(d))))
            Add("bootOrder", "Boot order must list known devices, each once, at least one.");
        if (spec.HostnamePattern is { } hp && (hp.Length > 63 || VmValidator.HostnameError(hp.Replace("{name}", "vm")) is not null))
            Add("hostnamePattern", "A hostname with {name} for the VM's name, e.g. {name} or web-{name}.");
        if (spec.DefaultUser is { Length: > 0 } du && VmValidator.Validate(new VmSpec { Name = "x", MemoryMiB = 64, CloudInit = new CloudInitSpec { User = du } }, null)
                .ContainsKey("cloudInit.user"))
            Add("defaultUser", "User name must be 1-32 characters: lower-case letters, digits, '-' and '_', starting with a letter.");
        if (spec.Network is { } net && VmValidator.NameError(net) is { } ne) Add("network", ne.Replace("Name", "Network name"));
        if (spec.LeaseHours is < 1 or > MaxLeaseHours) Add("leaseHours", $"A template's lease is 1 to {MaxLeaseHours} hours (leave it out for none).");
        if (spec.LeaseGraceHours is < 0 or > Leases.LeaseService.MaxGraceHours) Add("leaseGraceHours", $"The grace period is 0 to {Leases.LeaseService.MaxGraceHours} hours.");
        if (spec.LeaseGraceHours is not null && spec.LeaseHours is null) Add("leaseGraceHours", "A grace period needs leaseHours.");
        return errors.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
    }

    private static void Apply(VmTemplate t, TemplateSpec s)
    {
        t.Description = s.Description ?? "";
        t.Os = s.Os ?? "";
        t.Icon = s.Icon ?? "linux";
        t.DiskImageId = string.IsNullOrEmpty(s.ImageId) ? null : s.ImageId;
        t.CdromImageId = string.IsNullOrEmpty(s.CdromImageId) ? null : s.CdromImageId;
        t.MemoryMiB = s.MemoryMiB ?? 256;
        t.MaxMemoryMiB = s.MaxMemoryMiB ?? Math.Max(1024, t.MemoryMiB);
        t.DiskSizeMiB = s.DiskSizeMiB ?? 0;
        t.MaxDiskSizeMiB = s.MaxDiskSizeMiB ?? 16 * 1024;
        t.BootOrder = s.BootOrder?.ToList() ?? (t.DiskImageId is not null ? [BootDevice.Disk, BootDevice.Cdrom] : [BootDevice.Cdrom, BootDevice.Disk]);
        t.CloudInit = s.CloudInit ?? t.DiskImageId is not null;
        t.HostnamePattern = string.IsNullOrEmpty(s.HostnamePattern) ? "{name}" : s.HostnamePattern;
        t.DefaultUser = s.DefaultUser ?? "debian";
        t.NicEnabled = s.NicEnabled ?? true;
        t.Network = s.Network ?? "default";
        t.Published = s.Published ?? true;
        t.LeaseHours = s.LeaseHours;
        t.LeaseGraceHours = s.LeaseHours is null ? null : s.LeaseGraceHours;
    }

    /// <summary>
    /// Turns a provisioning request (<c>name</c>, <c>templateId</c>, optional <c>memoryMiB</c>, a first disk's
    /// <c>sizeMiB</c>, <c>cloudInit</c> user/password/keys) into a full spec, or the reason it is refused.
    /// Hardware the template fixes (CD-ROM, boot order, NIC) cannot be overridden.
    /// </summary>
    public async Task<(VmSpec? Spec, IDictionary<string, string[]>? Errors, string? NotFound)> ExpandAsync(Caller caller, VmSpec request, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var t = await Groups.TemplateAccess.Usable(db, db.Templates.AsNoTracking(), caller).FirstOrDefaultAsync(x => x.Id == request.TemplateId, ct);
        if (t is null) return (null, null, $"Template {request.TemplateId} not found.");
        var errors = new Dictionary<string, string[]>();
        if (request.CdromImageId is not null) errors["cdromImageId"] = ["The template sets the CD-ROM."];
        if (request.BootOrder is not null) errors["bootOrder"] = ["The template sets the boot order."];
        if (request.Nic is not null) errors["nic"] = ["The template sets the network card."];
        if (request.Disks is { Count: > 1 } || request.Disks is [{ BackingImageId: not null } or { Id: not null }])
            errors["disks"] = ["With a template, only the first disk's sizeMiB may be given."];
        var memory = request.MemoryMiB ?? t.MemoryMiB;
        if (memory > t.MaxMemoryMiB) errors["memoryMiB"] = [$"This template allows at most {t.MaxMemoryMiB} MiB of memory."];
        var disks = new List<DiskSpec>();
        if (t.DiskImageId is not null)
        {
            var image = images.Find(t.DiskImageId);
            if (image is null) return (null, null, $"The template's base image '{t.DiskImageId}' no longer exists.");
            var baseMiB = image.VirtualSizeBytes is long vs ? (vs + (1 << 20) - 1) >> 20 : 0;
            var size = request.Disks is [{ SizeMiB: long s }] ? s : t.DiskSizeMiB > 0 ? t.DiskSizeMiB : baseMiB;
            if (size > t.MaxDiskSizeMiB) errors["disks[0].sizeMiB"] = [$"This template allows disks of at most {t.MaxDiskSizeMiB} MiB."];
            disks.Add(new DiskSpec { SizeMiB = Math.Max(size, baseMiB), BackingImageId = t.DiskImageId, Bus = "ide" });
        }
        else if (request.Disks is [{ SizeMiB: long blank }])
        {
            if (blank > t.MaxDiskSizeMiB) errors["disks[0].sizeMiB"] = [$"This template allows disks of at most {t.MaxDiskSizeMiB} MiB."];
            disks.Add(new DiskSpec { SizeMiB = blank, Bus = "ide" });
        }
        else if (t.DiskSizeMiB > 0) disks.Add(new DiskSpec { SizeMiB = t.DiskSizeMiB, Bus = "ide" });
        if (errors.Count > 0) return (null, errors, null);

        CloudInitSpec? cloudInit = null;
        if (t.CloudInit)
        {
            var name = request.Name?.Trim() ?? "";
            var hostname = request.CloudInit?.Hostname is { Length: > 0 } h ? h : t.HostnamePattern.Replace("{name}", name);
            cloudInit = new CloudInitSpec
            {
                Hostname = VmValidator.HostnameFrom(hostname),
                User = request.CloudInit?.User is { Length: > 0 } u ? u : t.DefaultUser,
                Password = request.CloudInit?.Password,
                SshAuthorizedKeys = request.CloudInit?.SshAuthorizedKeys,
            };
        }
        else if (request.CloudInit is not null) return (null, new Dictionary<string, string[]> { ["cloudInit"] = ["This template has no first-boot settings."] }, null);

        return (new VmSpec
        {
            Name = request.Name,
            Description = request.Description ?? t.Description,
            OwnerId = request.OwnerId,
            MemoryMiB = memory,
            Disks = disks,
            CdromImageId = t.CdromImageId,
            BootOrder = t.BootOrder.ToList(),
            Nic = new NicSpec { Enabled = t.NicEnabled, Network = t.Network },
            StartAtBoot = request.StartAtBoot,
            CloudInit = cloudInit,
            TemplateLease = t.LeaseHours is { } hours
                ? new TemplateLease(t.Name, hours, t.LeaseGraceHours ?? Leases.LeaseService.DefaultGraceHours) : null,
        }, null, null);
    }
}

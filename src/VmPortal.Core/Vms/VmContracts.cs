using VmPortal.Data.Entities;

namespace VmPortal.Core.Vms;

/// <summary>What a client sends to create or update a VM (REST body and the UI dialog's model).</summary>
/// <summary>The lease a template gives each VM provisioned from it (set by <c>TemplateService.ExpandAsync</c>, never by a request).</summary>
public sealed record TemplateLease(string TemplateName, int Hours, int GraceHours);

public sealed class VmSpec
{
    /// <summary>Set when the spec was expanded from a template with a lease (not part of the API: internal).</summary>
    internal TemplateLease? TemplateLease { get; set; }

    /// <summary>Provision from this catalog template: only name, description, memoryMiB, the first disk's sizeMiB and cloudInit may be given besides.</summary>
    public Guid? TemplateId { get; set; }
    public string? Name { get; set; }
    public string? Description { get; set; }
    /// <summary>Only admins may name another owner; default: the caller.</summary>
    public Guid? OwnerId { get; set; }
    public int? MemoryMiB { get; set; }
    public List<DiskSpec>? Disks { get; set; }
    public string? CdromImageId { get; set; }
    public List<BootDevice>? BootOrder { get; set; }
    public NicSpec? Nic { get; set; }
    public bool? StartAtBoot { get; set; }
    /// <summary>First-boot settings (cloud-init NoCloud seed); null on update keeps the stored ones, an empty object removes them.</summary>
    public CloudInitSpec? CloudInit { get; set; }
    /// <summary>Concurrency token from the last read; required on update (or as If-Match).</summary>
    public uint? Version { get; set; }
}

public sealed class DiskSpec
{
    /// <summary>An existing disk's id (from a read) keeps that disk and its data; no id adds a new disk.</summary>
    public Guid? Id { get; set; }
    public long? SizeMiB { get; set; }
    public string? BackingImageId { get; set; }
    public string? Bus { get; set; }
}

/// <summary>What the guest's first boot configures: hostname, one user with a password and/or SSH keys.</summary>
public sealed class CloudInitSpec
{
    public string? Hostname { get; set; }
    public string? User { get; set; }
    /// <summary>Plain password (stored only as a SHA-512 crypt hash); null on update keeps the stored hash.</summary>
    public string? Password { get; set; }
    public List<string>? SshAuthorizedKeys { get; set; }
}

public sealed class NicSpec
{
    public bool? Enabled { get; set; }
    public string? Model { get; set; }
    public string? MacAddress { get; set; }
    public string? Network { get; set; }
    /// <summary>Host TCP ports forwarded to the guest while it runs; null on update keeps the stored ones, [] removes them.</summary>
    public List<PortForwardSpec>? PortForwards { get; set; }
}

/// <summary><c>{"protocol": "tcp", "hostAddress": "127.0.0.1", "hostPort": 2222, "guestPort": 22}</c>.</summary>
public sealed class PortForwardSpec
{
    public string? Protocol { get; set; }
    public string? HostAddress { get; set; }
    public int? HostPort { get; set; }
    public int? GuestPort { get; set; }
}

/// <summary>A VM as clients see it.</summary>
public sealed record VmDto(
    Guid Id,
    string Name,
    string Description,
    Guid OwnerId,
    string OwnerName,
    int MemoryMiB,
    IReadOnlyList<DiskDto> Disks,
    string? CdromImageId,
    IReadOnlyList<BootDevice> BootOrder,
    NicDto Nic,
    CloudInitDto? CloudInit,
    bool StartAtBoot,
    VmState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    uint Version,
    string? StateReason = null)
{
    public long TotalDiskMiB => Disks.Sum(d => d.SizeMiB);

    public static VmDto From(VirtualMachine vm, string ownerName) => new(
        vm.Id, vm.Name, vm.Description, vm.OwnerId, ownerName, vm.MemoryMiB,
        vm.Disks.Select(d => new DiskDto(d.Id, d.SizeMiB, d.BackingImageId, d.Bus)).ToList(),
        vm.CdromImageId, vm.BootOrder.ToList(),
        new NicDto(vm.Nic.Enabled, vm.Nic.Model, vm.Nic.MacAddress, vm.Nic.Network,
            (vm.Nic.PortForwards ?? []).Select(f => new PortForwardDto(f.Protocol, f.HostAddress, f.HostPort, f.GuestPort)).ToList()),
        vm.CloudInit is { } c ? new CloudInitDto(c.Hostname, c.User, c.PasswordHash.Length > 0, c.SshAuthorizedKeys.ToList()) : null,
        vm.StartAtBoot, vm.State, vm.CreatedAt, vm.UpdatedAt, vm.Version, vm.StateReason);

    /// <summary>A spec pre-filled with this VM's values (for the edit dialog).</summary>
    public VmSpec ToSpec() => new()
    {
        Name = Name,
        Description = Description,
        OwnerId = OwnerId,
        MemoryMiB = MemoryMiB,
        Disks = Disks.Select(d => new DiskSpec { Id = d.Id, SizeMiB = d.SizeMiB, BackingImageId = d.BackingImageId, Bus = d.Bus }).ToList(),
        CdromImageId = CdromImageId,
        BootOrder = BootOrder.ToList(),
        Nic = new NicSpec
        {
            Enabled = Nic.Enabled, Model = Nic.Model, MacAddress = Nic.MacAddress, Network = Nic.Network,
            PortForwards = Nic.PortForwards.Select(f => new PortForwardSpec { Protocol = f.Protocol, HostAddress = f.HostAddress, HostPort = f.HostPort, GuestPort = f.GuestPort }).ToList(),
        },
        StartAtBoot = StartAtBoot,
        CloudInit = CloudInit is { } c
            ? new CloudInitSpec { Hostname = c.Hostname, User = c.User, SshAuthorizedKeys = c.SshAuthorizedKeys.ToList() }
            : null,
        Version = Version,
    };
}

/// <summary>A disk: its id (stable; keep it in an update to keep the disk's data), size, base image and bus.</summary>
public sealed record DiskDto(Guid Id, long SizeMiB, string? BackingImageId, string Bus);
/// <summary>First-boot settings as clients see them: the password is never returned, only whether one is set.</summary>
public sealed record CloudInitDto(string Hostname, string User, bool HasPassword, IReadOnlyList<string> SshAuthorizedKeys);
public sealed record NicDto(bool Enabled, string Model, string MacAddress, string Network, IReadOnlyList<PortForwardDto> PortForwards);
public sealed record PortForwardDto(string Protocol, string HostAddress, int HostPort, int GuestPort);

/// <summary>
/// List query: paging (1-based page); filters by name substring, owner, and a free-text <paramref name="Search"/>
/// (name, owner name, description, state); <paramref name="Sort"/> is one of <see cref="VmSortKeys"/>.
/// </summary>
public sealed record VmQuery(string? Name = null, Guid? OwnerId = null, int Page = 1, int PageSize = 50,
    string? Search = null, string? Sort = null, bool Descending = false);

/// <summary>Sort keys understood by <see cref="VmService.ListAsync"/>.</summary>
public static class VmSortKeys
{
    public const string Name = "name";
    public const string State = "state";
    public const string Owner = "owner";
    public const string Memory = "memoryMiB";
    public const string Created = "createdAt";
    public const string Updated = "updatedAt";
}

public sealed record PagedResult<T>(IReadOnlyList<T> Items, int Total, int Page, int PageSize);

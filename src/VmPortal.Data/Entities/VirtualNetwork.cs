namespace VmPortal.Data.Entities;

/// <summary>
/// An admin-managed virtual network: an in-process learning switch with its services (DHCP, DNS and, in
/// <see cref="NetworkMode.Nat"/> mode, user-mode NAT to the host's sockets within <see cref="Outbound"/>).
/// VM NICs refer to it by <see cref="Name"/>. The built-in network <c>default</c> is not stored here.
/// Addresses are dotted IPv4 text; <see cref="Subnet"/> is CIDR ("10.0.3.0/24").
/// </summary>
public sealed class VirtualNetwork
{
    public const int NameMaxLength = 63;

    private VirtualNetwork() { }

    public VirtualNetwork(string name, DateTimeOffset now)
    {
        Id = Guid.CreateVersion7();
        Name = name;
        NormalizedName = name.ToLowerInvariant();
        CreatedAt = now;
        UpdatedAt = now;
    }

    public Guid Id { get; private set; }
    /// <summary>Never changes (VM definitions and templates refer to it).</summary>
    public string Name { get; private set; } = "";
    /// <summary>Lower-case name; unique (index).</summary>
    public string NormalizedName { get; private set; } = "";
    public NetworkMode Mode { get; set; } = NetworkMode.Nat;
    public string Subnet { get; set; } = "";
    public string Gateway { get; set; } = "";
    public string Dns { get; set; } = "";
    public bool Dhcp { get; set; } = true;
    public string DhcpStart { get; set; } = "";
    public string DhcpEnd { get; set; } = "";
    /// <summary>Where NAT lets guests connect; ignored by isolated networks.</summary>
    public NetworkOutbound Outbound { get; set; } = NetworkOutbound.Loopback;
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset UpdatedAt { get; private set; }
    /// <summary>Optimistic-concurrency token (PostgreSQL xmin).</summary>
    public uint Version { get; private set; }

    public void Touch(DateTimeOffset now) => UpdatedAt = now;
}

/// <summary><c>nat</c>: services + NAT to the host; <c>isolated</c>: a switch whose services (DHCP, DNS) answer but nothing leaves.</summary>
public enum NetworkMode { Nat, Isolated }

/// <summary>A NAT network's outbound policy: only the host's loopback through the gateway (default), nothing, or anything.</summary>
public enum NetworkOutbound { Loopback, Deny, Allow }

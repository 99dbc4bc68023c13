namespace VmPortal.Network;

/// <summary>
/// Addresses and services of one network, as QEMU's user networking has them by default: 10.0.2.0/24, gateway (and
/// DHCP server) 10.0.2.2, which is also the host's loopback seen from the guest, DNS 10.0.2.3, DHCP from 10.0.2.15.
/// Addresses are IPv4 in host order.
/// </summary>
public sealed record NetworkOptions
{
    public uint Subnet { get; init; } = 0x0A00_0200;
    public int PrefixLength { get; init; } = 24;
    public uint Gateway { get; init; } = 0x0A00_0202;
    public uint Dns { get; init; } = 0x0A00_0203;
    public uint DhcpStart { get; init; } = 0x0A00_020F;
    public uint DhcpEnd { get; init; } = 0x0A00_02FE;
    public bool DhcpEnabled { get; init; } = true;
    /// <summary>NAT to the host's sockets (false: an isolated network, services answer but nothing leaves).</summary>
    public bool Nat { get; init; } = true;
    public OutboundPolicy Outbound { get; init; } = OutboundPolicy.Loopback;
    public TimeSpan LeaseTime { get; init; } = TimeSpan.FromHours(24);
    /// <summary>DHCP boot file name (netboot, e.g. an iPXE script served from <see cref="TftpRoot"/>), or null.</summary>
    public string? BootFile { get; init; }
    /// <summary>Directory the TFTP server at the gateway serves (read only), or null for no TFTP.</summary>
    public string? TftpRoot { get; init; }
    /// <summary>MAC of the gateway/DNS/DHCP services (QEMU's slirp uses 52:55:0a:00:02:02).</summary>
    public byte[] GatewayMac { get; init; } = { 0x52, 0x55, 0x0A, 0x00, 0x02, 0x02 };
    /// <summary>Hosts file answering DNS names under the loopback and deny policies.</summary>
    public string HostsFile { get; init; } = "/etc/hosts";
    /// <summary>A NAT UDP flow (and its host socket) closes after this long without a datagram either way.</summary>
    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>At most this many UDP flows per network; a new one beyond closes the one idle longest.</summary>
    public int MaxUdpFlows { get; init; } = 256;

    public uint SubnetMask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Router => Nat ? Gateway : 0;

    /// <summary>Builds options for "10.0.3.0/24": gateway .2, DNS .3, DHCP from .15 to the last host address.</summary>
    public static NetworkOptions ForSubnet(string cidr, bool nat = true, OutboundPolicy outbound = OutboundPolicy.Loopback)
    {
        var parts = cidr.Split('/');
        if (parts.Length != 2 || !System.Net.IPAddress.TryParse(parts[0], out var ip) || ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork ||
            !int.TryParse(parts[1], out int prefix) || prefix < 8 || prefix > 28)
            throw new ArgumentException($"'{cidr}' is not an IPv4 subnet like 10.0.2.0/24 (prefix 8–28)");
        uint mask = uint.MaxValue << (32 - prefix);
        uint net = Packets.ToUInt(ip) & mask;
        return new NetworkOptions
        {
            Subnet = net, PrefixLength = prefix, Gateway = net + 2, Dns = net + 3, DhcpStart = net + 15,
            DhcpEnd = (net | ~mask) - 1, Nat = nat, Outbound = outbound,
        };
    }
}

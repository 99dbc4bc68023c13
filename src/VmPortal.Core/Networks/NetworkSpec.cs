using System.Net;
using System.Net.Sockets;
using VmPortal.Core.Vms;
using VmPortal.Data.Entities;
using VmPortal.Network;

namespace VmPortal.Core.Networks;

/// <summary>
/// What an admin sends to create or replace a network (REST body and the Networks page's dialog):
/// <c>{"name", "mode": "nat" | "isolated", "subnet": "10.0.3.0/24", "dhcp": true, "outbound": "loopback" | "allow" | "deny"}</c>,
/// optionally <c>gateway</c>, <c>dns</c>, <c>dhcpStart</c>, <c>dhcpEnd</c> (defaults: .2, .3, .15 (or .4 in a /27 or
/// smaller), the last host address).
/// </summary>
public sealed class NetworkSpec
{
    public string? Name { get; set; }
    public string? Mode { get; set; }
    public string? Subnet { get; set; }
    public string? Gateway { get; set; }
    public string? Dns { get; set; }
    public bool? Dhcp { get; set; }
    public string? DhcpStart { get; set; }
    public string? DhcpEnd { get; set; }
    public string? Outbound { get; set; }
}

/// <summary>A network's settings, validated, with every address filled in (host order).</summary>
public sealed record NetworkDefinition(string Name, bool Nat, uint Subnet, int PrefixLength, uint Gateway, uint Dns, bool Dhcp,
    uint DhcpStart, uint DhcpEnd, OutboundPolicy Outbound, bool BuiltIn = false)
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);
    public uint Broadcast => Subnet | ~Mask;
    public string Cidr => $"{Format(Subnet)}/{PrefixLength}";

    /// <summary>The built-in network <c>default</c>: QEMU's user networking addresses, loopback policy.</summary>
    public static NetworkDefinition Default { get; } = new(NetworkHost.Default, true, 0x0A00_0200, 24, 0x0A00_0202, 0x0A00_0203, true,
        0x0A00_020F, 0x0A00_02FE, OutboundPolicy.Loopback, BuiltIn: true);

    public bool Overlaps(NetworkDefinition other)
    {
        uint mask = PrefixLength < other.PrefixLength ? Mask : other.Mask;
        return (Subnet & mask) == (other.Subnet & mask);
    }

    public NetworkOptions ToOptions() => new()
    {
        Subnet = Subnet, PrefixLength = PrefixLength, Gateway = Gateway, Dns = Dns, DhcpStart = DhcpStart, DhcpEnd = DhcpEnd,
        DhcpEnabled = Dhcp, Nat = Nat, Outbound = Nat ? Outbound : OutboundPolicy.Deny,
    };

    public static NetworkDefinition From(VirtualNetwork n) => new(n.Name, n.Mode == NetworkMode.Nat, ParseCidr(n.Subnet).Net, ParseCidr(n.Subnet).Prefix,
        Parse(n.Gateway), Parse(n.Dns), n.Dhcp, Parse(n.DhcpStart), Parse(n.DhcpEnd), (OutboundPolicy)(int)n.Outbound);

    public void CopyTo(VirtualNetwork n)
    {
        n.Mode = Nat ? NetworkMode.Nat : NetworkMode.Isolated;
        n.Subnet = Cidr;
        n.Gateway = Format(Gateway);
        n.Dns = Format(Dns);
        n.Dhcp = Dhcp;
        n.DhcpStart = Format(DhcpStart);
        n.DhcpEnd = Format(DhcpEnd);
        n.Outbound = (NetworkOutbound)(int)Outbound;
    }

    public static string Format(uint a) => $"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}";

    internal static uint Parse(string s) => TryParse(s, out var a) ? a : throw new FormatException($"'{s}' is not an IPv4 address");

    internal static bool TryParse(string? s, out uint a)
    {
        a = 0;
        // IPAddress.TryParse accepts "10", "10.1" and hex forms; only the dotted quad is meant here
        if (s is null || s.Count(c => c == '.') != 3 || !IPAddress.TryParse(s, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork) return false;
        a = Packets.ToUInt(ip);
        return true;
    }

    internal static (uint Net, int Prefix) ParseCidr(string s)
    {
        var parts = s.Split('/');
        return (Parse(parts[0]), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Checks a <see cref="NetworkSpec"/> and fills in its defaults; errors are keyed by field (<c>subnet</c>, <c>dhcpStart</c>…).</summary>
public static class NetworkValidator
{
    public const int MinPrefix = 8, MaxPrefix = 28;

    public static (NetworkDefinition? Definition, Dictionary<string, string[]> Errors) Validate(NetworkSpec spec)
    {
        var errors = new Dictionary<string, string[]>();
        void Add(string field, string message) { if (!errors.ContainsKey(field)) errors[field] = [message]; }

        if (string.IsNullOrEmpty(spec.Name)) Add("name", "Name is required.");
        else if (VmValidator.NameError(spec.Name) is { } ne) Add("name", ne.Replace("Name", "Network name"));
        bool nat = true;
        switch (spec.Mode?.ToLowerInvariant())
        {
            case null or "nat": break;
            case "isolated": nat = false; break;
            default: Add("mode", "Mode must be 'nat' or 'isolated'."); break;
        }
        var outbound = OutboundPolicy.Loopback;
        switch (spec.Outbound?.ToLowerInvariant())
        {
            case null or "loopback": break;
            case "deny": outbound = OutboundPolicy.Deny; break;
            case "allow": outbound = OutboundPolicy.Allow; break;
            default: Add("outbound", "Outbound must be 'loopback', 'deny' or 'allow'."); break;
        }
        if (!nat) outbound = OutboundPolicy.Deny; // nothing leaves an isolated network

        if (string.IsNullOrWhiteSpace(spec.Subnet)) { Add("subnet", "Subnet is required, e.g. 10.0.3.0/24."); return (null, errors); }
        var parts = spec.Subnet.Trim().Split('/');
        if (parts.Length != 2 || !NetworkDefinition.TryParse(parts[0], out uint addr) || !int.TryParse(parts[1], out int prefix))
        {
            Add("subnet", $"'{spec.Subnet}' is not an IPv4 subnet like 10.0.3.0/24.");
            return (null, errors);
        }
        if (prefix < MinPrefix || prefix > MaxPrefix)
        {
            Add("subnet", $"The prefix length must be {MinPrefix}–{MaxPrefix} (got /{prefix}).");
            return (null, errors);
        }
        uint mask = uint.MaxValue << (32 - prefix), net = addr & mask, bcast = net | ~mask;
        if (net != addr)
        {
            Add("subnet", $"'{spec.Subnet}' has host bits set; the network is {NetworkDefinition.Format(net)}/{prefix}.");
            return (null, errors);
        }
        byte first = (byte)(net >> 24);
        if (first == 0 || first == 127 || first >= 224 || (net & 0xFFFF_0000) == 0xA9FE_0000)
        {
            Add("subnet", "The subnet must not be 0.0.0.0/8, loopback (127.0.0.0/8), link-local (169.254.0.0/16), multicast or reserved.");
            return (null, errors);
        }

        uint Address(string field, string? text, uint fallback)
        {
            if (string.IsNullOrWhiteSpace(text)) return fallback;
            if (!NetworkDefinition.TryParse(text.Trim(), out uint a)) { Add(field, $"'{text}' is not an IPv4 address."); return fallback; }
            if ((a & mask) != net || a == net || a == bcast) Add(field, $"{text} is not a host address in {NetworkDefinition.Format(net)}/{prefix}.");
            return a;
        }
        uint gateway = Address("gateway", spec.Gateway, net + 2);
        uint dns = Address("dns", spec.Dns, net + 3);
        uint size = ~mask + 1;
        uint start = Address("dhcpStart", spec.DhcpStart, size > 32 ? net + 15 : net + 4);
        uint end = Address("dhcpEnd", spec.DhcpEnd, bcast - 1);
        if (gateway == dns && !errors.ContainsKey("dns")) Add("dns", "The DNS address must differ from the gateway's.");
        if (start > end) Add("dhcpEnd", "The DHCP range ends before it starts.");
        else
        {
            if (gateway >= start && gateway <= end) Add("gateway", "The gateway lies inside the DHCP range.");
            if (dns >= start && dns <= end) Add("dns", "The DNS address lies inside the DHCP range.");
        }
        if (errors.Count > 0) return (null, errors);
        return (new NetworkDefinition(spec.Name!, nat, net, prefix, gateway, dns, spec.Dhcp ?? true, start, end, outbound), errors);
    }
}

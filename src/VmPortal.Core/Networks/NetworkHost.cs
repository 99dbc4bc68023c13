using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Network;

namespace VmPortal.Core.Networks;

/// <summary>A network as the portal shows it: addresses, policy, DHCP leases and the switch ports (one per running NIC).</summary>
public sealed record NetworkDto(string Name, string Mode, string Subnet, string Gateway, string Dns, bool Dhcp, string DhcpStart, string DhcpEnd,
    string Outbound, bool BuiltIn, IReadOnlyList<LeaseDto> Leases, IReadOnlyList<PortDto> Ports, NatCountersDto Nat);

/// <summary>A DHCP lease; <see cref="VmId"/>/<see cref="VmName"/> name the VM whose NIC has the MAC, when the caller may see it.</summary>
public sealed record LeaseDto(string MacAddress, string Address, string? HostName, DateTimeOffset Expires, bool Bound, Guid? VmId = null, string? VmName = null);
/// <summary>A switch port and its counters: in = frames the NIC sent, out = frames it took, dropped = did not fit its queue.</summary>
public sealed record PortDto(string Name, long FramesIn, long BytesIn, long FramesOut, long BytesOut, long Dropped, long Errors, Guid? VmId = null);
public sealed record NatCountersDto(long RefusedByPolicy, long RefusedByHost, long TcpConnections, long UdpFlows = 0);

/// <summary>A VM's NIC while it runs: its network, switch port counters, the host ports forwarded to it and its link.</summary>
public sealed record VmNicStatus(string Network, PortDto Port, IReadOnlyList<string> Forwards, string? Address, bool LinkUp = true);

/// <summary>
/// The host's virtual networks: each an in-process learning switch (<see cref="VirtualSwitch"/>) with its services
/// (<see cref="UserNetwork"/>: DHCP, DNS, user-mode NAT). The built-in network <c>default</c> is a NAT network like
/// QEMU's user networking (10.0.2.0/24, gateway 10.0.2.2 = the host's loopback, DNS 10.0.2.3, DHCP from 10.0.2.15)
/// under the <c>loopback</c> outbound policy; admins add more (<see cref="NetworkService"/> stores them and calls
/// <see cref="Apply"/>). A running VM's NIC gets a switch port named after the VM, and its port forwards listen on
/// the host while it runs; both go when the VM stops.
/// </summary>
public sealed class NetworkHost : IDisposable
{
    public const string Default = "default";
    private readonly Dictionary<string, (NetworkDefinition Definition, UserNetwork Services)> networks = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, VmAttachment> vmPorts = new();
    private readonly Lock gate = new();

    private sealed record VmAttachment(string Network, SwitchPort Port, string Mac, List<PortForward> Forwards)
    {
        public bool LinkUp { get; set; } = true;
    }

    public NetworkHost(VmHost? host = null)
    {
        Apply(NetworkDefinition.Default);
        // a stopped or crashed VM's NIC leaves its switch
        if (host is not null)
            host.StateChanged += (vm, state, _) =>
            {
                if (state is VmRunState.Stopped or VmRunState.Crashed) DisconnectVm(vm.Id);
            };
    }

    /// <summary>
    /// Creates the network, or changes it. What a running network can change is applied live
    /// (<see cref="UserNetwork.Reconfigure(NetworkOptions)"/>): NAT on/off, the outbound policy, DHCP on/off and the DHCP
    /// range; a network switched to isolated must have no running VM with port forwards. Its subnet, gateway and DNS
    /// address change by replacing its services and switch, only while no VM is connected. A refused change throws
    /// <see cref="InvalidOperationException"/> and leaves the network as it was.
    /// </summary>
    public void Apply(NetworkDefinition definition)
    {
        lock (gate)
        {
            if (networks.TryGetValue(definition.Name, out var old))
            {
                if (ChangesLive(old.Definition, definition))
                {
                    if (!definition.Nat && vmPorts.Values.Any(a => a.Network == definition.Name && a.Forwards.Count > 0))
                        throw new InvalidOperationException($"Network '{definition.Name}' has running VMs with port forwards; an isolated network has none.");
                    var o = old.Services.Options;
                    old.Services.Reconfigure(o with
                    {
                        Nat = definition.Nat, Outbound = definition.Outbound, DhcpEnabled = definition.Dhcp,
                        DhcpStart = definition.DhcpStart, DhcpEnd = definition.DhcpEnd,
                    });
                    networks[definition.Name] = (definition, old.Services);
                    return;
                }
                if (vmPorts.Values.Any(a => a.Network == definition.Name))
                    throw new InvalidOperationException($"Network '{definition.Name}' has running VMs.");
                old.Services.Dispose();
            }
            networks[definition.Name] = (definition, new UserNetwork(new VirtualSwitch(definition.Name), definition.ToOptions()));
        }
    }

    /// <summary>
    /// The settings that differ between <paramref name="current"/> and <paramref name="next"/> and cannot change while
    /// VMs run on the network ("subnet", "gateway", "DNS address"): the guests hold them from their DHCP leases until
    /// they renew, so moving them would cut the guests off the gateway and DNS server at once. Empty when the change
    /// applies live (NAT on/off, outbound policy, DHCP on/off, DHCP range).
    /// </summary>
    public static IReadOnlyList<string> FixedWhileRunning(NetworkDefinition current, NetworkDefinition next)
    {
        var fixedFields = new List<string>();
        if (current.Subnet != next.Subnet || current.PrefixLength != next.PrefixLength) fixedFields.Add("subnet");
        if (current.Gateway != next.Gateway) fixedFields.Add("gateway");
        if (current.Dns != next.Dns) fixedFields.Add("DNS address");
        return fixedFields;
    }

    /// <summary>Whether <paramref name="next"/> differs from <paramref name="current"/> only in what a running network can change.</summary>
    public static bool ChangesLive(NetworkDefinition current, NetworkDefinition next) =>
        current with { Nat = next.Nat, Outbound = next.Outbound, Dhcp = next.Dhcp, DhcpStart = next.DhcpStart, DhcpEnd = next.DhcpEnd } == next;

    /// <summary>Removes a network (its services stop; VMs still connected lose their cable).</summary>
    public void Remove(string name)
    {
        lock (gate)
        {
            if (!networks.Remove(name, out var n)) return;
            foreach (var id in vmPorts.Where(kv => kv.Value.Network == name).Select(kv => kv.Key).ToList()) vmPorts.Remove(id);
            n.Services.Dispose();
        }
    }

    public NetworkDefinition? Definition(string name)
    {
        lock (gate) return networks.TryGetValue(name, out var n) ? n.Definition : null;
    }

    public IReadOnlyList<NetworkDefinition> Definitions
    {
        get { lock (gate) return networks.Values.Select(n => n.Definition).OrderBy(d => d.Name, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>VMs whose NIC is on <paramref name="network"/> now.</summary>
    public IReadOnlyList<Guid> ConnectedVms(string network)
    {
        lock (gate) return vmPorts.Where(kv => kv.Value.Network == network).Select(kv => kv.Key).ToList();
    }

    /// <summary>
    /// A switch port for VM <paramref name="vmId"/>'s NIC on <paramref name="network"/> (replacing the VM's previous
    /// port), or null when there is no such network. <paramref name="forwards"/> start listening on the host (to the
    /// guest with <paramref name="mac"/>); one that cannot (port taken, privileged, not NAT) undoes everything and
    /// throws <see cref="PortForwardException"/> with the reason.
    /// </summary>
    public SwitchPort? ConnectVm(Guid vmId, string network, string vmName, string? mac = null, IReadOnlyList<PortForward>? forwards = null,
        bool linkUp = true)
    {
        DisconnectVm(vmId);
        lock (gate)
        {
            if (!networks.TryGetValue(network, out var n)) return null;
            var started = new List<PortForward>();
            if (forwards is { Count: > 0 })
            {
                if (!n.Definition.Nat) throw new PortForwardException($"network '{network}' is isolated; port forwards need a NAT network");
                try
                {
                    foreach (var f in forwards)
                    {
                        n.Services.AddPortForward(f with { GuestMac = mac });
                        started.Add(f);
                    }
                }
                catch (PortForwardException)
                {
                    foreach (var f in started) n.Services.RemovePortForward(f.HostAddress, f.HostPort);
                    throw;
                }
            }
            var port = n.Services.Switch.Connect($"vm:{vmName}");
            vmPorts[vmId] = new VmAttachment(network, port, mac ?? "", started) { LinkUp = linkUp };
            return port;
        }
    }

    /// <summary>Records the link of a running VM's NIC (the machine itself is told by its host); false when not connected.</summary>
    public bool SetVmLink(Guid vmId, bool up)
    {
        lock (gate)
        {
            if (!vmPorts.TryGetValue(vmId, out var a)) return false;
            a.LinkUp = up;
            return true;
        }
    }

    public void DisconnectVm(Guid vmId)
    {
        VmAttachment? a;
        UserNetwork? services = null;
        lock (gate)
        {
            if (!vmPorts.Remove(vmId, out a)) return;
            if (networks.TryGetValue(a.Network, out var n)) services = n.Services;
        }
        foreach (var f in a.Forwards) services?.RemovePortForward(f.HostAddress, f.HostPort);
        a.Port.Switch.Disconnect(a.Port);
    }

    /// <summary>The running VM's NIC: network, port counters, forwards and DHCP address; null when not connected.</summary>
    public VmNicStatus? VmNic(Guid vmId)
    {
        lock (gate)
        {
            if (!vmPorts.TryGetValue(vmId, out var a) || !networks.TryGetValue(a.Network, out var n)) return null;
            uint ip = a.Mac.Length > 0 ? n.Services.Dhcp.AddressOf(a.Mac) : 0;
            return new VmNicStatus(a.Network, Port(a.Port, vmId), a.Forwards.Select(f => $"{f.HostAddress}:{f.HostPort} → :{f.GuestPort}").ToList(),
                ip == 0 ? null : NetworkDefinition.Format(ip), a.LinkUp);
        }
    }

    public IReadOnlyList<string> Names { get { lock (gate) return networks.Keys.Order(StringComparer.Ordinal).ToList(); } }

    public bool Exists(string name) { lock (gate) return networks.ContainsKey(name); }

    /// <summary>A new port on <paramref name="network"/>'s switch, or null when there is no such network.</summary>
    public SwitchPort? Connect(string network, string portName)
    {
        lock (gate) return networks.TryGetValue(network, out var n) ? n.Services.Switch.Connect(portName) : null;
    }

    public void Disconnect(SwitchPort port) => port.Switch.Disconnect(port);

    /// <summary>Every network with all its leases and ports (callers filter what a user may see).</summary>
    public IReadOnlyList<NetworkDto> List()
    {
        lock (gate) return networks.Values.Select(Describe).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
    }

    public NetworkDto? Get(string name)
    {
        lock (gate) return networks.TryGetValue(name, out var n) ? Describe(n) : null;
    }

    private static PortDto Port(SwitchPort p, Guid? vmId)
    {
        var pc = p.Counters;
        return new PortDto(p.Name, pc.FramesIn, pc.BytesIn, pc.FramesOut, pc.BytesOut, pc.Dropped, pc.Errors, vmId);
    }

    private NetworkDto Describe((NetworkDefinition Definition, UserNetwork Services) n)
    {
        var (d, s) = n;
        var c = s.Counters;
        var owners = vmPorts.Where(kv => kv.Value.Network == d.Name).ToDictionary(kv => kv.Value.Port, kv => kv.Key);
        return new NetworkDto(d.Name, d.Nat ? "nat" : "isolated", d.Cidr, NetworkDefinition.Format(d.Gateway), NetworkDefinition.Format(d.Dns), d.Dhcp,
            NetworkDefinition.Format(d.DhcpStart), NetworkDefinition.Format(d.DhcpEnd), d.Outbound.ToString().ToLowerInvariant(), d.BuiltIn,
            s.Leases.Select(l => new LeaseDto(l.MacAddress, l.Address, l.HostName, l.Expires, l.Bound)).ToList(),
            s.Switch.Ports.Where(p => p != s.Port).Select(p => Port(p, owners.TryGetValue(p, out var id) ? id : null)).ToList(),
            new NatCountersDto(c.RefusedByPolicy, c.RefusedByHost, c.TcpConnections, c.UdpFlows));
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var n in networks.Values) n.Services.Dispose();
            networks.Clear();
            vmPorts.Clear();
        }
    }
}

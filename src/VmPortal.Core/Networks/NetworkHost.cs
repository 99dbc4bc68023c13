using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Network;

namespace VmPortal.Core.Networks;

/// <summary>A network as the portal shows it: addresses, policy, DHCP leases and the switch ports (one per running NIC).</summary>
public sealed record NetworkDto(string Name, string Mode, string Subnet, string Gateway, string Dns, bool Dhcp, string Outbound,
    IReadOnlyList<LeaseDto> Leases, IReadOnlyList<PortDto> Ports, NatCountersDto Nat);

public sealed record LeaseDto(string MacAddress, string Address, string? HostName, DateTimeOffset Expires, bool Bound);
public sealed record PortDto(string Name, long FramesIn, long BytesIn, long FramesOut, long BytesOut, long Dropped, long Errors);
public sealed record NatCountersDto(long RefusedByPolicy, long RefusedByHost, long TcpConnections);

/// <summary>
/// The host's virtual networks: each an in-process learning switch (<see cref="VirtualSwitch"/>) with its services
/// (<see cref="UserNetwork"/>: DHCP, DNS, user-mode NAT). This slice has the built-in network <c>default</c>, a NAT
/// network like QEMU's user networking (10.0.2.0/24, gateway 10.0.2.2 = the host's loopback, DNS 10.0.2.3, DHCP
/// from 10.0.2.15) under the <c>loopback</c> outbound policy: guests reach the host's 127.0.0.1 and nothing else.
/// A running VM's NIC gets a switch port named after the VM; it is removed when the VM stops.
/// </summary>
public sealed class NetworkHost : IDisposable
{
    public const string Default = "default";
    private readonly Dictionary<string, UserNetwork> networks = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, SwitchPort> vmPorts = new();
    private readonly Lock gate = new();

    public NetworkHost(VmHost? host = null)
    {
        networks[Default] = new UserNetwork(new VirtualSwitch(Default), new NetworkOptions());
        // a stopped or crashed VM's NIC leaves its switch
        if (host is not null)
            host.StateChanged += (vm, state, _) =>
            {
                if (state is VmRunState.Stopped or VmRunState.Crashed) DisconnectVm(vm.Id);
            };
    }

    /// <summary>
    /// A switch port for VM <paramref name="vmId"/>'s NIC on <paramref name="network"/> (replacing the VM's previous
    /// port), or null when there is no such network.
    /// </summary>
    public SwitchPort? ConnectVm(Guid vmId, string network, string vmName)
    {
        DisconnectVm(vmId);
        var port = Connect(network, $"vm:{vmName}");
        if (port is not null) lock (gate) vmPorts[vmId] = port;
        return port;
    }

    public void DisconnectVm(Guid vmId)
    {
        SwitchPort? port;
        lock (gate)
        {
            if (!vmPorts.Remove(vmId, out port)) return;
        }
        Disconnect(port);
    }

    public IReadOnlyList<string> Names { get { lock (gate) return networks.Keys.Order().ToList(); } }

    public bool Exists(string name) { lock (gate) return networks.ContainsKey(name); }

    /// <summary>A new port on <paramref name="network"/>'s switch, or null when there is no such network.</summary>
    public SwitchPort? Connect(string network, string portName)
    {
        lock (gate) return networks.TryGetValue(network, out var n) ? n.Switch.Connect(portName) : null;
    }

    public void Disconnect(SwitchPort port) => port.Switch.Disconnect(port);

    public IReadOnlyList<NetworkDto> List()
    {
        lock (gate) return networks.Select(kv => Describe(kv.Key, kv.Value)).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
    }

    public NetworkDto? Get(string name)
    {
        lock (gate) return networks.TryGetValue(name, out var n) ? Describe(name, n) : null;
    }

    private static string Ip(uint a) => $"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}";

    private static NetworkDto Describe(string name, UserNetwork n)
    {
        var o = n.Options;
        var c = n.Counters;
        return new NetworkDto(name, o.Nat ? "nat" : "isolated", $"{Ip(o.Subnet)}/{o.PrefixLength}", Ip(o.Gateway), Ip(o.Dns), o.DhcpEnabled,
            o.Outbound.ToString().ToLowerInvariant(),
            n.Leases.Select(l => new LeaseDto(l.MacAddress, l.Address, l.HostName, l.Expires, l.Bound)).ToList(),
            n.Switch.Ports.Where(p => p != n.Port).Select(p =>
            {
                var pc = p.Counters;
                return new PortDto(p.Name, pc.FramesIn, pc.BytesIn, pc.FramesOut, pc.BytesOut, pc.Dropped, pc.Errors);
            }).ToList(),
            new NatCountersDto(c.RefusedByPolicy, c.RefusedByHost, c.TcpConnections));
    }

    public void Dispose()
    {
        lock (gate)
        {
            foreach (var n in networks.Values) n.Dispose();
            networks.Clear();
        }
    }
}

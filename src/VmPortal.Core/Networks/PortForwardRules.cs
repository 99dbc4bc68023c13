using System.Net;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Vms;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Network;

namespace VmPortal.Core.Networks;

/// <summary>
/// A VM's port forwards (host TCP port → guest port), checked when the definition is saved: TCP only, IPv4 host
/// address (default 127.0.0.1), ports 1–65535, at most <see cref="MaxForwards"/>, a NAT network, no host port twice —
/// in this VM or any other VM's definition — and the host port free now (a trial bind, so "in use" and "below 1024
/// without rights" are reported at once; the start reports them again if they changed meanwhile).
/// Errors are keyed <c>nic.portForwards[i].hostPort</c> and so on.
/// </summary>
public static class PortForwardRules
{
    public const int MaxForwards = 16;

    public static List<VmPortForward> ToEntities(IEnumerable<PortForwardSpec> specs) => specs.Select(f => new VmPortForward
    {
        Protocol = "tcp",
        HostAddress = string.IsNullOrWhiteSpace(f.HostAddress) ? "127.0.0.1" : f.HostAddress.Trim(),
        HostPort = f.HostPort ?? 0,
        GuestPort = f.GuestPort ?? 0,
    }).ToList();

    /// <summary>New instances of the stored forwards (an owned JSON entity cannot move to a new owner).</summary>
    public static List<VmPortForward> Copy(IEnumerable<VmPortForward>? forwards) => (forwards ?? []).Select(f => new VmPortForward
    {
        Protocol = f.Protocol, HostAddress = f.HostAddress, HostPort = f.HostPort, GuestPort = f.GuestPort,
    }).ToList();

    /// <summary>The forwards as the network layer takes them.</summary>
    public static List<PortForward> ToNetwork(IEnumerable<VmPortForward>? forwards) =>
        (forwards ?? []).Select(f => new PortForward(f.HostAddress, f.HostPort, f.GuestPort)).ToList();

    public static async Task CheckAsync(IDbContextFactory<PortalDbContext> dbFactory, NetworkHost host, Guid? vmId, NicSpec? nic,
        Dictionary<string, string[]> errors, CancellationToken ct)
    {
        void Add(string field, string message) { if (!errors.ContainsKey(field)) errors[field] = [message]; }
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        VmNic? stored = vmId is { } id ? await db.VirtualMachines.Where(v => v.Id == id).Select(v => v.Nic).AsNoTracking().FirstOrDefaultAsync(ct) : null;
        List<PortForwardSpec>? specs = nic?.PortForwards;
        if (specs is null)
        {
            // kept as stored: only the network's mode matters
            if (stored?.PortForwards is { Count: > 0 } kept && nic?.Network is { } net && host.Definition(net) is { Nat: false })
                Add("nic.network", $"Network '{net}' is isolated; this VM's port forwards need a NAT network (remove them first).");
            return;
        }
        if (specs.Count == 0) return;
        if (specs.Count > MaxForwards) { Add("nic.portForwards", $"At most {MaxForwards} port forwards per VM."); return; }
        string network = nic?.Network ?? stored?.Network ?? NetworkHost.Default;
        if (host.Definition(network) is { Nat: false })
            Add("nic.portForwards", $"Network '{network}' is isolated; port forwards need a NAT network.");

        var others = await db.VirtualMachines.AsNoTracking().Where(v => v.Id != vmId).Select(v => new { v.Name, v.Nic.PortForwards }).ToListAsync(ct);
        var mine = stored?.PortForwards ?? [];
        var seen = new List<(uint Address, int Port)>();
        for (int i = 0; i < specs.Count; i++)
        {
            var f = specs[i];
            string p = $"nic.portForwards[{i}]";
            if (f.Protocol is { } proto && !string.Equals(proto, "tcp", StringComparison.OrdinalIgnoreCase)) Add($"{p}.protocol", "Only TCP port forwards are supported.");
            string address = string.IsNullOrWhiteSpace(f.HostAddress) ? "127.0.0.1" : f.HostAddress.Trim();
            if (!NetworkDefinition.TryParse(address, out uint a)) { Add($"{p}.hostAddress", $"'{address}' is not an IPv4 address."); continue; }
            if (f.HostPort is not (>= 1 and <= 65535)) { Add($"{p}.hostPort", "The host port must be 1–65535."); continue; }
            if (f.GuestPort is not (>= 1 and <= 65535)) Add($"{p}.guestPort", "The guest port must be 1–65535.");
            int port = f.HostPort.Value;
            if (seen.Any(s => s.Port == port && Overlap(s.Address, a))) { Add($"{p}.hostPort", $"Host port {port} is forwarded twice."); continue; }
            seen.Add((a, port));
            var other = others.FirstOrDefault(o => (o.PortForwards ?? []).Any(x => x.HostPort == port && NetworkDefinition.TryParse(x.HostAddress, out uint xa) && Overlap(xa, a)));
            if (other is not null) { Add($"{p}.hostPort", $"Host port {address}:{port} is already forwarded to VM '{other.Name}'."); continue; }
            // ours already (this VM runs with it): the port is bound by us, nothing to try
            if (mine.Any(m => m.HostPort == port && m.HostAddress == address)) continue;
            if (TryBind(address, port) is { } problem) Add($"{p}.hostPort", problem);
        }
    }

    private static bool Overlap(uint a, uint b) => a == b || a == 0 || b == 0;

    /// <summary>Binds and releases the port; the reason it cannot be bound, or null.</summary>
    public static string? TryBind(string address, int port)
    {
        try
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse(address), port));
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return $"Host port {address}:{port} is already in use on the host.";
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            return $"Host port {port} is below 1024 and the portal may not bind it.";
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            return $"{address} is not an address of this host.";
        }
        catch (SocketException e)
        {
            return $"Host port {address}:{port} cannot be bound ({e.SocketErrorCode}).";
        }
    }
}

using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace VmPortal.Network;

/// <summary>
/// The services of one network, plugged into its switch as one more port (MAC 52:55:0a:00:02:02), like QEMU's
/// user-mode networking (slirp) without root or TAP: ARP for the gateway (10.0.2.2) and DNS (10.0.2.3) addresses,
/// ICMP echo to them, DHCP (<see cref="DhcpServer"/>), DNS (<see cref="DnsResponder"/>), and — when
/// <see cref="NetworkOptions.Nat"/> — the guests' TCP and UDP through ordinary host sockets (<see cref="NatTcpConnection"/>,
/// <see cref="NatUdpFlow"/>) within the <see cref="OutboundPolicy"/>: under loopback a connection or datagram to the
/// gateway's PORT goes to 127.0.0.1:PORT and every other destination is refused inside the NAT (TCP: RST; UDP: ICMP
/// "administratively prohibited"; counted, no packet leaves the process); deny refuses all; allow reaches anywhere. Port forwards (<see cref="AddPortForward"/>) accept on a host address
/// and open a connection to the guest. Everything runs on one event-loop thread per network; sockets post back to it.
/// </summary>
public sealed class UserNetwork : IDisposable
{
    private readonly ConcurrentQueue<Action> _work = new();
    private readonly AutoResetEvent _signal = new(false);
    private readonly Dictionary<ConnectionKey, NatTcpConnection> _tcp = new();
    private readonly Dictionary<ConnectionKey, NatUdpFlow> _udp = new();
    private readonly Dictionary<uint, byte[]> _arp = new();
    private readonly List<TcpListener> _listeners = new();
    private readonly DnsResponder _dns;
    private readonly TftpServer? _tftp;
    private readonly Thread _thread;
    private volatile bool _stopping;
    private long _refusedByPolicy, _refusedByHost, _connections, _ignored, _udpFlows, _udpUnreachable, _udpDropped, _fastRetransmits, _tcpOutOfOrder, _tcpDuplicates, _reassembled, _fragmentsDropped;
    private readonly Ipv4Reassembly _reassembly = new();
    private ushort _nextForwardPort = 40000;

    public UserNetwork(VirtualSwitch sw, NetworkOptions? options = null, TimeProvider? time = null)
    {
        Options = options ?? new NetworkOptions();
        Switch = sw;
        Dhcp = new DhcpServer(Options, time);
        _dns = new DnsResponder(Options);
        if (Options.TftpRoot != null)
            _tftp = new TftpServer(Options.TftpRoot, (ip, port, ours, mac, payload) =>
                SendFrame(Packets.Udp(mac, Options.GatewayMac, Options.Gateway, ours, ip, port, payload)));
        Port = sw.Connect("services");
        Port.FrameQueued = () => _signal.Set();
        _thread = new Thread(Loop) { IsBackground = true, Name = $"net:{sw.Name}" };
        _thread.Start();
    }

    /// <summary>The network's settings; <see cref="Reconfigure"/> changes the policy and DHCP while it runs.</summary>
    public NetworkOptions Options { get; private set; }
    public VirtualSwitch Switch { get; }
    public SwitchPort Port { get; }
    public DhcpServer Dhcp { get; }
    public IReadOnlyList<DhcpLease> Leases => Dhcp.Leases;

    public NatCounters Counters => new(Interlocked.Read(ref _refusedByPolicy), Interlocked.Read(ref _refusedByHost),
        Interlocked.Read(ref _connections), Dhcp.MalformedRequests, _dns.MalformedQueries, Interlocked.Read(ref _ignored),
        Interlocked.Read(ref _udpFlows), Interlocked.Read(ref _udpUnreachable), Interlocked.Read(ref _udpDropped),
        Interlocked.Read(ref _fastRetransmits), Interlocked.Read(ref _tcpOutOfOrder), Interlocked.Read(ref _tcpDuplicates),
        Interlocked.Read(ref _reassembled), Interlocked.Read(ref _fragmentsDropped));

    /// <summary>Open NAT connections (for diagnostics and tests).</summary>
    public int OpenConnections { get; private set; }

    /// <summary>Open NAT UDP flows, each with its host socket (for diagnostics and tests).</summary>
    public int OpenUdpFlows { get; private set; }

    /// <summary>
    /// Listens on <see cref="PortForward.HostAddress"/>:<see cref="PortForward.HostPort"/> and forwards each connection
    /// to the guest. Throws <see cref="PortForwardException"/> with a clear message when the port is taken or
    /// privileged. Returns the port actually bound (useful with HostPort 0).
    /// </summary>
    public int AddPortForward(PortForward forward)
    {
        if (!IPAddress.TryParse(forward.HostAddress, out var hostAddr))
            throw new PortForwardException($"host address '{forward.HostAddress}' is not an IP address");
        if (forward.GuestPort is < 1 or > 65535) throw new PortForwardException($"guest port {forward.GuestPort} is out of range");
        var listener = new TcpListener(hostAddr, forward.HostPort);
        try
        {
            listener.Start();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new PortForwardException($"host port {forward.HostAddress}:{forward.HostPort} is already in use");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new PortForwardException($"host port {forward.HostPort} is below 1024 and this process may not bind it");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            throw new PortForwardException($"host address {forward.HostAddress} is not an address of this machine");
        }
        lock (_listeners) _listeners.Add(listener);
        _ = AcceptLoopAsync(listener, forward);
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Stops listening on <paramref name="hostAddress"/>:<paramref name="hostPort"/> (connections already forwarded go on).</summary>
    public void RemovePortForward(string hostAddress, int hostPort)
    {
        lock (_listeners)
        {
            foreach (var l in _listeners.Where(l => l.LocalEndpoint is IPEndPoint ep && ep.Port == hostPort &&
                                                     IPAddress.TryParse(hostAddress, out var a) && ep.Address.Equals(a)).ToList())
            {
                l.Stop();
                _listeners.Remove(l);
            }
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener, PortForward forward)
    {
        while (!_stopping)
        {
            Socket s;
            try { s = await listener.AcceptSocketAsync().ConfigureAwait(false); }
            catch (Exception) { return; }
            Post(() => StartForwarded(s, forward));
        }
    }

    private void StartForwarded(Socket s, PortForward forward)
    {
        uint guestIp = forward.GuestAddress != null && IPAddress.TryParse(forward.GuestAddress, out var ga) ? Packets.ToUInt(ga)
            : forward.GuestMac != null ? Dhcp.AddressOf(forward.GuestMac) : 0;
        if (guestIp == 0) guestIp = Dhcp.Leases.FirstOrDefault(l => l.Bound) is { } l ? Packets.ToUInt(IPAddress.Parse(l.Address)) : Options.DhcpStart;
        // The card's MAC: from the guest's own frames, or else from its DHCP lease (a guest that got its address and then
        // sent nothing to the gateway, like an idle Debian system whose only service is sshd, is still reachable).
        if (!_arp.TryGetValue(guestIp, out var mac) && Dhcp.BoundMacOf(guestIp) is { } leased) _arp[guestIp] = mac = leased;
        if (mac == null)
        {
            s.Close(); // the guest never spoke on this network
            Interlocked.Increment(ref _refusedByHost);
            return;
        }
        ConnectionKey key;
        do key = new ConnectionKey(guestIp, (ushort)forward.GuestPort, Options.Gateway, _nextForwardPort = (ushort)(_nextForwardPort >= 60000 ? 40000 : _nextForwardPort + 1));
        while (_tcp.ContainsKey(key));
        var c = new NatTcpConnection(this, key, mac);
        _tcp[key] = c;
        OpenConnections = _tcp.Count;
        c.StartForwarded(s);
    }

    /// <summary>
    /// Changes what can change while guests use the network: the outbound policy and whether DHCP answers (leases are
    /// kept). See <see cref="Reconfigure(NetworkOptions)"/>.
    /// </summary>
    public void Reconfigure(OutboundPolicy outbound, bool dhcpEnabled) =>
        Reconfigure(Options with { Outbound = Options.Nat ? outbound : OutboundPolicy.Deny, DhcpEnabled = dhcpEnabled });

    /// <summary>
    /// Applies <paramref name="next"/> while guests use the network: NAT on or off (an isolated network's outbound is
    /// deny), the outbound policy, DHCP on/off and its range (<see cref="DhcpServer.Options"/>: leases are kept, a
    /// renewal outside the new range gets a NAK and the guest a new address). NAT connections and UDP flows the new
    /// settings refuse are reset (TCP: RST both ways) or closed, and counted as refused; port-forward connections stay
    /// while the network still does NAT. The caller keeps the subnet, gateway and DNS address of a network guests use
    /// (they hold those from their leases). Applied on the network's thread; returns once it is.
    /// </summary>
    public void Reconfigure(NetworkOptions next)
    {
        using var done = new ManualResetEventSlim();
        Post(() =>
        {
            try
            {
                Options = next with { Outbound = next.Nat ? next.Outbound : OutboundPolicy.Deny };
                Dhcp.Options = Options;
                _dns.Options = Options;
                foreach (var c in _tcp.Values.Where(c => c.Outbound ? MapOutbound(c.Key.RemoteIp, c.Key.RemotePort) == null : !Options.Nat).ToList())
                {
                    c.Abort();
                    Interlocked.Increment(ref _refusedByPolicy);
                }
                foreach (var u in _udp.Values.Where(u => MapOutbound(u.Key.RemoteIp, u.Key.RemotePort) == null).ToList())
                {
                    u.Close();
                    _udp.Remove(u.Key);
                    Interlocked.Increment(ref _refusedByPolicy);
                }
                OpenUdpFlows = _udp.Count;
            }
            finally { done.Set(); }
        });
        if (!_stopping) done.Wait(TimeSpan.FromSeconds(10));
    }

    // ---- event loop --------------------------------------------------------------------------------------

    internal void Post(Action a)
    {
        _work.Enqueue(a);
        _signal.Set();
    }

    internal void SendFrame(byte[] frame) => Port.Send(frame);

    private readonly List<NatTcpConnection> _ackLater = new();

    /// <summary>The connection owes the guest an ACK, sent once the current batch of frames is handled.</summary>
    internal void AckLater(NatTcpConnection c) => _ackLater.Add(c);

    /// <summary>Sends the delayed ACKs that are due; the others wait (see <see cref="NatTcpConnection.DelayedAckMs"/>).</summary>
    private void FlushDelayedAcks()
    {
        if (_ackLater.Count == 0) return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        _ackLater.RemoveAll(c => c.FlushAck(now));
    }

    private int DelayedAckWaitMs()
    {
        long due = _ackLater.Min(c => c.AckDue);
        if (due == long.MaxValue) return 0;
        long ticks = due - System.Diagnostics.Stopwatch.GetTimestamp();
        return ticks <= 0 ? 0 : (int)Math.Min(100, (ticks * 1000 + System.Diagnostics.Stopwatch.Frequency - 1) / System.Diagnostics.Stopwatch.Frequency);
    }
    internal void CountHostRefused() => Interlocked.Increment(ref _refusedByHost);
    internal void CountConnection() => Interlocked.Increment(ref _connections);
    internal void CountUdpDropped() => Interlocked.Increment(ref _udpDropped);
    internal void CountFastRetransmit() => Interlocked.Increment(ref _fastRetransmits);
    internal void CountTcpOutOfOrder() => Interlocked.Increment(ref _tcpOutOfOrder);
    internal void CountTcpDuplicate() => Interlocked.Increment(ref _tcpDuplicates);
    internal void CountUdpPortUnreachable() => Interlocked.Increment(ref _udpUnreachable);

    internal void Remove(NatTcpConnection c)
    {
        _tcp.Remove(c.Key);
        OpenConnections = _tcp.Count;
    }

    private void Loop()
    {
        long lastTick = Environment.TickCount64;
        while (!_stopping)
        {
            // idle: sleep until a frame or a socket event (or the next delayed ACK, or the 100 ms housekeeping)
            _signal.WaitOne(_ackLater.Count > 0 ? DelayedAckWaitMs()
                : _tcp.Count > 0 || _udp.Count > 0 || _reassembly.Pending > 0 || _tftp?.Busy == true ? 100 : Timeout.Infinite);
            for (int budget = 0; budget < 1024 && Port.TryReceive(out var f); budget++)
            {
                try { HandleFrame(f); }
                catch (Exception) { Interlocked.Increment(ref _ignored); }
            }
            FlushDelayedAcks();
            if (Port.Waiting > 0) _signal.Set();
            while (_work.TryDequeue(out var a))
            {
                try { a(); }
                catch (Exception) { Interlocked.Increment(ref _ignored); }
            }
            long now = Environment.TickCount64;
            if (now - lastTick >= 100)
            {
                lastTick = now;
                foreach (var c in _tcp.Values.ToList()) c.Tick(now);
                ExpireUdpFlows(now);
                _reassembly.Expire(now);
                Interlocked.Exchange(ref _fragmentsDropped, _reassembly.Dropped);
                _tftp?.Tick(now);
            }
        }
        foreach (var c in _tcp.Values.ToList()) c.Close(reset: true);
        foreach (var u in _udp.Values) u.Close();
        _udp.Clear();
    }

    private void HandleFrame(byte[] f)
    {
        ushort type = Packets.EtherType(f);
        if (type == Packets.EtherTypeArp) { HandleArp(f); return; }
        if (Ipv4View.IsFragment(f))
        {
            // a datagram larger than one frame: handled once all its fragments are here (bounded, see Ipv4Reassembly)
            var whole = _reassembly.Add(f, Environment.TickCount64);
            Interlocked.Exchange(ref _fragmentsDropped, _reassembly.Dropped);
            Interlocked.Exchange(ref _reassembled, _reassembly.Reassembled);
            if (whole == null) return;
            f = whole;
        }
        if (!Ipv4View.TryParse(f, out var ip))
        {
            Interlocked.Increment(ref _ignored);
            return;
        }
        if (ip.Source != 0 && InSubnet(ip.Source)) _arp[ip.Source] = ip.SourceMac.ToArray();
        var payload = ip.Payload;
        switch (ip.Protocol)
        {
            case Packets.ProtoUdp:
                HandleUdp(ip, payload);
                break;
            case Packets.ProtoIcmp:
                HandleIcmp(ip, payload);
                break;
            case Packets.ProtoTcp:
                HandleTcp(ip, payload);
                break;
            default:
                Interlocked.Increment(ref _ignored);
                break;
        }
    }

    private bool InSubnet(uint a) => (a & Options.SubnetMask) == Options.Subnet;
    private bool IsOurs(uint a) => a == Options.Gateway || a == Options.Dns;

    private void HandleArp(byte[] f)
    {
        if (f.Length < Packets.EthernetHeader + 28) return;
        var a = f.AsSpan(Packets.EthernetHeader);
        ushort op = BinaryPrimitives.ReadUInt16BigEndian(a[6..]);
        uint sender = BinaryPrimitives.ReadUInt32BigEndian(a[14..]), target = BinaryPrimitives.ReadUInt32BigEndian(a[24..]);
        if (sender != 0 && InSubnet(sender)) _arp[sender] = a.Slice(8, 6).ToArray();
        if (op == 1 && IsOurs(target))
            SendFrame(Packets.Arp(a.Slice(8, 6), Options.GatewayMac, 2, Options.GatewayMac, target, a.Slice(8, 6), sender));
    }

    private void HandleIcmp(Ipv4View ip, ReadOnlySpan<byte> icmp)
    {
        if (icmp.Length < 8 || icmp[0] != 8) return; // echo requests only
        if (!IsOurs(ip.Destination))
        {
            if (!InSubnet(ip.Destination)) Interlocked.Increment(ref _refusedByPolicy);
            return;
        }
        var reply = Packets.Ipv4Frame(ip.SourceMac, Options.GatewayMac, ip.Destination, ip.Source, Packets.ProtoIcmp, icmp.Length);
        var r = reply.AsSpan(Packets.EthernetHeader + Packets.Ipv4Header);
        icmp.CopyTo(r);
        r[0] = 0; r[2] = 0; r[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(r[2..], InternetChecksum.Compute(r));
        foreach (var part in Packets.Fragment(reply)) SendFrame(part); // a reassembled big ping is answered in fragments
    }

    private void HandleUdp(Ipv4View ip, ReadOnlySpan<byte> udp)
    {
        if (udp.Length < Packets.UdpHeader) return;
        ushort sport = BinaryPrimitives.ReadUInt16BigEndian(udp), dport = BinaryPrimitives.ReadUInt16BigEndian(udp[2..]);
        int len = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(udp[4..]), udp.Length);
        if (len < Packets.UdpHeader) return;
        var data = udp[Packets.UdpHeader..len];
        if (dport == DhcpServer.ServerPort && Options.DhcpEnabled)
        {
            var reply = Dhcp.Handle(data);
            if (reply == null) return;
            bool bcast = reply.Broadcast || reply.Destination == 0xFFFF_FFFF;
            SendFrame(Packets.Udp(bcast ? Packets.Broadcast : reply.ClientMac, Options.GatewayMac, Options.Gateway, DhcpServer.ServerPort,
                bcast ? 0xFFFF_FFFF : reply.Destination, DhcpServer.ClientPort, reply.Message));
            return;
        }
        if (_tftp != null && ip.Destination == Options.Gateway && (dport == 69 || dport >= 50000 && dport <= 60000))
        {
            _tftp.Handle(ip.Source, sport, dport, ip.SourceMac.ToArray(), data);
            return;
        }
        if (dport == 53 && ip.Destination == Options.Dns)
        {
            byte[] query = data.ToArray(), mac = ip.SourceMac.ToArray();
            uint src = ip.Source;
            _ = AnswerDnsAsync(query, mac, src, sport);
            return;
        }
        NatUdp(ip, sport, dport, data);
    }

    /// <summary>
    /// A guest datagram for the NAT: broadcast, multicast and other addresses of the subnet are not ours (ignored);
    /// a destination the outbound policy refuses gets ICMP "administratively prohibited" from the gateway (counted,
    /// nothing leaves the process); otherwise the datagram goes out on the flow's host socket.
    /// </summary>
    private void NatUdp(Ipv4View ip, ushort sport, ushort dport, ReadOnlySpan<byte> data)
    {
        uint dst = ip.Destination;
        if (dst >= 0xE000_0000 || InSubnet(dst) && dst != Options.Gateway)
        {
            Interlocked.Increment(ref _ignored);
            return;
        }
        var key = new ConnectionKey(ip.Source, sport, dst, dport);
        var quote = ip.Ip[..Math.Min(ip.HeaderLength + 8, ip.TotalLength)];
        if (!_udp.TryGetValue(key, out var flow))
        {
            var target = MapOutbound(dst, dport);
            if (target == null)
            {
                Interlocked.Increment(ref _refusedByPolicy);
                SendFrame(Packets.IcmpUnreachable(ip.SourceMac, Options.GatewayMac, Options.Gateway, ip.Source, Packets.IcmpAdminProhibited, quote));
                return;
            }
            if (_udp.Count >= Options.MaxUdpFlows)
            {
                var oldest = _udp.Values.MinBy(u => u.LastActiveMs)!;
                oldest.Close();
                _udp.Remove(oldest.Key);
            }
            try { flow = new NatUdpFlow(this, key, ip.SourceMac.ToArray(), target); }
            catch (Exception)
            {
                Interlocked.Increment(ref _udpDropped);
                return;
            }
            _udp[key] = flow;
            OpenUdpFlows = _udp.Count;
            Interlocked.Increment(ref _udpFlows);
        }
        flow.FromGuest(data, quote);
    }

    private void ExpireUdpFlows(long now)
    {
        if (_udp.Count == 0) return;
        long idle = (long)Options.UdpIdleTimeout.TotalMilliseconds;
        foreach (var u in _udp.Values.Where(u => now - u.LastActiveMs >= idle).ToList())
        {
            u.Close();
            _udp.Remove(u.Key);
        }
        OpenUdpFlows = _udp.Count;
    }

    private async Task AnswerDnsAsync(byte[] query, byte[] mac, uint src, ushort sport)
    {
        var answer = await _dns.AnswerAsync(query).ConfigureAwait(false);
        if (answer != null) Post(() => SendFrame(Packets.Udp(mac, Options.GatewayMac, Options.Dns, 53, src, sport, answer)));
    }

    private void HandleTcp(Ipv4View ip, ReadOnlySpan<byte> t)
    {
        if (!TcpSegment.TryParse(t, out var seg)) { Interlocked.Increment(ref _ignored); return; }
        var key = new ConnectionKey(ip.Source, seg.SourcePort, ip.Destination, seg.DestinationPort);
        if (_tcp.TryGetValue(key, out var c)) { c.OnGuestSegment(seg); return; }
        if (seg.Has(TcpFlags.Rst)) return;
        byte[] mac = ip.SourceMac.ToArray();
        if (!seg.Has(TcpFlags.Syn) || seg.Has(TcpFlags.Ack))
        {
            Reset(mac, key, seg); // nothing known about this connection
            return;
        }
        var target = MapOutbound(ip.Destination, seg.DestinationPort);
        if (target == null)
        {
            Interlocked.Increment(ref _refusedByPolicy);
            Reset(mac, key, seg);
            return;
        }
        c = new NatTcpConnection(this, key, mac);
        _tcp[key] = c;
        OpenConnections = _tcp.Count;
        c.StartOutbound(seg, target);
    }

    private void Reset(byte[] mac, ConnectionKey key, TcpSegment seg)
    {
        uint seq = seg.Has(TcpFlags.Ack) ? seg.Ack : 0;
        uint ack = seg.Seq + (uint)seg.Payload.Length + (seg.Has(TcpFlags.Syn) ? 1u : 0) + (seg.Has(TcpFlags.Fin) ? 1u : 0);
        SendFrame(Packets.Tcp(mac, Options.GatewayMac, key.RemoteIp, key.RemotePort, key.GuestIp, key.GuestPort, seq, ack,
            TcpFlags.Rst | TcpFlags.Ack, 0, default));
    }

    /// <summary>Where a guest connection to <paramref name="dst"/>:<paramref name="port"/> goes on the host, or null when refused.</summary>
    private IPEndPoint? MapOutbound(uint dst, ushort port)
    {
        if (!Options.Nat || Options.Outbound == OutboundPolicy.Deny) return null;
        if (dst == Options.Gateway) return new IPEndPoint(IPAddress.Loopback, port);
        if (Options.Outbound == OutboundPolicy.Allow && !InSubnet(dst) && dst != 0 && dst < 0xE000_0000)
            return new IPEndPoint(Packets.ToAddress(dst), port);
        return null;
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        lock (_listeners)
        {
            foreach (var l in _listeners) l.Stop();
            _listeners.Clear();
        }
        _signal.Set();
        _thread.Join(2000);
        Switch.Disconnect(Port);
    }
}

/// <summary>A port forward that cannot be set up (port taken, privileged, bad address).</summary>
public sealed class PortForwardException(string message) : Exception(message);

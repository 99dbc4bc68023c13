using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VmPortal.Network.Tests;

/// <summary>
/// The NAT's UDP (NatUdpFlow): a guest made of test code on a real switch, real UDP sockets on
/// 127.0.0.1 on the host side, the default loopback policy (other destinations are refused inside the NAT and never
/// reach a socket).
/// </summary>
public class UdpNatTests
{
    private static (UserNetwork, FakeGuest) Network(NetworkOptions? options = null)
    {
        var sw = new VirtualSwitch("u");
        var net = new UserNetwork(sw, options);
        return (net, new FakeGuest(sw, 1));
    }

    private static UdpClient HostSocket() => new(new IPEndPoint(IPAddress.Loopback, 0));
    private static ushort PortOf(UdpClient u) => (ushort)((IPEndPoint)u.Client.LocalEndPoint!).Port;

    /// <summary>A UDP datagram the guest received: addresses, ports, payload and whether its checksum holds.</summary>
    private sealed record Udp(uint Src, uint Dst, ushort SrcPort, ushort DstPort, byte[] Data, bool ChecksumOk);

    private static bool TryUdp(byte[] f, out Udp u)
    {
        u = null!;
        if (!Ipv4View.TryParse(f, out var ip) || ip.Protocol != Packets.ProtoUdp) return false;
        var s = ip.Payload;
        int len = BinaryPrimitives.ReadUInt16BigEndian(s[4..]);
        bool ok = InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(ip.Source, ip.Destination, Packets.ProtoUdp, len), s[..len])) == 0;
        u = new Udp(ip.Source, ip.Destination, BinaryPrimitives.ReadUInt16BigEndian(s), BinaryPrimitives.ReadUInt16BigEndian(s[2..]), s[8..len].ToArray(), ok);
        return true;
    }

    private static async Task<Udp> WaitUdp(FakeGuest g, ushort guestPort, int timeoutMs = 5000)
    {
        var f = await g.WaitFor(f => TryUdp(f, out var u) && u.DstPort == guestPort, timeoutMs);
        TryUdp(f, out var r);
        return r;
    }

    /// <summary>ICMP destination unreachable to the guest: (source, code, quoted destination address and port).</summary>
    private static async Task<(uint Src, byte Code, uint QuotedDst, ushort QuotedDstPort)> WaitUnreachable(FakeGuest g, int timeoutMs = 5000)
    {
        var f = await g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoIcmp && v.Payload[0] == 3, timeoutMs);
        Assert.True(Ipv4View.TryParse(f, out var ip));
        var icmp = ip.Payload;
        Assert.Equal(0, InternetChecksum.Compute(icmp));
        var inner = icmp[8..];
        Assert.Equal(Packets.ProtoUdp, inner[9]);
        Assert.Equal(g.Ip, BinaryPrimitives.ReadUInt32BigEndian(inner[12..]));
        int hl = (inner[0] & 15) * 4;
        return (ip.Source, icmp[1], BinaryPrimitives.ReadUInt32BigEndian(inner[16..]), BinaryPrimitives.ReadUInt16BigEndian(inner[(hl + 2)..]));
    }

    private static async Task WaitUntil(Func<bool> condition, int ms = 5000)
    {
        for (int i = 0; i < ms / 50 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }

    [Fact]
    public async Task GuestUdpToTheGatewayReachesTheHostLoopbackAndRepliesComeBackFragmentedWhenLarge()
    {
        var (net, g) = Network();
        using var _ = net;
        using var host = HostSocket();
        g.SendUdp(FakeGuest.Gateway, 41000, PortOf(host), "hello udp"u8.ToArray());
        var got = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("hello udp", Encoding.ASCII.GetString(got.Buffer));
        Assert.True(IPAddress.IsLoopback(got.RemoteEndPoint.Address)); // sent from the host's loopback

        await host.SendAsync("hello guest"u8.ToArray(), got.RemoteEndPoint);
        var reply = await WaitUdp(g, 41000);
        Assert.Equal((FakeGuest.Gateway, PortOf(host), g.Ip), (reply.Src, reply.SrcPort, reply.Dst));
        Assert.Equal("hello guest", Encoding.ASCII.GetString(reply.Data));
        Assert.True(reply.ChecksumOk);

        // A second datagram of the same flow uses the same host socket.
        g.SendUdp(FakeGuest.Gateway, 41000, PortOf(host), "again"u8.ToArray());
        var again = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(got.RemoteEndPoint, again.RemoteEndPoint);
        Assert.Equal(1, net.Counters.UdpFlows);
        Assert.Equal(1, net.OpenUdpFlows);

        // 4000 bytes do not fit one frame: IP fragments of at most 1500 bytes, offsets in 8-byte units, one id.
        var big = new byte[4000];
        new Random(2).NextBytes(big);
        await host.SendAsync(big, got.RemoteEndPoint);
        var frags = new List<byte[]>();
        while (frags.Count == 0 || (BinaryPrimitives.ReadUInt16BigEndian(frags[^1].AsSpan(20)) & 0x2000) != 0)
            frags.Add(await g.WaitFor(f => Ipv4View.IsFragment(f)));
        Assert.Equal(3, frags.Count);
        var ipPayload = new MemoryStream();
        foreach (var f in frags)
        {
            var h = f.AsSpan(14, 20);
            Assert.True(f.Length <= 14 + 1500);
            Assert.Equal(0, InternetChecksum.Compute(h));
            Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(frags[0].AsSpan(18)), BinaryPrimitives.ReadUInt16BigEndian(h[4..]));
            Assert.Equal(ipPayload.Length, (BinaryPrimitives.ReadUInt16BigEndian(h[6..]) & 0x1FFF) * 8);
            ipPayload.Write(f.AsSpan(34, BinaryPrimitives.ReadUInt16BigEndian(h[2..]) - 20));
        }
        var udp = ipPayload.ToArray();
        Assert.Equal(8 + big.Length, BinaryPrimitives.ReadUInt16BigEndian(udp.AsSpan(4)));
        Assert.Equal(0, InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(FakeGuest.Gateway, g.Ip, Packets.ProtoUdp, udp.Length), udp)));
        Assert.Equal(big, udp[8..]);
    }

    [Fact]
    public async Task AClosedHostPortBecomesIcmpPortUnreachableAndOtherSendersAreNotLetIn()
    {
        var (net, g) = Network();
        using var _ = net;
        var closed = HostSocket();
        ushort closedPort = PortOf(closed);
        closed.Dispose(); // nothing listens there now
        g.SendUdp(FakeGuest.Gateway, 41001, closedPort, "anyone?"u8.ToArray());
        var (src, code, quotedDst, quotedPort) = await WaitUnreachable(g);
        Assert.Equal((FakeGuest.Gateway, Packets.IcmpPortUnreachable), (src, code));
        Assert.Equal((FakeGuest.Gateway, closedPort), (quotedDst, quotedPort));
        Assert.Equal(1, net.Counters.UdpPortUnreachable);

        // A flow answers only its own peer: a datagram from another host socket to the flow's socket is not passed on.
        using var host = HostSocket();
        g.SendUdp(FakeGuest.Gateway, 41002, PortOf(host), "hi"u8.ToArray());
        var flowEnd = (await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5))).RemoteEndPoint;
        using (var stranger = HostSocket()) await stranger.SendAsync("intruder"u8.ToArray(), flowEnd);
        await host.SendAsync("peer"u8.ToArray(), flowEnd);
        var reply = await WaitUdp(g, 41002);
        Assert.Equal("peer", Encoding.ASCII.GetString(reply.Data));
        await Task.Delay(200);
        Assert.DoesNotContain(g.Unclaimed(), f => TryUdp(f, out var u) && Encoding.ASCII.GetString(u.Data) == "intruder");
    }

    [Fact]
    public async Task UnderTheLoopbackPolicyOtherDestinationsAreRefusedInsideTheNatWithoutASocket()
    {
        var (net, g) = Network();
        using var _ = net;
        uint[] elsewhere = { 0xC000_0201 /* 192.0.2.1 */, 0x0808_0808, 0x7F00_0001 /* the guest's own loopback range, not the host's */ };
        foreach (uint dst in elsewhere)
        {
            g.SendUdp(dst, 41003, 53, new byte[] { 1, 2, 3 });
            var (src, code, quotedDst, quotedPort) = await WaitUnreachable(g);
            Assert.Equal((FakeGuest.Gateway, Packets.IcmpAdminProhibited), (src, code)); // from the router
            Assert.Equal((dst, (ushort)53), (quotedDst, quotedPort));
        }
        Assert.Equal(3, net.Counters.RefusedByPolicy);
        Assert.Equal(0, net.Counters.UdpFlows); // no host socket was opened

        // Broadcast, multicast and other guests' addresses are not the NAT's: ignored, no answer, not counted.
        g.SendUdp(0xFFFF_FFFF, 41004, 9, new byte[] { 1 });
        g.SendUdp(0xE000_00FB, 41004, 5353, new byte[] { 1 });
        g.SendUdp(0x0A00_0210, 41004, 9, new byte[] { 1 });
        await Task.Delay(300);
        Assert.Equal(3, net.Counters.RefusedByPolicy);
        Assert.DoesNotContain(g.Unclaimed(), f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoIcmp);
    }

    [Fact]
    public async Task DenyRefusesUdpToTheHostLoopbackToo()
    {
        var (net, g) = Network(new NetworkOptions { Outbound = OutboundPolicy.Deny });
        using var _ = net;
        using var host = HostSocket();
        g.SendUdp(FakeGuest.Gateway, 41005, PortOf(host), "x"u8.ToArray());
        Assert.Equal(Packets.IcmpAdminProhibited, (await WaitUnreachable(g)).Code);
        Assert.Equal(1, net.Counters.RefusedByPolicy);
        Assert.Equal(0, host.Available);
    }

    [Fact]
    public async Task AnIdleFlowClosesItsSocketAndTheNextDatagramOpensANewOne()
    {
        var (net, g) = Network(new NetworkOptions { UdpIdleTimeout = TimeSpan.FromMilliseconds(300) });
        using var _ = net;
        using var host = HostSocket();
        g.SendUdp(FakeGuest.Gateway, 41006, PortOf(host), "one"u8.ToArray());
        var first = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, net.Counters.UdpFlows); // (not OpenUdpFlows: on a loaded machine 300 ms may already have passed)
        await WaitUntil(() => net.OpenUdpFlows == 0);
        // the flow's socket is closed: a late reply to it is refused by the host's kernel, not delivered
        await host.SendAsync("late"u8.ToArray(), first.RemoteEndPoint);
        g.SendUdp(FakeGuest.Gateway, 41006, PortOf(host), "two"u8.ToArray());
        var second = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("two", Encoding.ASCII.GetString(second.Buffer));
        Assert.Equal(2, net.Counters.UdpFlows);
        await Task.Delay(100);
        Assert.DoesNotContain(g.Unclaimed(), f => TryUdp(f, out var u) && Encoding.ASCII.GetString(u.Data) == "late");
    }

    [Fact]
    public async Task FlowsAreBounded()
    {
        var (net, g) = Network(new NetworkOptions { MaxUdpFlows = 4 });
        using var _ = net;
        using var host = HostSocket();
        for (ushort p = 42000; p < 42010; p++) g.SendUdp(FakeGuest.Gateway, p, PortOf(host), "f"u8.ToArray());
        for (int i = 0; i < 10; i++) await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(10, net.Counters.UdpFlows);
        Assert.Equal(4, net.OpenUdpFlows);
    }

    [Fact]
    public async Task GuestFragmentsAreReassembledInAnyOrderIntoOneDatagramOnTheHost()
    {
        var (net, g) = Network();
        using var _ = net;
        using var host = HostSocket();
        var data = new byte[3000];
        new Random(7).NextBytes(data);
        var frags = Packets.Fragment(Packets.Udp(FakeGuest.GatewayMac, g.Mac, g.Ip, 42100, FakeGuest.Gateway, PortOf(host), data)).ToList();
        Assert.Equal(3, frags.Count);
        frags.Reverse(); // the last fragment first: the end is known before the start
        foreach (var f in frags) g.Port.Send(f);
        var got = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(data, got.Buffer);

        // the largest datagram UDP over IPv4 carries: 65,507 bytes in 45 fragments
        var max = new byte[65507];
        new Random(8).NextBytes(max);
        frags = Packets.Fragment(Packets.Udp(FakeGuest.GatewayMac, g.Mac, g.Ip, 42100, FakeGuest.Gateway, PortOf(host), max)).ToList();
        Assert.Equal(45, frags.Count);
        foreach (var f in frags) g.Port.Send(f);
        got = await host.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(max, got.Buffer);
        Assert.Equal((2L, 0L), (net.Counters.IpReassembled, net.Counters.IpFragmentsDropped));
        Assert.Equal(1, net.Counters.UdpFlows); // one flow: the reassembled datagrams are ordinary ones

        // an incomplete datagram reaches nothing (its fragments wait for the timeout)
        frags = Packets.Fragment(Packets.Udp(FakeGuest.GatewayMac, g.Mac, g.Ip, 42100, FakeGuest.Gateway, PortOf(host), data)).ToList();
        g.Port.Send(frags[0]);
        g.Port.Send(frags[2]);
        await Task.Delay(200);
        Assert.Equal(0, host.Available);
        Assert.Equal(2, net.Counters.IpReassembled);
    }

    [Fact]
    public async Task AFragmentedPingToTheGatewayIsAnsweredWholeInFragments()
    {
        var (net, g) = Network();
        using var _ = net;
        var echo = new byte[8 + 4000];
        echo[0] = 8; // echo request
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(4), 0x1234);
        new Random(9).NextBytes(echo.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), InternetChecksum.Compute(echo));
        var request = Packets.Ipv4Frame(FakeGuest.GatewayMac, g.Mac, g.Ip, FakeGuest.Gateway, Packets.ProtoIcmp, echo.Length);
        echo.CopyTo(request.AsSpan(34));
        foreach (var f in Packets.Fragment(request)) g.Port.Send(f);
        var reply = new Ipv4Reassembly();
        byte[]? whole = null;
        while (whole == null) whole = reply.Add(await g.WaitFor(f => Ipv4View.IsFragment(f)), 0);
        Assert.True(Ipv4View.TryParse(whole, out var ip));
        Assert.Equal((FakeGuest.Gateway, g.Ip, Packets.ProtoIcmp), (ip.Source, ip.Destination, ip.Protocol));
        var icmp = ip.Payload;
        Assert.Equal(0, icmp[0]); // echo reply
        Assert.Equal(0, InternetChecksum.Compute(icmp));
        Assert.Equal(echo.AsSpan(4).ToArray(), icmp[4..].ToArray());
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VmPortal.Network.Tests;

/// <summary>
/// The network services driven by a guest made of test code (<see cref="FakeGuest"/>) on a real switch, with real
/// sockets on 127.0.0.1 on the host side. Every test uses the default loopback policy.
/// </summary>
public class UserNetworkTests
{
    private static (VirtualSwitch, UserNetwork, FakeGuest) Network(NetworkOptions? options = null)
    {
        var sw = new VirtualSwitch("t");
        var net = new UserNetwork(sw, options);
        return (sw, net, new FakeGuest(sw, 1));
    }

    private static TcpListener Listen()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return l;
    }

    private static ushort PortOf(TcpListener l) => (ushort)((IPEndPoint)l.LocalEndpoint).Port;

    /// <summary>SYN → SYN-ACK → ACK from the guest's port <paramref name="sport"/> to 10.0.2.2:<paramref name="dport"/>; returns (guest next seq, NAT next seq).</summary>
    private static async Task<(uint, uint)> Handshake(FakeGuest g, ushort sport, ushort dport, ushort window = 65535)
    {
        g.SendTcp(FakeGuest.Gateway, sport, dport, 1000, 0, TcpFlags.Syn, window, mss: 1460);
        var synAck = await g.WaitTcp(sport);
        Assert.True(synAck.Has(TcpFlags.Syn) && synAck.Has(TcpFlags.Ack), synAck.Flags.ToString());
        Assert.Equal(1001u, synAck.Ack);
        Assert.True(synAck.ChecksumOk);
        g.SendTcp(FakeGuest.Gateway, sport, dport, 1001, synAck.Seq + 1, TcpFlags.Ack, window);
        return (1001, synAck.Seq + 1);
    }

    [Fact]
    public async Task ArpAndPingOfTheGatewayAndDnsAddressesAreAnswered()
    {
        var (_, net, g) = Network();
        using var _ = net;
        g.Port.Send(Packets.Arp(Packets.Broadcast, g.Mac, 1, g.Mac, g.Ip, new byte[6], FakeGuest.Gateway));
        var arp = await g.WaitFor(f => Packets.EtherType(f) == Packets.EtherTypeArp);
        Assert.Equal(FakeGuest.GatewayMac, arp.AsSpan(22, 6).ToArray());
        Assert.Equal(FakeGuest.Gateway, BinaryPrimitives.ReadUInt32BigEndian(arp.AsSpan(28)));

        foreach (uint dst in new[] { FakeGuest.Gateway, FakeGuest.Dns })
        {
            var echo = Packets.Ipv4Frame(FakeGuest.GatewayMac, g.Mac, g.Ip, dst, Packets.ProtoIcmp, 12);
            var icmp = echo.AsSpan(34);
            icmp[0] = 8; icmp[5] = 7; icmp[7] = 3; "ping"u8.CopyTo(icmp[8..]);
            BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp));
            g.Port.Send(echo);
            var reply = await g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoIcmp);
            Assert.True(Ipv4View.TryParse(reply, out var ip));
            Assert.Equal(dst, ip.Source);
            Assert.Equal(0, ip.Payload[0]);
            Assert.Equal("ping", Encoding.ASCII.GetString(ip.Payload.Slice(8, 4)));
            Assert.Equal(0, InternetChecksum.Compute(ip.Payload));
        }
    }

    [Fact]
    public async Task DhcpOverTheSwitchLeasesTheFirstAddress()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6; m[10] = 0x80;
        g.Mac.CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        m[240] = 53; m[241] = 1; m[242] = DhcpServer.Discover; m[243] = 255;
        g.SendUdp(0xFFFF_FFFF, 68, 67, m, src: 0);
        var offer = await g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoUdp);
        Assert.Equal(Packets.Broadcast, offer[..6]);
        Assert.Equal(new byte[] { 10, 0, 2, 15 }, offer.AsSpan(42 + 16, 4).ToArray());
        Assert.Single(net.Leases);
    }

    [Fact]
    public async Task DnsAnswersHostsFileLoopbackNamesWithTheGatewayAndNothingElse()
    {
        string hosts = Path.GetTempFileName();
        File.WriteAllText(hosts, "127.0.0.1 localhost\n127.0.1.1 myhost.example myhost # comment\n192.0.2.7 elsewhere\n");
        try
        {
            var (_, net, g) = Network(new NetworkOptions { HostsFile = hosts });
            using var _ = net;
            async Task<byte[]> Ask(string name, ushort id)
            {
                var q = new List<byte> { (byte)(id >> 8), (byte)id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
                foreach (var label in name.Split('.')) { q.Add((byte)label.Length); q.AddRange(Encoding.ASCII.GetBytes(label)); }
                q.AddRange(new byte[] { 0, 0, 1, 0, 1 });
                g.SendUdp(FakeGuest.Dns, 5353, 53, q.ToArray());
                var r = await g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoUdp && f[42] == (byte)(id >> 8) && f[43] == (byte)id);
                return r.AsSpan(42).ToArray();
            }
            var a = await Ask("localhost", 1);
            Assert.Equal(0, a[3] & 0xF);
            Assert.Equal(1, a[7]);
            Assert.Equal(new byte[] { 10, 0, 2, 2 }, a[^4..]);
            Assert.Equal(1, (await Ask("myhost", 2))[7]);
            var other = await Ask("elsewhere", 3); // in the hosts file but not a loopback address
            Assert.Equal(3, other[3] & 0xF);
            Assert.Equal(0, other[7]);
            Assert.Equal(3, (await Ask("example.com", 4))[3] & 0xF);
            g.SendUdp(FakeGuest.Dns, 5353, 53, new byte[] { 1, 2, 3 });
            await Task.Delay(200);
            Assert.Equal(1, net.Counters.DnsMalformed);
        }
        finally { File.Delete(hosts); }
    }

    [Fact]
    public async Task GuestTcpToTheGatewayReachesTheHostLoopbackBothWaysWithHalfClose()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40001, PortOf(listener));
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        var hs = host.GetStream();

        g.SendTcp(FakeGuest.Gateway, 40001, PortOf(listener), gs, ns, TcpFlags.Ack | TcpFlags.Psh, data: "hello host"u8.ToArray());
        gs += 10;
        var buf = new byte[100];
        int n = await hs.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("hello host", Encoding.ASCII.GetString(buf, 0, n));
        var ack = await g.WaitTcp(40001, t => t.Ack == gs);
        Assert.True(ack.Has(TcpFlags.Ack));

        // The guest half-closes: the host reads end of stream but can still send.
        g.SendTcp(FakeGuest.Gateway, 40001, PortOf(listener), gs, ns, TcpFlags.Ack | TcpFlags.Fin);
        gs++;
        Assert.Equal(0, await hs.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        await hs.WriteAsync("hello guest"u8.ToArray());
        var data = await g.WaitTcp(40001, t => t.Data.Length > 0);
        Assert.Equal("hello guest", Encoding.ASCII.GetString(data.Data));
        Assert.Equal(ns, data.Seq);
        Assert.Equal(gs, data.Ack); // our FIN is acknowledged
        Assert.True(data.ChecksumOk);
        ns += (uint)data.Data.Length;
        g.SendTcp(FakeGuest.Gateway, 40001, PortOf(listener), gs, ns, TcpFlags.Ack);

        host.Client.Shutdown(SocketShutdown.Send); // the host closes too: FIN to the guest
        var fin = await g.WaitTcp(40001, t => t.Has(TcpFlags.Fin));
        Assert.Equal(ns, fin.Seq);
        g.SendTcp(FakeGuest.Gateway, 40001, PortOf(listener), gs, ns + 1, TcpFlags.Ack);
        await WaitUntil(() => net.OpenConnections == 0);
        Assert.Equal(1, net.Counters.TcpConnections);
        listener.Stop();
    }

    [Fact]
    public async Task TheGuestsWindowIsRespectedAndReopensWhenItAcknowledges()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40002, PortOf(listener), window: 3000);
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        var payload = new byte[20_000];
        new Random(1).NextBytes(payload);
        await host.GetStream().WriteAsync(payload);

        var received = new MemoryStream();
        for (int round = 0; received.Length < payload.Length; round++)
        {
            Assert.True(round < 100, "stalled");
            // Take what arrives until the window (3000 bytes) is full and nothing more comes.
            long before = received.Length;
            while (true)
            {
                FakeGuest.Tcp seg;
                try { seg = await g.WaitTcp(40002, t => t.Data.Length > 0, timeoutMs: 300); }
                catch (TimeoutException) { break; }
                uint expected = ns + (uint)received.Length;
                // A retransmission of what already arrived (the NAT's timer ran while we waited out the 300 ms):
                // legitimate, and not new data.
                if ((int)(seg.Seq - expected) < 0 && (int)(seg.Seq + (uint)seg.Data.Length - expected) <= 0) continue;
                // A retransmission that starts in what already arrived and goes on past it (seen once: 2000 bytes
                // before): only its new part counts, and the part it repeats must be the same bytes.
                int repeated = (int)(seg.Seq - expected) < 0 ? (int)(expected - seg.Seq) : 0;
                if (repeated > 0)
                    Assert.Equal(received.ToArray().AsSpan((int)received.Length - repeated).ToArray(), seg.Data.AsSpan(0, repeated).ToArray());
                Assert.Equal(expected, seg.Seq + (uint)repeated);
                received.Write(seg.Data.AsSpan(repeated));
                Assert.True(received.Length - before <= 3000, $"window overrun: {received.Length - before} bytes unacknowledged");
            }
            Assert.True(received.Length > before, "nothing arrived although the window was open");
            g.SendTcp(FakeGuest.Gateway, 40002, PortOf(listener), gs, ns + (uint)received.Length, TcpFlags.Ack, window: 3000);
        }
        Assert.Equal(payload, received.ToArray());
        listener.Stop();
    }

    [Fact]
    public async Task AHostThatRefusesGetsTheGuestAReset()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var l = Listen();
        ushort closedPort = PortOf(l);
        l.Stop(); // nothing listens there now
        g.SendTcp(FakeGuest.Gateway, 40003, closedPort, 5000, 0, TcpFlags.Syn);
        var rst = await g.WaitTcp(40003);
        Assert.True(rst.Has(TcpFlags.Rst));
        Assert.Equal(5001u, rst.Ack);
        Assert.Equal(1, net.Counters.RefusedByHost);
        // the services thread forgets the connection just after it sent the reset
        for (int i = 0; i < 100 && net.OpenConnections != 0; i++) await Task.Delay(20);
        Assert.Equal(0, net.OpenConnections);
    }

    [Fact]
    public async Task UnderTheLoopbackPolicyOtherAddressesAreRefusedInsideTheNat()
    {
        var (_, net, g) = Network();
        using var _ = net;
        foreach (uint dst in new uint[] { 0xC000_0201 /* 192.0.2.1 */, 0x0A00_0209, 0x7F00_0001 })
        {
            g.SendTcp(dst, 40004, 80, 7000, 0, TcpFlags.Syn);
            var rst = await g.WaitTcp(40004);
            Assert.True(rst.Has(TcpFlags.Rst));
            Assert.Equal(dst, rst.Src);
        }
        Assert.Equal(3, net.Counters.RefusedByPolicy);
        Assert.Equal(0, net.Counters.RefusedByHost); // no socket was even tried
        g.SendUdp(0xC000_0201, 40005, 53, new byte[] { 1 });
        await WaitUntil(() => net.Counters.RefusedByPolicy == 4);
    }

    [Fact]
    public async Task DenyRefusesEvenTheHostLoopback()
    {
        var (_, net, g) = Network(new NetworkOptions { Outbound = OutboundPolicy.Deny });
        using var _ = net;
        var listener = Listen();
        g.SendTcp(FakeGuest.Gateway, 40006, PortOf(listener), 1, 0, TcpFlags.Syn);
        Assert.True((await g.WaitTcp(40006)).Has(TcpFlags.Rst));
        Assert.Equal(1, net.Counters.RefusedByPolicy);
        Assert.False(listener.Pending());
        listener.Stop();
    }

    [Fact]
    public async Task AGuestResetResetsTheHostSocket()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40007, PortOf(listener));
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        g.SendTcp(FakeGuest.Gateway, 40007, PortOf(listener), gs, ns, TcpFlags.Rst | TcpFlags.Ack);
        var buf = new byte[10];
        var e = await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int n = await host.GetStream().ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            if (n == 0) throw new IOException("orderly close instead of a reset");
        });
        Assert.IsType<SocketException>(e.InnerException);
        await WaitUntil(() => net.OpenConnections == 0);
        // A segment for the forgotten connection is answered with a reset.
        g.SendTcp(FakeGuest.Gateway, 40007, PortOf(listener), gs, ns, TcpFlags.Ack, data: new byte[] { 1 });
        Assert.True((await g.WaitTcp(40007, t => t.Has(TcpFlags.Rst))).Has(TcpFlags.Rst));
        listener.Stop();
    }

    [Fact]
    public async Task AHostResetBecomesAGuestReset()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        await Handshake(g, 40008, PortOf(listener));
        var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        host.Client.LingerState = new LingerOption(true, 0);
        host.Client.Close(0); // abortive close: the host sends RST
        var got = await g.WaitTcp(40008, t => t.Has(TcpFlags.Rst) || t.Has(TcpFlags.Fin));
        Assert.True(got.Has(TcpFlags.Rst), got.Flags.ToString());
        listener.Stop();
    }

    [Fact]
    public async Task APortForwardReachesAGuestThatOnlyTookItsDhcpLease()
    {
        // An idle system (Debian with sshd) takes its lease and sends nothing else: its source address was never seen,
        // only its DHCP messages from 0.0.0.0. The forward finds the card's MAC through the bound lease.
        var (_, net, g) = Network();
        using var _ = net;
        int port = net.AddPortForward(new PortForward("127.0.0.1", 0, 22, GuestMac: "52:54:00:00:00:01"));
        using (var early = new TcpClient())
        {
            // before the lease: nobody to forward to, the connection is closed at once
            await early.ConnectAsync(IPAddress.Loopback, port);
            Assert.Equal(0, await early.GetStream().ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        }
        byte[] Dhcp(byte type, uint requested)
        {
            var m = new byte[300];
            m[0] = 1; m[1] = 1; m[2] = 6; m[10] = 0x80;
            g.Mac.CopyTo(m, 28);
            BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
            int o = 240;
            m[o++] = 53; m[o++] = 1; m[o++] = type;
            if (requested != 0)
            {
                m[o++] = 50; m[o++] = 4; BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), requested); o += 4;
                m[o++] = 54; m[o++] = 4; BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), FakeGuest.Gateway); o += 4;
            }
            m[o] = 255;
            return m;
        }
        static bool IsUdp(byte[] f) => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoUdp;
        g.SendUdp(0xFFFF_FFFF, 68, 67, Dhcp(DhcpServer.Discover, 0), src: 0);
        await g.WaitFor(IsUdp);
        g.SendUdp(0xFFFF_FFFF, 68, 67, Dhcp(DhcpServer.Request, 0x0A00_020F), src: 0);
        await g.WaitFor(IsUdp);
        Assert.True(net.Leases.Single().Bound);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var syn = await g.WaitTcp(22, t => t.Has(TcpFlags.Syn));
        Assert.Equal((FakeGuest.Gateway, 0x0A00_020Fu), (syn.Src, syn.Dst));
    }

    [Fact]
    public async Task APortForwardOpensAConnectionToTheGuest()
    {
        var (_, net, g) = Network();
        using var _ = net;
        g.Port.Send(Packets.Arp(Packets.Broadcast, g.Mac, 1, g.Mac, g.Ip, new byte[6], FakeGuest.Gateway)); // the NAT learns the guest
        await g.WaitFor(f => Packets.EtherType(f) == Packets.EtherTypeArp);
        int port = net.AddPortForward(new PortForward("127.0.0.1", 0, 22, GuestAddress: "10.0.2.15"));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var syn = await g.WaitTcp(22, t => t.Has(TcpFlags.Syn));
        Assert.Equal(FakeGuest.Gateway, syn.Src);
        g.SendTcp(FakeGuest.Gateway, 22, syn.SrcPort, 9000, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, mss: 1460);
        await g.WaitTcp(22, t => t.Ack == 9001 && !t.Has(TcpFlags.Syn));
        g.SendTcp(FakeGuest.Gateway, 22, syn.SrcPort, 9001, syn.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, data: "SSH-2.0-fake\r\n"u8.ToArray());
        var buf = new byte[64];
        int n = await client.GetStream().ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("SSH-2.0-fake\r\n", Encoding.ASCII.GetString(buf, 0, n));
        await client.GetStream().WriteAsync("ls\n"u8.ToArray());
        var data = await g.WaitTcp(22, t => t.Data.Length > 0);
        Assert.Equal("ls\n", Encoding.ASCII.GetString(data.Data));

        var taken = Assert.Throws<PortForwardException>(() => net.AddPortForward(new PortForward("127.0.0.1", port, 80)));
        Assert.Contains("already in use", taken.Message);
        Assert.Throws<PortForwardException>(() => net.AddPortForward(new PortForward("not-an-address", 0, 80)));
        Assert.Equal(new PortForward("127.0.0.1", 2222, 22), PortForward.Parse("tcp:127.0.0.1:2222-:22"));
        Assert.Equal(new PortForward("127.0.0.1", 8080, 80, "10.0.2.16"), PortForward.Parse("tcp::8080-10.0.2.16:80"));
        Assert.Throws<FormatException>(() => PortForward.Parse("tcp:127.0.0.1:99999-:22"));
    }

    /// <summary>Data segments to the guest's <paramref name="port"/> until none came for 300 ms: the highest sequence end seen.</summary>
    /// <summary>The end of the highest data segment the guest receives from <paramref name="from"/> on. Waits as long
    /// as a loaded machine needs (10 s per segment) until the data reaches <paramref name="expectedEnd"/>, then half a
    /// second more for anything beyond it, so the result is the window the NAT honoured and not how fast it ran.</summary>
    private static async Task<uint> HighestDataEnd(FakeGuest g, ushort port, uint from, uint expectedEnd)
    {
        uint end = from;
        while (true)
        {
            FakeGuest.Tcp seg;
            int wait = (int)(end - expectedEnd) >= 0 ? 500 : 10_000;
            try { seg = await g.WaitTcp(port, t => t.Data.Length > 0, timeoutMs: wait); }
            catch (TimeoutException) { return end; }
            uint e = seg.Seq + (uint)seg.Data.Length;
            if ((int)(e - end) > 0) end = e;
        }
    }

    [Fact]
    public async Task WindowScalingIsOnWhenTheGuestsSynOffersItAndScalesBothWindows()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        ushort port = PortOf(listener);
        g.SendTcp(FakeGuest.Gateway, 40010, port, 1000, 0, TcpFlags.Syn, window: 64240, mss: 1460, wscale: 7);
        var synAck = await g.WaitTcp(40010);
        Assert.True(synAck.Has(TcpFlags.Syn | TcpFlags.Ack));
        Assert.Equal(3, synAck.WindowScale);
        Assert.Equal(65535, synAck.Window); // a SYN's window is never scaled
        uint ns = synAck.Seq + 1;
        // From now on the guest's windows count in units of 2^7: 100 means 12,800 bytes.
        g.SendTcp(FakeGuest.Gateway, 40010, port, 1001, ns, TcpFlags.Ack, window: 100);
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        await host.GetStream().WriteAsync(new byte[40_000]);
        Assert.Equal(ns + 12_800, await HighestDataEnd(g, 40010, ns, ns + 12_800));

        // Ours count in units of 2^3: with 1000 bytes waiting at most, the window says ~256 KiB, beyond 16 bits.
        g.SendTcp(FakeGuest.Gateway, 40010, port, 1001, ns, TcpFlags.Ack | TcpFlags.Psh, window: 100, data: new byte[1000]);
        var ack = await g.WaitTcp(40010, t => t.Ack == 2001);
        Assert.InRange(ack.Window << 3, 200_000, 256 * 1024);
        listener.Stop();
    }

    [Fact]
    public async Task WithoutTheGuestsOfferThereIsNoWindowScaling()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        ushort port = PortOf(listener);
        g.SendTcp(FakeGuest.Gateway, 40011, port, 1000, 0, TcpFlags.Syn, window: 2000, mss: 1460);
        var synAck = await g.WaitTcp(40011);
        Assert.Equal(-1, synAck.WindowScale);
        uint ns = synAck.Seq + 1;
        g.SendTcp(FakeGuest.Gateway, 40011, port, 1001, ns, TcpFlags.Ack, window: 2000);
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        await host.GetStream().WriteAsync(new byte[10_000]);
        Assert.Equal(ns + 2000, await HighestDataEnd(g, 40011, ns, ns + 2000)); // 2000 bytes, not 2000 × 2^n
        g.SendTcp(FakeGuest.Gateway, 40011, port, 1001, ns, TcpFlags.Ack | TcpFlags.Psh, window: 2000, data: new byte[10]);
        Assert.Equal(65535, (await g.WaitTcp(40011, t => t.Ack == 1011)).Window);
        listener.Stop();
    }

    [Fact]
    public async Task APortForwardOffersWindowScalingAndUsesTheGuestsScale()
    {
        var (_, net, g) = Network();
        using var _ = net;
        g.Port.Send(Packets.Arp(Packets.Broadcast, g.Mac, 1, g.Mac, g.Ip, new byte[6], FakeGuest.Gateway));
        await g.WaitFor(f => Packets.EtherType(f) == Packets.EtherTypeArp);
        int port = net.AddPortForward(new PortForward("127.0.0.1", 0, 22, GuestAddress: "10.0.2.15"));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var syn = await g.WaitTcp(22, t => t.Has(TcpFlags.Syn));
        Assert.Equal(3, syn.WindowScale);
        g.SendTcp(FakeGuest.Gateway, 22, syn.SrcPort, 9000, syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack, window: 1000, mss: 1460, wscale: 2);
        await g.WaitTcp(22, t => t.Ack == 9001 && !t.Has(TcpFlags.Syn));
        g.SendTcp(FakeGuest.Gateway, 22, syn.SrcPort, 9001, syn.Seq + 1, TcpFlags.Ack, window: 1000); // 4000 bytes
        await client.GetStream().WriteAsync(new byte[10_000]);
        Assert.Equal(syn.Seq + 1 + 4000, await HighestDataEnd(g, 22, syn.Seq + 1, syn.Seq + 1 + 4000));
    }

    [Fact]
    public async Task ATimeoutResendsTheWindowAndNothingBeyondItWhileAClosedWindowGetsAOneByteProbe()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40013, PortOf(listener), window: 3000);
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        await host.GetStream().WriteAsync(new byte[10_000]);
        Assert.Equal(ns + 3000, await HighestDataEnd(g, 40013, ns, ns + 3000));

        // Nothing acknowledged: after the retransmission timeout (1 s) the same 3000 bytes come again, not one more.
        var again = await g.WaitTcp(40013, t => t.Data.Length > 0 && t.Seq == ns, timeoutMs: 10_000);
        Assert.Equal(1460, again.Data.Length);
        Assert.Equal(ns + 3000, await HighestDataEnd(g, 40013, ns, ns + 3000));

        // The guest takes all 3000 bytes but its window closes: the NAT waits, then probes with a single byte.
        g.SendTcp(FakeGuest.Gateway, 40013, PortOf(listener), gs, ns + 3000, TcpFlags.Ack, window: 0);
        var probe = await g.WaitTcp(40013, t => t.Data.Length > 0 && t.Seq == ns + 3000, timeoutMs: 10_000);
        Assert.Single(probe.Data);
        listener.Stop();
    }

    [Fact]
    public async Task GuestDataIsAcknowledgedWithStretchAcksDelayedAcksAndAtOnceWhenOutOfOrder()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40012, PortOf(listener));
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        // A burst of 48 full segments (70 KB): acknowledged every AckEveryBytes at most, not every second segment,
        // and the tail by the delayed ACK; every byte acknowledged in the end.
        const int n = 48, mss = 1460;
        for (int i = 0; i < n; i++)
            g.SendTcp(FakeGuest.Gateway, 40012, PortOf(listener), gs + (uint)(i * mss), ns, TcpFlags.Ack, data: new byte[mss]);
        uint acked = gs;
        int acks = 0;
        while (acked != gs + n * mss)
        {
            var ack = await g.WaitTcp(40012, t => t.Has(TcpFlags.Ack) && (int)(t.Ack - acked) > 0);
            Assert.True(ack.Ack - acked <= 32 * 1024 + mss, // NatTcpConnection.AckEveryBytes
                $"an ACK for {ack.Ack - acked} bytes at once");
            acked = ack.Ack;
            acks++;
        }
        // Stretch ACKs: far fewer than one per two segments (24). (Bound n/4, not the n/8 a quiet machine shows:
        // when the sending test thread is descheduled mid-burst for over 2 ms, the delayed ACK rightly fires.)
        Assert.InRange(acks, 2, n / 4);
        var buf = new byte[1 << 17];
        int got = 0;
        while (got < n * mss) got += await host.GetStream().ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(n * mss, got);

        // One small segment alone: its ACK comes by the delayed-ACK timer.
        uint next = gs + n * mss;
        g.SendTcp(FakeGuest.Gateway, 40012, PortOf(listener), next, ns, TcpFlags.Ack | TcpFlags.Psh, data: new byte[100]);
        Assert.Equal(next + 100, (await g.WaitTcp(40012, t => t.Ack == next + 100)).Ack);
        next += 100;

        // A segment beyond a lost one: the same ACK again at once, three times for three such segments (duplicate
        // ACKs: the guest's fast retransmit), and the data is not passed on.
        for (int i = 1; i <= 3; i++)
        {
            g.SendTcp(FakeGuest.Gateway, 40012, PortOf(listener), next + (uint)(i * mss), ns, TcpFlags.Ack, data: new byte[mss]);
            await g.WaitTcp(40012, t => t.Has(TcpFlags.Ack) && t.Data.Length == 0 && t.Ack == next);
        }
        Assert.Equal(3, net.Counters.TcpOutOfOrder);
        listener.Stop();
    }

    [Fact]
    public async Task AHugeGuestWindowStillLimitsDataInFlightAndThreeDuplicateAcksResendAtOnce()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        ushort port = PortOf(listener);
        g.SendTcp(FakeGuest.Gateway, 40030, port, 1000, 0, TcpFlags.Syn, window: 64240, mss: 1460, wscale: 7);
        uint ns = (await g.WaitTcp(40030)).Seq + 1;
        g.SendTcp(FakeGuest.Gateway, 40030, port, 1001, ns, TcpFlags.Ack, window: 65535); // 8 MiB
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        await host.GetStream().WriteAsync(new byte[300_000]);
        // 128 KiB at most, so a burst fits the switch port's queue (256 frames)
        Assert.Equal(ns + 128 * 1024, await HighestDataEnd(g, 40030, ns, ns + 128 * 1024));
        g.Unclaimed().Clear();

        // The first segment "was lost": the guest acknowledges what came before it three times.
        for (int i = 0; i < 3; i++) g.SendTcp(FakeGuest.Gateway, 40030, port, 1001, ns, TcpFlags.Ack, window: 65535);
        var again = await g.WaitTcp(40030, t => t.Data.Length > 0 && t.Seq == ns);
        Assert.Equal(1460, again.Data.Length);
        // (on a loaded machine the retransmission timeout may resend it first: the counter says the ACKs did it too)
        for (int i = 0; i < 100 && net.Counters.TcpFastRetransmits == 0; i++) await Task.Delay(50);
        Assert.Equal(1, net.Counters.TcpFastRetransmits);
        listener.Stop();
    }

    [Fact]
    public async Task APolicyChangedLiveResetsWhatItNoLongerAllowsAndDhcpCanBeSwitchedOff()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (gs, ns) = await Handshake(g, 40020, PortOf(listener));
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        using var udpHost = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        g.SendUdp(FakeGuest.Gateway, 40021, (ushort)((IPEndPoint)udpHost.Client.LocalEndPoint!).Port, "u"u8.ToArray());
        await udpHost.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((1, 1), (net.OpenConnections, net.OpenUdpFlows));

        net.Reconfigure(OutboundPolicy.Deny, dhcpEnabled: false);
        Assert.Equal(OutboundPolicy.Deny, net.Options.Outbound);
        var rst = await g.WaitTcp(40020, t => t.Has(TcpFlags.Rst));
        Assert.Equal(ns, rst.Seq);
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int n = await host.GetStream().ReadAsync(new byte[10]).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            if (n == 0) throw new IOException("orderly close instead of a reset");
        });
        Assert.Equal((0, 0), (net.OpenConnections, net.OpenUdpFlows));
        Assert.Equal(2, net.Counters.RefusedByPolicy);
        g.SendTcp(FakeGuest.Gateway, 40022, PortOf(listener), 1, 0, TcpFlags.Syn);
        Assert.True((await g.WaitTcp(40022)).Has(TcpFlags.Rst));
        Assert.False(listener.Pending());

        // DHCP off: a DISCOVER goes unanswered; back on (and loopback again): answered, and the gateway reachable.
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6;
        g.Mac.CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        m[240] = 53; m[241] = 1; m[242] = DhcpServer.Discover; m[243] = 255;
        g.SendUdp(0xFFFF_FFFF, 68, 67, m, src: 0);
        await Assert.ThrowsAsync<TimeoutException>(() => g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoUdp, 500));
        net.Reconfigure(OutboundPolicy.Loopback, dhcpEnabled: true);
        g.SendUdp(0xFFFF_FFFF, 68, 67, m, src: 0);
        await g.WaitFor(f => Ipv4View.TryParse(f, out var v) && v.Protocol == Packets.ProtoUdp);
        var accept2 = listener.AcceptTcpClientAsync();
        await Handshake(g, 40023, PortOf(listener));
        using var host2 = await accept2.WaitAsync(TimeSpan.FromSeconds(5));
        listener.Stop();
    }

    [Fact]
    public async Task NatSwitchedOffLiveResetsConnectionsAndANewDhcpRangeRefusesOldAddressesAtRenewal()
    {
        var (_, net, g) = Network();
        using var _ = net;
        var listener = Listen();
        var accept = listener.AcceptTcpClientAsync();
        var (_, ns) = await Handshake(g, 40030, PortOf(listener));
        using var host = await accept.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, net.OpenConnections);

        // isolated, DHCP from .100 to .110: the connection is reset, the gateway refuses new ones, the server answers
        // from the new range (and names no router)
        net.Reconfigure(net.Options with { Nat = false, DhcpStart = 0x0A00_0264, DhcpEnd = 0x0A00_026E });
        Assert.Equal(OutboundPolicy.Deny, net.Options.Outbound);
        Assert.Equal(ns, (await g.WaitTcp(40030, t => t.Has(TcpFlags.Rst))).Seq);
        Assert.Equal(0, net.OpenConnections);
        g.SendTcp(FakeGuest.Gateway, 40031, PortOf(listener), 1, 0, TcpFlags.Syn);
        Assert.True((await g.WaitTcp(40031)).Has(TcpFlags.Rst));
        Assert.False(listener.Pending());
        var renew = Dhcp.Request(g.Mac, ciaddr: 0x0A00_020F);
        Assert.Equal(DhcpServer.Nak, net.Dhcp.Handle(renew)!.Type);
        var offer = net.Dhcp.Handle(Dhcp.Discover(g.Mac))!;
        Assert.Equal(0x0A00_0264u, offer.Destination);
        Assert.DoesNotContain((byte)3, Dhcp.OptionCodes(offer.Message));

        // NAT again: connections to the gateway's ports reach the host's loopback, the offer names the router
        net.Reconfigure(net.Options with { Nat = true, Outbound = OutboundPolicy.Loopback });
        var accept2 = listener.AcceptTcpClientAsync();
        await Handshake(g, 40032, PortOf(listener));
        using var host2 = await accept2.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Contains((byte)3, Dhcp.OptionCodes(net.Dhcp.Handle(Dhcp.Discover(g.Mac))!.Message));
        listener.Stop();
    }

    /// <summary>Minimal DHCP client messages for the tests above.</summary>
    private static class Dhcp
    {
        public static byte[] Discover(byte[] mac) => Message(mac, DhcpServer.Discover, 0);
        public static byte[] Request(byte[] mac, uint ciaddr) => Message(mac, DhcpServer.Request, ciaddr);

        private static byte[] Message(byte[] mac, byte type, uint ciaddr)
        {
            var m = new byte[300];
            m[0] = 1; m[1] = 1; m[2] = 6;
            BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(12), ciaddr);
            mac.CopyTo(m, 28);
            BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
            m[240] = 53; m[241] = 1; m[242] = type; m[243] = 255;
            return m;
        }

        public static List<byte> OptionCodes(byte[] reply)
        {
            var codes = new List<byte>();
            for (int i = 240; i + 1 < reply.Length && reply[i] != 255; i += reply[i] == 0 ? 1 : 2 + reply[i + 1]) codes.Add(reply[i]);
            return codes;
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 100 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }
}

using System.Buffers.Binary;

namespace VmPortal.Network.Tests;

public class DhcpServerTests
{
    private static byte[] Message(byte type, int mac, uint requested = 0, uint serverId = 0, uint ciaddr = 0, uint xid = 0x1234)
    {
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), xid);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(12), ciaddr);
        Frames.Mac(mac).CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        int o = 240;
        m[o++] = 53; m[o++] = 1; m[o++] = type;
        if (requested != 0) { m[o++] = 50; m[o++] = 4; BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), requested); o += 4; }
        if (serverId != 0) { m[o++] = 54; m[o++] = 4; BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), serverId); o += 4; }
        m[o] = 255;
        return m;
    }

    private static Dictionary<byte, byte[]> Options(byte[] r)
    {
        var d = new Dictionary<byte, byte[]>();
        for (int i = 240; i < r.Length && r[i] != 255;) { d[r[i]] = r.AsSpan(i + 2, r[i + 1]).ToArray(); i += 2 + r[i + 1]; }
        return d;
    }

    private static uint Yiaddr(DhcpReply r) => BinaryPrimitives.ReadUInt32BigEndian(r.Message.AsSpan(16));

    [Fact]
    public void DiscoverOfferRequestAckGivesTheFirstAddressOfTheRangeWithTheQemuDefaults()
    {
        var dhcp = new DhcpServer(new NetworkOptions());
        var offer = dhcp.Handle(Message(DhcpServer.Discover, 1))!;
        Assert.Equal(DhcpServer.Offer, offer.Type);
        Assert.Equal(0x0A00_020Fu, Yiaddr(offer));
        Assert.Equal(0x1234u, BinaryPrimitives.ReadUInt32BigEndian(offer.Message.AsSpan(4)));
        var o = Options(offer.Message);
        Assert.Equal(new byte[] { 255, 255, 255, 0 }, o[1]);
        Assert.Equal(new byte[] { 10, 0, 2, 2 }, o[3]);
        Assert.Equal(new byte[] { 10, 0, 2, 3 }, o[6]);
        Assert.Equal(new byte[] { 10, 0, 2, 2 }, o[54]);
        Assert.False(dhcp.Leases.Single().Bound);

        var ack = dhcp.Handle(Message(DhcpServer.Request, 1, requested: 0x0A00_020F, serverId: 0x0A00_0202))!;
        Assert.Equal(DhcpServer.Ack, ack.Type);
        Assert.Equal(0x0A00_020Fu, Yiaddr(ack));
        var lease = dhcp.Leases.Single();
        Assert.True(lease.Bound);
        Assert.Equal("10.0.2.15", lease.Address);
        Assert.Equal("52:54:00:00:00:01", lease.MacAddress);
    }

    [Fact]
    public void ClientsGetDistinctAddressesAndTheirOwnBack()
    {
        var dhcp = new DhcpServer(new NetworkOptions());
        dhcp.Handle(Message(DhcpServer.Request, 1, requested: 0x0A00_020F));
        var second = dhcp.Handle(Message(DhcpServer.Discover, 2))!;
        Assert.Equal(0x0A00_0210u, Yiaddr(second));
        // Client 2 asks for client 1's address: NAK.
        Assert.Equal(DhcpServer.Nak, dhcp.Handle(Message(DhcpServer.Request, 2, requested: 0x0A00_020F))!.Type);
        // Client 1 comes back: same address.
        Assert.Equal(0x0A00_020Fu, Yiaddr(dhcp.Handle(Message(DhcpServer.Discover, 1))!));
        // An address outside the range: NAK.
        Assert.Equal(DhcpServer.Nak, dhcp.Handle(Message(DhcpServer.Request, 3, requested: 0x0A00_0205))!.Type);
        // Release frees it for others.
        dhcp.Handle(Message(DhcpServer.Release, 1, ciaddr: 0x0A00_020F));
        Assert.DoesNotContain(dhcp.Leases, l => l.MacAddress == "52:54:00:00:00:01");
    }

    [Fact]
    public void ARequestForAnotherServerDropsOurOffer()
    {
        var dhcp = new DhcpServer(new NetworkOptions());
        dhcp.Handle(Message(DhcpServer.Discover, 1));
        Assert.Null(dhcp.Handle(Message(DhcpServer.Request, 1, requested: 0x0A00_020F, serverId: 0x0A00_0909)));
        Assert.Empty(dhcp.Leases);
    }

    [Fact]
    public void MalformedRequestsAreIgnoredAndCounted()
    {
        var dhcp = new DhcpServer(new NetworkOptions());
        var good = Message(DhcpServer.Discover, 1);
        var cases = new List<byte[]>
        {
            Array.Empty<byte>(),
            good[..100],                                               // short
            Tweak(good, m => m[0] = 2),                                // a reply, not a request
            Tweak(good, m => m[2] = 4),                                // hardware address length
            Tweak(good, m => m[236] = 0),                              // magic cookie
            Tweak(good, m => m[242] = 99),                             // unknown message type
            Tweak(good, m => { m[240] = 12; m[241] = 200; }),          // option runs past the end
            Tweak(good, m => m[240] = 255),                            // no message type at all
            Tweak(good, m => m[28] = 0x01),                            // multicast client address
        };
        var rnd = new Random(7);
        for (int i = 0; i < 200; i++) { var g = new byte[rnd.Next(0, 600)]; rnd.NextBytes(g); cases.Add(g); }
        foreach (var c in cases) Assert.Null(dhcp.Handle(c));
        Assert.True(dhcp.MalformedRequests >= 9 + 190, $"{dhcp.MalformedRequests}");
        Assert.Empty(dhcp.Leases);
        Assert.NotNull(dhcp.Handle(good)); // still serving
    }

    [Fact]
    public void ThePoolRunsOutCleanly()
    {
        var dhcp = new DhcpServer(NetworkOptions.ForSubnet("10.0.9.0/28")); // .15 is the only host address left: .14 is the last
        var opts = NetworkOptions.ForSubnet("10.0.9.0/28");
        Assert.Equal(0x0A00_090Fu, opts.DhcpStart);
        Assert.Equal(0x0A00_090Eu, opts.DhcpEnd);
        Assert.Null(dhcp.Handle(Message(DhcpServer.Discover, 1)));
        Assert.Throws<ArgumentException>(() => NetworkOptions.ForSubnet("10.0.2.0"));
        Assert.Throws<ArgumentException>(() => NetworkOptions.ForSubnet("banana/24"));
    }

    private static byte[] Tweak(byte[] m, Action<byte[]> f)
    {
        var c = (byte[])m.Clone();
        f(c);
        return c;
    }
}

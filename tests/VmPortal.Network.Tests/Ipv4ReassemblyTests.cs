using System.Buffers.Binary;

namespace VmPortal.Network.Tests;

/// <summary>The IPv4 reassembly of guest fragments (Ipv4Reassembly): ordering, overlap, timeout and its bounds.</summary>
public class Ipv4ReassemblyTests
{
    private static readonly byte[] GuestMac = Frames.Mac(1);
    private const uint Guest = 0x0A00_020F;

    private static (byte[] Data, List<byte[]> Fragments) Datagram(int size, int seed, ushort sport = 5000)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        var frame = Packets.Udp(FakeGuest.GatewayMac, GuestMac, Guest, sport, FakeGuest.Gateway, 9, data);
        return (data, Packets.Fragment(frame).ToList());
    }

    private static byte[] UdpPayload(byte[] frame)
    {
        Assert.True(Ipv4View.TryParse(frame, out var ip));
        Assert.Equal(0, InternetChecksum.Compute(ip.Ip[..ip.HeaderLength]));
        var udp = ip.Payload;
        Assert.Equal(0, InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(ip.Source, ip.Destination, Packets.ProtoUdp, udp.Length), udp)));
        return udp[8..].ToArray();
    }

    [Fact]
    public void FragmentsInAnyOrderGiveTheDatagramOnce()
    {
        var r = new Ipv4Reassembly();
        var (data, frags) = Datagram(5000, 1);
        Assert.Equal(4, frags.Count);
        Assert.Null(r.Add(frags[2], 0));
        Assert.Null(r.Add(frags[0], 0));
        Assert.Null(r.Add(frags[3], 0));
        var whole = r.Add(frags[1], 0);
        Assert.NotNull(whole);
        Assert.Equal(data, UdpPayload(whole));
        Assert.Equal((1L, 0L, 0, 0), (r.Reassembled, r.Dropped, r.Pending, r.BufferedBytes));
    }

    [Fact]
    public void OverlapDropsTheWholeDatagram()
    {
        var r = new Ipv4Reassembly();
        var (_, frags) = Datagram(3000, 2);
        Assert.Null(r.Add(frags[0], 0));
        Assert.Null(r.Add(frags[0], 0)); // the same range again: overlap
        Assert.Equal((2L, 0), (r.Dropped, r.Pending));
        Assert.Null(r.Add(frags[1], 0));
        Assert.Null(r.Add(frags[2], 0)); // the first fragment went with the overlap: never complete
        Assert.Equal((0L, 1), (r.Reassembled, r.Pending));
    }

    [Fact]
    public void IncompleteDatagramsExpireAndTooLargeOnesAreRefused()
    {
        var r = new Ipv4Reassembly();
        var (_, frags) = Datagram(3000, 3);
        r.Add(frags[0], 1000);
        r.Add(frags[1], 1000);
        r.Expire(1000 + (long)Ipv4Reassembly.Timeout.TotalMilliseconds - 1);
        Assert.Equal(1, r.Pending);
        r.Expire(1000 + (long)Ipv4Reassembly.Timeout.TotalMilliseconds);
        Assert.Equal((0, 2L, 0), (r.Pending, r.Dropped, r.BufferedBytes));

        // a fragment whose end lies beyond 65,535 bytes
        var last = (byte[])frags[2].Clone();
        var ip = last.AsSpan(14);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 8190); // offset 65,520 + 48 bytes + the header
        Assert.Null(r.Add(last, 0));
        Assert.Equal((0, 3L), (r.Pending, r.Dropped));
    }

    [Fact]
    public void AFloodOfIncompleteDatagramsStaysWithinTheBounds()
    {
        var r = new Ipv4Reassembly();
        // each datagram sends all but its last fragment: ~62 KiB held per datagram
        for (int i = 0; i < 40; i++)
        {
            var (_, frags) = Datagram(64000, 100 + i, (ushort)(6000 + i));
            foreach (var f in frags.Take(frags.Count - 1))
            {
                BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(18), (ushort)i); // a distinct identification each
                r.Add(f, i);
            }
            Assert.True(r.BufferedBytes <= Ipv4Reassembly.MaxBytes);
            Assert.True(r.Pending <= Ipv4Reassembly.MaxDatagrams);
        }
        Assert.True(r.Dropped > 0);
        Assert.True(r.Pending < 40);

        // many small incomplete datagrams: the count bound
        var r2 = new Ipv4Reassembly();
        for (int i = 0; i < Ipv4Reassembly.MaxDatagrams + 10; i++)
        {
            var (_, frags) = Datagram(2000, i, (ushort)(7000 + i));
            BinaryPrimitives.WriteUInt16BigEndian(frags[0].AsSpan(18), (ushort)i);
            r2.Add(frags[0], i);
        }
        Assert.Equal(Ipv4Reassembly.MaxDatagrams, r2.Pending);
        Assert.Equal(10, r2.Dropped);

        // and a complete datagram still goes through afterwards
        var (data, last) = Datagram(3000, 999);
        byte[]? whole = null;
        foreach (var f in last) whole = r.Add(f, 100) ?? whole;
        Assert.Equal(data, UdpPayload(whole!));
    }
}

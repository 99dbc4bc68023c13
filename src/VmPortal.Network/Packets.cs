using System.Buffers.Binary;
using System.Net;

namespace VmPortal.Network;

/// <summary>
/// Building and reading the frames the network services speak: Ethernet II, ARP, IPv4 (no options written, any
/// read), ICMP, UDP and TCP. IPv4 addresses are <see cref="uint"/> in host order (10.0.2.2 = 0x0A000202).
/// </summary>
public static class Packets
{
    public const ushort EtherTypeIpv4 = 0x0800, EtherTypeArp = 0x0806;
    public const byte ProtoIcmp = 1, ProtoTcp = 6, ProtoUdp = 17;
    public const int EthernetHeader = 14, Ipv4Header = 20, UdpHeader = 8, TcpHeader = 20;
    /// <summary>The largest IP packet in one frame (Ethernet MTU).</summary>
    public const int Mtu = 1500;
    /// <summary>ICMP destination unreachable codes: port unreachable, communication administratively prohibited.</summary>
    public const byte IcmpPortUnreachable = 3, IcmpAdminProhibited = 13;
    private static int _nextId;
    public static readonly byte[] Broadcast = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };

    public static uint ToUInt(IPAddress a)
    {
        var b = a.GetAddressBytes();
        if (b.Length != 4) throw new ArgumentException("IPv4 address expected", nameof(a));
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress ToAddress(uint a)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, a);
        return new IPAddress(b);
    }

    public static string Format(uint a) => $"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}";

    public static ushort EtherType(ReadOnlySpan<byte> f) => BinaryPrimitives.ReadUInt16BigEndian(f[12..]);

    /// <summary>Ethernet + IPv4 header (checksummed) + <paramref name="payloadLength"/> bytes to fill; returns the frame.</summary>
    public static byte[] Ipv4Frame(ReadOnlySpan<byte> dstMac, ReadOnlySpan<byte> srcMac, uint src, uint dst, byte protocol,
        int payloadLength, ushort id = 0)
    {
        var f = new byte[EthernetHeader + Ipv4Header + payloadLength];
        dstMac.CopyTo(f);
        srcMac.CopyTo(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherTypeIpv4);
        var ip = f.AsSpan(EthernetHeader, Ipv4Header);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(Ipv4Header + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], id);
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], src);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], dst);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], InternetChecksum.Compute(ip));
        return f;
    }

    public static byte[] Udp(ReadOnlySpan<byte> dstMac, ReadOnlySpan<byte> srcMac, uint src, ushort srcPort, uint dst, ushort dstPort,
        ReadOnlySpan<byte> payload)
    {
        var f = Ipv4Frame(dstMac, srcMac, src, dst, ProtoUdp, UdpHeader + payload.Length);
        var u = f.AsSpan(EthernetHeader + Ipv4Header);
        BinaryPrimitives.WriteUInt16BigEndian(u, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(u[2..], dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(u[4..], (ushort)u.Length);
        payload.CopyTo(u[UdpHeader..]);
        ushort c = InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(src, dst, ProtoUdp, u.Length), u));
        BinaryPrimitives.WriteUInt16BigEndian(u[6..], c == 0 ? (ushort)0xFFFF : c);
        return f;
    }

    public static byte[] Tcp(ReadOnlySpan<byte> dstMac, ReadOnlySpan<byte> srcMac, uint src, ushort srcPort, uint dst, ushort dstPort,
        uint seq, uint ack, TcpFlags flags, ushort window, ReadOnlySpan<byte> payload, ushort mssOption = 0, int windowScaleOption = -1)
    {
        int hdr = TcpHeader + (mssOption != 0 ? 4 : 0) + (windowScaleOption >= 0 ? 4 : 0);
        var f = Ipv4Frame(dstMac, srcMac, src, dst, ProtoTcp, hdr + payload.Length);
        var t = f.AsSpan(EthernetHeader + Ipv4Header);
        BinaryPrimitives.WriteUInt16BigEndian(t, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], dstPort);
        BinaryPrimitives.WriteUInt32BigEndian(t[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(t[8..], ack);
        t[12] = (byte)(hdr / 4 << 4);
        t[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(t[14..], window);
        if (mssOption != 0)
        {
            t[20] = 2; t[21] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(t[22..], mssOption);
        }
        if (windowScaleOption >= 0)
        {
            int o = TcpHeader + (mssOption != 0 ? 4 : 0);
            t[o] = 1; // NOP, so the header stays a multiple of 4 bytes
            t[o + 1] = 3; t[o + 2] = 3; t[o + 3] = (byte)windowScaleOption;
        }
        payload.CopyTo(t[hdr..]);
        BinaryPrimitives.WriteUInt16BigEndian(t[16..], InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(src, dst, ProtoTcp, t.Length), t)));
        return f;
    }

    /// <summary>
    /// ICMP destination unreachable (type 3, <paramref name="code"/>) quoting <paramref name="quote"/>: the IP header
    /// and first 8 bytes of the packet it answers, so the receiver finds the socket it belongs to.
    /// </summary>
    public static byte[] IcmpUnreachable(ReadOnlySpan<byte> dstMac, ReadOnlySpan<byte> srcMac, uint src, uint dst, byte code, ReadOnlySpan<byte> quote)
    {
        var f = Ipv4Frame(dstMac, srcMac, src, dst, ProtoIcmp, 8 + quote.Length);
        var icmp = f.AsSpan(EthernetHeader + Ipv4Header);
        icmp[0] = 3;
        icmp[1] = code;
        quote.CopyTo(icmp[8..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp));
        return f;
    }

    /// <summary>
    /// The frame as it goes on the wire: itself when its IP packet fits <paramref name="mtu"/>, otherwise IP fragments
    /// (RFC 791: payload split at multiples of 8 bytes, more-fragments flag on all but the last, one identification).
    /// </summary>
    public static IEnumerable<byte[]> Fragment(byte[] frame, int mtu = Mtu)
    {
        var ip = frame.AsSpan(EthernetHeader);
        int hl = (ip[0] & 15) * 4, total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total <= mtu) return new[] { frame };
        int chunk = (mtu - hl) & ~7;
        ushort id = (ushort)Interlocked.Increment(ref _nextId);
        var list = new List<byte[]>();
        for (int off = 0; off < total - hl; off += chunk)
        {
            int n = Math.Min(chunk, total - hl - off);
            var f = new byte[EthernetHeader + hl + n];
            frame.AsSpan(0, EthernetHeader + hl).CopyTo(f);
            frame.AsSpan(EthernetHeader + hl + off, n).CopyTo(f.AsSpan(EthernetHeader + hl));
            var h = f.AsSpan(EthernetHeader, hl);
            BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)(hl + n));
            BinaryPrimitives.WriteUInt16BigEndian(h[4..], id);
            bool more = off + n < total - hl;
            BinaryPrimitives.WriteUInt16BigEndian(h[6..], (ushort)((more ? 0x2000 : 0) | off / 8));
            h[10] = 0; h[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(h[10..], InternetChecksum.Compute(h));
            list.Add(f);
        }
        return list;
    }

    public static byte[] Arp(ReadOnlySpan<byte> dstMac, ReadOnlySpan<byte> srcMac, ushort op, ReadOnlySpan<byte> senderMac, uint senderIp,
        ReadOnlySpan<byte> targetMac, uint targetIp)
    {
        var f = new byte[EthernetHeader + 28];
        dstMac.CopyTo(f);
        srcMac.CopyTo(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherTypeArp);
        var a = f.AsSpan(EthernetHeader);
        BinaryPrimitives.WriteUInt16BigEndian(a, 1);
        BinaryPrimitives.WriteUInt16BigEndian(a[2..], EtherTypeIpv4);
        a[4] = 6; a[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(a[6..], op);
        senderMac.CopyTo(a[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(a[14..], senderIp);
        targetMac.CopyTo(a[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(a[24..], targetIp);
        return f;
    }
}

/// <summary>TCP header flags.</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0, Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10,
}

/// <summary>An IPv4 packet inside an Ethernet frame, parsed without copying (valid header and lengths checked).</summary>
public readonly ref struct Ipv4View
{
    public readonly ReadOnlySpan<byte> Frame;
    public readonly int HeaderLength;
    public readonly int TotalLength;

    private Ipv4View(ReadOnlySpan<byte> frame, int hl, int total) { Frame = frame; HeaderLength = hl; TotalLength = total; }

    public static bool TryParse(ReadOnlySpan<byte> frame, out Ipv4View view)
    {
        view = default;
        if (frame.Length < Packets.EthernetHeader + Packets.Ipv4Header || Packets.EtherType(frame) != Packets.EtherTypeIpv4) return false;
        var ip = frame[Packets.EthernetHeader..];
        if (ip[0] >> 4 != 4) return false;
        int hl = (ip[0] & 15) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (hl < 20 || total < hl || total > ip.Length) return false;
        if ((BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0) return false; // fragments are not handled
        view = new Ipv4View(frame, hl, total);
        return true;
    }

    /// <summary>Whether the frame holds an IPv4 fragment (more fragments, or an offset): not parsed by <see cref="TryParse"/>.</summary>
    public static bool IsFragment(ReadOnlySpan<byte> frame) =>
        frame.Length >= Packets.EthernetHeader + Packets.Ipv4Header && Packets.EtherType(frame) == Packets.EtherTypeIpv4 &&
        (BinaryPrimitives.ReadUInt16BigEndian(frame[(Packets.EthernetHeader + 6)..]) & 0x3FFF) != 0;

    public ReadOnlySpan<byte> Ip => Frame.Slice(Packets.EthernetHeader, TotalLength);
    public ReadOnlySpan<byte> SourceMac => Frame.Slice(6, 6);
    public byte Protocol => Ip[9];
    public uint Source => BinaryPrimitives.ReadUInt32BigEndian(Ip[12..]);
    public uint Destination => BinaryPrimitives.ReadUInt32BigEndian(Ip[16..]);
    public ReadOnlySpan<byte> Payload => Ip[HeaderLength..];
}

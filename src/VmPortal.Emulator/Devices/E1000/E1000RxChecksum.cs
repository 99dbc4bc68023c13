using System.Buffers.Binary;
using static VmPortal.Emulator.Devices.E1000.E1000Registers;

namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// The 82540EM's receive checksum offload (RXCSUM, 8254x manual 3.2.9 / 13.4.26): with IPOFL the card checks an IPv4
/// header's checksum and reports IPCS (error: IPE); with TUOFL it checks a TCP or UDP checksum (with the pseudo
/// header) of an unfragmented IPv4 packet and reports TCPCS (error: TCPE). Neither enabled: IXSM ("ignore the
/// checksum bits"). A frame that is not IPv4 (ARP, IPv6, VLAN-tagged), or an IP fragment for TUOFL, gets no bit: not
/// checked. Linux's e1000 enables TUOFL and trusts a segment with TCPCS and no TCPE (CHECKSUM_UNNECESSARY), so the
/// guest skips summing every received segment; with TCPE or no TCPCS it verifies them itself.
/// </summary>
public static class E1000RxChecksum
{
    /// <summary>Status bits (IXSM/IPCS/TCPCS) and error bits (IPE/TCPE) for the receive descriptor of <paramref name="frame"/>.</summary>
    public static (byte Status, byte Errors) Check(ReadOnlySpan<byte> frame, uint rxcsum)
    {
        bool ipOffload = (rxcsum & RxcsumIpofl) != 0, l4Offload = (rxcsum & RxcsumTuofl) != 0;
        if (!ipOffload && !l4Offload) return (RxStatusIxsm, 0);
        if (frame.Length < 34 || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != 0x0800) return (0, 0);
        var ip = frame[14..];
        int hl = (ip[0] & 15) * 4, total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (ip[0] >> 4 != 4 || hl < 20 || total < hl || total > ip.Length) return (0, 0);
        byte status = 0, errors = 0;
        if (ipOffload)
        {
            status |= RxStatusIpcs;
            if (Fold(Sum(ip[..hl])) != 0xFFFF) errors |= RxErrorIpe;
        }
        byte proto = ip[9];
        bool fragment = (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0;
        if (l4Offload && !fragment && (proto == 6 || proto == 17))
        {
            var l4 = ip[hl..total];
            if (l4.Length >= (proto == 6 ? 20 : 8))
            {
                status |= RxStatusTcpcs;
                bool noUdpChecksum = proto == 17 && BinaryPrimitives.ReadUInt16BigEndian(l4[6..]) == 0; // the sender chose none
                ulong pseudo = (ulong)BinaryPrimitives.ReadUInt32BigEndian(ip[12..]) + BinaryPrimitives.ReadUInt32BigEndian(ip[16..]) + proto + (uint)l4.Length;
                if (!noUdpChecksum && Fold(Sum(l4) + pseudo) != 0xFFFF) errors |= RxErrorTcpe;
            }
        }
        return (status, errors);
    }

    /// <summary>The ones' complement sum (RFC 1071) of <paramref name="data"/> as big-endian 16-bit words, unfolded.</summary>
    public static ulong Sum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        int i = 0;
        // 32-bit big-endian words: their sum folds to the same 16-bit ones' complement sum
        for (; i + 4 <= data.Length; i += 4) sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
        if (i + 2 <= data.Length) { sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]); i += 2; }
        if (i < data.Length) sum += (uint)data[i] << 8;
        return sum;
    }

    /// <summary>Folds a sum to 16 bits with end-around carries.</summary>
    public static ushort Fold(ulong sum)
    {
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }
}

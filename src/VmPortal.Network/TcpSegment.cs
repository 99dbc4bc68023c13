using System.Buffers.Binary;

namespace VmPortal.Network;

/// <summary>
/// A TCP segment from a guest, parsed (checksum not verified: the virtual link does not corrupt). <see cref="Mss"/> is
/// 0 and <see cref="WindowScale"/> -1 when the segment carries no such option (RFC 7323: window scale, SYN only).
/// </summary>
internal readonly record struct TcpSegment(ushort SourcePort, ushort DestinationPort, uint Seq, uint Ack, TcpFlags Flags,
    ushort Window, byte[] Payload, ushort Mss, int WindowScale = -1)
{
    public bool Has(TcpFlags f) => (Flags & f) != 0;

    public static bool TryParse(ReadOnlySpan<byte> t, out TcpSegment seg)
    {
        seg = default;
        if (t.Length < Packets.TcpHeader) return false;
        int off = (t[12] >> 4) * 4;
        if (off < Packets.TcpHeader || off > t.Length) return false;
        ushort mss = 0;
        int scale = -1;
        for (int i = Packets.TcpHeader; i < off;)
        {
            byte kind = t[i];
            if (kind == 0) break;
            if (kind == 1) { i++; continue; }
            if (i + 1 >= off || t[i + 1] < 2) break;
            if (kind == 2 && t[i + 1] == 4 && i + 4 <= off) mss = BinaryPrimitives.ReadUInt16BigEndian(t[(i + 2)..]);
            if (kind == 3 && t[i + 1] == 3 && i + 3 <= off) scale = Math.Min(t[i + 2], (byte)14); // RFC 7323: larger counts as 14
            i += t[i + 1];
        }
        seg = new TcpSegment(BinaryPrimitives.ReadUInt16BigEndian(t), BinaryPrimitives.ReadUInt16BigEndian(t[2..]),
            BinaryPrimitives.ReadUInt32BigEndian(t[4..]), BinaryPrimitives.ReadUInt32BigEndian(t[8..]), (TcpFlags)(t[13] & 0x1F),
            BinaryPrimitives.ReadUInt16BigEndian(t[14..]), t[off..].ToArray(), mss, scale);
        return true;
    }
}

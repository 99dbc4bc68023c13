using System.Buffers.Binary;

namespace VmPortal.Network;

/// <summary>
/// Reassembles IPv4 fragments a guest sends (RFC 791, RFC 815's hole bookkeeping reduced to a sorted list of
/// received ranges): a datagram larger than the MTU — a UDP datagram of 2–64 KiB, a <c>ping -s 4000</c> — arrives as
/// several frames with one identification and the more-fragments flag on all but the last; once every byte from 0 to
/// the last fragment's end is there, <see cref="Add"/> returns one frame holding the whole datagram (the first
/// fragment's Ethernet and IP header, fragment fields cleared, total length set, header checksum recomputed), and the
/// services handle it like any other. Bounded: at most <see cref="MaxDatagrams"/> datagrams in progress (the oldest
/// is dropped for a new one), at most <see cref="MaxBytes"/> bytes buffered over all of them, datagrams up to 65,535
/// bytes, an incomplete datagram dropped after <see cref="Timeout"/>. Overlapping fragments (whose only legitimate
/// use is evasion) and fragments that disagree about the end drop the whole datagram. Everything dropped is counted
/// in <see cref="Dropped"/> (fragments). Not thread-safe: the network's event loop only.
/// </summary>
public sealed class Ipv4Reassembly
{
    public const int MaxDatagrams = 64, MaxBytes = 1 << 20, MaxDatagram = 65535;
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<Key, Partial> _pending = new();
    private int _bytes;

    private readonly record struct Key(uint Source, uint Destination, byte Protocol, ushort Id);

    private sealed class Partial
    {
        public byte[] Payload = new byte[2048]; // grows to the highest fragment end
        public readonly List<(int Start, int End)> Ranges = new(); // received, sorted, disjoint
        public byte[]? Header;  // Ethernet + IP header of the fragment at offset 0
        public int Total = -1;  // payload length, known once the last fragment (MF clear) came
        public int Buffered;
        public int Fragments;
        public long StartedMs;
    }

    /// <summary>Datagrams completed.</summary>
    public long Reassembled { get; private set; }

    /// <summary>Fragments thrown away: overlapping, inconsistent, too large, timed out or pushed out by the bounds.</summary>
    public long Dropped { get; private set; }

    /// <summary>Datagrams in progress.</summary>
    public int Pending => _pending.Count;

    /// <summary>Bytes held for datagrams in progress.</summary>
    public int BufferedBytes => _bytes;

    /// <summary>
    /// Takes one frame holding an IPv4 fragment (<see cref="Ipv4View.IsFragment"/>); returns the whole datagram's
    /// frame when this fragment completed it, otherwise null (kept, or dropped and counted).
    /// </summary>
    public byte[]? Add(ReadOnlySpan<byte> frame, long nowMs)
    {
        if (frame.Length < Packets.EthernetHeader + Packets.Ipv4Header) { Dropped++; return null; }
        var ip = frame[Packets.EthernetHeader..];
        int hl = (ip[0] & 15) * 4, total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (ip[0] >> 4 != 4 || hl < 20 || total < hl || total > ip.Length) { Dropped++; return null; }
        ushort frag = BinaryPrimitives.ReadUInt16BigEndian(ip[6..]);
        bool more = (frag & 0x2000) != 0;
        int offset = (frag & 0x1FFF) * 8, length = total - hl, end = offset + length;
        if (length == 0 || more && (length & 7) != 0 || hl + end > MaxDatagram) { Dropped++; return null; }
        var key = new Key(BinaryPrimitives.ReadUInt32BigEndian(ip[12..]), BinaryPrimitives.ReadUInt32BigEndian(ip[16..]), ip[9],
            BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
        if (!_pending.TryGetValue(key, out var p))
        {
            if (_pending.Count >= MaxDatagrams) Drop(_pending.MinBy(e => e.Value.StartedMs).Key);
            p = new Partial { StartedMs = nowMs };
            _pending[key] = p;
        }
        // the bounds: make room by dropping the oldest other datagrams; a fragment that can never fit goes
        while (_bytes + length > MaxBytes && _pending.Count > 1)
            Drop(_pending.Where(e => e.Value != p).MinBy(e => e.Value.StartedMs).Key);
        if (_bytes + length > MaxBytes || !Fits(p, offset, end, more))
        {
            Drop(key);
            Dropped++;
            return null;
        }
        if (end > p.Payload.Length) Array.Resize(ref p.Payload, Math.Min(Math.Max(end, 2 * p.Payload.Length), MaxDatagram));
        ip.Slice(hl, length).CopyTo(p.Payload.AsSpan(offset));
        Insert(p.Ranges, offset, end);
        p.Buffered += length;
        p.Fragments++;
        _bytes += length;
        if (!more) p.Total = end;
        if (offset == 0) p.Header = frame[..(Packets.EthernetHeader + hl)].ToArray();
        if (p.Header == null || p.Total < 0 || p.Ranges.Count != 1 || p.Ranges[0].End != p.Total) return null;

        // complete
        _pending.Remove(key);
        _bytes -= p.Buffered;
        Reassembled++;
        int h = p.Header.Length;
        var whole = new byte[h + p.Total];
        p.Header.CopyTo(whole, 0);
        p.Payload.AsSpan(0, p.Total).CopyTo(whole.AsSpan(h));
        var ipHeader = whole.AsSpan(Packets.EthernetHeader, h - Packets.EthernetHeader);
        BinaryPrimitives.WriteUInt16BigEndian(ipHeader[2..], (ushort)(ipHeader.Length + p.Total));
        BinaryPrimitives.WriteUInt16BigEndian(ipHeader[6..], 0);
        ipHeader[10] = 0; ipHeader[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ipHeader[10..], InternetChecksum.Compute(ipHeader));
        return whole;
    }

    /// <summary>Drops datagrams that waited longer than <see cref="Timeout"/> for their missing fragments.</summary>
    public void Expire(long nowMs)
    {
        if (_pending.Count == 0) return;
        foreach (var k in _pending.Where(e => nowMs - e.Value.StartedMs >= (long)Timeout.TotalMilliseconds).Select(e => e.Key).ToList())
            Drop(k);
    }

    /// <summary>Whether [offset, end) may join the datagram: no overlap, nothing past a known end, no end beyond data.</summary>
    private static bool Fits(Partial p, int offset, int end, bool more)
    {
        if (p.Total >= 0 && (end > p.Total || !more && end != p.Total)) return false;
        if (!more && p.Ranges.Count > 0 && p.Ranges[^1].End > end) return false;
        foreach (var (s, e) in p.Ranges)
            if (offset < e && s < end) return false;
        return true;
    }

    private static void Insert(List<(int Start, int End)> ranges, int start, int end)
    {
        int i = 0;
        while (i < ranges.Count && ranges[i].Start < start) i++;
        ranges.Insert(i, (start, end));
        // merge touching neighbours (they never overlap: Fits refused that)
        if (i + 1 < ranges.Count && ranges[i + 1].Start == end) { ranges[i] = (start, ranges[i + 1].End); ranges.RemoveAt(i + 1); }
        if (i > 0 && ranges[i - 1].End == start) { ranges[i - 1] = (ranges[i - 1].Start, ranges[i].End); ranges.RemoveAt(i); }
    }

    private void Drop(Key key)
    {
        if (!_pending.Remove(key, out var p)) return;
        _bytes -= p.Buffered;
        Dropped += p.Fragments;
    }
}

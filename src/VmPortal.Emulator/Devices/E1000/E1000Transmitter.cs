using System.Buffers.Binary;
using VmPortal.Emulator.Memory;
using static VmPortal.Emulator.Devices.E1000.E1000Registers;

namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// The 82540EM's transmit engine for one descriptor at a time: legacy descriptors (buffer, length, CSO/CSS checksum
/// insertion with IC), TCP/IP context descriptors (IPCSS/IPCSO/IPCSE, TUCSS/TUCSO/TUCSE, TUCMD, MSS, HDRLEN) and data
/// descriptors (POPTS IXSM/TXSM checksum insertion, TSE segmentation). A packet collects buffers until EOP; then the
/// checksums are inserted (the guest leaves the pseudo-header sum in the TCP/UDP field, as Linux does for
/// CHECKSUM_PARTIAL) or the TSO payload is cut into MSS-sized frames, each with its own IPv4 length, ID and header
/// checksum, TCP sequence number, flags (FIN/PSH only on the last) and checksum. Guests: Linux e1000 (checksum
/// offload and TSO are on by default for the 82540), iPXE (legacy descriptors).
/// </summary>
public sealed class E1000Transmitter
{
    /// <summary>Largest packet (TSO payload + headers) collected before EOP; beyond it the packet is dropped.</summary>
    public const int MaxPacket = 65536 + 256;

    private readonly byte[] _packet = new byte[MaxPacket];
    private readonly byte[] _segment = new byte[MaxPacket];
    private int _length;
    private bool _overflow, _tse, _legacyIc;
    private byte _popts, _legacyCss, _legacyCso;
    private bool _inPacket;
    // TCP/IP context
    private byte _ipcss, _ipcso, _tucss, _tucso, _tucmd, _hdrLen;
    private ushort _ipcse, _tucse, _mss;

    /// <summary>Frames that were dropped (too large, or an unusable TSO context).</summary>
    public long Dropped { get; private set; }

    /// <summary>Packets completed (EOP) and, of them, TCP segmentation (TSO) packets.</summary>
    public long Packets { get; private set; }
    public long TsoPackets { get; private set; }

    /// <summary>
    /// Handles one 16-byte descriptor (buffer contents read from <paramref name="memory"/>); complete frames go to
    /// <paramref name="send"/>. Returns the command byte's report-status request (RS/RPS).
    /// </summary>
    public bool Process(ReadOnlySpan<byte> d, PhysicalMemory memory, Action<ReadOnlySpan<byte>> send)
    {
        ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(d);
        uint lower = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
        byte cmd = d[11];
        bool report = (cmd & (TxCmdRs | TxCmdRps)) != 0;
        if ((cmd & TxCmdDext) == 0)
        {
            int len = (int)(lower & 0xFFFF);
            if (!_inPacket) { _inPacket = true; _legacyIc = (cmd & TxCmdIc) != 0; _legacyCso = d[10]; _legacyCss = d[13]; _tse = false; _popts = 0; }
            Append(memory, addr, len);
            if ((cmd & TxCmdEop) != 0) Finish(send, legacy: true);
            return report;
        }
        int dtyp = (int)((lower >> 20) & 0xF);
        if (dtyp == 0) // context descriptor
        {
            _ipcss = d[0]; _ipcso = d[1]; _ipcse = BinaryPrimitives.ReadUInt16LittleEndian(d[2..]);
            _tucss = d[4]; _tucso = d[5]; _tucse = BinaryPrimitives.ReadUInt16LittleEndian(d[6..]);
            _tucmd = d[11]; _hdrLen = d[13]; _mss = BinaryPrimitives.ReadUInt16LittleEndian(d[14..]);
            return (_tucmd & TxCmdRs) != 0;
        }
        if (dtyp == 1) // data descriptor
        {
            int len = (int)(lower & 0xF_FFFF);
            if (!_inPacket) { _inPacket = true; _popts = d[13]; _tse = (cmd & TxCmdTse) != 0; _legacyIc = false; }
            Append(memory, addr, len);
            if ((cmd & TxCmdEop) != 0) Finish(send, legacy: false);
            return report;
        }
        return report; // unknown type: skipped
    }

    private void Append(PhysicalMemory memory, ulong addr, int len)
    {
        if (_length + len > MaxPacket || addr > uint.MaxValue) { _overflow = true; return; }
        E1000Dma.Read(memory, (uint)addr, _packet.AsSpan(_length, len));
        _length += len;
    }

    private void Finish(Action<ReadOnlySpan<byte>> send, bool legacy)
    {
        try
        {
            if (_overflow || _length < 14) { Dropped++; return; }
            Packets++;
            if (!legacy && _tse) TsoPackets++;
            var p = _packet.AsSpan(0, _length);
            if (legacy)
            {
                if (_legacyIc) InsertChecksum(p, _legacyCss, _legacyCso, 0);
                send(p);
            }
            else if (_tse) Segment(send);
            else
            {
                if ((_popts & TxPoptsIxsm) != 0) { Put16(p, _ipcso, 0); InsertChecksum(p, _ipcss, _ipcso, _ipcse); }
                if ((_popts & TxPoptsTxsm) != 0) InsertChecksum(p, _tucss, _tucso, _tucse);
                send(p);
            }
        }
        finally
        {
            _length = 0; _overflow = false; _inPacket = false;
        }
    }

    private void Segment(Action<ReadOnlySpan<byte>> send)
    {
        int hdr = _hdrLen, mss = _mss;
        if (hdr < 14 || hdr > _length || mss == 0 || _tucss + 18 > hdr) { Dropped++; return; }
        bool ipv4 = (_tucmd & TuCmdIp) != 0, tcp = (_tucmd & TuCmdTcp) != 0;
        var packet = _packet.AsSpan(0, _length);
        int payload = _length - hdr;
        ushort ipId = ipv4 ? Get16(packet, _ipcss + 4) : (ushort)0;
        uint seq = tcp ? BinaryPrimitives.ReadUInt32BigEndian(packet[(_tucss + 4)..]) : 0;
        byte flags = tcp ? packet[_tucss + 13] : (byte)0;
        int offset = 0, index = 0;
        do
        {
            int n = Math.Min(mss, payload - offset);
            bool last = offset + n >= payload;
            var seg = _segment.AsSpan(0, hdr + n);
            packet[..hdr].CopyTo(seg);
            packet.Slice(hdr + offset, n).CopyTo(seg[hdr..]);
            if (ipv4)
            {
                Put16(seg, _ipcss + 2, (ushort)(seg.Length - _ipcss));
                Put16(seg, _ipcss + 4, (ushort)(ipId + index));
                Put16(seg, _ipcso, 0);
                InsertChecksum(seg, _ipcss, _ipcso, _ipcse != 0 ? _ipcse : _tucss - 1);
            }
            else Put16(seg, _ipcss + 4, (ushort)(seg.Length - _ipcss - 40));
            int l4Length = seg.Length - _tucss;
            if (tcp)
            {
                BinaryPrimitives.WriteUInt32BigEndian(seg[(_tucss + 4)..], seq + (uint)offset);
                if (!last) seg[_tucss + 13] = (byte)(flags & ~0x09); // FIN and PSH only on the last segment
            }
            else Put16(seg, _tucss + 4, (ushort)l4Length);
            // The guest left the pseudo-header sum without the length in the checksum field: add this segment's length.
            ulong sum = Sum(seg[_tucss..]) + (uint)l4Length;
            Put16(seg, _tucso, (ushort)~Fold(sum));
            send(seg);
            offset += n;
            index++;
        } while (offset < payload);
    }

    /// <summary>Ones' complement sum of bytes css..cse (0 = to the end), stored complemented at cso.</summary>
    private static void InsertChecksum(Span<byte> p, int css, int cso, int cse)
    {
        int end = cse == 0 ? p.Length : Math.Min(cse + 1, p.Length);
        if (css >= end || cso + 2 > p.Length) return;
        Put16(p, cso, (ushort)~Fold(Sum(p[css..end])));
    }

    private static ulong Sum(ReadOnlySpan<byte> data) => E1000RxChecksum.Sum(data);

    private static ushort Fold(ulong sum) => E1000RxChecksum.Fold(sum);

    private static ushort Get16(ReadOnlySpan<byte> p, int at) => BinaryPrimitives.ReadUInt16BigEndian(p[at..]);
    private static void Put16(Span<byte> p, int at, ushort v) { if (at + 2 <= p.Length) BinaryPrimitives.WriteUInt16BigEndian(p[at..], v); }

    /// <summary>The offload context and a packet being collected (a guest may move TDT in the middle of one).</summary>
    public sealed record State(int Version, byte[] Packet, bool Overflow, bool Tse, bool LegacyIc, byte Popts, byte LegacyCss,
        byte LegacyCso, bool InPacket, byte Ipcss, byte Ipcso, ushort Ipcse, byte Tucss, byte Tucso, ushort Tucse, byte Tucmd,
        byte HdrLen, ushort Mss)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _packet.AsSpan(0, _length).ToArray(), _overflow, _tse, _legacyIc, _popts,
        _legacyCss, _legacyCso, _inPacket, _ipcss, _ipcso, _ipcse, _tucss, _tucso, _tucse, _tucmd, _hdrLen, _mss);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"e1000 transmitter state version {s.Version} is not supported.");
        s.Packet.CopyTo(_packet, 0);
        _length = s.Packet.Length;
        (_overflow, _tse, _legacyIc, _popts, _legacyCss, _legacyCso, _inPacket) = (s.Overflow, s.Tse, s.LegacyIc, s.Popts, s.LegacyCss, s.LegacyCso, s.InPacket);
        (_ipcss, _ipcso, _ipcse, _tucss, _tucso, _tucse, _tucmd, _hdrLen, _mss) = (s.Ipcss, s.Ipcso, s.Ipcse, s.Tucss, s.Tucso, s.Tucse, s.Tucmd, s.HdrLen, s.Mss);
    }
}

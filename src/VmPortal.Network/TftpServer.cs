using System.Buffers.Binary;
using System.Text;

namespace VmPortal.Network;

/// <summary>
/// A read-only TFTP server (RFC 1350, with the blksize and tsize options of RFC 2348/2349) at the gateway address,
/// serving files below <see cref="NetworkOptions.TftpRoot"/> for netboot (iPXE fetches its boot file and kernels
/// this way). Each transfer answers from its own server port, lock-step: a block is sent again when its ACK has not
/// come within a second, up to five times. Paths that leave the root, writes and unknown files get an ERROR packet.
/// Runs on the network's event loop.
/// </summary>
internal sealed class TftpServer
{
    private const ushort Rrq = 1, Wrq = 2, Data = 3, Ack = 4, Error = 5, Oack = 6;
    private readonly string _root;
    private readonly Action<uint, ushort, ushort, byte[], byte[]> _send; // (guest ip, guest port, our port, guest mac, payload)
    private readonly Dictionary<ushort, Transfer> _transfers = new();
    private ushort _nextPort = 50000;

    public TftpServer(string root, Action<uint, ushort, ushort, byte[], byte[]> send)
    {
        _root = Path.GetFullPath(root);
        _send = send;
    }

    public long FilesServed { get; private set; }

    private sealed class Transfer
    {
        public required byte[] File;
        public required uint Ip;
        public required ushort Port;
        public required byte[] Mac;
        public int BlockSize = 512;
        public ushort Block;   // last block sent (0 = the OACK)
        public long SentAt;
        public int Tries;
        public bool Oack;
        public byte[]? OackPayload;
    }

    /// <summary>A packet to port 69 (a request) or to one of our transfer ports.</summary>
    public void Handle(uint ip, ushort port, ushort ourPort, byte[] mac, ReadOnlySpan<byte> p)
    {
        if (p.Length < 4) return;
        ushort op = BinaryPrimitives.ReadUInt16BigEndian(p);
        if (ourPort == 69)
        {
            if (op == Wrq) { SendError(ip, port, 69, mac, 2, "read-only server"); return; }
            if (op != Rrq) return;
            var fields = Encoding.ASCII.GetString(p[2..]).Split('\0');
            if (fields.Length < 2) return;
            string name = fields[0].TrimStart('/');
            string full = Path.GetFullPath(Path.Combine(_root, name));
            ushort tid = _nextPort = (ushort)(_nextPort >= 60000 ? 50000 : _nextPort + 1);
            if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
            {
                SendError(ip, port, tid, mac, 1, "file not found");
                return;
            }
            var t = new Transfer { File = File.ReadAllBytes(full), Ip = ip, Port = port, Mac = mac };
            var oack = new List<byte> { 0, (byte)Oack };
            for (int i = 2; i + 1 < fields.Length; i += 2)
            {
                string opt = fields[i].ToLowerInvariant(), val = fields[i + 1];
                if (opt == "blksize" && int.TryParse(val, out int bs)) { t.BlockSize = Math.Clamp(bs, 8, 1432); Add(oack, "blksize", t.BlockSize.ToString()); }
                else if (opt == "tsize") Add(oack, "tsize", t.File.Length.ToString());
            }
            _transfers[tid] = t;
            FilesServed++;
            if (oack.Count > 2) { t.Oack = true; t.OackPayload = oack.ToArray(); SendCurrent(tid, t); }
            else { t.Block = 1; SendCurrent(tid, t); }
            return;
        }
        if (!_transfers.TryGetValue(ourPort, out var tr) || tr.Ip != ip || tr.Port != port) return;
        if (op == Error) { _transfers.Remove(ourPort); return; }
        if (op != Ack) return;
        ushort acked = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
        if (acked != tr.Block) return;
        if (tr.Block > 0 && (long)tr.Block * tr.BlockSize > tr.File.Length) { _transfers.Remove(ourPort); return; } // last block acknowledged
        tr.Block++;
        tr.Tries = 0;
        SendCurrent(ourPort, tr);
    }

    /// <summary>Resends blocks whose ACK is late; gives up after five tries.</summary>
    public void Tick(long nowMs)
    {
        foreach (var (tid, t) in _transfers.ToList())
        {
            if (nowMs - t.SentAt < 1000) continue;
            if (++t.Tries > 5) { _transfers.Remove(tid); continue; }
            SendCurrent(tid, t);
        }
    }

    public bool Busy => _transfers.Count > 0;

    private void SendCurrent(ushort tid, Transfer t)
    {
        t.SentAt = Environment.TickCount64;
        if (t.Block == 0 && t.Oack) { _send(t.Ip, t.Port, tid, t.Mac, t.OackPayload!); return; }
        long start = (long)(t.Block - 1) * t.BlockSize;
        int n = (int)Math.Max(0, Math.Min(t.BlockSize, t.File.Length - start));
        var d = new byte[4 + n];
        BinaryPrimitives.WriteUInt16BigEndian(d, Data);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(2), t.Block);
        t.File.AsSpan((int)start, n).CopyTo(d.AsSpan(4));
        _send(t.Ip, t.Port, tid, t.Mac, d);
    }

    private void SendError(uint ip, ushort port, ushort tid, byte[] mac, ushort code, string message)
    {
        var e = new byte[4 + message.Length + 1];
        BinaryPrimitives.WriteUInt16BigEndian(e, Error);
        BinaryPrimitives.WriteUInt16BigEndian(e.AsSpan(2), code);
        Encoding.ASCII.GetBytes(message, e.AsSpan(4));
        _send(ip, port, tid, mac, e);
    }

    private static void Add(List<byte> l, string k, string v)
    {
        l.AddRange(Encoding.ASCII.GetBytes(k)); l.Add(0);
        l.AddRange(Encoding.ASCII.GetBytes(v)); l.Add(0);
    }
}

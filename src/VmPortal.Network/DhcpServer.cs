using System.Buffers.Binary;
using System.Text;

namespace VmPortal.Network;

/// <summary>
/// A DHCP server (RFC 2131/2132) for one network: DISCOVER → OFFER, REQUEST → ACK (or NAK for an address it cannot
/// give), RELEASE and DECLINE, INFORM → ACK. Addresses come from <see cref="NetworkOptions.DhcpStart"/> upwards,
/// one per client MAC (a client gets its address back). Options: subnet mask, router, DNS server, lease time,
/// server identifier, and for netboot the boot file name (option 67 and the BOOTP file field) with next-server
/// (siaddr = the gateway, where the TFTP server answers).
/// Anything malformed (short, wrong op/htype/hlen, no magic cookie, no or bad message type, options running past
/// the end) is ignored and counted in <see cref="MalformedRequests"/>. Pure: bytes in, bytes out; thread-safe.
/// </summary>
public sealed class DhcpServer
{
    public const byte Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8;
    public const int ServerPort = 67, ClientPort = 68;
    private const int FixedPart = 236;
    private const uint MagicCookie = 0x63825363;

    private volatile NetworkOptions _options;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly Dictionary<string, (uint Address, DateTimeOffset Expires, bool Bound, string? HostName)> _leases = new();
    private long _malformed;

    public DhcpServer(NetworkOptions options, TimeProvider? time = null)
    {
        _options = options;
        _time = time ?? TimeProvider.System;
    }

    public long MalformedRequests => Interlocked.Read(ref _malformed);

    /// <summary>
    /// The pool, lease time and addresses it hands out. Changed while clients hold leases (a new DHCP range), the
    /// leases stay: a client keeps its address until it renews, and a renewal of an address outside the new pool is
    /// refused (NAK), so the client starts over and gets one from the new pool.
    /// </summary>
    public NetworkOptions Options { get => _options; set => _options = value; }

    public IReadOnlyList<DhcpLease> Leases
    {
        get
        {
            lock (_lock)
                return _leases.OrderBy(l => l.Value.Address)
                    .Select(l => new DhcpLease(l.Key, Packets.Format(l.Value.Address), l.Value.HostName, l.Value.Expires, l.Value.Bound)).ToList();
        }
    }

    /// <summary>The address bound (or offered) to <paramref name="mac"/> ("52:54:00:…"), or 0.</summary>
    public uint AddressOf(string mac)
    {
        lock (_lock) return _leases.TryGetValue(mac.ToLowerInvariant(), out var l) ? l.Address : 0;
    }

    /// <summary>The MAC whose bound (acknowledged) lease holds <paramref name="address"/>, as 6 bytes; null if none.</summary>
    public byte[]? BoundMacOf(uint address)
    {
        string? mac;
        lock (_lock) mac = _leases.FirstOrDefault(l => l.Value.Address == address && l.Value.Bound).Key;
        return mac?.Split(':').Select(h => Convert.ToByte(h, 16)).ToArray();
    }

    /// <summary>Answers one BOOTP/DHCP message (the UDP payload); null when there is nothing to send.</summary>
    public DhcpReply? Handle(ReadOnlySpan<byte> m)
    {
        if (m.Length < FixedPart + 4 || m[0] != 1 || m[1] != 1 || m[2] != 6 ||
            BinaryPrimitives.ReadUInt32BigEndian(m[FixedPart..]) != MagicCookie)
        {
            Interlocked.Increment(ref _malformed);
            return null;
        }
        byte type = 0;
        uint requested = 0, serverId = 0;
        string? hostName = null;
        int i = FixedPart + 4;
        while (i < m.Length && m[i] != 255)
        {
            if (m[i] == 0) { i++; continue; }
            if (i + 1 >= m.Length || i + 2 + m[i + 1] > m.Length) { Interlocked.Increment(ref _malformed); return null; }
            var val = m.Slice(i + 2, m[i + 1]);
            switch (m[i])
            {
                case 53 when val.Length == 1: type = val[0]; break;
                case 50 when val.Length == 4: requested = BinaryPrimitives.ReadUInt32BigEndian(val); break;
                case 54 when val.Length == 4: serverId = BinaryPrimitives.ReadUInt32BigEndian(val); break;
                case 12: hostName = Encoding.ASCII.GetString(val); break;
            }
            i += 2 + m[i + 1];
        }
        if (type is < Discover or > Inform) { Interlocked.Increment(ref _malformed); return null; }
        byte[] chaddr = m.Slice(28, 6).ToArray();
        if ((chaddr[0] & 1) != 0) { Interlocked.Increment(ref _malformed); return null; }
        string mac = string.Join(':', chaddr.Select(b => b.ToString("x2")));
        uint ciaddr = BinaryPrimitives.ReadUInt32BigEndian(m[12..]);
        uint xid = BinaryPrimitives.ReadUInt32BigEndian(m[4..]);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            switch (type)
            {
                case Discover:
                {
                    uint addr = Allocate(mac, requested, now);
                    if (addr == 0) return null; // pool exhausted
                    _leases[mac] = (addr, now.AddSeconds(60), _leases.TryGetValue(mac, out var old) && old.Bound && old.Address == addr, hostName ?? old.HostName);
                    return Reply(m, Offer, addr, chaddr, xid);
                }
                case Request:
                {
                    if (serverId != 0 && serverId != _options.Gateway) { if (_leases.TryGetValue(mac, out var o) && !o.Bound) _leases.Remove(mac); return null; }
                    uint want = requested != 0 ? requested : ciaddr;
                    uint addr = want != 0 && CanGive(mac, want, now) ? want : 0;
                    if (addr == 0) return Reply(m, Nak, 0, chaddr, xid);
                    _leases[mac] = (addr, now + _options.LeaseTime, true, hostName ?? (_leases.TryGetValue(mac, out var o2) ? o2.HostName : null));
                    return Reply(m, Ack, addr, chaddr, xid);
                }
                case Release:
                case Decline:
                    _leases.Remove(mac);
                    return null;
                case Inform:
                    return Reply(m, Ack, 0, chaddr, xid, ciaddr);
                default:
                    return null;
            }
        }
    }

    private bool InPool(uint a) => a >= _options.DhcpStart && a <= _options.DhcpEnd;

    private bool CanGive(string mac, uint a, DateTimeOffset now)
    {
        if (!InPool(a)) return false;
        foreach (var (m, l) in _leases)
            if (m != mac && l.Address == a && l.Expires > now) return false;
        return true;
    }

    private uint Allocate(string mac, uint requested, DateTimeOffset now)
    {
        if (_leases.TryGetValue(mac, out var l) && InPool(l.Address)) return l.Address;
        if (requested != 0 && CanGive(mac, requested, now)) return requested;
        for (uint a = _options.DhcpStart; a <= _options.DhcpEnd; a++)
            if (CanGive(mac, a, now)) return a;
        return 0;
    }

    private DhcpReply Reply(ReadOnlySpan<byte> req, byte type, uint yiaddr, byte[] chaddr, uint xid, uint ciaddr = 0)
    {
        var r = new byte[548];
        r[0] = 2; r[1] = 1; r[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(4), xid);
        req.Slice(10, 2).CopyTo(r.AsSpan(10)); // flags (broadcast bit)
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(12), ciaddr);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(16), yiaddr);
        bool boot = _options.BootFile != null && type != Nak;
        if (boot) BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(20), _options.Gateway); // siaddr: next server
        req.Slice(24, 4).CopyTo(r.AsSpan(24)); // giaddr
        req.Slice(28, 16).CopyTo(r.AsSpan(28));
        if (boot) Encoding.ASCII.GetBytes(_options.BootFile!, r.AsSpan(108, 127));
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(FixedPart), MagicCookie);
        int o = FixedPart + 4;
        void Opt(byte code, ReadOnlySpan<byte> v) { r[o] = code; r[o + 1] = (byte)v.Length; v.CopyTo(r.AsSpan(o + 2)); o += 2 + v.Length; }
        void Addr(byte code, uint a) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, a); Opt(code, b); }
        Opt(53, new[] { type });
        Addr(54, _options.Gateway);
        if (type != Nak)
        {
            Addr(1, _options.SubnetMask);
            if (_options.Router != 0) Addr(3, _options.Router);
            if (_options.Dns != 0) Addr(6, _options.Dns);
            if (type != Ack || yiaddr != 0)
            {
                Span<byte> t = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(t, (uint)_options.LeaseTime.TotalSeconds);
                Opt(51, t);
            }
            if (boot) Opt(67, Encoding.ASCII.GetBytes(_options.BootFile!));
        }
        r[o++] = 255;
        bool broadcast = (req[10] & 0x80) != 0 || yiaddr == 0 && ciaddr == 0;
        return new DhcpReply(r, chaddr, type == Nak ? 0xFFFF_FFFF : (yiaddr != 0 ? yiaddr : ciaddr), broadcast, type);
    }
}

/// <summary>A DHCP message to send: to <see cref="ClientMac"/> at <see cref="Destination"/> (or broadcast).</summary>
public sealed record DhcpReply(byte[] Message, byte[] ClientMac, uint Destination, bool Broadcast, byte Type);

using System.Buffers.Binary;
using VmPortal.Network;

namespace VmPortal.Network.Tests;

/// <summary>Host time the test moves by hand.</summary>
public sealed class ManualTime : TimeProvider
{
    private long _ticks = DateTimeOffset.Parse("2026-01-01T00:00:00Z").UtcTicks;
    public void Advance(TimeSpan by) => _ticks += by.Ticks;
    public override DateTimeOffset GetUtcNow() => new(_ticks, TimeSpan.Zero);
    public override long GetTimestamp() => _ticks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
}

/// <summary>Frames for tests.</summary>
public static class Frames
{
    public static byte[] Mac(int n) => new byte[] { 0x52, 0x54, 0x00, 0x00, 0x00, (byte)n };

    public static byte[] Ethernet(byte[] dst, byte[] src, int length = 60, byte fill = 0)
    {
        var f = new byte[length];
        dst.CopyTo(f, 0);
        src.CopyTo(f, 6);
        f[12] = 0x88; f[13] = 0xB5; // local experimental EtherType
        for (int i = 14; i < f.Length; i++) f[i] = fill;
        return f;
    }

    public static List<byte[]> Drain(SwitchPort p)
    {
        var l = new List<byte[]>();
        while (p.TryReceive(out var f)) l.Add(f);
        return l;
    }
}

/// <summary>
/// A guest made of test code: a switch port with a MAC and an IP that speaks raw frames, used to drive the
/// network services (DHCP, DNS, the NAT's TCP) exactly as a VM's NIC would.
/// </summary>
public sealed class FakeGuest
{
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly List<byte[]> _seen = new();

    public FakeGuest(VirtualSwitch sw, int n, uint ip = 0x0A00_020F)
    {
        Mac = Frames.Mac(n);
        Ip = ip;
        Port = sw.Connect($"guest{n}");
        Port.FrameQueued = () => _arrived.Release();
    }

    public byte[] Mac { get; }
    public uint Ip { get; }
    public SwitchPort Port { get; }
    public static readonly byte[] GatewayMac = { 0x52, 0x55, 0x0A, 0x00, 0x02, 0x02 };
    public const uint Gateway = 0x0A00_0202, Dns = 0x0A00_0203;

    public void SendTcp(uint dst, ushort sport, ushort dport, uint seq, uint ack, TcpFlags flags, ushort window = 65535,
        byte[]? data = null, ushort mss = 0, int wscale = -1) =>
        Port.Send(Packets.Tcp(GatewayMac, Mac, Ip, sport, dst, dport, seq, ack, flags, window, data ?? Array.Empty<byte>(), mss, wscale));

    public void SendUdp(uint dst, ushort sport, ushort dport, byte[] data, uint? src = null) =>
        Port.Send(Packets.Udp(GatewayMac, Mac, src ?? Ip, sport, dst, dport, data));

    /// <summary>Waits for a frame matching <paramref name="match"/> (others are kept for later waits).</summary>
    public async Task<byte[]> WaitFor(Func<byte[], bool> match, int timeoutMs = 5000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            while (Port.TryReceive(out var f)) _seen.Add(f);
            var hit = _seen.FirstOrDefault(match);
            if (hit != null) { _seen.Remove(hit); return hit; }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException("no matching frame arrived");
            await _arrived.WaitAsync(left);
        }
    }

    /// <summary>Frames received so far that nobody waited for.</summary>
    public List<byte[]> Unclaimed()
    {
        while (Port.TryReceive(out var f)) _seen.Add(f);
        return _seen;
    }

    public async Task<Tcp> WaitTcp(ushort localPort, Func<Tcp, bool>? match = null, int timeoutMs = 5000)
    {
        var f = await WaitFor(f => Tcp.TryParse(f, out var t) && t.DstPort == localPort && (match?.Invoke(t) ?? true), timeoutMs);
        Tcp.TryParse(f, out var s);
        return s;
    }

    /// <summary>A TCP segment as the guest sees it.</summary>
    public sealed record Tcp(uint Src, uint Dst, ushort SrcPort, ushort DstPort, uint Seq, uint Ack, TcpFlags Flags, ushort Window, byte[] Data, bool ChecksumOk,
        int WindowScale = -1)
    {
        public bool Has(TcpFlags f) => (Flags & f) != 0;

        public static bool TryParse(byte[] f, out Tcp t)
        {
            t = null!;
            if (!Ipv4View.TryParse(f, out var ip) || ip.Protocol != Packets.ProtoTcp) return false;
            var s = ip.Payload;
            int off = (s[12] >> 4) * 4;
            bool ok = InternetChecksum.Finish(InternetChecksum.Add(InternetChecksum.PseudoHeader(ip.Source, ip.Destination, 6, s.Length), s)) == 0;
            t = new Tcp(ip.Source, ip.Destination, BinaryPrimitives.ReadUInt16BigEndian(s), BinaryPrimitives.ReadUInt16BigEndian(s[2..]),
                BinaryPrimitives.ReadUInt32BigEndian(s[4..]), BinaryPrimitives.ReadUInt32BigEndian(s[8..]), (TcpFlags)s[13],
                BinaryPrimitives.ReadUInt16BigEndian(s[14..]), s[off..].ToArray(), ok, WindowScaleOption(s[20..off]));
            return true;
        }

        /// <summary>The shift of a window scale option (kind 3) among TCP options, or -1.</summary>
        private static int WindowScaleOption(ReadOnlySpan<byte> o)
        {
            for (int i = 0; i < o.Length;)
            {
                if (o[i] == 0) break;
                if (o[i] == 1) { i++; continue; }
                if (i + 1 >= o.Length || o[i + 1] < 2) break;
                if (o[i] == 3 && o[i + 1] == 3 && i + 2 < o.Length) return o[i + 2];
                i += o[i + 1];
            }
            return -1;
        }
    }
}

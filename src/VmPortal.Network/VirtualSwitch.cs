namespace VmPortal.Network;

/// <summary>
/// An in-process learning Ethernet switch: one per network. Devices plug in with <see cref="Connect"/>; a frame
/// sent into a port teaches the switch where its source MAC lives (entries age out after <see cref="MacAgeing"/>)
/// and goes to the port that owns its destination MAC, or to every other port (flooding) when the destination is
/// broadcast, multicast or unknown. Frames never leave the process and never cross to another switch. Delivery
/// only queues: each receiving port keeps a bounded queue per sending port, served round robin, so a slow or
/// paused VM never blocks the sender and a flooding guest fills only its own share of the others' queues (the
/// excess is dropped and counted). Runt (&lt; 14 bytes), oversized (&gt; 1522 bytes) and garbage frames (a
/// multicast or zero source address) are counted and dropped. Thread-safe: senders are the VMs' machine threads.
/// </summary>
public sealed class VirtualSwitch
{
    public const int MinFrame = 14, MaxFrame = 1522;

    private readonly object _lock = new();
    private readonly List<SwitchPort> _ports = new();
    private readonly Dictionary<ulong, (SwitchPort Port, long SeenTicks)> _macTable = new();
    private readonly TimeProvider _time;
    private volatile SwitchPort[] _portSnapshot = Array.Empty<SwitchPort>();
    private int _nextId;

    public VirtualSwitch(string name, TimeProvider? time = null)
    {
        Name = name;
        _time = time ?? TimeProvider.System;
    }

    public string Name { get; }

    /// <summary>How long a learned MAC address stays in the table without traffic from it.</summary>
    public TimeSpan MacAgeing { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Frames a port keeps waiting from any one sending port before dropping more of its frames.</summary>
    public int QueueLimitPerSource { get; init; } = 256;

    public IReadOnlyList<SwitchPort> Ports => _portSnapshot;

    /// <summary>Plugs a new device (NIC, DHCP/NAT services, a test) into the switch.</summary>
    public SwitchPort Connect(string name)
    {
        lock (_lock)
        {
            var port = new SwitchPort(this, ++_nextId, name, QueueLimitPerSource);
            _ports.Add(port);
            _portSnapshot = _ports.ToArray();
            return port;
        }
    }

    /// <summary>Unplugs a port: its learned addresses are forgotten and frames to it are no longer queued.</summary>
    public void Disconnect(SwitchPort port)
    {
        lock (_lock)
        {
            if (!_ports.Remove(port)) return;
            _portSnapshot = _ports.ToArray();
            foreach (var key in _macTable.Where(e => e.Value.Port == port).Select(e => e.Key).ToList()) _macTable.Remove(key);
        }
        port.Detach();
    }

    /// <summary>The MAC table: address → port name, for diagnostics.</summary>
    public IReadOnlyDictionary<string, string> MacTable
    {
        get
        {
            lock (_lock) return _macTable.ToDictionary(e => FormatMac(e.Key), e => e.Value.Port.Name);
        }
    }

    internal void Forward(SwitchPort from, ReadOnlySpan<byte> frame)
    {
        if (frame.Length < MinFrame || frame.Length > MaxFrame) { from.CountError(); return; }
        ulong dst = Mac(frame), src = Mac(frame[6..]);
        if ((frame[6] & 1) != 0 || src == 0) { from.CountError(); return; }
        from.CountIn(frame.Length);
        long now = _time.GetTimestamp();
        SwitchPort? target = null;
        lock (_lock)
        {
            if (!from.Attached) return;
            if (!_macTable.TryGetValue(src, out var entry) || entry.Port != from || ElapsedTicks(entry.SeenTicks, now) > MacAgeing.Ticks / 10)
                _macTable[src] = (from, now);
            if ((frame[0] & 1) == 0 && _macTable.TryGetValue(dst, out var d))
            {
                if (ElapsedTicks(d.SeenTicks, now) <= MacAgeing.Ticks) target = d.Port;
                else _macTable.Remove(dst);
            }
        }
        if (target == from) return; // the destination lives behind the sender's own port
        byte[] copy = frame.ToArray();
        if (target != null) { target.Enqueue(from, copy); return; }
        foreach (var p in _portSnapshot)
            if (p != from) p.Enqueue(from, copy);
    }

    private long ElapsedTicks(long from, long to) => _time.GetElapsedTime(from, to).Ticks;

    private static ulong Mac(ReadOnlySpan<byte> b) =>
        (ulong)b[0] << 40 | (ulong)b[1] << 32 | (ulong)b[2] << 24 | (ulong)b[3] << 16 | (ulong)b[4] << 8 | b[5];

    private static string FormatMac(ulong m) =>
        string.Join(':', Enumerable.Range(0, 6).Select(i => ((byte)(m >> (40 - 8 * i))).ToString("x2")));
}

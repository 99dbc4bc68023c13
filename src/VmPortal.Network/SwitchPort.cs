using System.Diagnostics.CodeAnalysis;
using VmPortal.Emulator.Io;

namespace VmPortal.Network;

/// <summary>
/// One port of a <see cref="VirtualSwitch"/>, and the <see cref="IFramePort"/> a NIC is given. Frames waiting for
/// the device sit in one bounded queue per sending port, taken round robin by <see cref="TryReceive"/>; counters
/// say what went in (from the device), out (to the device), what was dropped because the device did not keep up,
/// and what was rejected as malformed. <see cref="Send"/> and <see cref="TryReceive"/> may run on different threads.
/// </summary>
public sealed class SwitchPort : IFramePort
{
    private readonly VirtualSwitch _switch;
    private readonly int _limit;
    private readonly object _lock = new();
    private readonly Dictionary<SwitchPort, Queue<byte[]>> _queues = new();
    private readonly List<SwitchPort> _sources = new();
    private int _next, _waiting;
    private long _framesIn, _bytesIn, _framesOut, _bytesOut, _dropped, _errors;

    internal SwitchPort(VirtualSwitch sw, int id, string name, int limitPerSource)
    {
        _switch = sw;
        Id = id;
        Name = name;
        _limit = limitPerSource;
    }

    public int Id { get; }
    public string Name { get; }
    public VirtualSwitch Switch => _switch;
    internal bool Attached { get; private set; } = true;

    public Action? FrameQueued { get; set; }

    /// <summary>Frames waiting for the device.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public PortCounters Counters => new(Interlocked.Read(ref _framesIn), Interlocked.Read(ref _bytesIn),
        Interlocked.Read(ref _framesOut), Interlocked.Read(ref _bytesOut), Interlocked.Read(ref _dropped), Interlocked.Read(ref _errors));

    public void Send(ReadOnlySpan<byte> frame)
    {
        if (Attached) _switch.Forward(this, frame);
    }

    public bool TryReceive([NotNullWhen(true)] out byte[]? frame)
    {
        lock (_lock)
        {
            for (int i = 0; i < _sources.Count; i++)
            {
                int at = (_next + i) % _sources.Count;
                var q = _queues[_sources[at]];
                if (q.Count == 0) continue;
                frame = q.Dequeue();
                _next = (at + 1) % _sources.Count;
                _waiting--;
                _framesOut++;
                _bytesOut += frame.Length;
                return true;
            }
        }
        frame = null;
        return false;
    }

    internal void Enqueue(SwitchPort from, byte[] frame)
    {
        lock (_lock)
        {
            if (!Attached) return;
            if (!_queues.TryGetValue(from, out var q))
            {
                q = new Queue<byte[]>();
                _queues[from] = q;
                _sources.Add(from);
            }
            if (q.Count >= _limit) { _dropped++; return; }
            q.Enqueue(frame);
            _waiting++;
        }
        FrameQueued?.Invoke();
    }

    internal void Detach()
    {
        lock (_lock)
        {
            Attached = false;
            _queues.Clear();
            _sources.Clear();
            _waiting = 0;
        }
    }

    internal void CountIn(int bytes)
    {
        Interlocked.Increment(ref _framesIn);
        Interlocked.Add(ref _bytesIn, bytes);
    }

    internal void CountError() => Interlocked.Increment(ref _errors);

    public override string ToString() => $"{_switch.Name}/{Name}";
}

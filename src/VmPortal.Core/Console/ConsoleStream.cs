using System.Diagnostics;
using System.Threading.Channels;

namespace VmPortal.Core.Console;

/// <summary>Client method names of the console hub (server → client), one per message type.</summary>
public static class ConsoleMethods
{
    public const string Frame = "Frame";
    public const string Resize = "Resize";
    public const string PowerState = "PowerState";
    public const string Bell = "Bell";
    public const string SerialData = "SerialData";
    /// <summary>The server ends this viewer (share link revoked or expired, VM deleted); the client must not rejoin.</summary>
    public const string Closed = "Closed";
}

/// <summary>One message for a viewer: the hub client method to call and its single argument.</summary>
public readonly record struct ConsoleMessage(string Method, object Payload)
{
    public override string ToString() => Payload is ConsoleFrame f ? $"Frame #{f.Seq} ({f.Tiles.Length} tiles{(f.Full ? ", full" : "")})" : Method;
}

/// <summary>Limits of a <see cref="ConsoleStream"/>.</summary>
public sealed record ConsoleStreamOptions
{
    public int TileSize { get; init; } = ScreenEncoder.DefaultTileSize;
    public TileCodecOptions Codec { get; init; } = new();
    /// <summary>Serial output kept for viewers that join later (and the most one viewer may have queued).</summary>
    public int SerialBacklogBytes { get; init; } = 64 * 1024;
    /// <summary>Non-frame messages (power state, bell, resize, serial chunks) one viewer may have queued.</summary>
    public int MaxQueuedEvents { get; init; } = 256;
}

/// <summary>
/// The console of one VM, shared by all its viewers: the screen is encoded once per tick
/// (<see cref="SubmitFrame"/>, called by the VM's frame ticker at ≤ 30–60 Hz) and each update is handed to every
/// viewer. A viewer holds at most one pending frame: when it has not taken the previous one yet, the new tiles are
/// merged into it (newer tiles replace older ones at the same place), so a slow viewer skips intermediate frames and
/// never holds up the VM or other viewers. A new viewer gets a full frame first (from the cached tiles, without
/// encoding). With no viewers, frames are not encoded at all. Thread-safe.
/// </summary>
public sealed class ConsoleStream : IDisposable
{
    private readonly object gate = new();
    private readonly ScreenEncoder encoder;
    private readonly ConsoleStreamOptions options;
    private ConsoleViewer[] viewers = [];
    private ConsolePowerState power = new(VmRunState.Stopped);
    private readonly byte[] serialRing;
    private int serialStart, serialCount;
    private bool disposed;
    private long encodeTicks, encodedFrames, encodedBytes;
    // The last frame submitted while nobody watched (copied, not encoded), encoded when a viewer joins.
    private uint[] latest = [];
    private int latestWidth, latestHeight;
    private PixelFormat latestFormat;
    private bool latestPending;

    public ConsoleStream(ConsoleStreamOptions? options = null)
    {
        this.options = options ?? new ConsoleStreamOptions();
        encoder = new ScreenEncoder(this.options.TileSize, this.options.Codec);
        serialRing = new byte[Math.Max(0, this.options.SerialBacklogBytes)];
    }

    public ConsoleStreamOptions Options => options;
    public int ViewerCount => Volatile.Read(ref viewers).Length;
    /// <summary>Raised (outside the stream's lock) with the new count when a viewer joins or leaves.</summary>
    public event Action<int>? ViewersChanged;
    /// <summary>Frame updates encoded so far (ticks with no change and ticks without viewers not counted).</summary>
    public long EncodedFrames => Interlocked.Read(ref encodedFrames);
    /// <summary>Tile payload bytes encoded so far (each counted once, whatever the number of viewers).</summary>
    public long EncodedBytes => Interlocked.Read(ref encodedBytes);
    /// <summary>Total time spent in the encoder.</summary>
    public TimeSpan EncodeTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref encodeTicks));
    public ConsolePowerState PowerState { get { lock (gate) return power; } }

    /// <summary>Adds a viewer. Its first messages are the power state, the serial backlog and (when a frame was ever
    /// encoded) a full frame; otherwise its first frame will be full.</summary>
    public ConsoleViewer AddViewer(bool readOnly = false)
    {
        ConsoleViewer v;
        int count;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            v = new ConsoleViewer(this, readOnly, options);
            v.Enqueue(new ConsoleMessage(ConsoleMethods.PowerState, power));
            if (serialCount > 0) v.Enqueue(new ConsoleMessage(ConsoleMethods.SerialData, new ConsoleSerialData(SerialBacklog())));
            EncodeLatest();
            if (encoder.FullFrame() is { } full) v.OfferFrame(full, encoder.TileSize);
            else v.NeedsFull = true;
            viewers = [.. viewers, v];
            count = viewers.Length;
        }
        ViewersChanged?.Invoke(count);
        return v;
    }

    internal void Remove(ConsoleViewer v)
    {
        int count;
        lock (gate)
        {
            viewers = viewers.Where(x => x != v).ToArray();
            count = viewers.Length;
        }
        ViewersChanged?.Invoke(count);
    }

    /// <summary>
    /// One frame tick: diff and encode <paramref name="pixels"/> and hand the update to every viewer. Returns the
    /// update (null when nothing changed or nobody watches). With no viewers nothing is encoded: the frame is only
    /// copied, and encoded when a viewer joins. The caller needs to submit only when the screen changed.
    /// </summary>
    public ConsoleFrame? SubmitFrame(ReadOnlySpan<uint> pixels, int width, int height, PixelFormat format)
    {
        lock (gate)
        {
            if (disposed) return null;
            if (viewers.Length == 0)
            {
                if (width <= 0 || height <= 0 || width > ScreenEncoder.MaxDimension || height > ScreenEncoder.MaxDimension || pixels.Length < width * height)
                    throw new ArgumentException($"Bad frame: {pixels.Length} pixels for {width}x{height}.", nameof(pixels));
                if (latest.Length < width * height) latest = new uint[width * height];
                pixels[..(width * height)].CopyTo(latest);
                (latestWidth, latestHeight, latestFormat, latestPending) = (width, height, format, true);
                return null;
            }
            latestPending = false;
            bool resized = width != encoder.Width || height != encoder.Height;
            long t0 = Stopwatch.GetTimestamp();
            var frame = encoder.Encode(pixels, width, height, format);
            encodeTicks += Stopwatch.GetTimestamp() - t0;
            if (frame is null) return null;
            encodedFrames++;
            encodedBytes += frame.PayloadSize();
            ConsoleFrame? full = null;
            foreach (var v in viewers)
            {
                if (resized && encoder.Seq > 1) v.Enqueue(new ConsoleMessage(ConsoleMethods.Resize, new ConsoleResize(width, height)));
                if (v.NeedsFull && !frame.Full)
                {
                    full ??= encoder.FullFrame()!;
                    v.OfferFrame(full, encoder.TileSize);
                }
                else v.OfferFrame(frame, encoder.TileSize);
                v.NeedsFull = false;
            }
            return frame;
        }
    }

    private void EncodeLatest()
    {
        if (!latestPending) return;
        latestPending = false;
        long t0 = Stopwatch.GetTimestamp();
        var f = encoder.Encode(latest.AsSpan(0, latestWidth * latestHeight), latestWidth, latestHeight, latestFormat);
        encodeTicks += Stopwatch.GetTimestamp() - t0;
        if (f is not null) { encodedFrames++; encodedBytes += f.PayloadSize(); }
    }

    /// <summary>Gives <paramref name="viewer"/> a full frame now (client's <c>RequestFullFrame</c>, e.g. after a reconnect).</summary>
    public void RequestFullFrame(ConsoleViewer viewer)
    {
        lock (gate)
        {
            if (encoder.FullFrame() is { } full) viewer.OfferFrame(full, encoder.TileSize);
            else viewer.NeedsFull = true;
        }
    }

    /// <summary>The current screen as a full frame (null before the first encoded frame).</summary>
    public ConsoleFrame? FullFrame()
    {
        lock (gate)
        {
            EncodeLatest();
            return encoder.FullFrame();
        }
    }

    public void PublishPowerState(VmRunState state, string? reason = null)
    {
        Broadcast(() => power = new ConsolePowerState(state, reason), p => new ConsoleMessage(ConsoleMethods.PowerState, p));
    }

    public void PublishBell() =>
        Broadcast(() => new ConsoleBell(Environment.TickCount64), b => new ConsoleMessage(ConsoleMethods.Bell, b));

    /// <summary>Guest output from COM1: kept in the backlog and sent to every viewer.</summary>
    public void PublishSerial(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        lock (gate)
        {
            if (disposed) return;
            AppendSerial(data);
            if (viewers.Length == 0) return;
            var bytes = data.ToArray();
            foreach (var v in viewers) v.EnqueueSerial(bytes);
        }
    }

    private void Broadcast<T>(Func<T> make, Func<T, ConsoleMessage> wrap)
    {
        lock (gate)
        {
            if (disposed) return;
            var m = wrap(make());
            foreach (var v in viewers) v.Enqueue(m);
        }
    }

    private void AppendSerial(ReadOnlySpan<byte> data)
    {
        int cap = serialRing.Length;
        if (cap == 0) return;
        if (data.Length >= cap) { data[^cap..].CopyTo(serialRing); serialStart = 0; serialCount = cap; return; }
        foreach (var b in data)
        {
            serialRing[(serialStart + serialCount) % cap] = b;
            if (serialCount < cap) serialCount++;
            else serialStart = (serialStart + 1) % cap;
        }
    }

    private byte[] SerialBacklog()
    {
        var r = new byte[serialCount];
        for (int i = 0; i < serialCount; i++) r[i] = serialRing[(serialStart + i) % serialRing.Length];
        return r;
    }

    /// <summary>Ends every viewer's reader (the VM is gone).</summary>
    public void Dispose()
    {
        ConsoleViewer[] all;
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            all = viewers;
            viewers = [];
        }
        foreach (var v in all) v.Complete();
    }
}

/// <summary>
/// One viewer of a <see cref="ConsoleStream"/>: read its messages from <see cref="Reader"/> (a real
/// <see cref="ChannelReader{T}"/>: <c>await foreach (var m in viewer.Reader.ReadAllAsync(ct))</c>) and dispose it
/// when the viewer leaves. Holds at most one pending frame plus a bounded queue of other messages.
/// </summary>
public sealed class ConsoleViewer : IDisposable
{
    private readonly object gate = new();
    private readonly ConsoleStream stream;
    private readonly ConsoleStreamOptions options;
    private readonly LinkedList<ConsoleMessage> events = new();
    private int queuedSerialBytes;
    private ConsoleFrame? pending;
    private ConsoleTile?[]? mergeGrid;  // used once two or more frames are merged
    private int mergeTileSize;
    private TaskCompletionSource<bool>? waiter;
    private bool completed;
    private long framesDelivered, framesMerged, bytesDelivered, eventsDropped;

    internal ConsoleViewer(ConsoleStream stream, bool readOnly, ConsoleStreamOptions options)
    {
        this.stream = stream;
        this.options = options;
        ReadOnly = readOnly;
        Reader = new ViewerReader(this);
    }

    /// <summary>A view-only viewer: the hub must drop its input.</summary>
    public bool ReadOnly { get; }

    /// <summary>Keys this viewer holds down (released into the guest when it leaves).</summary>
    public HeldKeys HeldKeys { get; } = new();

    public ChannelReader<ConsoleMessage> Reader { get; }

    internal bool NeedsFull { get; set; }

    /// <summary>Frames taken by the reader.</summary>
    public long FramesDelivered => Interlocked.Read(ref framesDelivered);
    /// <summary>Frames that were merged into a pending one because the reader was slower than the ticks.</summary>
    public long FramesMerged => Interlocked.Read(ref framesMerged);
    /// <summary>Tile payload bytes taken by the reader.</summary>
    public long BytesDelivered => Interlocked.Read(ref bytesDelivered);
    public long EventsDropped => Interlocked.Read(ref eventsDropped);

    /// <summary>Asks the stream for a full frame for this viewer.</summary>
    public void RequestFullFrame() => stream.RequestFullFrame(this);

    internal void OfferFrame(ConsoleFrame frame, int tileSize)
    {
        TaskCompletionSource<bool>? w;
        lock (gate)
        {
            if (completed) return;
            if (pending is null || frame.Full || frame.Width != pending.Width || frame.Height != pending.Height)
            {
                if (pending is not null) framesMerged++;
                pending = frame;
                mergeGrid = null;
            }
            else
            {
                framesMerged++;
                int cols = (frame.Width + tileSize - 1) / tileSize, rows = (frame.Height + tileSize - 1) / tileSize;
                if (mergeGrid is null || mergeTileSize != tileSize)
                {
                    mergeGrid = new ConsoleTile?[cols * rows];
                    mergeTileSize = tileSize;
                    foreach (var t in pending.Tiles) mergeGrid[ScreenEncoder.TileIndex(t, tileSize, frame.Width)] = t;
                }
                foreach (var t in frame.Tiles) mergeGrid[ScreenEncoder.TileIndex(t, tileSize, frame.Width)] = t;
                // Keep the newest sequence number; the merged frame stays full if the pending one was.
                pending = new ConsoleFrame { Width = frame.Width, Height = frame.Height, Seq = frame.Seq, Full = pending.Full, Tiles = pending.Tiles };
            }
            w = TakeWaiter();
        }
        w?.TrySetResult(true);
    }

    internal void Enqueue(ConsoleMessage m)
    {
        TaskCompletionSource<bool>? w;
        lock (gate)
        {
            if (completed) return;
            while (events.Count >= options.MaxQueuedEvents) DropFirst(serialOnly: false);
            events.AddLast(m);
            w = TakeWaiter();
        }
        w?.TrySetResult(true);
    }

    internal void EnqueueSerial(byte[] bytes)
    {
        const int maxChunk = 16 * 1024;
        TaskCompletionSource<bool>? w;
        lock (gate)
        {
            if (completed) return;
            // At most SerialBacklogBytes queued: the oldest serial bytes go first.
            int budget = Math.Max(1, options.SerialBacklogBytes);
            if (bytes.Length > budget) { bytes = bytes[^budget..]; eventsDropped++; }
            while (queuedSerialBytes + bytes.Length > budget && DropFirst(serialOnly: true)) { }
            // Coalesce with a serial chunk still waiting at the tail.
            if (events.Last is { Value.Payload: ConsoleSerialData last } tail && last.Bytes.Length + bytes.Length <= maxChunk)
                tail.Value = new ConsoleMessage(ConsoleMethods.SerialData, new ConsoleSerialData([.. last.Bytes, .. bytes]));
            else
            {
                while (events.Count >= options.MaxQueuedEvents) DropFirst(serialOnly: false);
                events.AddLast(new ConsoleMessage(ConsoleMethods.SerialData, new ConsoleSerialData(bytes)));
            }
            queuedSerialBytes += bytes.Length;
            w = TakeWaiter();
        }
        w?.TrySetResult(true);
    }

    private bool DropFirst(bool serialOnly)
    {
        for (var n = events.First; n is not null; n = n.Next)
        {
            if (serialOnly && n.Value.Payload is not ConsoleSerialData) continue;
            if (n.Value.Payload is ConsoleSerialData s) queuedSerialBytes -= s.Bytes.Length;
            events.Remove(n);
            eventsDropped++;
            return true;
        }
        return false;
    }

    private bool TryTake(out ConsoleMessage item)
    {
        lock (gate)
        {
            if (events.Count > 0)
            {
                item = events.First!.Value;
                events.RemoveFirst();
                if (item.Payload is ConsoleSerialData s) queuedSerialBytes -= s.Bytes.Length;
                return true;
            }
            if (pending is not null)
            {
                var f = pending;
                if (mergeGrid is not null)
                {
                    var tiles = new List<ConsoleTile>();
                    foreach (var t in mergeGrid) if (t is not null) tiles.Add(t);
                    f = new ConsoleFrame { Width = f.Width, Height = f.Height, Seq = f.Seq, Full = f.Full, Tiles = tiles.ToArray() };
                    mergeGrid = null;
                }
                pending = null;
                framesDelivered++;
                bytesDelivered += f.PayloadSize();
                item = new ConsoleMessage(ConsoleMethods.Frame, f);
                return true;
            }
            item = default;
            return false;
        }
    }

    private ValueTask<bool> WaitAsync(CancellationToken ct)
    {
        Task<bool> t;
        lock (gate)
        {
            if (events.Count > 0 || pending is not null) return ValueTask.FromResult(true);
            if (completed) return ValueTask.FromResult(false);
            waiter ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            t = waiter.Task;
        }
        return new ValueTask<bool>(ct.CanBeCanceled ? t.WaitAsync(ct) : t);
    }

    private TaskCompletionSource<bool>? TakeWaiter()
    {
        var w = waiter;
        waiter = null;
        return w;
    }

    internal void Complete()
    {
        TaskCompletionSource<bool>? w;
        lock (gate)
        {
            if (completed) return;
            completed = true;
            events.Clear();
            pending = null;
            mergeGrid = null;
            w = TakeWaiter();
        }
        w?.TrySetResult(false);
        ((ViewerReader)Reader).Done.TrySetResult();
    }

    /// <summary>Leaves the stream: no more messages; the reader completes.</summary>
    public void Dispose()
    {
        stream.Remove(this);
        Complete();
    }

    private sealed class ViewerReader(ConsoleViewer v) : ChannelReader<ConsoleMessage>
    {
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override Task Completion => Done.Task;
        public override bool TryRead(out ConsoleMessage item) => v.TryTake(out item);
        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => v.WaitAsync(cancellationToken);
    }
}

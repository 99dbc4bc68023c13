using System.Threading.Channels;
using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class ConsoleStreamTests
{
    private const int W = 720, H = 400;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30); // an upper bound for a loaded machine

    /// <summary>A screen that changes a little every tick: one line is rewritten, sometimes it scrolls.</summary>
    private sealed class Screen
    {
        private string[] lines = TestScreens.Lines(25, seed: 5);
        private int tick;
        public uint[] Pixels { get; private set; } = [];
        public uint[] Next()
        {
            tick++;
            if (tick % 4 == 0) lines = [.. lines[1..], $"tick {tick}"];
            else lines[tick % 25] = $"{tick} " + new string('=', tick % 70);
            return Pixels = TestScreens.Text(lines);
        }
    }

    /// <summary>Drains what is available now, applying frames to a canvas.</summary>
    private static List<ConsoleMessage> Drain(ConsoleViewer v, uint[]? canvas = null)
    {
        var got = new List<ConsoleMessage>();
        while (v.Reader.TryRead(out var m))
        {
            got.Add(m);
            if (canvas is not null && m.Payload is ConsoleFrame f) TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        }
        return got;
    }

    [Fact]
    public void New_viewer_gets_power_state_then_a_full_frame_of_the_current_screen()
    {
        using var stream = new ConsoleStream();
        using var first = stream.AddViewer();
        var screen = new Screen();
        stream.PublishPowerState(VmRunState.Running);
        for (int i = 0; i < 5; i++) stream.SubmitFrame(screen.Next(), W, H, PixelFormat.Argb32);

        using var late = stream.AddViewer();
        var msgs = Drain(late);
        Assert.Equal([ConsoleMethods.PowerState, ConsoleMethods.Frame], msgs.Select(m => m.Method));
        Assert.Equal(VmRunState.Running, ((ConsolePowerState)msgs[0].Payload).State);
        var f = (ConsoleFrame)msgs[1].Payload;
        Assert.True(f.Full);
        Assert.Equal(5, f.Seq);
        var canvas = new uint[W * H];
        TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        Assert.Equal(screen.Pixels, canvas);
    }

    [Fact]
    public void Without_viewers_nothing_is_encoded_and_a_viewer_joining_later_gets_the_latest_screen_at_once()
    {
        using var stream = new ConsoleStream();
        var screen = new Screen();
        for (int i = 0; i < 10; i++) Assert.Null(stream.SubmitFrame(screen.Next(), W, H, PixelFormat.Argb32));
        Assert.Equal(0, stream.EncodedFrames);

        using var v = stream.AddViewer(); // encodes the latest submitted screen once
        Assert.Equal(1, stream.EncodedFrames);
        var canvas = new uint[W * H];
        var f = (ConsoleFrame)Drain(v, canvas).Single(m => m.Payload is ConsoleFrame).Payload;
        Assert.True(f.Full);
        Assert.Equal(screen.Pixels, canvas);

        // The submitted buffer was copied: changing it afterwards changes nothing.
        v.Dispose();
        var buffer = screen.Next();
        var expected = (uint[])buffer.Clone();
        Assert.Null(stream.SubmitFrame(buffer, W, H, PixelFormat.Argb32));
        Array.Clear(buffer);
        using var v2 = stream.AddViewer();
        var canvas2 = new uint[W * H];
        Drain(v2, canvas2);
        Assert.Equal(expected, canvas2);
    }

    [Fact]
    public void Frames_are_encoded_once_and_the_same_object_goes_to_every_viewer()
    {
        using var stream = new ConsoleStream();
        var viewers = Enumerable.Range(0, 5).Select(_ => stream.AddViewer()).ToList();
        var screen = new Screen();
        for (int i = 0; i < 8; i++)
        {
            var f = stream.SubmitFrame(screen.Next(), W, H, PixelFormat.Argb32)!;
            foreach (var v in viewers)
            {
                var frames = Drain(v).Where(m => m.Payload is ConsoleFrame).ToList();
                Assert.Same(f, Assert.Single(frames).Payload);
            }
        }
        Assert.Equal(8, stream.EncodedFrames);
        viewers.ForEach(v => v.Dispose());
    }

    [Fact]
    public async Task A_slow_reader_skips_frames_by_merging_without_holding_up_the_fast_one()
    {
        using var stream = new ConsoleStream();
        using var fast = stream.AddViewer();
        using var slow = stream.AddViewer();
        var screen = new Screen();
        var fastCanvas = new uint[W * H];
        var slowCanvas = new uint[W * H];
        int slowFramesRead = 0;
        // The slow viewer: a real channel reader that may take a frame only when the test lets it (a congested
        // connection whose sends complete rarely), so the test does not depend on the machine's speed.
        var permits = new SemaphoreSlim(0);
        var readOne = new SemaphoreSlim(0);
        using var cts = new CancellationTokenSource(Timeout);
        var slowTask = Task.Run(async () =>
        {
            await foreach (var m in slow.Reader.ReadAllAsync(cts.Token))
            {
                if (m.Payload is not ConsoleFrame f) continue;
                await permits.WaitAsync(cts.Token);
                TestScreens.Apply(f, slowCanvas, PixelFormat.Argb32);
                Interlocked.Increment(ref slowFramesRead);
                readOne.Release();
            }
        });

        // The VM side: 60 ticks; the fast viewer reads after every tick, the slow one is let through every 10th.
        for (int i = 0; i < 60; i++)
        {
            stream.SubmitFrame(screen.Next(), W, H, PixelFormat.Argb32);
            Drain(fast, fastCanvas);
            Assert.Equal(screen.Pixels, fastCanvas);
            if (i % 10 == 0) { permits.Release(); await readOne.WaitAsync(cts.Token); }
        }
        Assert.Equal(60, fast.FramesDelivered);
        Assert.Equal(6, Volatile.Read(ref slowFramesRead));
        Assert.True(slow.FramesMerged >= 50, $"merged {slow.FramesMerged}");

        // One more read brings the slow viewer to the final screen, intermediate frames skipped.
        permits.Release(100);
        await Until(() => slowCanvas.AsSpan().SequenceEqual(screen.Pixels), cts.Token);
        Assert.Equal(screen.Pixels, slowCanvas);
        // Each of the 60 updates was either delivered or merged into a pending one; the reader may have taken one
        // frame ahead of each permit, so at most 6 + 2 deliveries.
        Assert.InRange(slow.FramesDelivered, 7, 8);
        Assert.Equal(60, slow.FramesDelivered + slow.FramesMerged);

        slow.Dispose();
        await slowTask.WaitAsync(Timeout); // the reader ends when the viewer leaves
        Assert.Equal(1, stream.ViewerCount);
    }

    private static async Task Until(Func<bool> cond, CancellationToken ct)
    {
        while (!cond()) await Task.Delay(10, ct);
    }

    [Fact]
    public async Task Reader_waits_for_the_next_frame_and_completes_on_leave()
    {
        using var stream = new ConsoleStream();
        var v = stream.AddViewer();
        Drain(v);
        var wait = v.Reader.WaitToReadAsync().AsTask();
        await Task.Delay(30);
        Assert.False(wait.IsCompleted);
        stream.SubmitFrame(new Screen().Next(), W, H, PixelFormat.Argb32);
        Assert.True(await wait.WaitAsync(Timeout));
        Assert.True(v.Reader.TryRead(out var m));
        Assert.Equal(ConsoleMethods.Frame, m.Method);

        var ending = v.Reader.WaitToReadAsync().AsTask();
        v.Dispose();
        Assert.Equal(0, stream.ViewerCount);
        await ending.WaitAsync(Timeout);
        Assert.False(await v.Reader.WaitToReadAsync());
        await v.Reader.Completion.WaitAsync(Timeout);
        // A frame after leaving goes nowhere and does not resurrect the viewer.
        Assert.Null(stream.SubmitFrame(new Screen().Next(), W, H, PixelFormat.Argb32));
        Assert.False(v.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Cancelled_wait_throws_and_the_viewer_stays_usable()
    {
        using var stream = new ConsoleStream();
        using var v = stream.AddViewer();
        Drain(v);
        using var cts = new CancellationTokenSource(20);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await v.Reader.WaitToReadAsync(cts.Token));
        stream.PublishBell();
        Assert.True(await v.Reader.WaitToReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(ConsoleMethods.Bell, Drain(v).Single().Method);
    }

    [Fact]
    public void Mode_change_sends_resize_then_a_full_frame_of_the_new_size()
    {
        using var stream = new ConsoleStream();
        using var v = stream.AddViewer();
        stream.SubmitFrame(new Screen().Next(), W, H, PixelFormat.Argb32);
        Drain(v);
        var g = TestScreens.Noise(320, 200, 4);
        stream.SubmitFrame(g, 320, 200, PixelFormat.Argb32);
        var msgs = Drain(v);
        Assert.Equal([ConsoleMethods.Resize, ConsoleMethods.Frame], msgs.Select(m => m.Method));
        Assert.Equal(new ConsoleResize(320, 200), msgs[0].Payload);
        var f = (ConsoleFrame)msgs[1].Payload;
        Assert.True(f.Full);
        Assert.Equal((320, 200), (f.Width, f.Height));
    }

    [Fact]
    public void A_pending_delta_followed_by_a_resize_is_replaced_by_the_new_full_frame()
    {
        using var stream = new ConsoleStream();
        using var v = stream.AddViewer();
        var s = new Screen();
        stream.SubmitFrame(s.Next(), W, H, PixelFormat.Argb32);
        stream.SubmitFrame(s.Next(), W, H, PixelFormat.Argb32); // pending, not read
        var g = TestScreens.Noise(640, 480, 2);
        stream.SubmitFrame(g, 640, 480, PixelFormat.Argb32);
        var frames = Drain(v).Where(m => m.Payload is ConsoleFrame).Select(m => (ConsoleFrame)m.Payload).ToList();
        var f = Assert.Single(frames);
        Assert.True(f.Full);
        var canvas = new uint[640 * 480];
        TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        Assert.Equal(g, canvas);
    }

    [Fact]
    public void Request_full_frame_replaces_pending_deltas_with_the_whole_screen()
    {
        using var stream = new ConsoleStream();
        using var v = stream.AddViewer();
        var s = new Screen();
        stream.SubmitFrame(s.Next(), W, H, PixelFormat.Argb32);
        Drain(v);
        stream.SubmitFrame(s.Next(), W, H, PixelFormat.Argb32);
        v.RequestFullFrame();
        var f = (ConsoleFrame)Drain(v).Single(m => m.Payload is ConsoleFrame).Payload;
        Assert.True(f.Full);
        var canvas = new uint[W * H]; // a reconnected client starts from a blank canvas
        TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        Assert.Equal(s.Pixels, canvas);
    }

    [Fact]
    public void Serial_output_is_streamed_coalesced_and_replayed_to_new_viewers()
    {
        using var stream = new ConsoleStream(new ConsoleStreamOptions { SerialBacklogBytes = 16 });
        using var v = stream.AddViewer();
        Drain(v);
        stream.PublishSerial("hello "u8);
        stream.PublishSerial("world"u8);
        var msgs = Drain(v);
        Assert.Equal("hello world", System.Text.Encoding.ASCII.GetString(((ConsoleSerialData)msgs.Single().Payload).Bytes));

        stream.PublishSerial("0123456789"u8); // backlog keeps the last 16 bytes
        using var late = stream.AddViewer();
        var replay = Drain(late).Single(m => m.Method == ConsoleMethods.SerialData);
        Assert.Equal(" world0123456789", System.Text.Encoding.ASCII.GetString(((ConsoleSerialData)replay.Payload).Bytes));

        // A viewer that does not read keeps at most the budget, newest bytes last.
        for (int i = 0; i < 10; i++) stream.PublishSerial("abcdefgh"u8);
        var queued = Drain(v).Where(m => m.Payload is ConsoleSerialData).SelectMany(m => ((ConsoleSerialData)m.Payload).Bytes).ToArray();
        Assert.True(queued.Length <= 16, $"{queued.Length} bytes queued");
        Assert.EndsWith("abcdefgh", System.Text.Encoding.ASCII.GetString(queued));
        Assert.True(v.EventsDropped > 0);
    }

    [Fact]
    public void Event_queue_is_bounded_for_a_viewer_that_never_reads()
    {
        using var stream = new ConsoleStream(new ConsoleStreamOptions { MaxQueuedEvents = 8 });
        using var v = stream.AddViewer();
        for (int i = 0; i < 1000; i++) stream.PublishBell();
        stream.PublishPowerState(VmRunState.Paused);
        var msgs = Drain(v);
        Assert.Equal(8, msgs.Count);
        Assert.Equal(VmRunState.Paused, ((ConsolePowerState)msgs[^1].Payload).State);
    }

    [Fact]
    public async Task Disposing_the_stream_ends_every_reader()
    {
        var stream = new ConsoleStream();
        var a = stream.AddViewer();
        var b = stream.AddViewer();
        var readA = Task.Run(async () => { await foreach (var _ in a.Reader.ReadAllAsync()) { } });
        var readB = Task.Run(async () => { await foreach (var _ in b.Reader.ReadAllAsync()) { } });
        stream.SubmitFrame(new Screen().Next(), W, H, PixelFormat.Argb32);
        stream.Dispose();
        await Task.WhenAll(readA, readB).WaitAsync(Timeout);
        Assert.Throws<ObjectDisposedException>(() => stream.AddViewer());
        Assert.Null(stream.SubmitFrame(new Screen().Next(), W, H, PixelFormat.Argb32));
    }

    [Fact]
    public async Task Viewers_joining_and_leaving_during_ticks_always_converge_to_the_screen()
    {
        using var stream = new ConsoleStream();
        var screen = new Screen();
        var slowMachine = TimeSpan.FromSeconds(60); // rendering and encoding 40 text frames, on a loaded CI machine
        using var cts = new CancellationTokenSource(slowMachine);
        var churnStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ticks = Task.Run(async () =>
        {
            await churnStarted.Task;
            for (int i = 0; i < 40; i++) { stream.SubmitFrame(screen.Next(), W, H, PixelFormat.Argb32); Thread.Yield(); }
        });
        var churn = Task.Run(async () =>
        {
            int joined = 0;
            while (!ticks.IsCompleted || joined < 3)
            {
                churnStarted.TrySetResult();
                using var v = stream.AddViewer();
                var canvas = new uint[W * H];
                var t = Task.Run(async () => { await foreach (var m in v.Reader.ReadAllAsync(cts.Token)) if (m.Payload is ConsoleFrame f) TestScreens.Apply(f, canvas, PixelFormat.Argb32); });
                await Task.Delay(3);
                v.Dispose();
                await t;
                joined++;
            }
            return joined;
        });
        using var steady = stream.AddViewer();
        var steadyCanvas = new uint[W * H];
        await ticks.WaitAsync(slowMachine);
        Assert.True(await churn.WaitAsync(slowMachine) > 0);
        Drain(steady, steadyCanvas);
        Assert.Equal(screen.Pixels, steadyCanvas);
        Assert.Equal(1, stream.ViewerCount);
    }
}

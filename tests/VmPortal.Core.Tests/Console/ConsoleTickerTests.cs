using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class ConsoleTickerTests
{
    [Fact]
    public void Ticks_run_periodically_on_one_background_thread()
    {
        var threads = new HashSet<int>();
        using var done = new CountdownEvent(5);
        using (var t = new ConsoleTicker(() => { lock (threads) threads.Add(Environment.CurrentManagedThreadId); if (!done.IsSet) done.Signal(); },
                   TimeSpan.FromMilliseconds(10), TimeSpan.Zero))
        {
            Assert.True(done.Wait(TimeSpan.FromSeconds(10)));
        }
        Assert.Single(threads);
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, threads);
    }

    [Fact]
    public void Kick_brings_the_next_tick_forward()
    {
        // A period far longer than the test: only a kick can make a tick happen.
        using var ticked = new ManualResetEventSlim();
        using var t = new ConsoleTicker(() => ticked.Set(), TimeSpan.FromMinutes(10), TimeSpan.FromMilliseconds(100));
        Assert.False(ticked.Wait(200));
        t.Kick();
        Assert.True(ticked.Wait(TimeSpan.FromSeconds(10)));
        // then the rest of the early series (100, 400, 1000, 2000 ms; a stalled host may merge two), and nothing more
        Thread.Sleep(3000);
        long after = t.Ticks;
        Assert.InRange(after, 2, ConsoleTicker.KickSteps.Length);
        Thread.Sleep(500);
        Assert.Equal(after, t.Ticks);
    }

    [Fact]
    public void Idle_ticks_once_a_second_and_leaving_idle_ticks_at_once()
    {
        using var t = new ConsoleTicker(() => { }, TimeSpan.FromMilliseconds(10), TimeSpan.Zero) { Idle = true };
        Thread.Sleep(200);
        long start = t.Ticks;
        Thread.Sleep(1500);
        Assert.InRange(t.Ticks - start, 0, 2); // 1 s period while idle (30 Hz would give ~150)
        t.Idle = false;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (t.Ticks - start < 20 && DateTime.UtcNow < deadline) Thread.Sleep(10);
        Assert.True(t.Ticks - start >= 20, $"only {t.Ticks - start} ticks after leaving idle");
    }

    [Fact]
    public void A_throwing_tick_is_reported_and_ticking_goes_on()
    {
        int n = 0;
        var errors = new List<Exception>();
        using var two = new CountdownEvent(2);
        using var t = new ConsoleTicker(() => { if (Interlocked.Increment(ref n) == 1) throw new InvalidOperationException("boom"); if (!two.IsSet) two.Signal(); },
            TimeSpan.FromMilliseconds(5), TimeSpan.Zero, e => { lock (errors) errors.Add(e); });
        Assert.True(two.Wait(TimeSpan.FromSeconds(10)));
        lock (errors) Assert.Equal("boom", Assert.Single(errors).Message);
    }

    [Fact]
    public void Dispose_stops_ticking()
    {
        var t = new ConsoleTicker(() => { }, TimeSpan.FromMilliseconds(1), TimeSpan.Zero);
        Thread.Sleep(20);
        t.Dispose();
        long after = t.Ticks;
        Thread.Sleep(50);
        Assert.Equal(after, t.Ticks);
        t.Dispose(); // twice is fine
    }
}

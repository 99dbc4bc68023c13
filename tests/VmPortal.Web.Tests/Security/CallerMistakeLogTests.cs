using VmPortal.Web.Security;

namespace VmPortal.Web.Tests.Security;

/// <summary>Log lines about caller mistakes are rate-limited per client address (issue 15 #17).</summary>
public sealed class CallerMistakeLogTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void Each_address_gets_a_budget_per_window_and_the_next_window_says_how_many_lines_were_left_out()
    {
        var clock = new ManualClock();
        var limit = new CallerMistakeLog(clock);
        for (int i = 0; i < CallerMistakeLog.PerWindow; i++)
        {
            Assert.True(limit.ShouldLog("192.0.2.1", out int s));
            Assert.Equal(0, s);
        }
        for (int i = 0; i < 500; i++) Assert.False(limit.ShouldLog("192.0.2.1", out _));
        Assert.True(limit.ShouldLog("192.0.2.2", out _)); // another address is not affected

        clock.Now += CallerMistakeLog.Window - TimeSpan.FromSeconds(1);
        Assert.False(limit.ShouldLog("192.0.2.1", out _));
        clock.Now += TimeSpan.FromSeconds(1);
        Assert.True(limit.ShouldLog("192.0.2.1", out int suppressed));
        Assert.Equal(501, suppressed);
        Assert.True(limit.ShouldLog("192.0.2.1", out suppressed));
        Assert.Equal(0, suppressed); // said once
    }
}

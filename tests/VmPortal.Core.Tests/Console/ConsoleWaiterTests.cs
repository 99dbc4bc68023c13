using System.Text;
using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class ConsoleWaiterTests
{
    [Fact]
    public async Task Wait_returns_the_match_once_the_text_appears()
    {
        var log = new SerialLog();
        var wait = ConsoleWaiter.WaitAsync(() => log.Text, ConsoleWaiter.Parse(@"\d+-ok"), TimeSpan.FromSeconds(20), poll: TimeSpan.FromMilliseconds(5));
        await Task.Delay(30);
        Assert.False(wait.IsCompleted);
        log.Append("# echo $((6*7))-ok\r\n"u8);
        log.Append("42-ok\r\n# "u8);
        var r = await wait;
        Assert.True(r.Matched);
        Assert.Equal("42-ok", r.Match);
    }

    [Fact]
    public async Task Timeout_answers_with_the_last_text()
    {
        var r = await ConsoleWaiter.WaitAsync(() => "login: ", ConsoleWaiter.Parse("never"), TimeSpan.FromMilliseconds(50), poll: TimeSpan.FromMilliseconds(5));
        Assert.False(r.Matched);
        Assert.Null(r.Match);
        Assert.Equal("login: ", r.LastText);
    }

    [Fact]
    public async Task Graphics_mode_screens_read_as_empty()
    {
        var r = await ConsoleWaiter.WaitAsync(() => null, ConsoleWaiter.Parse("x"), TimeSpan.FromMilliseconds(20), poll: TimeSpan.FromMilliseconds(5));
        Assert.Equal("", r.LastText);
    }

    [Theory]
    [InlineData("")]
    [InlineData("(unclosed")]
    public void Bad_patterns_are_refused_with_a_reason(string pattern)
    {
        Assert.Throws<ConsoleInputException>(() => ConsoleWaiter.Parse(pattern));
        Assert.Throws<ConsoleInputException>(() => ConsoleWaiter.Parse(new string('a', ConsoleWaiter.MaxPatternLength + 1)));
    }

    [Fact]
    public async Task Pathological_patterns_time_out_instead_of_hanging()
    {
        var text = new string('a', 5000) + "!";
        var ex = await Assert.ThrowsAsync<ConsoleInputException>(() =>
            ConsoleWaiter.WaitAsync(() => text, ConsoleWaiter.Parse("^(a+)+$"), TimeSpan.FromSeconds(30)));
        Assert.Contains("too long to match", ex.Message);
    }

    [Fact]
    public async Task Bad_timeouts_are_refused()
    {
        await Assert.ThrowsAsync<ConsoleInputException>(() => ConsoleWaiter.WaitAsync(() => "", ConsoleWaiter.Parse("x"), TimeSpan.Zero));
        await Assert.ThrowsAsync<ConsoleInputException>(() => ConsoleWaiter.WaitAsync(() => "", ConsoleWaiter.Parse("x"), TimeSpan.FromHours(1)));
    }

    [Fact]
    public void Serial_log_decodes_utf8_split_across_chunks_and_keeps_the_tail()
    {
        var log = new SerialLog(capacity: 8);
        var euro = Encoding.UTF8.GetBytes("€"); // 3 bytes
        log.Append(euro.AsSpan(0, 1));
        log.Append(euro.AsSpan(1));
        Assert.Equal("€", log.Text);
        long v = log.Version;
        log.Append("0123456789"u8);
        Assert.Equal("23456789", log.Text);
        Assert.True(log.Version > v);
    }
}

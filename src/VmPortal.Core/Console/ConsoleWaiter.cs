using System.Text;
using System.Text.RegularExpressions;

namespace VmPortal.Core.Console;

/// <summary>Where <c>POST /console/wait</c> looks for its pattern.</summary>
public enum WaitSource
{
    Screen,
    Serial,
}

/// <summary>Outcome of a wait: the match (null on timeout) and the text last looked at (the screen or serial tail).</summary>
public sealed record WaitResult(bool Matched, string? Match, string LastText);

/// <summary>
/// The guest's serial output as text (UTF-8, split sequences handled), keeping the last <see cref="Capacity"/>
/// characters, for pattern waits and "copy". Thread-safe.
/// </summary>
public sealed class SerialLog(int capacity = 256 * 1024)
{
    private readonly object gate = new();
    private readonly Decoder decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder text = new();
    private long version;

    public int Capacity { get; } = capacity;

    /// <summary>Increases with every append (cheap change detection).</summary>
    public long Version => Interlocked.Read(ref version);

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        lock (gate)
        {
            var chars = new char[decoder.GetCharCount(bytes, flush: false)];
            decoder.GetChars(bytes, chars, flush: false);
            text.Append(chars);
            if (text.Length > Capacity) text.Remove(0, text.Length - Capacity);
            version++;
        }
    }

    public string Text { get { lock (gate) return text.ToString(); } }

    public void Clear()
    {
        lock (gate) { text.Clear(); decoder.Reset(); version++; }
    }
}

/// <summary>
/// Waits until a regular expression matches the screen text or the serial output (scripts' <c>console/wait</c>,
/// integration tests waiting for a prompt). Patterns run with a match timeout, so a pathological pattern cannot hang
/// the server.
/// </summary>
public static class ConsoleWaiter
{
    public const int MaxPatternLength = 1024;
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>Parses a user's pattern; <see cref="ConsoleInputException"/> with the reason when it is unusable.</summary>
    public static Regex Parse(string pattern)
    {
        if (string.IsNullOrEmpty(pattern)) throw new ConsoleInputException("A pattern is required.");
        if (pattern.Length > MaxPatternLength)
            throw new ConsoleInputException($"The pattern is too long ({pattern.Length} characters, at most {MaxPatternLength}).");
        try { return new Regex(pattern, RegexOptions.Multiline | RegexOptions.CultureInvariant, RegexTimeout); }
        catch (ArgumentException e) { throw new ConsoleInputException($"The pattern is not a valid regular expression: {e.Message}"); }
    }

    /// <summary>
    /// Polls <paramref name="read"/> (the screen text or the serial log; null = nothing to read, e.g. graphics mode)
    /// every <paramref name="poll"/> until <paramref name="pattern"/> matches or <paramref name="timeout"/> passes.
    /// </summary>
    public static async Task<WaitResult> WaitAsync(Func<string?> read, Regex pattern, TimeSpan timeout,
        CancellationToken ct = default, TimeSpan? poll = null)
    {
        if (timeout <= TimeSpan.Zero || timeout > MaxTimeout)
            throw new ConsoleInputException($"The timeout must be between 0 and {MaxTimeout.TotalSeconds:0} seconds.");
        var interval = poll ?? TimeSpan.FromMilliseconds(100);
        var deadline = DateTime.UtcNow + timeout;
        string last = "";
        while (true)
        {
            last = read() ?? "";
            Match m;
            try { m = pattern.Match(last); }
            catch (RegexMatchTimeoutException) { throw new ConsoleInputException("The pattern takes too long to match; simplify it."); }
            if (m.Success) return new WaitResult(true, m.Value, last);
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return new WaitResult(false, null, last);
            await Task.Delay(left < interval ? left : interval, ct);
        }
    }
}

using VmPortal.Core.Console;

namespace VmPortal.Benchmarks.Console.DemoHost;

/// <summary>
/// A stand-in for a running VM: an 80×25 text console with a shell-like prompt that reads set-1 scancodes
/// (as the i8042 would deliver them) and echoes typed text. Commands: <c>echo TEXT</c>, <c>seq N</c> (prints N lines,
/// 10 per tick, to simulate scrolling output), <c>clear</c>. COM1 echoes its input. Thread-safe.
/// </summary>
public sealed class FakeGuest
{
    private const string Prompt = "demo$ ";
    private readonly object gate = new();
    private readonly TextScreen screen = new();
    private readonly uint[] pixels = new uint[TextScreen.Width * TextScreen.Height];
    private readonly Dictionary<byte, (char Plain, char Shifted)> keys = new();
    private readonly System.Text.StringBuilder line = new();
    private bool shift, extended, dirty = true;
    private int pendingSeq, seqNext, tick;

    public FakeGuest()
    {
        // Reverse map set-1 make codes → characters, built from the same US layout the server types with.
        for (char c = ' '; c <= '~'; c++)
        {
            var a = KeyInput.TextToKeystrokes(c.ToString());
            bool shifted = a.Count == 4;
            var code = KeyboardMap.Get(a[shifted ? 1 : 0].Code).Set1!.Value.Code;
            var cur = keys.GetValueOrDefault(code, ('\0', '\0'));
            keys[code] = shifted ? (cur.Item1, c) : (c, cur.Item2);
        }
        Print("VmPortal console demo guest. Try: echo hello, seq 500, clear\n" + Prompt);
    }

    public ConsoleStream Stream { get; } = new();
    /// <summary>Blink the cursor like VGA text mode (off for latency measurements, so that only echoes change pixels).</summary>
    public bool CursorBlink { get; init; } = true;
    public VmLifecycle Lifecycle { get; } = new(VmRunState.Running);
    public event Action<byte[]>? SerialOut;
    /// <summary>Asks the frame ticker for an early tick (set by the ticker; called after keyboard input).</summary>
    public Action? Kicker { get; set; }

    /// <summary>Bytes from the keyboard controller (scancode set 1).</summary>
    public void SendScancodes(ReadOnlySpan<byte> bytes)
    {
        lock (gate)
        {
            foreach (var b in bytes)
            {
                if (b == 0xE0) { extended = true; continue; }
                bool brk = (b & 0x80) != 0;
                byte code = (byte)(b & 0x7F);
                bool ext = extended;
                extended = false;
                if (code is 0x2A or 0x36) { shift = !brk; continue; }
                if (brk || ext) continue;
                if (code == 0x1C) { Enter(); continue; }
                if (code == 0x0E) { if (line.Length > 0) { line.Length--; Backspace(); } continue; }
                if (keys.TryGetValue(code, out var ch))
                {
                    char c = shift ? ch.Shifted : ch.Plain;
                    if (c != '\0') { line.Append(c); Print(c.ToString()); }
                }
            }
        }
        Kicker?.Invoke();
    }

    public void SerialInput(byte[] bytes) => SerialOut?.Invoke(bytes);

    /// <summary>The screen as text, one line per row (trailing spaces trimmed).</summary>
    public string ScreenText()
    {
        lock (gate)
            return string.Join("\n", Enumerable.Range(0, TextScreen.Rows)
                .Select(r => new string(screen.Chars, r * TextScreen.Cols, TextScreen.Cols).TrimEnd()));
    }

    /// <summary>One frame tick: advance output, blink the cursor like VGA (toggle every 8 ticks at 30 Hz), and hand
    /// the screen to the console stream when it changed.</summary>
    public void Tick()
    {
        lock (gate)
        {
            tick++;
            for (int i = 0; i < 10 && pendingSeq > 0; i++, pendingSeq--) Print($"{++seqNext}\n");
            if (pendingSeq == 0 && seqNext > 0) { seqNext = 0; Print(Prompt); }
            if (CursorBlink && tick % 8 == 0) { screen.CursorOn = !screen.CursorOn; dirty = true; }
            if (!dirty) return;
            dirty = false;
            screen.Render(pixels);
        }
        Stream.SubmitFrame(pixels, TextScreen.Width, TextScreen.Height, PixelFormat.Argb32);
    }

    private void Enter()
    {
        var cmd = line.ToString().Trim();
        line.Clear();
        Print("\n");
        if (cmd.StartsWith("echo ")) Print(cmd[5..] + "\n");
        else if (cmd.StartsWith("seq ") && int.TryParse(cmd[4..], out var n) && n > 0) { pendingSeq = Math.Min(n, 100000); return; }
        else if (cmd == "clear") { for (int i = 0; i < TextScreen.Rows; i++) screen.ScrollUp(); screen.CursorX = screen.CursorY = 0; }
        else if (cmd.Length > 0) Print($"{cmd.Split(' ')[0]}: not found\n");
        Print(Prompt);
    }

    private void Backspace()
    {
        if (screen.CursorX > 0) screen.CursorX--;
        screen.Put(screen.CursorX, screen.CursorY, " ");
        dirty = true;
    }

    private void Print(string s)
    {
        foreach (var c in s)
        {
            if (c == '\n') { screen.CursorX = 0; NewLine(); continue; }
            screen.Put(screen.CursorX, screen.CursorY, c.ToString());
            if (++screen.CursorX >= TextScreen.Cols) { screen.CursorX = 0; NewLine(); }
        }
        screen.CursorOn = true;
        dirty = true;
    }

    private void NewLine()
    {
        if (screen.CursorY < TextScreen.Rows - 1) screen.CursorY++;
        else screen.ScrollUp();
    }
}

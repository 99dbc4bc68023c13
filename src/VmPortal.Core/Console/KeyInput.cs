namespace VmPortal.Core.Console;

/// <summary>One key going down or up, named by its <c>KeyboardEvent.code</c>.</summary>
public readonly record struct KeyAction(string Code, bool Down)
{
    public static KeyAction Press(string code) => new(code, true);
    public static KeyAction Release(string code) => new(code, false);
    public override string ToString() => (Down ? "+" : "-") + Code;
}

/// <summary>
/// Turns text ("Type text", paste, <c>POST /console/type</c>) and named key combinations
/// (<c>["ctrl","alt","del"]</c>, "ctrl-alt-f1", "alt-sysrq-s") into key actions on a US keyboard layout.
/// </summary>
public static class KeyInput
{
    /// <summary>Longest text <see cref="TextToKeystrokes"/> accepts, in UTF-16 code units (64 KiB).</summary>
    public const int MaxTextLength = 64 * 1024;

    /// <summary>Most keys one combination may hold down together.</summary>
    public const int MaxComboKeys = 8;

    // US layout: character → (code, shift). Built once.
    private static readonly Dictionary<char, (string Code, bool Shift)> UsLayout = BuildUsLayout();

    private static readonly Dictionary<string, string> KeyNames = BuildKeyNames();

    /// <summary>
    /// Keystrokes that type <paramref name="text"/> on a US layout: letters, digits, the shifted symbols, space;
    /// <c>\n</c>, <c>\r\n</c> and <c>\r</c> → Enter, <c>\t</c> → Tab, <c>\b</c> → Backspace, ESC (U+001B) → Escape.
    /// </summary>
    /// <exception cref="ConsoleInputException">text longer than <see cref="MaxTextLength"/>, or characters the
    /// layout cannot type (all of them listed in the message).</exception>
    public static IReadOnlyList<KeyAction> TextToKeystrokes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxTextLength)
            throw new ConsoleInputException($"Text is too long to type: {text.Length} characters, at most {MaxTextLength}.");

        SortedSet<char>? bad = null;
        var actions = new List<KeyAction>(text.Length * 2);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\r')
            {
                if (i + 1 < text.Length && text[i + 1] == '\n') i++;
                c = '\n';
            }
            if (!UsLayout.TryGetValue(c, out var k))
            {
                (bad ??= []).Add(c);
                continue;
            }
            if (bad is not null) continue; // only collecting errors now
            if (k.Shift) actions.Add(KeyAction.Press("ShiftLeft"));
            actions.Add(KeyAction.Press(k.Code));
            actions.Add(KeyAction.Release(k.Code));
            if (k.Shift) actions.Add(KeyAction.Release("ShiftLeft"));
        }
        if (bad is not null)
        {
            const int shown = 20;
            var list = string.Join(", ", bad.Take(shown).Select(Describe));
            string more = bad.Count > shown ? $" and {bad.Count - shown} more" : "";
            throw new ConsoleInputException(
                $"The text contains {bad.Count} character(s) that cannot be typed on a US keyboard: {list}{more}.");
        }
        return actions;
    }

    /// <summary>True when every character of <paramref name="text"/> can be typed by <see cref="TextToKeystrokes"/>.</summary>
    public static bool CanType(char c) => c == '\r' || UsLayout.ContainsKey(c);

    /// <summary>
    /// Parses a combination written as one string: "ctrl-alt-del", "ctrl+alt+f1", "alt-sysrq-h", "printscreen".
    /// Names are separated by '+' when the string contains one, else by '-'.
    /// </summary>
    public static IReadOnlyList<KeyAction> Combo(string combo)
    {
        ArgumentNullException.ThrowIfNull(combo);
        char sep = combo.Contains('+') ? '+' : '-';
        var parts = combo.Split(sep, StringSplitOptions.TrimEntries);
        if (parts.Any(p => p.Length == 0))
            throw new ConsoleInputException($"Key combination '{Shorten(combo)}' has an empty key name.");
        return Combo(parts);
    }

    /// <summary>
    /// Presses the named keys in order and releases them in reverse: <c>["ctrl","alt","del"]</c>.
    /// Names: ctrl, alt, shift, meta/win (left; rctrl, ralt/altgr, rshift, rmeta for the right ones), del, ins,
    /// home, end, pgup, pgdn, up, down, left, right, esc, tab, enter, backspace, space, menu, f1–f24, sysrq,
    /// printscreen, pause, a–z, 0–9, or any <c>KeyboardEvent.code</c> ("KeyA"). PrintScreen with Alt held is sent
    /// as SysRq, as a real keyboard does.
    /// </summary>
    public static IReadOnlyList<KeyAction> Combo(IReadOnlyList<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0) throw new ConsoleInputException("A key combination needs at least one key.");
        if (keys.Count > MaxComboKeys)
            throw new ConsoleInputException($"A key combination holds at most {MaxComboKeys} keys; got {keys.Count}.");

        var codes = new List<string>(keys.Count);
        var unknown = new List<string>();
        foreach (var name in keys)
        {
            if (TryKeyName(name, out var code)) codes.Add(code);
            else unknown.Add(Shorten(name ?? ""));
        }
        if (unknown.Count > 0)
            throw new ConsoleInputException(
                $"Unknown key name(s): {string.Join(", ", unknown.Select(u => "'" + u + "'"))}. " +
                "Use names like ctrl, alt, shift, del, f1, sysrq, printscreen, a, 1, or KeyboardEvent.code values.");

        bool altHeld = false;
        for (int i = 0; i < codes.Count; i++)
        {
            if (codes[i] is "AltLeft" or "AltRight") altHeld = true;
            else if (codes[i] == "PrintScreen" && altHeld) codes[i] = KeyboardMap.SysRq;
        }
        var dup = codes.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ConsoleInputException($"Key '{dup.Key}' appears twice in one combination.");

        var actions = new List<KeyAction>(codes.Count * 2);
        foreach (var c in codes) actions.Add(KeyAction.Press(c));
        for (int i = codes.Count - 1; i >= 0; i--) actions.Add(KeyAction.Release(codes[i]));
        return actions;
    }

    /// <summary>Resolves one key name (see <see cref="Combo(IReadOnlyList{string})"/>) to a code.</summary>
    public static bool TryKeyName(string? name, out string code)
    {
        code = "";
        if (string.IsNullOrWhiteSpace(name)) return false;
        name = name.Trim();
        if (KeyboardMap.IsKnown(name)) { code = name; return true; }
        if (KeyNames.TryGetValue(name.ToLowerInvariant(), out var c)) { code = c; return true; }
        return false;
    }

    private static string Describe(char c) =>
        char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c)
            ? $"U+{(int)c:X4}"
            : $"'{c}' (U+{(int)c:X4})";

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "…" : s;

    private static Dictionary<char, (string, bool)> BuildUsLayout()
    {
        var m = new Dictionary<char, (string, bool)>();
        for (char c = 'a'; c <= 'z'; c++)
        {
            string code = "Key" + char.ToUpperInvariant(c);
            m[c] = (code, false);
            m[char.ToUpperInvariant(c)] = (code, true);
        }
        const string shiftedDigits = ")!@#$%^&*("; // index = digit
        for (int d = 0; d <= 9; d++)
        {
            m[(char)('0' + d)] = ("Digit" + d, false);
            m[shiftedDigits[d]] = ("Digit" + d, true);
        }
        void P(char plain, char shifted, string code) { m[plain] = (code, false); m[shifted] = (code, true); }
        P('`', '~', "Backquote"); P('-', '_', "Minus"); P('=', '+', "Equal");
        P('[', '{', "BracketLeft"); P(']', '}', "BracketRight"); P('\\', '|', "Backslash");
        P(';', ':', "Semicolon"); P('\'', '"', "Quote"); P(',', '<', "Comma"); P('.', '>', "Period"); P('/', '?', "Slash");
        m[' '] = ("Space", false);
        m['\n'] = ("Enter", false);
        m['\t'] = ("Tab", false);
        m['\b'] = ("Backspace", false);
        m['\u001b'] = ("Escape", false);
        return m;
    }

    private static Dictionary<string, string> BuildKeyNames()
    {
        var n = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ctrl"] = "ControlLeft", ["control"] = "ControlLeft", ["lctrl"] = "ControlLeft", ["rctrl"] = "ControlRight",
            ["alt"] = "AltLeft", ["lalt"] = "AltLeft", ["ralt"] = "AltRight", ["altgr"] = "AltRight",
            ["shift"] = "ShiftLeft", ["lshift"] = "ShiftLeft", ["rshift"] = "ShiftRight",
            ["meta"] = "MetaLeft", ["win"] = "MetaLeft", ["super"] = "MetaLeft", ["cmd"] = "MetaLeft", ["rmeta"] = "MetaRight",
            ["menu"] = "ContextMenu",
            ["del"] = "Delete", ["delete"] = "Delete", ["ins"] = "Insert", ["insert"] = "Insert",
            ["home"] = "Home", ["end"] = "End", ["pgup"] = "PageUp", ["pageup"] = "PageUp",
            ["pgdn"] = "PageDown", ["pagedown"] = "PageDown",
            ["up"] = "ArrowUp", ["down"] = "ArrowDown", ["left"] = "ArrowLeft", ["right"] = "ArrowRight",
            ["esc"] = "Escape", ["escape"] = "Escape", ["tab"] = "Tab",
            ["enter"] = "Enter", ["ret"] = "Enter", ["return"] = "Enter",
            ["backspace"] = "Backspace", ["bksp"] = "Backspace", ["space"] = "Space", ["spc"] = "Space",
            ["sysrq"] = KeyboardMap.SysRq, ["printscreen"] = "PrintScreen", ["print"] = "PrintScreen", ["prtsc"] = "PrintScreen",
            ["pause"] = "Pause", ["break"] = "Pause",
            ["capslock"] = "CapsLock", ["numlock"] = "NumLock", ["scrolllock"] = "ScrollLock",
            ["minus"] = "Minus", ["equal"] = "Equal", ["comma"] = "Comma", ["period"] = "Period", ["dot"] = "Period",
            ["slash"] = "Slash", ["backslash"] = "Backslash", ["semicolon"] = "Semicolon",
            ["apostrophe"] = "Quote", ["quote"] = "Quote", ["grave"] = "Backquote", ["backquote"] = "Backquote",
            ["bracketleft"] = "BracketLeft", ["bracketright"] = "BracketRight",
        };
        for (char c = 'a'; c <= 'z'; c++) n[c.ToString()] = "Key" + char.ToUpperInvariant(c);
        for (int d = 0; d <= 9; d++) n[d.ToString()] = "Digit" + d;
        for (int f = 1; f <= 24; f++) n["f" + f] = "F" + f;
        return n;
    }
}

/// <summary>
/// Keys one viewer holds down, so that they can all be released when the viewer leaves (closed tab, lost
/// connection) and the guest does not see a stuck Ctrl. Thread-safe.
/// </summary>
public sealed class HeldKeys
{
    private readonly HashSet<string> held = new(StringComparer.Ordinal);
    private readonly object gate = new();

    /// <summary>Records a key action; returns false for a release of a key that is not held (to be dropped).</summary>
    public bool Apply(KeyAction action)
    {
        lock (gate)
        {
            if (action.Down) { held.Add(action.Code); return true; }
            return held.Remove(action.Code);
        }
    }

    public int Count { get { lock (gate) return held.Count; } }

    /// <summary>Release actions for every held key (and forgets them). Pause has no release and is never held.</summary>
    public IReadOnlyList<KeyAction> ReleaseAll()
    {
        lock (gate)
        {
            var r = held.Where(c => !(KeyboardMap.TryGet(c, out var k) && k.HasNoBreak))
                        .Select(KeyAction.Release).ToList();
            held.Clear();
            return r;
        }
    }
}

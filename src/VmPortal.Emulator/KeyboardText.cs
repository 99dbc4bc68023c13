namespace VmPortal.Emulator;

/// <summary>One key event for the PS/2 keyboard: a scancode-set-2 make code (0xE0xx for extended keys) and press/release.</summary>
public readonly record struct KeyEvent(ushort Set2Code, bool Down);

/// <summary>
/// Text to key presses on a US keyboard (scancode set 2 make codes, as a PS/2 keyboard sends them before the
/// i8042 translates them to set 1). Used by <see cref="Machine.TypeText"/> and <c>vmportal run --type</c>.
/// The portal's console maps browser key codes itself (VmPortal.Core.Console).
/// </summary>
public static class KeyboardText
{
    public const ushort LeftShift = 0x12, LeftCtrl = 0x14, LeftAlt = 0x11;
    public const ushort Enter = 0x5A, Tab = 0x0D, Backspace = 0x66, Escape = 0x76, Space = 0x29;

    private const string Letters = "abcdefghijklmnopqrstuvwxyz";
    private static readonly byte[] LetterCodes =
    {
        0x1C, 0x32, 0x21, 0x23, 0x24, 0x2B, 0x34, 0x33, 0x43, 0x3B, 0x42, 0x4B, 0x3A,
        0x31, 0x44, 0x4D, 0x15, 0x2D, 0x1B, 0x2C, 0x3C, 0x2A, 0x1D, 0x22, 0x35, 0x1A,
    };
    private const string Unshifted = "1234567890`-=[]\\;',./";
    private const string Shifted = "!@#$%^&*()~_+{}|:\"<>?";
    private static readonly byte[] SymbolCodes =
    {
        0x16, 0x1E, 0x26, 0x25, 0x2E, 0x36, 0x3D, 0x3E, 0x46, 0x45, 0x0E, 0x4E, 0x55, 0x54, 0x5B, 0x5D, 0x4C, 0x52, 0x41, 0x49, 0x4A,
    };

    /// <summary>The make code and whether Shift is needed for <paramref name="c"/>; false if a US keyboard cannot type it.</summary>
    public static bool TryMap(char c, out ushort code, out bool shift)
    {
        shift = false;
        code = 0;
        int i;
        if ((i = Letters.IndexOf(c)) >= 0) { code = LetterCodes[i]; return true; }
        if ((i = Letters.IndexOf(char.ToLowerInvariant(c))) >= 0 && c is >= 'A' and <= 'Z') { code = LetterCodes[i]; shift = true; return true; }
        if ((i = Unshifted.IndexOf(c)) >= 0) { code = SymbolCodes[i]; return true; }
        if ((i = Shifted.IndexOf(c)) >= 0) { code = SymbolCodes[i]; shift = true; return true; }
        switch (c)
        {
            case ' ': code = Space; return true;
            case '\n': case '\r': code = Enter; return true;
            case '\t': code = Tab; return true;
            case '\b': code = Backspace; return true;
            case '\x1b': code = Escape; return true;
        }
        return false;
    }

    /// <summary>The key events that type <paramref name="text"/>; <see cref="ArgumentException"/> names the first character that cannot be typed.</summary>
    public static List<KeyEvent> ToKeyEvents(string text)
    {
        var events = new List<KeyEvent>(text.Length * 2);
        foreach (char c in text)
        {
            if (!TryMap(c, out ushort code, out bool shift))
                throw new ArgumentException($"cannot type '{c}' (U+{(int)c:X4}) on a US keyboard");
            if (shift) events.Add(new KeyEvent(LeftShift, true));
            events.Add(new KeyEvent(code, true));
            events.Add(new KeyEvent(code, false));
            if (shift) events.Add(new KeyEvent(LeftShift, false));
        }
        return events;
    }
}

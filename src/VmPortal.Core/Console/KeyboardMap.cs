using System.Collections.Frozen;

namespace VmPortal.Core.Console;

/// <summary>
/// A physical key: its W3C <c>KeyboardEvent.code</c> and its make/break byte sequences in scancode sets 1 and 2.
/// </summary>
public sealed class KeyDefinition
{
    private readonly byte[] make1, break1, make2, break2;

    internal KeyDefinition(string code, byte[] make1, byte[] break1, byte[] make2, byte[] break2)
    {
        Code = code;
        this.make1 = make1;
        this.break1 = break1;
        this.make2 = make2;
        this.break2 = break2;
    }

    internal KeyDefinition(string code, Scancode set1, Scancode set2)
        : this(code, set1.Make(ScancodeSet.Set1), set1.Break(ScancodeSet.Set1), set2.Make(ScancodeSet.Set2), set2.Break(ScancodeSet.Set2))
    {
        Set1 = set1;
        Set2 = set2;
    }

    /// <summary>The W3C UI Events <c>code</c> value (e.g. "KeyA", "ArrowUp"), or "SysRq" for Alt+PrintScreen.</summary>
    public string Code { get; }

    /// <summary>The single set-1 scancode, or null for keys with a special sequence (PrintScreen, Pause).</summary>
    public Scancode? Set1 { get; }

    /// <summary>The single set-2 scancode, or null for keys with a special sequence (PrintScreen, Pause).</summary>
    public Scancode? Set2 { get; }

    /// <summary>True for Pause, which sends its whole sequence on press and nothing on release.</summary>
    public bool HasNoBreak => break1.Length == 0;

    /// <summary>Bytes the keyboard sends when the key goes down (a fresh array each call).</summary>
    public byte[] Make(ScancodeSet set) => (set == ScancodeSet.Set1 ? make1 : make2).ToArray();

    /// <summary>Bytes the keyboard sends when the key goes up (empty for Pause; a fresh array each call).</summary>
    public byte[] Break(ScancodeSet set) => (set == ScancodeSet.Set1 ? break1 : break2).ToArray();

    public override string ToString() => Code;
}

/// <summary>
/// Maps browser <c>KeyboardEvent.code</c> values (physical key positions, W3C UI Events KeyboardEvent code values)
/// to PC/AT keyboard scancodes in sets 1 and 2. Since codes name positions, the guest's own keyboard layout applies.
/// </summary>
public static class KeyboardMap
{
    /// <summary>Not a W3C code: the key PrintScreen becomes while Alt is held (set 1 0x54, set 2 0x84).</summary>
    public const string SysRq = "SysRq";

    private static readonly FrozenDictionary<string, KeyDefinition> Keys = Build();

    /// <summary>Every code the map knows.</summary>
    public static IEnumerable<string> Codes => Keys.Keys;

    public static bool IsKnown(string code) => Keys.ContainsKey(code);

    public static bool TryGet(string code, out KeyDefinition key) => Keys.TryGetValue(code, out key!);

    /// <summary>The key for a <c>KeyboardEvent.code</c>; throws <see cref="ConsoleInputException"/> when unknown.</summary>
    public static KeyDefinition Get(string code)
    {
        if (code is null) throw new ConsoleInputException("A key code is required.");
        if (Keys.TryGetValue(code, out var key)) return key;
        string shown = code.Length > 40 ? code[..40] + "…" : code;
        throw new ConsoleInputException(
            $"Unknown key code '{shown}'. Expected a KeyboardEvent.code value such as KeyA, Digit1, Enter, ArrowUp, F1, ControlLeft.");
    }

    /// <summary>Make bytes for a press (<paramref name="down"/>) or break bytes for a release.</summary>
    public static byte[] Bytes(string code, bool down, ScancodeSet set)
    {
        var key = Get(code);
        return down ? key.Make(set) : key.Break(set);
    }

    /// <summary>Concatenated bytes for a sequence of key actions.</summary>
    public static byte[] Bytes(IEnumerable<KeyAction> actions, ScancodeSet set)
    {
        var bytes = new List<byte>();
        foreach (var a in actions) bytes.AddRange(Bytes(a.Code, a.Down, set));
        return bytes.ToArray();
    }

    /// <summary>
    /// The key as make codes for a keyboard API that takes one set-2 code per event, 0xE0xx for extended keys
    /// (<c>Machine.SendKey(ushort set2Code, bool down)</c>): one event for ordinary keys, two for PrintScreen
    /// (fake Shift E012 then E07C; released in reverse).
    /// </summary>
    /// <exception cref="ConsoleInputException">unknown code, or Pause (its E1 sequence has no such form).</exception>
    public static IReadOnlyList<ushort> Set2Codes(string code, bool down)
    {
        var key = Get(code);
        if (key.Set2 is { } s) return [(ushort)(s.Extended ? 0xE000 | s.Code : s.Code)];
        if (code == "PrintScreen") return down ? [0xE012, 0xE07C] : [0xE07C, 0xE012];
        throw new ConsoleInputException($"The {code} key cannot be sent as single set-2 codes.");
    }

    private static FrozenDictionary<string, KeyDefinition> Build()
    {
        var d = new Dictionary<string, KeyDefinition>(StringComparer.Ordinal);
        void K(string code, ushort set1, ushort set2) =>
            d.Add(code, new KeyDefinition(code, Scancode.FromPacked(set1), Scancode.FromPacked(set2)));

        // Letters (set 1, set 2).
        K("KeyA", 0x1E, 0x1C); K("KeyB", 0x30, 0x32); K("KeyC", 0x2E, 0x21); K("KeyD", 0x20, 0x23);
        K("KeyE", 0x12, 0x24); K("KeyF", 0x21, 0x2B); K("KeyG", 0x22, 0x34); K("KeyH", 0x23, 0x33);
        K("KeyI", 0x17, 0x43); K("KeyJ", 0x24, 0x3B); K("KeyK", 0x25, 0x42); K("KeyL", 0x26, 0x4B);
        K("KeyM", 0x32, 0x3A); K("KeyN", 0x31, 0x31); K("KeyO", 0x18, 0x44); K("KeyP", 0x19, 0x4D);
        K("KeyQ", 0x10, 0x15); K("KeyR", 0x13, 0x2D); K("KeyS", 0x1F, 0x1B); K("KeyT", 0x14, 0x2C);
        K("KeyU", 0x16, 0x3C); K("KeyV", 0x2F, 0x2A); K("KeyW", 0x11, 0x1D); K("KeyX", 0x2D, 0x22);
        K("KeyY", 0x15, 0x35); K("KeyZ", 0x2C, 0x1A);

        // Digit row.
        K("Digit1", 0x02, 0x16); K("Digit2", 0x03, 0x1E); K("Digit3", 0x04, 0x26); K("Digit4", 0x05, 0x25);
        K("Digit5", 0x06, 0x2E); K("Digit6", 0x07, 0x36); K("Digit7", 0x08, 0x3D); K("Digit8", 0x09, 0x3E);
        K("Digit9", 0x0A, 0x46); K("Digit0", 0x0B, 0x45);

        // Punctuation and editing keys of the main block.
        K("Escape", 0x01, 0x76); K("Minus", 0x0C, 0x4E); K("Equal", 0x0D, 0x55); K("Backspace", 0x0E, 0x66);
        K("Tab", 0x0F, 0x0D); K("BracketLeft", 0x1A, 0x54); K("BracketRight", 0x1B, 0x5B); K("Enter", 0x1C, 0x5A);
        K("Semicolon", 0x27, 0x4C); K("Quote", 0x28, 0x52); K("Backquote", 0x29, 0x0E); K("Backslash", 0x2B, 0x5D);
        K("Comma", 0x33, 0x41); K("Period", 0x34, 0x49); K("Slash", 0x35, 0x4A); K("Space", 0x39, 0x29);
        K("CapsLock", 0x3A, 0x58); K("IntlBackslash", 0x56, 0x61);

        // Modifiers.
        K("ShiftLeft", 0x2A, 0x12); K("ShiftRight", 0x36, 0x59);
        K("ControlLeft", 0x1D, 0x14); K("ControlRight", 0xE01D, 0xE014);
        K("AltLeft", 0x38, 0x11); K("AltRight", 0xE038, 0xE011);
        K("MetaLeft", 0xE05B, 0xE01F); K("MetaRight", 0xE05C, 0xE027); K("ContextMenu", 0xE05D, 0xE02F);
        // Older browsers report the Windows keys as OSLeft/OSRight.
        K("OSLeft", 0xE05B, 0xE01F); K("OSRight", 0xE05C, 0xE027);

        // Function keys (F13–F24 as on 122-key terminals / the Microsoft scancode table).
        K("F1", 0x3B, 0x05); K("F2", 0x3C, 0x06); K("F3", 0x3D, 0x04); K("F4", 0x3E, 0x0C);
        K("F5", 0x3F, 0x03); K("F6", 0x40, 0x0B); K("F7", 0x41, 0x83); K("F8", 0x42, 0x0A);
        K("F9", 0x43, 0x01); K("F10", 0x44, 0x09); K("F11", 0x57, 0x78); K("F12", 0x58, 0x07);
        K("F13", 0x64, 0x08); K("F14", 0x65, 0x10); K("F15", 0x66, 0x18); K("F16", 0x67, 0x20);
        K("F17", 0x68, 0x28); K("F18", 0x69, 0x30); K("F19", 0x6A, 0x38); K("F20", 0x6B, 0x40);
        K("F21", 0x6C, 0x48); K("F22", 0x6D, 0x50); K("F23", 0x6E, 0x57); K("F24", 0x76, 0x5F);

        // Lock keys.
        K("NumLock", 0x45, 0x77); K("ScrollLock", 0x46, 0x7E);

        // Navigation block (extended).
        K("Insert", 0xE052, 0xE070); K("Delete", 0xE053, 0xE071); K("Home", 0xE047, 0xE06C);
        K("End", 0xE04F, 0xE069); K("PageUp", 0xE049, 0xE07D); K("PageDown", 0xE051, 0xE07A);
        K("ArrowUp", 0xE048, 0xE075); K("ArrowDown", 0xE050, 0xE072);
        K("ArrowLeft", 0xE04B, 0xE06B); K("ArrowRight", 0xE04D, 0xE074);

        // Numeric keypad.
        K("Numpad0", 0x52, 0x70); K("Numpad1", 0x4F, 0x69); K("Numpad2", 0x50, 0x72); K("Numpad3", 0x51, 0x7A);
        K("Numpad4", 0x4B, 0x6B); K("Numpad5", 0x4C, 0x73); K("Numpad6", 0x4D, 0x74); K("Numpad7", 0x47, 0x6C);
        K("Numpad8", 0x48, 0x75); K("Numpad9", 0x49, 0x7D); K("NumpadDecimal", 0x53, 0x71);
        K("NumpadAdd", 0x4E, 0x79); K("NumpadSubtract", 0x4A, 0x7B); K("NumpadMultiply", 0x37, 0x7C);
        K("NumpadDivide", 0xE035, 0xE04A); K("NumpadEnter", 0xE01C, 0xE05A);
        K("NumpadEqual", 0x59, 0x0F); K("NumpadComma", 0x7E, 0x6D);

        // International keys (Japanese / Brazilian / Korean keyboards).
        K("IntlRo", 0x73, 0x51); K("IntlYen", 0x7D, 0x6A); K("KanaMode", 0x70, 0x13);
        K("Convert", 0x79, 0x64); K("NonConvert", 0x7B, 0x67);

        // ACPI and multimedia keys (extended).
        K("Power", 0xE05E, 0xE037); K("Sleep", 0xE05F, 0xE03F); K("WakeUp", 0xE063, 0xE05E);
        K("AudioVolumeMute", 0xE020, 0xE023); K("AudioVolumeDown", 0xE02E, 0xE021); K("AudioVolumeUp", 0xE030, 0xE032);
        K("MediaPlayPause", 0xE022, 0xE034); K("MediaStop", 0xE024, 0xE03B);
        K("MediaTrackNext", 0xE019, 0xE04D); K("MediaTrackPrevious", 0xE010, 0xE015);

        // PrintScreen alone: a fake Shift (E0 2A / E0 12) followed by E0 37 / E0 7C; released in reverse.
        d.Add("PrintScreen", new KeyDefinition("PrintScreen",
            make1: [0xE0, 0x2A, 0xE0, 0x37], break1: [0xE0, 0xB7, 0xE0, 0xAA],
            make2: [0xE0, 0x12, 0xE0, 0x7C], break2: [0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]));
        // Pause sends its whole sequence on press (Ctrl+NumLock with an E1 prefix) and nothing on release.
        d.Add("Pause", new KeyDefinition("Pause",
            make1: [0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5], break1: [],
            make2: [0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77], break2: []));
        // SysRq: what the PrintScreen key sends while Alt is held. Linux's magic SysRq takes Alt + this key.
        K(SysRq, 0x54, 0x84);

        return d.ToFrozenDictionary(StringComparer.Ordinal);
    }
}

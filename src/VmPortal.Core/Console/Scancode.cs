namespace VmPortal.Core.Console;

/// <summary>Which PC keyboard scancode set a byte sequence is written in.</summary>
/// <remarks>
/// Set 2 is what a PS/2 keyboard emits natively; set 1 (XT) is what software reads from port 0x60 when the
/// i8042 controller translates (the default after the BIOS). The keyboard device of the emulator takes either.
/// </remarks>
public enum ScancodeSet
{
    Set1 = 1,
    Set2 = 2,
}

/// <summary>
/// One key's code in one scancode set: a single byte, optionally preceded by the 0xE0 "extended" prefix.
/// Keys with longer sequences (PrintScreen, Pause) are described by <see cref="KeyDefinition"/> directly.
/// </summary>
public readonly record struct Scancode(byte Code, bool Extended)
{
    public const byte ExtendedPrefix = 0xE0;
    public const byte Set1BreakBit = 0x80;
    public const byte Set2BreakPrefix = 0xF0;

    /// <summary>Parses the compact form used in the key table: 0xE0xx for extended, 0x00xx otherwise.</summary>
    public static Scancode FromPacked(ushort packed) =>
        new((byte)packed, (packed >> 8) == ExtendedPrefix);

    /// <summary>Make (press) bytes in the given set.</summary>
    public byte[] Make(ScancodeSet set) => Extended ? [ExtendedPrefix, Code] : [Code];

    /// <summary>Break (release) bytes: set 1 sets bit 7, set 2 inserts 0xF0 before the code.</summary>
    public byte[] Break(ScancodeSet set) => set switch
    {
        ScancodeSet.Set1 => Extended ? [ExtendedPrefix, (byte)(Code | Set1BreakBit)] : [(byte)(Code | Set1BreakBit)],
        ScancodeSet.Set2 => Extended ? [ExtendedPrefix, Set2BreakPrefix, Code] : [Set2BreakPrefix, Code],
        _ => throw new ArgumentOutOfRangeException(nameof(set), set, "Unknown scancode set."),
    };

    public override string ToString() => Extended ? $"E0 {Code:X2}" : $"{Code:X2}";
}

/// <summary>
/// Raised for console input that cannot be turned into keystrokes: an unknown key code, a character the US layout
/// cannot type, a paste that is too long, an unknown key name in a combination. The message is meant for the user.
/// </summary>
public sealed class ConsoleInputException(string message) : ArgumentException(message);

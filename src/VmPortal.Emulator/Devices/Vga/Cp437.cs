namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// Code page 437 (the VGA ROM font's character set) to Unicode, for "copy screen text" and text-screen tests.
/// 0x00 and 0xFF (blank glyphs) map to a space; 0x01–0x1F and 0x7F map to their CP437 graphic symbols.
/// </summary>
public static class Cp437
{
    private const string Table =
        " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼" +
        " !\"#$%&'()*+,-./0123456789:;<=>?" +
        "@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_" +
        "`abcdefghijklmnopqrstuvwxyz{|}~⌂" +
        "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
        "áíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
        "└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
        "αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ";

    public static char ToChar(byte b) => Table[b];

    /// <summary>The CP437 code of <paramref name="c"/>, or '?' (0x3F) if it has none.</summary>
    public static byte FromChar(char c)
    {
        if (c >= 0x20 && c < 0x7F) return (byte)c;
        int i = Table.IndexOf(c);
        return i < 0 ? (byte)'?' : (byte)i;
    }
}

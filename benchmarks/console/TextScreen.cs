namespace VmPortal.Benchmarks.Console;

/// <summary>Renders an 80×25 VGA text screen (9×16 cells, 720×400) into 0xAARRGGBB pixels for the benchmark.</summary>
internal sealed class TextScreen
{
    public const int Cols = 80, Rows = 25, CellW = 9, CellH = 16, Width = Cols * CellW, Height = Rows * CellH;

    public static readonly uint[] Palette =
    [
        0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
        0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
    ];

    private readonly byte[] font;
    public readonly char[] Chars = new char[Cols * Rows];
    public readonly byte[] Attrs = new byte[Cols * Rows];
    public int CursorX, CursorY;
    public bool CursorOn = true;
    public readonly string FontSource;

    public TextScreen()
    {
        (font, FontSource) = LoadFont();
        Array.Fill(Chars, ' ');
        Array.Fill(Attrs, (byte)0x07);
    }

    /// <summary>The 8×16 font of SeaBIOS's VGA BIOS when installed, else a made-up font of random glyphs.</summary>
    private static (byte[], string) LoadFont()
    {
        const string rom = "/usr/share/seabios/vgabios-stdvga.bin";
        byte[] glyphA = [0x00, 0x00, 0x10, 0x38, 0x6c, 0xc6, 0xc6, 0xfe, 0xc6, 0xc6, 0xc6, 0xc6, 0x00, 0x00, 0x00, 0x00];
        if (File.Exists(rom))
        {
            var d = File.ReadAllBytes(rom);
            int i = d.AsSpan().IndexOf(glyphA);
            if (i >= 65 * 16 && i - 65 * 16 + 4096 <= d.Length) return (d.AsSpan(i - 65 * 16, 4096).ToArray(), rom);
        }
        var f = new byte[4096];
        var r = new Random(1);
        for (int c = 33; c < 256; c++)
            for (int y = 3; y < 13; y++) f[c * 16 + y] = (byte)(r.Next(256) & 0x7E);
        return (f, "synthetic");
    }

    public void Put(int x, int y, string s, byte attr = 0x07)
    {
        for (int i = 0; i < s.Length && x + i < Cols; i++) { Chars[y * Cols + x + i] = s[i]; Attrs[y * Cols + x + i] = attr; }
    }

    public void ScrollUp()
    {
        Array.Copy(Chars, Cols, Chars, 0, Cols * (Rows - 1));
        Array.Copy(Attrs, Cols, Attrs, 0, Cols * (Rows - 1));
        Array.Fill(Chars, ' ', Cols * (Rows - 1), Cols);
        Array.Fill(Attrs, (byte)0x07, Cols * (Rows - 1), Cols);
    }

    public void Render(uint[] px)
    {
        for (int row = 0; row < Rows; row++)
            for (int col = 0; col < Cols; col++)
            {
                int ch = Chars[row * Cols + col] & 0xFF;
                byte a = Attrs[row * Cols + col];
                uint fg = 0xFF000000 | Palette[a & 15], bg = 0xFF000000 | Palette[(a >> 4) & 7];
                bool cursor = CursorOn && row == CursorY && col == CursorX;
                for (int y = 0; y < CellH; y++)
                {
                    byte bits = font[ch * 16 + y];
                    if (cursor && y >= 14) bits = 0xFF;
                    int o = (row * CellH + y) * Width + col * CellW;
                    for (int x = 0; x < 8; x++) px[o + x] = (bits & (0x80 >> x)) != 0 ? fg : bg;
                    px[o + 8] = ch is >= 0xC0 and <= 0xDF && (bits & 1) != 0 ? fg : bg;
                }
            }
    }
}

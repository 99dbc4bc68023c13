namespace VmPortal.Emulator.Devices.Vga;

/// <summary>What the screen shows right now.</summary>
public enum ScreenMode
{
    /// <summary>Display off or not yet programmed (black).</summary>
    Blank,
    /// <summary>Character cells drawn with the font in plane 2.</summary>
    Text,
    /// <summary>Pixels: planar/CGA/256-colour VGA modes or a VBE linear mode.</summary>
    Graphics,
}

/// <summary>One text cell: CP437 character code and attribute byte (bits 0–3 foreground, 4–6 background, 7 blink or bright background).</summary>
public readonly record struct TextCell(byte Character, byte Attribute)
{
    public char Char => Cp437.ToChar(Character);
}

/// <summary>A rectangle of the screen in pixels.</summary>
public readonly record struct ScreenRect(int X, int Y, int Width, int Height);

/// <summary>How the VGA registers (or DISPI) lay out the picture; recomputed from the registers on demand.</summary>
internal enum PixelFormat { Planar16, Cga4, Vga256, Linear }

internal struct ScreenLayout
{
    public ScreenMode Mode;
    public int Width, Height;
    // Text.
    public int Columns, Rows, CharWidth, CharHeight;
    // Graphics.
    public PixelFormat Format;
    public int Bpp;
    public int Start, Pitch;          // CRTC units (MA), or bytes for Linear
    public int CharClocks;            // per scan line (VGA formats)
    public int RowHeight;             // scan lines per CRTC character row
    public bool RowsRepeat;           // all scan lines of a character row fetch the same memory (mode 13h/12h style)

    public readonly bool SameShape(in ScreenLayout o) => Mode == o.Mode && Width == o.Width && Height == o.Height && Columns == o.Columns && Rows == o.Rows;

    public const int DefaultWidth = 640, DefaultHeight = 480, MaxWidth = 2560, MaxHeight = 1600;

    public static ScreenLayout Compute(Vga vga)
    {
        var l = new ScreenLayout();
        var d = vga.Dispi;
        if (d.Enabled && d.Bpp != 4)
        {
            l.Mode = ScreenMode.Graphics;
            l.Format = PixelFormat.Linear;
            l.Bpp = d.Bpp;
            l.Width = d.Width;
            l.Height = d.Height;
            l.Start = d.StartOffset;
            l.Pitch = d.Pitch;
            return l;
        }
        byte[] cr = vga.Crtc;
        int cols = cr[Vga.CrHDisplayEnd] + 1;
        int lines = (cr[Vga.CrVDisplayEnd] | (cr[Vga.CrOverflow] & 0x02) << 7 | (cr[Vga.CrOverflow] & 0x40) << 3) + 1;
        int rowHeight = (cr[Vga.CrMaxScanLine] & 0x1F) + 1;
        if ((cr[Vga.CrMaxScanLine] & 0x80) != 0) lines /= 2;
        l.Start = cr[Vga.CrStartHigh] << 8 | cr[Vga.CrStartLow];
        l.Pitch = cr[Vga.CrOffset] * 2;
        bool blank = !vga.PaletteSourceVideo || (vga.Seq[Vga.SeqClocking] & Vga.SeqClockScreenOff) != 0;
        if ((vga.Gc[Vga.GcMisc] & Vga.GcMiscGraphics) == 0)
        {
            l.Mode = ScreenMode.Text;
            l.Columns = cols;
            l.CharHeight = rowHeight;
            l.CharWidth = (vga.Seq[Vga.SeqClocking] & Vga.SeqClock8Dot) != 0 ? 8 : 9;
            l.Rows = lines / rowHeight;
            l.Width = cols * l.CharWidth;
            l.Height = l.Rows * rowHeight;
        }
        else
        {
            l.Mode = ScreenMode.Graphics;
            l.CharClocks = cols;
            l.RowHeight = rowHeight;
            byte mode = vga.Gc[Vga.GcMode];
            l.Format = (mode & Vga.GcMode256) != 0 ? PixelFormat.Vga256 : (mode & Vga.GcModeInterleave) != 0 ? PixelFormat.Cga4 : PixelFormat.Planar16;
            l.Width = cols * (l.Format == PixelFormat.Vga256 ? 4 : 8);
            // Without CGA row-scan substitution every scan line of a character row shows the same memory.
            l.RowsRepeat = (cr[Vga.CrModeControl] & (Vga.CrModeMap13 | Vga.CrModeMap14)) == (Vga.CrModeMap13 | Vga.CrModeMap14);
            l.Height = l.RowsRepeat ? lines / rowHeight : lines;
        }
        if (blank || l.Width < 8 || l.Height < 8 || l.Width > MaxWidth || l.Height > MaxHeight || (l.Mode == ScreenMode.Text && l.Rows < 1))
        {
            var b = new ScreenLayout { Mode = ScreenMode.Blank, Width = l.Width, Height = l.Height };
            if (b.Width < 8 || b.Height < 8 || b.Width > MaxWidth || b.Height > MaxHeight) { b.Width = DefaultWidth; b.Height = DefaultHeight; }
            return b;
        }
        return l;
    }

    /// <summary>CRTC memory address → in-plane offset (byte/word/doubleword mode, CGA row-scan substitution).</summary>
    public static int PlaneAddress(Vga vga, int ma, int rowScan)
    {
        byte ctl = vga.Crtc[Vga.CrModeControl];
        int a;
        if ((vga.Crtc[Vga.CrUnderline] & Vga.CrUnderlineDword) != 0) a = ma << 2;
        else if ((ctl & Vga.CrModeByte) == 0) a = ma << 1 | ((ctl & Vga.CrModeWrapMa15) != 0 ? (ma >> 15) & 1 : (ma >> 13) & 1);
        else a = ma;
        if ((ctl & Vga.CrModeMap13) == 0) a = (a & ~(1 << 13)) | (rowScan & 1) << 13;
        if ((ctl & Vga.CrModeMap14) == 0) a = (a & ~(1 << 14)) | (rowScan & 2) << 13;
        return a & 0xFFFF;
    }
}

using System.Runtime.InteropServices;
using System.Text;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// The VGA's picture for the console, screenshots and tests. Rendering happens only in <see cref="Refresh"/>
/// (call it at up to 60 Hz from one consumer thread, never per guest write): it recomputes the layout from the
/// registers, re-renders what changed into an RGBA framebuffer and marks the changed <see cref="TileSize"/>²
/// tiles dirty. Pixels are RGBA32: one <see cref="uint"/> per pixel = R | G&lt;&lt;8 | B&lt;&lt;16 | 0xFF&lt;&lt;24
/// (bytes R, G, B, A in memory). Text accessors read the guest's VRAM directly and need no refresh.
/// Change detection: text modes compare each cell (character, attribute, cursor and blink state) with what was
/// last drawn; graphics modes re-render the scan lines whose VRAM pages were written and compare them with the
/// framebuffer per tile. Register, palette or font changes redraw everything. A refresh with nothing written, no
/// register change and no blink-phase flip returns at once (an idle guest costs nearly nothing to watch); every
/// <see cref="FullCheckInterval"/> refreshes all lines are re-rendered and compared anyway (a safety net).
/// </summary>
public sealed class Screen
{
    public const int TileSize = 32;
    public const int FullCheckInterval = 300;
    private const int CursorBlinkMs = 267, TextBlinkMs = 533;

    private readonly Vga _vga;
    private readonly object _lock = new();
    private ScreenLayout _layout;
    private uint[] _pixels = [];
    private bool[] _tileDirty = [];
    private int _tilesX, _tilesY;
    private int[] _cellShadow = [];
    private uint[] _line = new uint[ScreenLayout.MaxWidth];
    private byte[] _pageSnapshot;
    private readonly uint[] _dacRgba = new uint[256];
    private readonly uint[] _attrRgba = new uint[16];
    private int _seenRegs = -1, _seenDac = -1, _seenFont = -1, _seenCursor = -1;
    private int _renderedTextPhase = -1;
    private int _refreshCount;

    internal Screen(Vga vga)
    {
        _vga = vga;
        _pageSnapshot = new byte[vga.DirtyPages.Length];
        _layout = new ScreenLayout { Mode = ScreenMode.Blank, Width = ScreenLayout.DefaultWidth, Height = ScreenLayout.DefaultHeight };
        Allocate();
    }

    /// <summary>Milliseconds clock for cursor and character blinking (tests may replace it).</summary>
    public Func<long> Clock { get; set; } = () => Environment.TickCount64;

    /// <summary>Raised from <see cref="Refresh"/> with the new width and height when the mode or size changes.</summary>
    public event Action<int, int>? Resized;

    public ScreenMode Mode => _layout.Mode;
    public int Width => _layout.Width;
    public int Height => _layout.Height;
    public int TilesX => _tilesX;
    public int TilesY => _tilesY;

    /// <summary>The framebuffer as of the last <see cref="Refresh"/> (Width × Height, row-major RGBA32).</summary>
    public ReadOnlySpan<uint> Pixels => _pixels;

    /// <summary>Pixel at (x, y) of the last refresh.</summary>
    public uint GetPixel(int x, int y) => _pixels[y * _layout.Width + x];

    public bool IsTileDirty(int tileX, int tileY) => _tileDirty[tileY * _tilesX + tileX];

    /// <summary>Appends the dirty tiles (clipped to the screen) to <paramref name="into"/> and clears their flags.</summary>
    public int TakeDirtyTiles(List<ScreenRect> into)
    {
        lock (_lock)
        {
            int n = 0;
            for (int ty = 0; ty < _tilesY; ty++)
                for (int tx = 0; tx < _tilesX; tx++)
                {
                    int i = ty * _tilesX + tx;
                    if (!_tileDirty[i]) continue;
                    _tileDirty[i] = false;
                    int x = tx * TileSize, y = ty * TileSize;
                    into.Add(new ScreenRect(x, y, Math.Min(TileSize, Width - x), Math.Min(TileSize, Height - y)));
                    n++;
                }
            return n;
        }
    }

    /// <summary>Marks every tile dirty (a new viewer wants a full frame).</summary>
    public void InvalidateAll()
    {
        lock (_lock) Array.Fill(_tileDirty, true);
    }

    /// <summary>Copies the framebuffer of the last refresh (Width × Height) into <paramref name="rgba"/>.</summary>
    public void CopyPixels(Span<uint> rgba)
    {
        lock (_lock) _pixels.AsSpan().CopyTo(rgba);
    }

    /// <summary>Copies the framebuffer of the last refresh as 0x00RRGGBB values (the machine's <c>ScreenCapture</c> format).</summary>
    public void CopyPixelsXrgb(Span<uint> xrgb)
    {
        lock (_lock)
        {
            var src = _pixels.AsSpan();
            for (int i = 0; i < src.Length; i++)
            {
                uint p = src[i];
                xrgb[i] = (p & 0xFF) << 16 | (p & 0xFF00) | (p >> 16) & 0xFF;
            }
        }
    }

    /// <summary>Refreshes, then copies the whole picture into <paramref name="rgba"/> (at least Width × Height).</summary>
    public void Render(Span<uint> rgba)
    {
        Refresh();
        CopyPixels(rgba);
    }

    // ---------------- text ----------------

    /// <summary>Width and height of the display in the guest's current mode, read from the VGA registers now
    /// (<see cref="Width"/>/<see cref="Height"/> are those of the last <see cref="Refresh"/>).</summary>
    public (int Width, int Height) DisplaySize
    {
        get { var l = CurrentLayout(); return (l.Width, l.Height); }
    }

    /// <summary>Text columns (0 outside text mode).</summary>
    public int Columns => CurrentLayout().Mode == ScreenMode.Text ? CurrentLayout().Columns : 0;
    public int Rows => CurrentLayout().Mode == ScreenMode.Text ? CurrentLayout().Rows : 0;

    public TextCell GetCell(int row, int column)
    {
        var l = CurrentLayout();
        if (l.Mode != ScreenMode.Text || row < 0 || row >= l.Rows || column < 0 || column >= l.Columns) return default;
        int a = ScreenLayout.PlaneAddress(_vga, l.Start + row * l.Pitch + column, 0);
        return new TextCell(_vga.Vram[a * 4], _vga.Vram[a * 4 + 1]);
    }

    /// <summary>Cursor cell and whether the cursor is enabled and on screen (text mode).</summary>
    public (int Row, int Column, bool Visible) Cursor
    {
        get
        {
            var l = CurrentLayout();
            if (l.Mode != ScreenMode.Text) return (0, 0, false);
            var (row, col, on) = CursorCell(l);
            return (row, col, on);
        }
    }

    /// <summary>The text screen as a string: rows joined by '\n', trailing spaces trimmed, CP437 mapped to Unicode. Empty outside text mode.</summary>
    public string GetText()
    {
        var l = CurrentLayout();
        if (l.Mode != ScreenMode.Text) return string.Empty;
        var sb = new StringBuilder(l.Rows * (l.Columns + 1));
        Span<char> row = stackalloc char[Math.Min(l.Columns, 512)];
        for (int r = 0; r < l.Rows; r++)
        {
            for (int c = 0; c < row.Length; c++)
            {
                int a = ScreenLayout.PlaneAddress(_vga, l.Start + r * l.Pitch + c, 0);
                row[c] = Cp437.ToChar(_vga.Vram[a * 4]);
            }
            int len = row.Length;
            while (len > 0 && row[len - 1] == ' ') len--;
            if (r > 0) sb.Append('\n');
            sb.Append(row[..len]);
        }
        return sb.ToString();
    }

    private ScreenLayout CurrentLayout() => ScreenLayout.Compute(_vga);

    private (int Row, int Col, bool On) CursorCell(in ScreenLayout l)
    {
        byte[] cr = _vga.Crtc;
        int loc = cr[Vga.CrCursorHigh] << 8 | cr[Vga.CrCursorLow];
        int rel = loc - l.Start;
        int pitch = Math.Max(1, l.Pitch);
        int row = rel >= 0 ? rel / pitch : -1, col = rel >= 0 ? rel % pitch : -1;
        bool enabled = (cr[Vga.CrCursorStart] & 0x20) == 0 && (cr[Vga.CrCursorStart] & 0x1F) <= (cr[Vga.CrCursorEnd] & 0x1F);
        bool on = enabled && row >= 0 && row < l.Rows && col < l.Columns;
        return (Math.Max(row, 0), Math.Max(col, 0), on);
    }

    // ---------------- rendering ----------------

    /// <summary>Brings the framebuffer up to date with the guest's VRAM and registers; true if any tile changed.</summary>
    public bool Refresh()
    {
        ScreenLayout newLayout = ScreenLayout.Compute(_vga);
        bool resized = false;
        bool changed;
        lock (_lock)
        {
            if (!newLayout.SameShape(_layout))
            {
                _layout = newLayout;
                Allocate();
                resized = true;
            }
            _layout = newLayout;
            bool full = resized;
            int regs = _vga.RegisterGeneration, dac = _vga.DacGeneration, font = _vga.FontGeneration, cursor = _vga.CursorGeneration;
            if (regs != _seenRegs || dac != _seenDac) { full = true; _seenRegs = regs; _seenDac = dac; }
            bool fontChanged = font != _seenFont;
            _seenFont = font;
            bool cursorChanged = cursor != _seenCursor;
            _seenCursor = cursor;
            if (++_refreshCount % FullCheckInterval == 0) full = true;
            bool written = TakeDirtyPages();
            // Nothing written, no register change, no blink phase flip: the picture is the same (the common case
            // for an idle guest, refreshed 30 times a second by the console).
            if (!full && !fontChanged && !written &&
                (_layout.Mode != ScreenMode.Text || (!cursorChanged && TextPhase(Clock()) == _renderedTextPhase)))
                return false;
            UpdatePalettes();
            changed = _layout.Mode switch
            {
                ScreenMode.Text => RenderText(full || fontChanged),
                ScreenMode.Graphics => RenderGraphics(full),
                _ => RenderBlank(full),
            };
        }
        if (resized) Resized?.Invoke(_layout.Width, _layout.Height);
        return changed || resized;
    }

    /// <summary>
    /// Moves the VGA's written-pages bitmap into the snapshot, clearing it entry by entry with a full fence: a CPU
    /// write either lands before the exchange (its data is already in VRAM, which is read afterwards) or marks
    /// its page again for the next refresh. True when any page was written.
    /// </summary>
    private bool TakeDirtyPages()
    {
        byte[] dirty = _vga.DirtyPages;
        bool any = false;
        for (int i = 0; i < dirty.Length; i++)
        {
            byte d = dirty[i] != 0 ? Interlocked.Exchange(ref dirty[i], 0) : (byte)0;
            _pageSnapshot[i] = d;
            any |= d != 0;
        }
        return any;
    }

    /// <summary>Cursor blink phase (bit 0) and character blink phase (bit 1) at <paramref name="nowMs"/>.</summary>
    private static int TextPhase(long nowMs) =>
        (nowMs / CursorBlinkMs % 2 == 0 ? 1 : 0) | (nowMs / TextBlinkMs % 2 == 0 ? 2 : 0);

    private void Allocate()
    {
        _pixels = new uint[_layout.Width * _layout.Height];
        Array.Fill(_pixels, 0xFF00_0000u);
        _tilesX = (_layout.Width + TileSize - 1) / TileSize;
        _tilesY = (_layout.Height + TileSize - 1) / TileSize;
        _tileDirty = new bool[_tilesX * _tilesY];
        Array.Fill(_tileDirty, true);
        _cellShadow = _layout.Mode == ScreenMode.Text ? new int[_layout.Rows * _layout.Columns] : [];
        Array.Fill(_cellShadow, -1);
    }

    private void UpdatePalettes()
    {
        byte[] dac = _vga.Dac;
        bool eight = _vga.Dispi.Dac8Bit;
        for (int i = 0; i < 256; i++)
        {
            int r = dac[i * 3], g = dac[i * 3 + 1], b = dac[i * 3 + 2];
            if (!eight) { r = r << 2 | r >> 4; g = g << 2 | g >> 4; b = b << 2 | b >> 4; }
            _dacRgba[i] = (uint)(r | g << 8 | b << 16) | 0xFF00_0000u;
        }
        byte[] ac = _vga.Ac;
        for (int i = 0; i < 16; i++) _attrRgba[i] = _dacRgba[AttributeToDac(ac, i) & _vga.PelMask];
    }

    /// <summary>Attribute controller: 4-bit pixel → colour plane enable → palette register → colour select → DAC index.</summary>
    private static int AttributeToDac(byte[] ac, int index)
    {
        int p = ac[index & ac[Vga.AcColorPlaneEnable] & 0x0F] & 0x3F;
        if ((ac[Vga.AcMode] & 0x80) != 0) p = (p & 0x0F) | (ac[Vga.AcColorSelect] & 0x03) << 4;
        return p | (ac[Vga.AcColorSelect] & 0x0C) << 4;
    }

    private bool RenderBlank(bool full)
    {
        if (!full) return false;
        bool any = false;
        for (int y = 0; y < _layout.Height; y++)
        {
            _line.AsSpan(0, _layout.Width).Fill(0xFF00_0000u);
            any |= CommitLine(y);
        }
        return any;
    }

    private bool RenderText(bool full)
    {
        ref readonly ScreenLayout l = ref _layout;
        byte[] vram = _vga.Vram;
        byte[] ac = _vga.Ac;
        int phase = TextPhase(Clock());
        _renderedTextPhase = phase;
        bool cursorPhase = (phase & 1) != 0;
        bool blinkPhase = (phase & 2) != 0;
        bool blinkEnabled = (ac[Vga.AcMode] & 0x08) != 0;
        bool lineGraphics = (ac[Vga.AcMode] & 0x04) != 0;
        var (curRow, curCol, curOn) = CursorCell(l);
        int curStart = _vga.Crtc[Vga.CrCursorStart] & 0x1F, curEnd = _vga.Crtc[Vga.CrCursorEnd] & 0x1F;
        byte charMap = _vga.Seq[Vga.SeqCharMap];
        int mapA = ((charMap >> 5) & 1) << 2 | ((charMap >> 2) & 3), mapB = ((charMap >> 4) & 1) << 2 | (charMap & 3);
        int fontA = FontOffset(mapA), fontB = FontOffset(mapB);
        bool any = false;
        for (int r = 0; r < l.Rows; r++)
        {
            for (int c = 0; c < l.Columns; c++)
            {
                int a = ScreenLayout.PlaneAddress(_vga, l.Start + r * l.Pitch + c, 0);
                int ch = vram[a * 4], attr = vram[a * 4 + 1];
                bool cursorHere = curOn && cursorPhase && r == curRow && c == curCol;
                bool blinkOff = blinkEnabled && (attr & 0x80) != 0 && !blinkPhase;
                int key = ch | attr << 8 | (blinkOff ? 1 << 17 : 0) | (cursorHere ? 1 << 16 | curStart << 18 | curEnd << 23 : 0);
                ref int shadow = ref _cellShadow[r * l.Columns + c];
                if (!full && shadow == key) continue;
                shadow = key;
                int fg = attr & 0x0F, bg = attr >> 4;
                if (blinkEnabled) bg &= 7;
                if (blinkOff) fg = bg;
                uint fgc = _attrRgba[fg], bgc = _attrRgba[bg];
                int font = (attr & 0x08) != 0 ? fontA : fontB;
                int x0 = c * l.CharWidth, y0 = r * l.CharHeight;
                bool ninth = l.CharWidth == 9 && lineGraphics && ch >= 0xC0 && ch <= 0xDF;
                for (int line = 0; line < l.CharHeight; line++)
                {
                    int glyph = vram[((font + ch * 32 + line) & 0xFFFF) * 4 + 2];
                    if (cursorHere && line >= curStart && line <= curEnd) glyph = 0xFF | 0x100;
                    Span<uint> dst = _pixels.AsSpan((y0 + line) * l.Width + x0, l.CharWidth);
                    for (int x = 0; x < 8; x++) dst[x] = (glyph & (0x80 >> x)) != 0 ? fgc : bgc;
                    if (l.CharWidth == 9) dst[8] = (ninth || glyph > 0xFF) && (glyph & 1) != 0 ? fgc : bgc;
                }
                MarkTiles(x0, y0, l.CharWidth, l.CharHeight);
                any = true;
            }
        }
        return any;
    }

    private static int FontOffset(int map) => (map & 3) * 16384 + (map >> 2) * 8192;

    private bool RenderGraphics(bool full)
    {
        ref readonly ScreenLayout l = ref _layout;
        bool any = false;
        for (int y = 0; y < l.Height; y++)
        {
            if (!full && !LineDirty(y)) continue;
            if (l.Format == PixelFormat.Linear) RenderLinearLine(y);
            else RenderVgaLine(y);
            any |= CommitLine(y);
        }
        return any;
    }

    private void LineRowScan(int y, out int ma, out int rowScan)
    {
        ref readonly ScreenLayout l = ref _layout;
        int row = l.RowsRepeat ? y : y / l.RowHeight;
        rowScan = l.RowsRepeat ? 0 : y % l.RowHeight;
        ma = l.Start + row * l.Pitch;
    }

    private bool LineDirty(int y)
    {
        ref readonly ScreenLayout l = ref _layout;
        int first, last;
        if (l.Format == PixelFormat.Linear)
        {
            first = l.Start + y * l.Pitch;
            last = first + l.Width * ((l.Bpp + 7) / 8) - 1;
            if (first < 0 || last >= _vga.Vram.Length) return true;
        }
        else
        {
            LineRowScan(y, out int ma, out int rs);
            int a0 = ScreenLayout.PlaneAddress(_vga, ma, rs), a1 = ScreenLayout.PlaneAddress(_vga, ma + l.CharClocks - 1, rs);
            if (a1 < a0) return true; // wraps around plane memory
            first = a0 * 4;
            last = a1 * 4 + 3;
        }
        for (int p = first >> Vga.DirtyPageShift; p <= last >> Vga.DirtyPageShift; p++)
            if (_pageSnapshot[p] != 0) return true;
        return false;
    }

    private void RenderVgaLine(int y)
    {
        ref readonly ScreenLayout l = ref _layout;
        byte[] vram = _vga.Vram;
        LineRowScan(y, out int ma, out int rowScan);
        Span<uint> line = _line.AsSpan(0, l.Width);
        int x = 0;
        int pelMask = _vga.PelMask;
        for (int c = 0; c < l.CharClocks; c++)
        {
            int a = ScreenLayout.PlaneAddress(_vga, ma + c, rowScan) * 4;
            byte p0 = vram[a], p1 = vram[a + 1], p2 = vram[a + 2], p3 = vram[a + 3];
            switch (l.Format)
            {
                case PixelFormat.Vga256:
                    line[x++] = _dacRgba[p0 & pelMask];
                    line[x++] = _dacRgba[p1 & pelMask];
                    line[x++] = _dacRgba[p2 & pelMask];
                    line[x++] = _dacRgba[p3 & pelMask];
                    break;
                case PixelFormat.Cga4:
                    for (int i = 0; i < 4; i++)
                    {
                        int s = 6 - 2 * i;
                        line[x++] = _attrRgba[((p0 >> s) & 3) | ((p2 >> s) & 3) << 2];
                    }
                    for (int i = 0; i < 4; i++)
                    {
                        int s = 6 - 2 * i;
                        line[x++] = _attrRgba[((p1 >> s) & 3) | ((p3 >> s) & 3) << 2];
                    }
                    break;
                default:
                    for (int bit = 7; bit >= 0; bit--)
                    {
                        int idx = (p0 >> bit) & 1 | ((p1 >> bit) & 1) << 1 | ((p2 >> bit) & 1) << 2 | ((p3 >> bit) & 1) << 3;
                        line[x++] = _attrRgba[idx];
                    }
                    break;
            }
        }
    }

    private void RenderLinearLine(int y)
    {
        ref readonly ScreenLayout l = ref _layout;
        byte[] vram = _vga.Vram;
        Span<uint> line = _line.AsSpan(0, l.Width);
        int o = l.Start + y * l.Pitch;
        int mask = vram.Length - 1;
        switch (l.Bpp)
        {
            case 8:
                int pel = _vga.PelMask;
                for (int x = 0; x < l.Width; x++) line[x] = _dacRgba[vram[(o + x) & mask] & pel];
                break;
            case 15:
            case 16:
                for (int x = 0; x < l.Width; x++)
                {
                    int i = (o + 2 * x) & mask;
                    int v = vram[i] | vram[(i + 1) & mask] << 8;
                    int r, g, b;
                    if (l.Bpp == 15) { r = (v >> 10) & 31; g = (v >> 5) & 31; b = v & 31; r = r << 3 | r >> 2; g = g << 3 | g >> 2; }
                    else { r = (v >> 11) & 31; g = (v >> 5) & 63; b = v & 31; r = r << 3 | r >> 2; g = g << 2 | g >> 4; }
                    b = b << 3 | b >> 2;
                    line[x] = (uint)(r | g << 8 | b << 16) | 0xFF00_0000u;
                }
                break;
            case 24:
                for (int x = 0; x < l.Width; x++)
                {
                    int i = o + 3 * x;
                    line[x] = (uint)(vram[(i + 2) & mask] | vram[(i + 1) & mask] << 8 | vram[i & mask] << 16) | 0xFF00_0000u;
                }
                break;
            default:
                if (o >= 0 && (o & 3) == 0 && o + 4 * l.Width <= vram.Length)
                {
                    // Fast path: whole aligned line inside VRAM; XRGB little endian (B,G,R,X) → RGBA.
                    ReadOnlySpan<uint> src = MemoryMarshal.Cast<byte, uint>(vram.AsSpan(o, 4 * l.Width));
                    for (int x = 0; x < src.Length; x++)
                    {
                        uint v = src[x];
                        line[x] = ((v >> 16) & 0xFF) | (v & 0xFF00) | ((v & 0xFF) << 16) | 0xFF00_0000u;
                    }
                    break;
                }
                for (int x = 0; x < l.Width; x++)
                {
                    int i = (o + 4 * x) & mask;
                    line[x] = (uint)(vram[(i + 2) & mask] | vram[(i + 1) & mask] << 8 | vram[i] << 16) | 0xFF00_0000u;
                }
                break;
        }
    }

    /// <summary>Copies the rendered line into the framebuffer, marking the tiles whose pixels changed.</summary>
    private bool CommitLine(int y)
    {
        int w = _layout.Width;
        Span<uint> dst = _pixels.AsSpan(y * w, w);
        ReadOnlySpan<uint> src = _line.AsSpan(0, w);
        bool any = false;
        int ty = y / TileSize;
        for (int tx = 0; tx < _tilesX; tx++)
        {
            int x = tx * TileSize, n = Math.Min(TileSize, w - x);
            var s = src.Slice(x, n);
            var d = dst.Slice(x, n);
            if (s.SequenceEqual(d)) continue;
            s.CopyTo(d);
            _tileDirty[ty * _tilesX + tx] = true;
            any = true;
        }
        return any;
    }

    private void MarkTiles(int x, int y, int w, int h)
    {
        for (int ty = y / TileSize; ty <= (y + h - 1) / TileSize && ty < _tilesY; ty++)
            for (int tx = x / TileSize; tx <= (x + w - 1) / TileSize && tx < _tilesX; tx++)
                _tileDirty[ty * _tilesX + tx] = true;
    }
}

using VmPortal.Emulator.Devices.Vga;

namespace VmPortal.Emulator.Tests.Devices.Vga;

public class VgaTextModeTests
{
    private static readonly byte[] GlyphA = { 0x00, 0x18, 0x3C, 0x66, 0x66, 0x7E, 0x66, 0x66, 0x66, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF };

    private static void Put(VgaTestRig rig, int row, int col, string s, byte attr)
    {
        for (int i = 0; i < s.Length; i++)
        {
            uint a = (uint)(0xB8000 + (row * 80 + col + i) * 2);
            rig.Memory.Write8(a, Cp437.FromChar(s[i]));
            rig.Memory.Write8(a + 1, attr);
        }
    }

    [Fact]
    public void Mode3ShowsTextFromB8000AndGetTextTrimsLines()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.Memory.WriteBytes(0xB8000, new byte[80 * 25 * 2]); // blank (char 0)
        Put(rig, 0, 0, "SeaBIOS (version 1.16)", 0x07);
        Put(rig, 2, 5, "Booting from DVD/CD...  ", 0x07);
        Put(rig, 24, 79, "█", 0x07);
        var s = rig.Vga.Screen;
        Assert.Equal(80, s.Columns);
        Assert.Equal(25, s.Rows);
        string text = s.GetText();
        var lines = text.Split('\n');
        Assert.Equal(25, lines.Length);
        Assert.Equal("SeaBIOS (version 1.16)", lines[0]);
        Assert.Equal("", lines[1]);
        Assert.Equal("     Booting from DVD/CD...", lines[2]);
        Assert.Equal(new string(' ', 79) + "█", lines[24]);
        Assert.Equal(new TextCell((byte)'S', 0x07), s.GetCell(0, 0));
        // A 16-bit write stores character and attribute at once.
        rig.Memory.Write16(0xB8000 + 2 * 81, 0x1E41);
        Assert.Equal(new TextCell(0x41, 0x1E), s.GetCell(1, 1));
    }

    [Fact]
    public void TextIsDrawnWithTheFontTheGuestLoadedInPlane2()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.SetDac(0x01, 0, 0, 42);   // palette reg 1 → DAC 1: blue
        rig.SetDac(0x3F, 63, 63, 63); // palette reg 15 → DAC 0x3F: white
        rig.LoadGlyph((byte)'A', GlyphA);
        rig.Memory.WriteBytes(0xB8000, new byte[80 * 25 * 2]);
        Put(rig, 1, 2, "A", 0x1F); // white on blue
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal(ScreenMode.Text, s.Mode);
        Assert.Equal((720, 400), (s.Width, s.Height));
        uint white = VgaTestRig.Rgba(63, 63, 63), blue = VgaTestRig.Rgba(0, 0, 42);
        int x0 = 2 * 9, y0 = 16;
        for (int line = 0; line < 16; line++)
            for (int x = 0; x < 8; x++)
                Assert.Equal((GlyphA[line] & (0x80 >> x)) != 0 ? white : blue, s.GetPixel(x0 + x, y0 + line));
        Assert.Equal(blue, s.GetPixel(x0 + 8, y0 + 15)); // 9th column: background for non line-drawing chars
        Assert.Equal(VgaTestRig.Rgba(0, 0, 0), s.GetPixel(0, 0)); // char 0 attr 0: black

        // Changing only this cell dirties only its tiles.
        var tiles = new List<ScreenRect>();
        s.TakeDirtyTiles(tiles);
        Assert.NotEmpty(tiles);
        tiles.Clear();
        Put(rig, 1, 2, "A", 0x1E);
        Assert.True(s.Refresh());
        s.TakeDirtyTiles(tiles);
        Assert.Equal(new[] { new ScreenRect(0, 0, 32, 32) }, tiles);
        tiles.Clear();
        Assert.False(s.Refresh());
        Assert.Equal(0, s.TakeDirtyTiles(tiles));
    }

    [Fact]
    public void CursorFollowsCrtcRegistersAndIsDrawn()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.SetDac(0x07, 42, 42, 42);
        rig.Memory.WriteBytes(0xB8000, new byte[80 * 25 * 2]);
        for (int i = 0; i < 80 * 25; i++) rig.Memory.Write8((uint)(0xB8001 + 2 * i), 0x07);
        int pos = 3 * 80 + 10;
        rig.Bus.Out16(0x3D4, (ushort)(0x0E | (pos >> 8) << 8));
        rig.Bus.Out16(0x3D4, (ushort)(0x0F | (pos & 0xFF) << 8));
        var s = rig.Vga.Screen;
        Assert.Equal((3, 10, true), s.Cursor);
        s.Refresh();
        uint gray = VgaTestRig.Rgba(42, 42, 42), black = VgaTestRig.Rgba(0, 0, 0);
        Assert.Equal(gray, s.GetPixel(10 * 9 + 4, 3 * 16 + 13)); // cursor lines 13–14
        Assert.Equal(black, s.GetPixel(10 * 9 + 4, 3 * 16 + 12));
        rig.Bus.Out16(0x3D4, 0x200A); // cursor disabled
        Assert.False(s.Cursor.Visible);
        s.Refresh();
        Assert.Equal(black, s.GetPixel(10 * 9 + 4, 3 * 16 + 13));
    }

    [Fact]
    public void RefreshOfAnUnchangedScreenReportsNothingButSeesCursorBlinkAndWrites()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.SetDac(0x07, 42, 42, 42);
        rig.Memory.WriteBytes(0xB8000, new byte[80 * 25 * 2]);
        for (int i = 0; i < 80 * 25; i++) rig.Memory.Write8((uint)(0xB8001 + 2 * i), 0x07);
        rig.Bus.Out16(0x3D4, 0x000E); // cursor at row 0, column 0
        rig.Bus.Out16(0x3D4, 0x000F);
        var s = rig.Vga.Screen;
        long now = 0;
        s.Clock = () => now;
        s.Refresh();
        uint gray = VgaTestRig.Rgba(42, 42, 42), black = VgaTestRig.Rgba(0, 0, 0);
        var tiles = new List<ScreenRect>();
        s.TakeDirtyTiles(tiles);
        for (int i = 0; i < 10; i++) Assert.False(s.Refresh()); // nothing changed
        Assert.Equal(0, s.TakeDirtyTiles(tiles));

        // Cursor shape (CRTC 0x0A/0x0B) is drawn per cell: a block cursor from line 0.
        rig.Bus.Out16(0x3D4, 0x000A);
        Assert.True(s.Refresh());
        Assert.Equal(gray, s.GetPixel(4, 0));
        // Cursor move: the old cell is cleared, the new one drawn.
        rig.Bus.Out16(0x3D4, 0x050F);
        Assert.True(s.Refresh());
        Assert.Equal(black, s.GetPixel(4, 0));
        Assert.Equal(gray, s.GetPixel(5 * 9 + 4, 0));
        Assert.False(s.Refresh());
        // Blink phase flip (267 ms) hides the cursor without any guest activity.
        now = 300;
        Assert.True(s.Refresh());
        Assert.Equal(black, s.GetPixel(5 * 9 + 4, 0));
        Assert.False(s.Refresh());
        // A character written to VRAM.
        rig.LoadGlyph(0xDB, Enumerable.Repeat((byte)0xFF, 16).ToArray());
        s.Refresh();
        rig.Memory.Write8(0xB8000 + 2 * (24 * 80 + 79), 0xDB);
        Assert.Equal(new TextCell(0xDB, 0x07), s.GetCell(24, 79));
        Assert.True(s.Refresh());
        Assert.Equal(gray, s.GetPixel(79 * 9 + 4, 24 * 16 + 8));
    }

    [Fact]
    public void Mode80x50UsesEightLineCharactersAndResizes()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        var s = rig.Vga.Screen;
        var sizes = new List<(int, int)>();
        s.Resized += (w, h) => sizes.Add((w, h));
        s.Refresh();
        rig.Bus.Out16(0x3D4, 0x4709); // max scan line 7
        Assert.Equal(50, s.Rows);
        s.Refresh();
        Assert.Equal((720, 400), (s.Width, s.Height));
        Assert.Equal(2, sizes.Count);
        rig.Memory.Write8(0xB8000 + 49 * 160, (byte)'Z');
        Assert.Equal("Z", s.GetText().Split('\n')[49]);
    }

    [Fact]
    public void BlinkAttributeHidesForegroundInTheOffPhase()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.SetDac(0x07, 42, 42, 42);
        rig.LoadGlyph(0xDB, Enumerable.Repeat((byte)0xFF, 16).ToArray());
        rig.Memory.WriteBytes(0xB8000, new byte[80 * 25 * 2]);
        rig.Memory.Write16(0xB8000, 0x87DB); // blinking full block, grey on black
        var s = rig.Vga.Screen;
        long now = 0;
        s.Clock = () => now;
        s.Refresh();
        Assert.Equal(VgaTestRig.Rgba(42, 42, 42), s.GetPixel(0, 0));
        Assert.Equal(VgaTestRig.Rgba(42, 42, 42), s.GetPixel(8, 0)); // 0xDB is line graphics: 9th column repeats
        now = 600;
        Assert.True(s.Refresh());
        Assert.Equal(VgaTestRig.Rgba(0, 0, 0), s.GetPixel(0, 0));
    }

    [Fact]
    public void AttributeFlipFlopIsResetByReadingInputStatus1()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        rig.Bus.Out8(0x3C0, 0x11); // index…
        rig.Bus.In8(0x3DA);        // …abandoned: back to index state
        rig.Bus.Out8(0x3C0, 0x31); // index 0x11 with PAS
        rig.Bus.Out8(0x3C0, 0x05); // data: overscan colour
        Assert.Equal(0x31, rig.Bus.In8(0x3C0));
        Assert.Equal(0x05, rig.Bus.In8(0x3C1));
        // Input status 1 reports vertical retrace now and then.
        bool sawRetrace = false, sawActive = false;
        for (int i = 0; i < 32; i++) { byte v = rig.Bus.In8(0x3DA); sawRetrace |= (v & 8) != 0; sawActive |= (v & 9) == 0; }
        Assert.True(sawRetrace && sawActive);
        Assert.Equal(0xFF, rig.Bus.In8(0x3BA)); // mono status port is off in colour mode
    }

    [Fact]
    public void Cp437MapsBothWays()
    {
        Assert.Equal('A', Cp437.ToChar(0x41));
        Assert.Equal('█', Cp437.ToChar(0xDB));
        Assert.Equal('Ç', Cp437.ToChar(0x80));
        Assert.Equal('■', Cp437.ToChar(0xFE));
        Assert.Equal(' ', Cp437.ToChar(0xFF));
        Assert.Equal('⌂', Cp437.ToChar(0x7F));
        for (int i = 1; i < 255; i++) Assert.Equal(i, Cp437.FromChar(Cp437.ToChar((byte)i)) == 0x20 && i != 0x20 ? -1 : Cp437.FromChar(Cp437.ToChar((byte)i)));
    }
}

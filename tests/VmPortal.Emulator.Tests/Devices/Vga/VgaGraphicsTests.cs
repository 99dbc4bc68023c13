using VmPortal.Emulator.Devices.Vga;

namespace VmPortal.Emulator.Tests.Devices.Vga;

public class VgaGraphicsTests
{
    private static byte[] Planes(VgaTestRig rig, uint address)
    {
        var p = new byte[4];
        for (int i = 0; i < 4; i++)
        {
            rig.Bus.Out16(0x3CE, (ushort)(0x04 | i << 8)); // read map
            p[i] = rig.Memory.Read8(address);
        }
        return p;
    }

    [Fact]
    public void PlanarWriteModesLatchesAndReadModes()
    {
        var rig = new VgaTestRig();
        rig.Bus.Out16(0x3C4, 0x0604); // sequential addressing
        rig.Bus.Out16(0x3CE, 0x0506); // graphics, A0000 64K
        rig.Bus.Out16(0x3CE, 0x0005); // write mode 0, read mode 0

        // Write mode 0 with set/reset on all planes (value 0101b) and bit mask 0xF0; latches are still 0.
        rig.Bus.Out16(0x3CE, 0x0F01);
        rig.Bus.Out16(0x3CE, 0x0500);
        rig.Bus.Out16(0x3CE, 0xF008);
        rig.Memory.Write8(0xA0000, 0x00);
        Assert.Equal(new byte[] { 0xF0, 0x00, 0xF0, 0x00 }, Planes(rig, 0xA0000));

        // Read loads the latches; write mode 1 copies them to another address.
        rig.Memory.Read8(0xA0000);
        rig.Bus.Out16(0x3CE, 0x0105);
        rig.Memory.Write8(0xA0001, 0x99);
        Assert.Equal(new byte[] { 0xF0, 0x00, 0xF0, 0x00 }, Planes(rig, 0xA0001));

        // Write mode 2: value bits become planes, bit mask 0x3C keeps latch bits elsewhere.
        rig.Memory.Read8(0xA0001);
        rig.Bus.Out16(0x3CE, 0x0205);
        rig.Bus.Out16(0x3CE, 0x3C08);
        rig.Memory.Write8(0xA0001, 0x0A);
        Assert.Equal(new byte[] { 0xC0, 0x3C, 0xC0, 0x3C }, Planes(rig, 0xA0001));

        // Write mode 0, rotate right 4, XOR with latches, only planes 0–1 enabled by the map mask.
        rig.Memory.Read8(0xA0001);
        rig.Bus.Out16(0x3CE, 0x0005);
        rig.Bus.Out16(0x3CE, 0x0001);
        rig.Bus.Out16(0x3CE, 0x1C03);
        rig.Bus.Out16(0x3CE, 0xFF08);
        rig.Bus.Out16(0x3C4, 0x0302);
        rig.Memory.Write8(0xA0002, 0x0F);
        Assert.Equal(new byte[] { 0x30, 0xCC, 0x00, 0x00 }, Planes(rig, 0xA0002));

        // Write mode 3: set/reset colour 1100b, bit mask 0xF0 ANDed with the (unrotated) value 0x3C.
        rig.Bus.Out16(0x3C4, 0x0F02);
        rig.Memory.Read8(0xA0002);
        rig.Bus.Out16(0x3CE, 0x0003);
        rig.Bus.Out16(0x3CE, 0x0C00);
        rig.Bus.Out16(0x3CE, 0xF008);
        rig.Bus.Out16(0x3CE, 0x0305);
        rig.Memory.Write8(0xA0002, 0x3C);
        Assert.Equal(new byte[] { 0x00, 0xCC, 0x30, 0x30 }, Planes(rig, 0xA0002));

        // Read mode 1: colour compare.
        rig.Bus.Out16(0x3CE, 0x0805);
        rig.Bus.Out16(0x3CE, 0x0502); // compare with colour 0101b
        rig.Bus.Out16(0x3CE, 0x0F07); // all planes matter
        Assert.Equal(0xF0, rig.Memory.Read8(0xA0000));
        rig.Bus.Out16(0x3CE, 0x0002);
        rig.Bus.Out16(0x3CE, 0x0107); // only plane 0 matters, must be 0
        Assert.Equal(0x0F, rig.Memory.Read8(0xA0000));
    }

    [Fact]
    public void Mode13PixelsGoThroughTheDac()
    {
        var rig = new VgaTestRig();
        rig.SetMode13();
        rig.SetDac(0x20, 63, 0, 32);
        rig.SetDac(0x21, 0, 63, 0);
        rig.Memory.Write8(0xA0000 + 5 * 320 + 10, 0x20);
        rig.Memory.Write16(0xA0000 + 199 * 320 + 318, 0x2120);
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal((ScreenMode.Graphics, 320, 200), (s.Mode, s.Width, s.Height));
        Assert.Equal(VgaTestRig.Rgba(63, 0, 32), s.GetPixel(10, 5));
        Assert.Equal(0xFF82_00FFu, s.GetPixel(10, 5)); // RGBA32: R=FF G=00 B=82 A=FF
        Assert.Equal(VgaTestRig.Rgba(63, 0, 32), s.GetPixel(318, 199));
        Assert.Equal(VgaTestRig.Rgba(0, 63, 0), s.GetPixel(319, 199));
        Assert.Equal(VgaTestRig.Rgba(0, 0, 0), s.GetPixel(11, 5));
        Assert.Equal(0x20, rig.Memory.Read8(0xA0000 + 5 * 320 + 10));
        var xrgb = new uint[320 * 200];
        s.CopyPixelsXrgb(xrgb);
        Assert.Equal(0x00FF_0082u, xrgb[5 * 320 + 10]);

        // Dirty tiles: only the tile holding a new pixel.
        var tiles = new List<ScreenRect>();
        s.TakeDirtyTiles(tiles);
        tiles.Clear();
        rig.Memory.Write8(0xA0000 + 100 * 320 + 200, 0x21);
        Assert.True(s.Refresh());
        s.TakeDirtyTiles(tiles);
        Assert.Equal(new[] { new ScreenRect(192, 96, 32, 32) }, tiles);
        // A palette change redraws everything that uses it.
        tiles.Clear();
        rig.SetDac(0x21, 10, 10, 10);
        s.Refresh();
        s.TakeDirtyTiles(tiles);
        Assert.Equal(2, tiles.Count);
    }

    [Fact]
    public void UnchainedModeXSpreadsPixelsOverPlanes()
    {
        var rig = new VgaTestRig();
        rig.SetMode13();
        rig.Bus.Out16(0x3C4, 0x0604); // chain 4 off
        rig.Bus.Out16(0x3D4, 0x0014); // doubleword off
        rig.Bus.Out16(0x3D4, 0xE317); // byte mode
        rig.SetDac(7, 63, 63, 0);
        rig.Bus.Out16(0x3C4, 0x0202); // plane 1
        rig.Memory.Write8(0xA0000 + 80 + 5, 7); // row 1, column group 5, plane 1 → x = 21
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal((320, 200), (s.Width, s.Height));
        Assert.Equal(VgaTestRig.Rgba(63, 63, 0), s.GetPixel(21, 1));
        Assert.Equal(VgaTestRig.Rgba(0, 0, 0), s.GetPixel(20, 1));
    }

    [Fact]
    public void Mode12PlanarPixelsGoThroughTheAttributePalette()
    {
        var rig = new VgaTestRig();
        rig.SetMode12();
        rig.SetDac(0x3C, 50, 20, 10); // palette register 12 = 0x3C
        rig.Bus.Out16(0x3CE, 0x0205); // write mode 2
        rig.Bus.Out16(0x3CE, 0x1008); // bit mask: pixel 3 of the byte
        rig.Memory.Read8(0xA0000 + 2 * 80);
        rig.Memory.Write8(0xA0000 + 2 * 80, 0x0C);
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal((640, 480), (s.Width, s.Height));
        Assert.Equal(VgaTestRig.Rgba(50, 20, 10), s.GetPixel(3, 2));
        Assert.Equal(VgaTestRig.Rgba(0, 0, 0), s.GetPixel(2, 2));
    }

    [Fact]
    public void CgaFourColourModeInterleavesScanLines()
    {
        var rig = new VgaTestRig();
        rig.SetMode4();
        rig.SetDac(0x13, 0, 42, 42); // palette 1 → cyan
        rig.SetDac(0x15, 42, 0, 42); // palette 2 → magenta
        rig.SetDac(0x17, 42, 42, 42); // palette 3 → grey
        rig.Memory.Write8(0xB8000, 0xE4);          // line 0, pixels 0–3: colours 3, 2, 1, 0
        rig.Memory.Write8(0xB8001, 0x40);          // line 0, pixel 4: colour 1
        rig.Memory.Write8(0xB8000 + 0x2000, 0xC0); // line 1, pixel 0: colour 3
        rig.Memory.Write8(0xB8000 + 80, 0x80);     // line 2, pixel 0: colour 2
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal((320, 200), (s.Width, s.Height));
        uint grey = VgaTestRig.Rgba(42, 42, 42), mag = VgaTestRig.Rgba(42, 0, 42), cyan = VgaTestRig.Rgba(0, 42, 42), black = VgaTestRig.Rgba(0, 0, 0);
        Assert.Equal(new[] { grey, mag, cyan, black, cyan }, new[] { s.GetPixel(0, 0), s.GetPixel(1, 0), s.GetPixel(2, 0), s.GetPixel(3, 0), s.GetPixel(4, 0) });
        Assert.Equal(grey, s.GetPixel(0, 1));
        Assert.Equal(mag, s.GetPixel(0, 2));
    }
}

public class VgaStateTests
{
    [Fact]
    public void SaveAndLoadRestoresTheScreenAndTheRegisters()
    {
        var a = new VgaTestRig();
        a.SetMode13();
        a.SetDac(0x20, 63, 0, 32);
        a.Memory.Write8(0xA0000 + 5 * 320 + 10, 0x20);
        a.Bus.Out8(0x3C4, 0x02); // leave an index selected
        var state = a.Vga.SaveState();

        var b = new VgaTestRig();
        b.Vga.LoadState(state);
        b.Vga.Screen.Refresh();
        Assert.Equal((ScreenMode.Graphics, 320, 200), (b.Vga.Screen.Mode, b.Vga.Screen.Width, b.Vga.Screen.Height));
        Assert.Equal(VgaTestRig.Rgba(63, 0, 32), b.Vga.Screen.GetPixel(10, 5));
        Assert.Equal(0x0F, b.Bus.In8(0x3C5)); // map mask through the restored index
        Assert.Equal(0x20, b.Memory.Read8(0xA0000 + 5 * 320 + 10));
        Assert.Throws<InvalidDataException>(() => b.Vga.LoadState(state with { Version = 99 }));
    }
}

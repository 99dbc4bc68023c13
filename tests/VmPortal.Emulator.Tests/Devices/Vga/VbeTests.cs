using VmPortal.Emulator.Devices.Vga;

namespace VmPortal.Emulator.Tests.Devices.Vga;

public class VbeTests
{
    private static void Dispi(VgaTestRig rig, int index, int value)
    {
        rig.Bus.Out16(BochsDispi.IndexPort, (ushort)index);
        rig.Bus.Out16(BochsDispi.DataPort, (ushort)value);
    }

    private static int DispiRead(VgaTestRig rig, int index)
    {
        rig.Bus.Out16(BochsDispi.IndexPort, (ushort)index);
        return rig.Bus.In16(BochsDispi.DataPort);
    }

    [Fact]
    public void DispiIdentificationAndCapabilities()
    {
        var rig = new VgaTestRig();
        Assert.Equal(BochsDispi.Id5, DispiRead(rig, BochsDispi.RegId));
        Dispi(rig, BochsDispi.RegId, 0xB0C2);
        Assert.Equal(0xB0C2, DispiRead(rig, BochsDispi.RegId));
        Dispi(rig, BochsDispi.RegId, 0x1234); // not an ID: ignored
        Assert.Equal(0xB0C2, DispiRead(rig, BochsDispi.RegId));
        Assert.Equal(256, DispiRead(rig, BochsDispi.RegVideoMemory64K)); // 16 MiB
        Dispi(rig, BochsDispi.RegEnable, BochsDispi.EnableGetCaps);
        Assert.Equal(BochsDispi.MaxXres, DispiRead(rig, BochsDispi.RegXres));
        Assert.Equal(32, DispiRead(rig, BochsDispi.RegBpp));
    }

    [Fact]
    public void Vbe800x600x32ThroughTheLinearFramebufferBar()
    {
        var rig = new VgaTestRig();
        var pci = new StdVgaPci(rig.Vga, rig.Memory, ReadOnlySpan<byte>.Empty);
        Assert.Equal(0x1111_1234u, pci.ReadConfig(0, 4));
        Assert.Equal(0x03_00_00u, pci.ReadConfig(0x08, 4) >> 8);
        pci.WriteConfig(0x10, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0008u, pci.ReadConfig(0x10, 4)); // 16 MiB, prefetchable
        pci.WriteConfig(0x10, 4, 0xE000_0000);
        pci.WriteConfig(0x04, 2, 0x0003);
        Assert.Equal(0xE000_0000u, pci.Framebuffer.Base);

        Dispi(rig, BochsDispi.RegXres, 800);
        Dispi(rig, BochsDispi.RegYres, 600);
        Dispi(rig, BochsDispi.RegBpp, 32);
        Dispi(rig, BochsDispi.RegEnable, BochsDispi.EnableEnabled | BochsDispi.EnableLfb);
        Assert.Equal(800, DispiRead(rig, BochsDispi.RegVirtWidth));
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal((ScreenMode.Graphics, 800, 600), (s.Mode, s.Width, s.Height));
        var tiles = new List<ScreenRect>();
        s.TakeDirtyTiles(tiles);

        rig.Memory.Write32(0xE000_0000 + (50 * 800 + 100) * 4, 0x0011_2233); // XRGB: R=11 G=22 B=33
        rig.Memory.Write32(0xE000_0000 + (599 * 800 + 799) * 4, 0x00FF_FFFF);
        Assert.Equal(0x0011_2233u, rig.Memory.Read32(0xE000_0000 + (50 * 800 + 100) * 4));
        Assert.True(s.Refresh());
        Assert.Equal(0xFF33_2211u, s.GetPixel(100, 50));
        Assert.Equal(0xFFFF_FFFFu, s.GetPixel(799, 599));
        Assert.Equal(0xFF00_0000u, s.GetPixel(101, 50));
        tiles.Clear();
        s.TakeDirtyTiles(tiles);
        Assert.Equal(new[] { new ScreenRect(96, 32, 32, 32), new ScreenRect(768, 576, 32, 24) }, tiles);

        // Panning with Y_OFFSET moves the picture.
        Dispi(rig, BochsDispi.RegYOffset, 10);
        s.Refresh();
        Assert.Equal(0xFF33_2211u, s.GetPixel(100, 40));

        // Moving the BAR remaps the framebuffer.
        pci.WriteConfig(0x10, 4, 0xD000_0000);
        Assert.Equal(0x0011_2233u, rig.Memory.Read32(0xD000_0000 + (50 * 800 + 100) * 4));
        Assert.Equal(0xFFFF_FFFFu, rig.Memory.Read32(0xE000_0000));
    }

    [Fact]
    public void EnablingClearsVramUnlessNoClearMem()
    {
        var rig = new VgaTestRig();
        rig.Vga.LfbWrite(0, 4, 0xDEADBEEF);
        Dispi(rig, BochsDispi.RegBpp, 32);
        Dispi(rig, BochsDispi.RegEnable, BochsDispi.EnableEnabled | BochsDispi.EnableNoClearMem);
        Assert.Equal(0xDEADBEEFu, rig.Vga.LfbRead(0, 4));
        Dispi(rig, BochsDispi.RegEnable, 0);
        Dispi(rig, BochsDispi.RegEnable, BochsDispi.EnableEnabled);
        Assert.Equal(0u, rig.Vga.LfbRead(0, 4));
    }

    [Fact]
    public void BankedWindowAnd16BitPixels()
    {
        var rig = new VgaTestRig();
        Dispi(rig, BochsDispi.RegXres, 640);
        Dispi(rig, BochsDispi.RegYres, 480);
        Dispi(rig, BochsDispi.RegBpp, 16);
        Dispi(rig, BochsDispi.RegEnable, BochsDispi.EnableEnabled);
        Dispi(rig, BochsDispi.RegBank, 1);
        // Offset 65536 + 4 = pixel 32770 = (x 130, y 51) at 2 bytes per pixel.
        rig.Memory.Write16(0xA0004, 0xF800); // pure red in 5:6:5
        Assert.Equal(0xF800u, rig.Vga.LfbRead(65536 + 4, 2));
        var s = rig.Vga.Screen;
        s.Refresh();
        Assert.Equal(0xFF00_00FFu, s.GetPixel(130, 51));
    }

    [Fact]
    public void OptionRomIsServedAtTheRomBar()
    {
        var rig = new VgaTestRig();
        var rom = new byte[38912];
        rom[0] = 0x55; rom[1] = 0xAA; rom[2] = (byte)(rom.Length / 512); rom[^1] = 0x77;
        var pci = new StdVgaPci(rig.Vga, rig.Memory, rom);
        pci.WriteConfig(0x30, 4, 0xFFFF_F800);
        Assert.Equal(0xFFFF_0000u, pci.ReadConfig(0x30, 4)); // 64 KiB
        pci.WriteConfig(0x30, 4, 0xFEB0_0001);
        Assert.Equal(0xFF, rig.Memory.Read8(0xFEB0_0000)); // memory decoding still off
        pci.WriteConfig(0x04, 2, 0x0002);
        Assert.Equal(0xAA55, rig.Memory.Read16(0xFEB0_0000));
        Assert.Equal(0x77, rig.Memory.Read8(0xFEB0_0000 + (uint)rom.Length - 1));
        pci.WriteConfig(0x30, 4, 0xFEB0_0000); // ROM disabled
        Assert.Equal(0xFF, rig.Memory.Read8(0xFEB0_0000));
    }

    [Fact]
    public void RealVgaBiosImageLoadsWhenInstalled()
    {
        const string path = "/usr/share/seabios/vgabios-stdvga.bin";
        if (!File.Exists(path)) return; // the seabios package is installed by scripts/install-deps.sh
        var image = File.ReadAllBytes(path);
        var rig = new VgaTestRig();
        var pci = new StdVgaPci(rig.Vga, rig.Memory, image);
        pci.WriteConfig(0x30, 4, 0xFEB0_0001);
        pci.WriteConfig(0x04, 2, 0x0002);
        Assert.Equal(0xAA55, rig.Memory.Read16(0xFEB0_0000));
        // The ROM's PCI data structure names our device.
        int pcir = rig.Memory.Read16(0xFEB0_0018);
        Assert.Equal("PCIR", System.Text.Encoding.ASCII.GetString(image, pcir, 4));
        Assert.Equal(0x1234, rig.Memory.Read16(0xFEB0_0000 + (uint)pcir + 4));
        Assert.Equal(0x1111, rig.Memory.Read16(0xFEB0_0000 + (uint)pcir + 6));
    }
}

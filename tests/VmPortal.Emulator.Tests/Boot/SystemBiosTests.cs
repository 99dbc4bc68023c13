using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Boot;

public class SystemBiosTests
{
    private static byte[] Pattern(int size)
    {
        var image = new byte[size];
        for (int i = 0; i < size; i++) image[i] = (byte)(i * 7 + (i >> 12));
        return image;
    }

    [Fact]
    public void A128KImageEndsAtFourGigabytesAndFillsTheIsaWindow()
    {
        var mem = new PhysicalMemory(4 << 20);
        var image = Pattern(128 * 1024);
        var bios = SystemBios.Map(mem, image);
        Assert.Equal(0xFFFE_0000u, bios.HighBase);
        Assert.Equal(0xE0000u, bios.IsaBase);
        // The reset vector FFFF_FFF0 and F000:FFF0 (= 0xFFFF0) show the same bytes: the image's last 16.
        for (uint i = 0; i < 16; i++)
        {
            Assert.Equal(image[image.Length - 16 + (int)i], mem.Read8(0xFFFF_FFF0 + i));
            Assert.Equal(image[image.Length - 16 + (int)i], mem.Read8(0xFFFF0 + i));
        }
        Assert.Equal(image[0], mem.Read8(0xE0000));
        Assert.Equal(image[0x1234], mem.Read8(0xE1234));
    }

    [Fact]
    public void ALargerImageShowsOnlyItsLast128KBelowOneMegabyte()
    {
        var mem = new PhysicalMemory(4 << 20);
        var image = Pattern(256 * 1024);
        var bios = SystemBios.Map(mem, image);
        Assert.Equal(0xFFFC_0000u, bios.HighBase);
        Assert.Equal(image[0], mem.Read8(0xFFFC_0000));
        Assert.Equal(image[128 * 1024], mem.Read8(0xE0000));
        Assert.Equal(image[128 * 1024 + 5], mem.Read8(0xE0005));
    }

    [Fact]
    public void ASmallImageIsPaddedWithOnesLikeABiggerFlashChip()
    {
        var mem = new PhysicalMemory(4 << 20);
        var image = Pattern(4096);
        var bios = SystemBios.Map(mem, image);
        Assert.Equal(128 * 1024, bios.Size);
        Assert.Equal(0xFFFE_0000u, bios.HighBase);
        Assert.Equal(0xE0000u, bios.IsaBase);
        Assert.Equal(0xFF, mem.Read8(0xE0000));
        Assert.Equal(0xFF, mem.Read8(0xFFFF_0000));
        Assert.Equal(image[0], mem.Read8(0xFF000));
        Assert.Equal(image[4095], mem.Read8(0xFFFF_FFFF));
        Assert.Equal(bios.IsaBackingOffset + 0x1F000, bios.IsaBackingOffsetFor(0xFF000));
        Assert.Equal(-1, bios.IsaBackingOffsetFor(0xD0000));
    }

    [Fact]
    public void RomIgnoresWritesUntilPamShadowsItThenRamTakesOver()
    {
        var mem = new PhysicalMemory(4 << 20);
        var image = Pattern(128 * 1024);
        var bios = SystemBios.Map(mem, image);
        byte original = mem.Read8(0xF0010);
        mem.Write8(0xF0010, (byte)~original);
        Assert.Equal(original, mem.Read8(0xF0010));

        // What SeaBIOS does through PAM: reads from ROM, writes to RAM, copy, then read from RAM.
        mem.SetShadow(0xF0000, 0x10000, readRam: false, writeRam: true, bios.IsaBackingOffsetFor(0xF0000));
        for (uint a = 0xF0000; a < 0x100000; a += 4) mem.Write32(a, mem.Read32(a));
        mem.SetShadow(0xF0000, 0x10000, readRam: true, writeRam: true, bios.IsaBackingOffsetFor(0xF0000));
        Assert.Equal(original, mem.Read8(0xF0010));
        mem.Write8(0xF0010, 0x42);
        Assert.Equal(0x42, mem.Read8(0xF0010));
        // The high copy is still the ROM.
        Assert.Equal(original, mem.Read8(0xFFFF_0010));
    }

    [Theory]
    [InlineData(0, "empty")]
    [InlineData(1000, "multiple of 4 KiB")]
    [InlineData(32 * 1024 * 1024, "at most")]
    public void UnusableImagesAreRejectedWithAReason(int size, string reason)
    {
        var problem = SystemBios.Validate(new byte[size]);
        Assert.NotNull(problem);
        Assert.Contains(reason, problem);
    }

    [Fact]
    public void TheInstalledSeaBiosIsFoundWhenPresent()
    {
        string? path = FirmwareFiles.FindBios();
        if (!File.Exists("/usr/share/seabios/bios.bin")) return; // nothing installed: nothing to find
        Assert.NotNull(path);
        var mem = new PhysicalMemory(16 << 20);
        var bios = SystemBios.Load(mem, path!);
        // SeaBIOS's reset vector is a far jump (EA) at F000:FFF0.
        Assert.Equal(0xEA, mem.Read8(0xFFFF_FFF0));
        Assert.Equal(0xEA, mem.Read8(0xFFFF0));
        Assert.True(bios.Size >= 128 * 1024);
    }
}

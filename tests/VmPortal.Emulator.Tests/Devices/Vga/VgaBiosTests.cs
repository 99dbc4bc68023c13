using VmPortal.Emulator.Cpu;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Devices.Vga;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Vga;

/// <summary>
/// Debian's SeaVGABIOS (vgabios-stdvga.bin) running on our CPU against our VGA: its POST finds the DISPI interface
/// and the LFB in BAR0, then a small driver (TestData/vbetest.asm) sets text mode 3, prints through int 10h,
/// and uses VBE functions 4F01/4F02/4F05 to reach a 640×480×8 mode and draw through the banked window.
/// </summary>
public class VgaBiosTests
{
    private const string VgaBiosPath = "/usr/share/seabios/vgabios-stdvga.bin";
    private const string DriverHex =
        "31c08ed88ec0b80300cd10be6207ac84c07409b40ebb0700cd10ebf2b8014fb90101bf0008cd10b8024fbb0101cd10b8054f31dbba0100cd1006b800a0" +
        "8ec026c60610000f07b8054f31db31d2cd10a3000906b800a08ec026c60600000907f4ebfd56474142494f53204f4b00";

    [Fact]
    public void VgaBiosPostTextAndVbeBankedMode()
    {
        if (!File.Exists(VgaBiosPath)) return; // installed by scripts/install-deps.sh (seabios)
        var mem = new PhysicalMemory(16 << 20);
        var io = new IoBus();
        var pci = new PciBus(io);
        var vga = new VmPortal.Emulator.Devices.Vga.Vga(io, mem);
        var vgaPci = new StdVgaPci(vga, mem, ReadOnlySpan<byte>.Empty);
        pci.Add(2, 0, vgaPci);
        pci.WriteConfig(2, 0, 0x10, 4, 0xE000_0000);
        pci.WriteConfig(2, 0, 0x04, 2, PciFunction.CommandMemory | PciFunction.CommandIo);
        mem.WriteBytes(0xC0000, File.ReadAllBytes(VgaBiosPath)); // as SeaBIOS leaves it: copied to shadow RAM
        var cpu = new VmPortal.Emulator.Cpu.Cpu(mem, io);
        cpu.Reset();
        mem.Write8(0x500, 0xF4); // HLT: where the option ROM's init returns to

        // Far call C000:0003 with AX = the PCI address (bus 0, device 2, function 0).
        cpu.SetSegmentReal(SegmentRegister.SS, 0);
        cpu.Esp = 0x7000 - 4;
        mem.Write16(0x7000 - 4, 0x0500);
        mem.Write16(0x7000 - 2, 0x0000);
        cpu.SetSegmentReal(SegmentRegister.CS, 0xC000);
        cpu.Eip = 0x0003;
        cpu.Eax = 2 << 3;
        RunUntilHalt(cpu);
        Assert.Equal(0xC000, mem.Read16(0x10 * 4 + 2)); // int 10h now points into the VGA BIOS

        mem.WriteBytes(0x700, Convert.FromHexString(DriverHex));
        cpu.Reset();
        cpu.SetSegmentReal(SegmentRegister.SS, 0);
        cpu.Esp = 0x7000;
        cpu.SetSegmentReal(SegmentRegister.CS, 0);
        cpu.Eip = 0x700;
        RunUntilHalt(cpu);

        // VBE mode info: 640×480, 8 bpp, LFB at BAR0; the last VBE call succeeded (AX = 0x004F).
        Assert.Equal(640, mem.Read16(0x800 + 0x12));
        Assert.Equal(480, mem.Read16(0x800 + 0x14));
        Assert.Equal(8, mem.Read8(0x800 + 0x19));
        Assert.Equal(0xE000_0000u, mem.Read32(0x800 + 0x28));
        Assert.Equal(0x004F, mem.Read16(0x900));
        var s = vga.Screen;
        s.Refresh();
        Assert.Equal((ScreenMode.Graphics, 640, 480), (s.Mode, s.Width, s.Height));
        Assert.Equal(0x0Fu, vga.LfbRead(0x10010, 1)); // bank 1 + 0x10
        Assert.Equal(0x09u, vga.LfbRead(0, 1));
        // 0x10010 = 65552 = row 102, column 272 at 640 bytes per line.
        uint background = s.GetPixel(1, 1);
        Assert.NotEqual(background, s.GetPixel(272, 102));
        Assert.Equal(background, s.GetPixel(271, 102));
        Assert.NotEqual(background, s.GetPixel(0, 0));
        Assert.NotEqual(s.GetPixel(0, 0), s.GetPixel(272, 102)); // colours 9 and 15 differ
    }

    [Fact]
    public void VgaBiosTextModeShowsTeletypeOutput()
    {
        if (!File.Exists(VgaBiosPath)) return;
        var mem = new PhysicalMemory(16 << 20);
        var io = new IoBus();
        var vga = new VmPortal.Emulator.Devices.Vga.Vga(io, mem);
        mem.WriteBytes(0xC0000, File.ReadAllBytes(VgaBiosPath));
        var cpu = new VmPortal.Emulator.Cpu.Cpu(mem, io);
        cpu.Reset();
        mem.Write8(0x500, 0xF4);
        cpu.SetSegmentReal(SegmentRegister.SS, 0);
        cpu.Esp = 0x7000 - 4;
        mem.Write16(0x7000 - 4, 0x0500);
        mem.Write16(0x7000 - 2, 0x0000);
        cpu.SetSegmentReal(SegmentRegister.CS, 0xC000);
        cpu.Eip = 0x0003;
        cpu.Eax = 0xFFFF; // no PCI device: ISA-style init
        RunUntilHalt(cpu);
        // Only the text part of the driver: mode 3 and "VGABIOS OK", then stop at the first VBE call.
        var driver = Convert.FromHexString(DriverHex);
        int vbeCall = 0x1C; // offset of "mov ax, 0x4f01"
        driver[vbeCall] = 0xF4;
        mem.WriteBytes(0x700, driver);
        cpu.Reset();
        cpu.SetSegmentReal(SegmentRegister.SS, 0);
        cpu.Esp = 0x7000;
        cpu.SetSegmentReal(SegmentRegister.CS, 0);
        cpu.Eip = 0x700;
        RunUntilHalt(cpu);
        var s = vga.Screen;
        Assert.Equal("VGABIOS OK", s.GetText().Split('\n')[0]);
        Assert.Equal((0, 10, true), s.Cursor);
        s.Refresh();
        Assert.Equal((ScreenMode.Text, 720, 400), (s.Mode, s.Width, s.Height));
        // The ROM font's 'V' has lit pixels in its cell; an empty cell has none.
        bool lit = false;
        for (int y = 0; y < 16; y++) for (int x = 0; x < 9; x++) lit |= s.GetPixel(x, y) != s.GetPixel(9 * 40 + x, 16 * 10 + y);
        Assert.True(lit);
    }

    private static void RunUntilHalt(VmPortal.Emulator.Cpu.Cpu cpu)
    {
        long n = 0;
        while (!cpu.Halted && n < 50_000_000) n += cpu.Run(100_000);
        Assert.True(cpu.Halted, $"stuck at {cpu.GetSelector(SegmentRegister.CS):X4}:{cpu.Eip:X4}");
    }
}

using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// PCI face of the Bochs/QEMU standard VGA: vendor 0x1234, device 0x1111, class 0300 (VGA-compatible), revision 2,
/// subsystem 1AF4:1100. BAR0 = VRAM as a prefetchable 32-bit memory BAR (the linear framebuffer, default 16 MiB);
/// the expansion ROM BAR holds the VGA BIOS (Debian seabios' vgabios-stdvga.bin). The legacy VGA ports and the
/// 0xA0000 window are decoded by <see cref="Vga"/> regardless of the command register, as on QEMU.
/// A BAR move or a decode-enable change remaps the framebuffer/ROM MMIO. A BAR whose range would end at
/// 0xFFFFFFFF (the value left while the guest sizes it) is treated as unmapped.
/// Guests: SeaBIOS (runs the option ROM; vgabios-stdvga finds the LFB in BAR0), Linux bochs-drm/vesafb.
/// </summary>
public sealed class StdVgaPci : PciFunction
{
    public const ushort BochsVendorId = 0x1234, StdVgaDeviceId = 0x1111;
    public const int FramebufferBar = 0, RomBar = 6;

    private readonly PhysicalMemory _memory;
    private bool _lfbMapped, _romMapped;

    /// <param name="vga">The VGA core whose VRAM BAR0 exposes.</param>
    /// <param name="memory">Physical memory to map the framebuffer and ROM into.</param>
    /// <param name="optionRom">VGA BIOS bytes (the machine reads /usr/share/seabios/vgabios-stdvga.bin), or empty for none.</param>
    public StdVgaPci(Vga vga, PhysicalMemory memory, ReadOnlySpan<byte> optionRom)
        : base(BochsVendorId, StdVgaDeviceId, 0x03, 0x00, 0x00, revision: 2)
    {
        Vga = vga;
        _memory = memory;
        Framebuffer = new VgaLinearFramebuffer(vga);
        WriteConfigRaw(SubsystemVendorOffset, 0x1100_1AF4);
        DefineBar(FramebufferBar, (uint)vga.VramSize, io: false, prefetchable: true);
        if (!optionRom.IsEmpty)
        {
            Rom = new PciExpansionRom(optionRom, PciExpansionRom.SizeFor(optionRom.Length));
            DefineRomBar(Rom.Size);
        }
        BarChanged += OnBarChanged;
    }

    public Vga Vga { get; }
    public VgaLinearFramebuffer Framebuffer { get; }
    public PciExpansionRom? Rom { get; }

    private void OnBarChanged(int bar)
    {
        if (bar == FramebufferBar)
        {
            if (_lfbMapped) { _memory.UnmapMmio(Framebuffer); _lfbMapped = false; Framebuffer.Base = 0; }
            uint addr = BarAddress(FramebufferBar);
            if (MemoryEnabled && Usable(addr, (uint)Vga.VramSize))
            {
                Framebuffer.Base = addr;
                _memory.MapMmio(addr, (uint)Vga.VramSize, Framebuffer);
                _lfbMapped = true;
            }
        }
        else if (bar == RomBar && Rom != null)
        {
            if (_romMapped) { _memory.UnmapMmio(Rom); _romMapped = false; Rom.Base = 0; }
            uint addr = BarAddress(RomBar);
            if (RomEnabled && Usable(addr, Rom.Size))
            {
                Rom.Base = addr;
                _memory.MapMmio(addr, Rom.Size, Rom);
                _romMapped = true;
            }
        }
    }

    private static bool Usable(uint addr, uint size) => addr != 0 && (ulong)addr + size - 1 < 0xFFFF_FFFFUL && addr >= 0x10_0000;
}

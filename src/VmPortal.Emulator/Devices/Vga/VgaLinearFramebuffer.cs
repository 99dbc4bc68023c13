using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// The standard VGA's linear framebuffer: all of VRAM, mapped at PCI BAR0 of <see cref="StdVgaPci"/>.
/// Served as MMIO (each access marks its VRAM page dirty for the screen).
/// Guests: vgabios-stdvga VBE modes with the LFB bit, Linux vesafb/bochs-drm, GRUB gfxterm.
/// </summary>
public sealed class VgaLinearFramebuffer : IMmioDevice
{
    private readonly Vga _vga;

    public VgaLinearFramebuffer(Vga vga) => _vga = vga;

    /// <summary>Physical address the framebuffer is mapped at (0 when unmapped).</summary>
    public uint Base { get; internal set; }

    public uint MmioRead(uint address, int size) => _vga.LfbRead(address - Base, size);

    public void MmioWrite(uint address, int size, uint value) => _vga.LfbWrite(address - Base, size, value);
}

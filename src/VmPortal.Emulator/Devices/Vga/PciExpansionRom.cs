using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// A PCI expansion ROM image (here the VGA BIOS, vgabios-stdvga.bin) served read-only at the address the guest
/// programs into the ROM BAR (config 0x30) while the ROM and memory decoding are enabled. Bytes past the image
/// read as zero; writes are ignored. Guests: SeaBIOS copies and runs the option ROM from here.
/// </summary>
public sealed class PciExpansionRom : IMmioDevice
{
    private readonly byte[] _image;

    public PciExpansionRom(ReadOnlySpan<byte> image, uint size)
    {
        _image = image.ToArray();
        Size = size;
    }

    public uint Size { get; }
    public uint Base { get; internal set; }
    public ReadOnlySpan<byte> Image => _image;

    public uint MmioRead(uint address, int size)
    {
        uint off = address - Base;
        uint v = 0;
        for (int i = 0; i < size; i++)
        {
            uint o = off + (uint)i;
            if (o < (uint)_image.Length) v |= (uint)_image[o] << (8 * i);
        }
        return v;
    }

    public void MmioWrite(uint address, int size, uint value) { }

    /// <summary>Smallest power of two ≥ <paramref name="length"/> and ≥ 2 KiB (the ROM BAR granularity).</summary>
    public static uint SizeFor(int length)
    {
        uint s = 2048;
        while (s < (uint)length) s <<= 1;
        return s;
    }
}

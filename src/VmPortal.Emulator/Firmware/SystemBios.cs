using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Firmware;

/// <summary>
/// The system BIOS ROM (SeaBIOS's bios.bin, or any image given with <c>--bios</c>) mapped like a PC's
/// firmware flash: the whole image ends at the top of the 4 GiB space (the reset vector FFFF_FFF0 lands in its
/// last 16 bytes), and its last 128 KiB also appear in the ISA BIOS area 0xE0000–0xFFFFF (images smaller than
/// 128 KiB are padded at the front with 0xFF, like a larger flash chip). That low copy is what the i440FX PAM registers
/// switch between ROM and shadow RAM: the host bridge calls
/// <see cref="PhysicalMemory.SetShadow"/> with <see cref="IsaBackingOffsetFor"/> as the ROM side.
/// Used by: SeaBIOS (it copies itself into shadow RAM via PAM during POST), any <c>--bios</c> image.
/// </summary>
public sealed class SystemBios
{
    public const uint IsaWindowSize = 128 * 1024;
    public const uint IsaWindowEnd = 0x10_0000;
    public const int MaxSize = 16 * 1024 * 1024;

    private SystemBios(int size, uint highBase, int backingOffset, uint isaBase, int isaBackingOffset)
    {
        Size = size;
        HighBase = highBase;
        BackingOffset = backingOffset;
        IsaBase = isaBase;
        IsaBackingOffset = isaBackingOffset;
    }

    /// <summary>Size of the mapped image in bytes (the file, padded at the front to ≥ 128 KiB and a multiple of 64 KiB).</summary>
    public int Size { get; }
    /// <summary>Where the whole image starts below 4 GiB (0xFFFE0000 for 128 KiB).</summary>
    public uint HighBase { get; }
    /// <summary>Offset of the image in <see cref="PhysicalMemory.Backing"/>.</summary>
    public int BackingOffset { get; }
    /// <summary>Start of the low copy below 1 MiB (0xE0000 for a 128 KiB or larger image).</summary>
    public uint IsaBase { get; }
    /// <summary>Offset in <see cref="PhysicalMemory.Backing"/> of the bytes seen at <see cref="IsaBase"/>.</summary>
    public int IsaBackingOffset { get; }

    /// <summary>
    /// Backing offset of the ROM bytes seen at physical <paramref name="address"/> in the ISA window, or -1 when
    /// the address is below the window (0xC0000–0xDFFFF: option-ROM space with nothing behind it on the PCI side).
    /// </summary>
    public int IsaBackingOffsetFor(uint address) =>
        address >= IsaBase && address < IsaWindowEnd ? IsaBackingOffset + (int)(address - IsaBase) : -1;

    /// <summary>Checks that <paramref name="image"/> can be a BIOS image; returns null or the reason it cannot.</summary>
    public static string? Validate(ReadOnlySpan<byte> image)
    {
        if (image.Length == 0) return "the BIOS image is empty";
        if (image.Length > MaxSize) return $"the BIOS image is {image.Length} bytes; at most {MaxSize} are supported";
        if (image.Length % 4096 != 0) return $"the BIOS image size ({image.Length} bytes) is not a multiple of 4 KiB";
        return null;
    }

    /// <summary>Loads <paramref name="image"/> into <paramref name="memory"/> at both places (ROM, read-only).</summary>
    public static SystemBios Map(PhysicalMemory memory, ReadOnlySpan<byte> image)
    {
        string? problem = Validate(image);
        if (problem != null) throw new InvalidDataException(problem);
        // Like a flash chip larger than its contents: small images are padded at the front with 0xFF to a multiple of
        // 64 KiB and at least the 128 KiB ISA window, so the i440FX PAM segments (16 KiB) always have ROM behind them.
        int size = Math.Max((int)IsaWindowSize, (image.Length + 0xFFFF) & ~0xFFFF);
        byte[] padded = new byte[size];
        padded.AsSpan(0, size - image.Length).Fill(0xFF);
        image.CopyTo(padded.AsSpan(size - image.Length));
        uint highBase = (uint)(0x1_0000_0000 - (ulong)size);
        int offset = memory.LoadRom(highBase, padded);
        uint isaBase = IsaWindowEnd - IsaWindowSize;
        int isaOffset = offset + size - (int)IsaWindowSize;
        memory.MapRom(isaBase, IsaWindowSize, isaOffset);
        return new SystemBios(size, highBase, offset, isaBase, isaOffset);
    }

    /// <summary>Reads and maps a BIOS file; <see cref="InvalidDataException"/> names the file when it is unusable.</summary>
    public static SystemBios Load(PhysicalMemory memory, string path)
    {
        byte[] image = File.ReadAllBytes(path);
        string? problem = Validate(image);
        if (problem != null) throw new InvalidDataException($"{path}: {problem}");
        return Map(memory, image);
    }
}

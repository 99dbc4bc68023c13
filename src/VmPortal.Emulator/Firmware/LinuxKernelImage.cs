using System.Buffers.Binary;

namespace VmPortal.Emulator.Firmware;

/// <summary>
/// A Linux bzImage (or any image speaking the x86 Linux boot protocol 2.02+: Debian's 686 kernel, iPXE's
/// ipxe.lkrn, memtest86+'s memtest86+ia32.bin), split into its real-mode setup part and its protected-mode
/// part, with the setup header fields a boot loader reads. Layout per the kernel's Documentation/arch/x86/boot.rst:
/// the setup header starts at 0x1F1 of the file; "HdrS" at 0x202 marks protocol 2.00+.
/// </summary>
public sealed class LinuxKernelImage
{
    // Setup header offsets (from the start of the file / of the real-mode code).
    public const int SetupSectsOffset = 0x1F1;
    public const int VidModeOffset = 0x1FA;
    public const int BootFlagOffset = 0x1FE;
    public const int HeaderMagicOffset = 0x202;
    public const int VersionOffset = 0x206;
    public const int TypeOfLoaderOffset = 0x210;
    public const int LoadFlagsOffset = 0x211;
    public const int Code32StartOffset = 0x214;
    public const int RamdiskImageOffset = 0x218;
    public const int RamdiskSizeOffset = 0x21C;
    public const int HeapEndPtrOffset = 0x224;
    public const int CmdLinePtrOffset = 0x228;
    public const int InitrdAddrMaxOffset = 0x22C;
    public const int CmdlineSizeOffset = 0x238;

    public const uint HeaderMagic = 0x5372_6448; // "HdrS"
    public const ushort BootFlag = 0xAA55;
    public const byte LoadedHigh = 0x01;
    public const byte CanUseHeap = 0x80;
    public const ushort MinimumProtocol = 0x0202;

    private LinuxKernelImage(byte[] file, int setupSize, ushort protocol, byte loadFlags, uint initrdAddrMax, uint cmdlineMax)
    {
        File = file;
        SetupSize = setupSize;
        Protocol = protocol;
        LoadFlags = loadFlags;
        InitrdAddrMax = initrdAddrMax;
        CmdlineMax = cmdlineMax;
    }

    /// <summary>The whole file.</summary>
    public byte[] File { get; }
    /// <summary>Bytes of real-mode code (boot sector + setup sectors): (setup_sects + 1) × 512.</summary>
    public int SetupSize { get; }
    /// <summary>Boot protocol version, e.g. 0x020F.</summary>
    public ushort Protocol { get; }
    public byte LoadFlags { get; }
    /// <summary>Highest address the initrd may occupy (inclusive).</summary>
    public uint InitrdAddrMax { get; }
    /// <summary>Longest command line the kernel accepts, without the terminating NUL.</summary>
    public uint CmdlineMax { get; }
    /// <summary>The real-mode part, loaded at the setup base.</summary>
    public ReadOnlySpan<byte> Setup => File.AsSpan(0, SetupSize);
    /// <summary>The protected-mode part, loaded at 1 MiB.</summary>
    public ReadOnlySpan<byte> ProtectedMode => File.AsSpan(SetupSize);

    /// <summary>Parses a kernel file; <see cref="InvalidDataException"/> with a precise reason if it is not one we can boot.</summary>
    public static LinuxKernelImage Parse(byte[] file)
    {
        string? problem = Check(file, out int setupSize);
        if (problem != null) throw new InvalidDataException(problem);
        ushort protocol = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(VersionOffset));
        byte loadFlags = file[LoadFlagsOffset];
        uint initrdMax = protocol >= 0x0203 ? BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(InitrdAddrMaxOffset)) : 0x37FF_FFFF;
        uint cmdlineMax = protocol >= 0x0206 ? BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(CmdlineSizeOffset)) : 255;
        return new LinuxKernelImage(file, setupSize, protocol, loadFlags, initrdMax, cmdlineMax);
    }

    public static LinuxKernelImage Load(string path)
    {
        try { return Parse(System.IO.File.ReadAllBytes(path)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    private static string? Check(byte[] file, out int setupSize)
    {
        setupSize = 0;
        if (file.Length < 0x400) return $"not a Linux kernel image: only {file.Length} bytes";
        if (BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(BootFlagOffset)) != BootFlag)
            return "not a Linux kernel image: no 0xAA55 boot flag at offset 0x1FE";
        if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(HeaderMagicOffset)) != HeaderMagic)
            return "not a Linux kernel image: no \"HdrS\" setup header (boot protocol 2.00 or later is required)";
        ushort protocol = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(VersionOffset));
        if (protocol < MinimumProtocol)
            return $"boot protocol {protocol >> 8}.{protocol & 0xFF:D2} is too old (2.02 or later is required)";
        if ((file[LoadFlagsOffset] & LoadedHigh) == 0)
            return "zImage kernels (loaded below 1 MiB) are not supported; use a bzImage";
        int sects = file[SetupSectsOffset] == 0 ? 4 : file[SetupSectsOffset];
        setupSize = (sects + 1) * 512;
        if (setupSize >= file.Length) return $"truncated kernel image: {sects} setup sectors but {file.Length} bytes in all";
        return null;
    }
}

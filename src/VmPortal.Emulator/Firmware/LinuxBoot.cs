using System.Buffers.Binary;
using System.Text;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Firmware;

/// <summary>
/// Direct kernel boot (like <c>qemu -kernel/-initrd/-append</c>) through SeaBIOS, the way QEMU does it with its
/// linuxboot option ROM: the machine hands SeaBIOS a tiny option ROM (<see cref="OptionRom"/>, fw_cfg file
/// <see cref="FwCfgFileName"/>, listed first in fw_cfg "bootorder"). SeaBIOS runs POST as usual and then boots
/// that ROM's PnP bootstrap entry vector (BEV), which
/// <list type="number">
/// <item>writes 1 to <see cref="TriggerPort"/>: this class then loads the real-mode setup at 0x10000, the
/// protected-mode kernel at 1 MiB, the initrd near the top of RAM and the command line at 0x20000, and fills the
/// setup header (type_of_loader, loadflags.CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr, ramdisk_image/size);</item>
/// <item>sets DS=ES=FS=GS=SS=0x1000, SP=0xE000 and jumps to 0x1020:0000, the real-mode entry of the setup code
/// (boot protocol 2.02+), which asks the BIOS for the e820 map and video mode itself.</item>
/// </list>
/// Loading at BEV time (not at power-on) keeps SeaBIOS's POST from overwriting the images with its own tables.
/// Used by: the rescue guest's kernel+initrd, iPXE's ipxe.lkrn and memtest86+ia32.bin (all protocol 2.02+).
/// </summary>
public sealed class LinuxBoot
{
    public const ushort TriggerPort = 0x0520;
    public const string FwCfgFileName = "genroms/vmportal-linuxboot.bin";
    /// <summary>The fw_cfg "bootorder" line that makes SeaBIOS boot the ROM first.</summary>
    public const string BootOrderEntry = "/rom@" + FwCfgFileName;

    public const uint SetupBase = 0x1_0000;
    public const ushort SetupSegment = (ushort)(SetupBase >> 4);
    public const ushort HeapEnd = 0xE000;           // stack top and heap end, relative to SetupBase
    public const uint CmdlineAddress = 0x2_0000;
    public const uint KernelAddress = 0x10_0000;
    public const int MaxSetupSize = 0x8000;
    /// <summary>RAM kept free at the top for SeaBIOS's high tables (its e820 reserves part of it).</summary>
    public const uint HighReserve = 0x10_0000;
    public const byte LoaderIdUndefined = 0xFF;

    private readonly PhysicalMemory _memory;
    private readonly LinuxKernelImage _kernel;
    private readonly byte[]? _initrd;
    private readonly byte[] _cmdline;

    public LinuxBoot(PhysicalMemory memory, IoBus io, LinuxKernelImage kernel, byte[]? initrd, string commandLine)
    {
        _memory = memory;
        _kernel = kernel;
        _initrd = initrd;
        _cmdline = Encoding.ASCII.GetBytes(commandLine);
        if (_kernel.SetupSize > MaxSetupSize)
            throw new InvalidDataException($"kernel setup code is {_kernel.SetupSize} bytes; at most {MaxSetupSize} are supported");
        if (_cmdline.Length > _kernel.CmdlineMax)
            throw new InvalidDataException($"command line is {_cmdline.Length} bytes; this kernel accepts at most {_kernel.CmdlineMax}");
        ulong kernelEnd = KernelAddress + (ulong)_kernel.ProtectedMode.Length;
        ulong ramTop = memory.RamSize > HighReserve ? memory.RamSize - HighReserve : 0;
        if (kernelEnd > ramTop)
            throw new InvalidDataException($"kernel ({_kernel.ProtectedMode.Length} bytes at 1 MiB) does not fit in {memory.RamSize >> 20} MiB of RAM");
        if (_initrd != null)
        {
            ulong maxEnd = Math.Min((ulong)_kernel.InitrdAddrMax + 1, ramTop);
            if ((ulong)_initrd.Length > maxEnd)
                throw new InvalidDataException($"initrd ({_initrd.Length} bytes) does not fit below 0x{maxEnd:X}");
            InitrdAddress = (uint)((maxEnd - (ulong)_initrd.Length) & ~0xFFFUL);
            if (InitrdAddress < kernelEnd)
                throw new InvalidDataException($"kernel and initrd ({_kernel.ProtectedMode.Length} + {_initrd.Length} bytes) do not fit in {memory.RamSize >> 20} MiB of RAM");
        }
        OptionRom = BuildOptionRom();
        io.Register(TriggerPort, 1, null, OnTrigger);
    }

    /// <summary>Where the initrd goes (0 without one).</summary>
    public uint InitrdAddress { get; }

    /// <summary>The 512-byte option ROM SeaBIOS loads from fw_cfg (<see cref="FwCfgFileName"/>).</summary>
    public byte[] OptionRom { get; }

    /// <summary>Raised on the machine thread after the images were copied into RAM.</summary>
    public event Action? Loaded;

    private void OnTrigger(ushort port, int size, uint value)
    {
        if ((value & 0xFF) == 1) LoadIntoMemory();
    }

    /// <summary>Copies setup, kernel, initrd and command line into guest RAM and fills the setup header.</summary>
    public void LoadIntoMemory()
    {
        bool a20 = _memory.A20Enabled;
        _memory.A20Enabled = true;
        try
        {
            var setup = _kernel.Setup.ToArray();
            var hdr = setup.AsSpan();
            hdr[LinuxKernelImage.TypeOfLoaderOffset] = LoaderIdUndefined;
            hdr[LinuxKernelImage.LoadFlagsOffset] |= LinuxKernelImage.CanUseHeap;
            BinaryPrimitives.WriteUInt16LittleEndian(hdr[LinuxKernelImage.HeapEndPtrOffset..], HeapEnd - 0x200);
            BinaryPrimitives.WriteUInt32LittleEndian(hdr[LinuxKernelImage.CmdLinePtrOffset..], CmdlineAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(hdr[LinuxKernelImage.RamdiskImageOffset..], _initrd == null ? 0 : InitrdAddress);
            BinaryPrimitives.WriteUInt32LittleEndian(hdr[LinuxKernelImage.RamdiskSizeOffset..], _initrd == null ? 0u : (uint)_initrd.Length);
            _memory.WriteBytes(SetupBase, setup);
            _memory.WriteBytes(CmdlineAddress, _cmdline);
            _memory.Write8(CmdlineAddress + (uint)_cmdline.Length, 0);
            _memory.WriteBytes(KernelAddress, _kernel.ProtectedMode);
            if (_initrd != null) _memory.WriteBytes(InitrdAddress, _initrd);
        }
        finally
        {
            _memory.A20Enabled = a20;
        }
        Loaded?.Invoke();
    }

    // Option ROM layout: header (0x00), PnP expansion header (0x20), BEV code (0x40), product name (0x80).
    private const int PnpOffset = 0x20, BevOffset = 0x40, NameOffset = 0x80, RomSize = 512;

    private static byte[] BuildOptionRom()
    {
        var rom = new byte[RomSize];
        rom[0] = 0x55; rom[1] = 0xAA; rom[2] = RomSize / 512;
        rom[3] = 0xCB;                                   // init entry: retf (nothing to set up)
        BinaryPrimitives.WriteUInt16LittleEndian(rom.AsSpan(0x1A), PnpOffset);

        var pnp = rom.AsSpan(PnpOffset, 32);
        Encoding.ASCII.GetBytes("$PnP").CopyTo(pnp);
        pnp[4] = 1;                                      // structure revision
        pnp[5] = 2;                                      // length in 16-byte units
        BinaryPrimitives.WriteUInt16LittleEndian(pnp[0x10..], NameOffset); // product name
        pnp[0x12] = 0x08; pnp[0x13] = 0x00; pnp[0x14] = 0x00; // device type: other
        pnp[0x15] = 0x04;                                // device indicators: IPL device
        BinaryPrimitives.WriteUInt16LittleEndian(pnp[0x1A..], BevOffset); // bootstrap entry vector
        byte sum = 0;
        foreach (byte b in pnp) sum += b;
        pnp[9] = (byte)(0 - sum);

        byte[] code =
        {
            0xFA,                                        // cli
            0xFC,                                        // cld
            0xB0, 0x01,                                  // mov al, 1
            0xBA, TriggerPort & 0xFF, TriggerPort >> 8,   // mov dx, TriggerPort
            0xEE,                                        // out dx, al   -> host loads the images
            0xB8, SetupSegment & 0xFF, SetupSegment >> 8, // mov ax, SetupSegment
            0x8E, 0xD8,                                  // mov ds, ax
            0x8E, 0xC0,                                  // mov es, ax
            0x8E, 0xE0,                                  // mov fs, ax
            0x8E, 0xE8,                                  // mov gs, ax
            0x8E, 0xD0,                                  // mov ss, ax
            0xBC, HeapEnd & 0xFF, HeapEnd >> 8,           // mov sp, HeapEnd
            0xEA, 0x00, 0x00, (SetupSegment + 0x20) & 0xFF, (SetupSegment + 0x20) >> 8, // jmp far SetupSegment+0x20:0000
        };
        code.CopyTo(rom, BevOffset);
        Encoding.ASCII.GetBytes("VmPortal direct kernel boot\0").CopyTo(rom, NameOffset);

        byte total = 0;
        for (int i = 0; i < RomSize - 1; i++) total += rom[i];
        rom[RomSize - 1] = (byte)(0 - total);
        return rom;
    }
}

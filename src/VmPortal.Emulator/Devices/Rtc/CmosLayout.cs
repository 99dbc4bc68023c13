namespace VmPortal.Emulator.Devices.Rtc;

/// <summary>
/// The AT/QEMU CMOS RAM layout the firmware reads, and helpers that fill it before power-on.
/// SeaBIOS (src/fw/paravirt.c, src/boot.c) takes RAM below 4 GiB from 0x34/0x35 (64 KiB units above 16 MiB) or
/// 0x30/0x31 (KiB above 1 MiB), RAM above 4 GiB from 0x5B–0x5D, the CPU count from 0x5F, and the boot order from
/// 0x3D and the high nibble of 0x38 (bit 0 of 0x38 set = skip the floppy boot-signature check).
/// DOS-era software reads base memory (0x15/0x16), extended memory (0x17/0x18), floppy types (0x10),
/// the equipment byte (0x14) and the hard disk types (0x12, 0x19, 0x1A), covered by the checksum at 0x2E/0x2F.
/// </summary>
public static class CmosLayout
{
    public const int FloppyTypes = 0x10, HardDiskTypes = 0x12, Equipment = 0x14;
    public const int BaseMemoryLow = 0x15, BaseMemoryHigh = 0x16, ExtendedMemoryLow = 0x17, ExtendedMemoryHigh = 0x18;
    public const int HardDisk0ExtendedType = 0x19, HardDisk1ExtendedType = 0x1A;
    public const int ChecksumStart = 0x10, ChecksumEnd = 0x2D, ChecksumHigh = 0x2E, ChecksumLow = 0x2F;
    public const int ExtendedMemory2Low = 0x30, ExtendedMemory2High = 0x31, Century = 0x32, CenturyPs2 = 0x37;
    public const int MemoryAbove16MLow = 0x34, MemoryAbove16MHigh = 0x35;
    public const int BootFlag1 = 0x38, BootFlag2 = 0x3D;
    public const int MemoryAbove4GLow = 0x5B, MemoryAbove4GMid = 0x5C, MemoryAbove4GHigh = 0x5D;
    public const int SmpCount = 0x5F;

    public const byte EquipmentFloppyPresent = 0x01, EquipmentFpuPresent = 0x02;
    public const byte BootFlag1SkipFloppySignature = 0x01;
    public const int UserDefinedHardDiskType = 47;

    /// <summary>
    /// Memory sizes: 640 KiB base, extended memory in KiB above 1 MiB (capped at 0xFFFF), 64 KiB blocks above 16 MiB
    /// (capped at 0xFFFF) and 64 KiB blocks above 4 GiB.
    /// </summary>
    public static void SetMemory(Mc146818Rtc rtc, ulong ramBelow4G, ulong ramAbove4G = 0)
    {
        const ulong MiB = 1024 * 1024;
        Write16(rtc, BaseMemoryLow, 640);
        ulong extKb = ramBelow4G > MiB ? (ramBelow4G - MiB) / 1024 : 0;
        ushort ext = (ushort)Math.Min(extKb, 0xFFFFUL);
        Write16(rtc, ExtendedMemoryLow, ext);
        Write16(rtc, ExtendedMemory2Low, ext);
        ulong above16 = ramBelow4G > 16 * MiB ? (ramBelow4G - 16 * MiB) / (64 * 1024) : 0;
        Write16(rtc, MemoryAbove16MLow, (ushort)Math.Min(above16, 0xFFFFUL));
        ulong above4g = ramAbove4G / (64 * 1024);
        rtc[MemoryAbove4GLow] = (byte)above4g;
        rtc[MemoryAbove4GMid] = (byte)(above4g >> 8);
        rtc[MemoryAbove4GHigh] = (byte)(above4g >> 16);
        rtc.UpdateChecksum();
    }

    /// <summary>Drive A and B types (byte 0x10) and the floppy bits of the equipment byte.</summary>
    public static void SetFloppies(Mc146818Rtc rtc, CmosFloppyType driveA, CmosFloppyType driveB = CmosFloppyType.None)
    {
        rtc[FloppyTypes] = (byte)((byte)driveA << 4 | (byte)driveB);
        int count = (driveA != CmosFloppyType.None ? 1 : 0) + (driveB != CmosFloppyType.None ? 1 : 0);
        byte eq = (byte)(rtc[Equipment] & ~0xC1);
        if (count > 0) eq |= (byte)(EquipmentFloppyPresent | (count - 1) << 6);
        rtc[Equipment] = eq;
        rtc.UpdateChecksum();
    }

    /// <summary>Equipment byte: FPU present bit; display bits 5:4 = 00 (EGA/VGA with its own BIOS).</summary>
    public static void SetFpuPresent(Mc146818Rtc rtc, bool present)
    {
        byte eq = (byte)(rtc[Equipment] & ~(EquipmentFpuPresent | 0x30));
        if (present) eq |= EquipmentFpuPresent;
        rtc[Equipment] = eq;
        rtc.UpdateChecksum();
    }

    /// <summary>Marks the first two hard disks as present (type 47, user defined), as AT BIOSes expect.</summary>
    public static void SetHardDisks(Mc146818Rtc rtc, bool disk0, bool disk1)
    {
        rtc[HardDiskTypes] = (byte)((disk0 ? 0xF0 : 0) | (disk1 ? 0x0F : 0));
        rtc[HardDisk0ExtendedType] = disk0 ? (byte)UserDefinedHardDiskType : (byte)0;
        rtc[HardDisk1ExtendedType] = disk1 ? (byte)UserDefinedHardDiskType : (byte)0;
        rtc.UpdateChecksum();
    }

    /// <summary>Up to three boot devices in priority order (SeaBIOS's CMOS boot order).</summary>
    public static void SetBootOrder(Mc146818Rtc rtc, ReadOnlySpan<CmosBootDevice> order, bool checkFloppySignature = true)
    {
        byte first = order.Length > 0 ? (byte)order[0] : (byte)0;
        byte second = order.Length > 1 ? (byte)order[1] : (byte)0;
        byte third = order.Length > 2 ? (byte)order[2] : (byte)0;
        rtc[BootFlag2] = (byte)(second << 4 | first);
        rtc[BootFlag1] = (byte)(third << 4 | (checkFloppySignature ? 0 : BootFlag1SkipFloppySignature));
    }

    /// <summary>Number of CPUs minus one (byte 0x5F), read by SeaBIOS when fw_cfg has no "etc/boot-cpus".</summary>
    public static void SetCpuCount(Mc146818Rtc rtc, int cpus) => rtc[SmpCount] = (byte)Math.Max(0, cpus - 1);

    private static void Write16(Mc146818Rtc rtc, int index, ushort value)
    {
        rtc[index] = (byte)value;
        rtc[index + 1] = (byte)(value >> 8);
    }
}

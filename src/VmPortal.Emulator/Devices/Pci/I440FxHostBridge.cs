using System.Buffers.Binary;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Pci;

/// <summary>
/// Intel 82441FX PMC, the i440FX host bridge (8086:1237, class 06 00 00) at 00:00.0, with QEMU's subsystem ID
/// (1AF4:1100) so SeaBIOS recognises its platform. The programmable attribute map registers 0x59–0x5F decide,
/// for each 16 KiB segment of 0xC0000–0xEFFFF and the 64 KiB 0xF0000 segment, whether reads and writes go to DRAM
/// (bit 0 RE, bit 1 WE of each nibble) or to the ROM/PCI side: 0x59 bits 5:4 = 0xF0000–0xFFFFF, 0x5A low nibble
/// 0xC0000, high nibble 0xC4000, … 0x5F high nibble 0xEC000. The ROM bytes behind each segment are registered by
/// the machine with <see cref="SetRomBacking"/>. SMRAM control (0x72) is stored (SMRAM itself is not modelled).
/// Guests: SeaBIOS (shadows itself: copies the ROM to RAM and write-protects it; makes option ROM space writable),
/// Linux (reads the IDs only).
/// </summary>
public sealed class I440FxHostBridge : PciFunction
{
    public const ushort IntelVendor = 0x8086, I440FxDeviceId = 0x1237;
    public const ushort QemuSubsystemVendor = 0x1AF4, QemuSubsystemId = 0x1100;
    public const int PamBase = 0x59, PamCount = 7, SmramControl = 0x72;
    public const byte PamReadEnable = 0x01, PamWriteEnable = 0x02;
    public const uint ShadowStart = 0xC0000, ShadowEnd = 0x100000, SegmentSize = 0x4000;
    private const int SegmentCount = (int)((ShadowEnd - ShadowStart) / SegmentSize); // 16 × 16 KiB

    private readonly PhysicalMemory _memory;
    private readonly int[] _romOffset = new int[SegmentCount];

    public I440FxHostBridge(PhysicalMemory memory) : base(IntelVendor, I440FxDeviceId, 0x06, 0x00, 0x00, revision: 0x02)
    {
        _memory = memory;
        Array.Fill(_romOffset, -1);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(SubsystemVendorOffset), QemuSubsystemVendor);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(SubsystemVendorOffset + 2), QemuSubsystemId);
        Config[CommandOffset] = (byte)(CommandMemory | CommandBusMaster);
        Config[SmramControl] = 0x02;
    }

    /// <summary>
    /// Tells the bridge where the ROM bytes for [<paramref name="start"/>, start+length) live in
    /// <see cref="PhysicalMemory.Backing"/> (the offset <see cref="PhysicalMemory.LoadRom"/> returned), and applies
    /// the current PAM settings to that range. Must be 16 KiB aligned inside 0xC0000–0xFFFFF.
    /// </summary>
    public void SetRomBacking(uint start, uint length, int backingOffset)
    {
        if (start < ShadowStart || start + length > ShadowEnd || start % SegmentSize != 0 || length % SegmentSize != 0)
            throw new ArgumentException("ROM range must be 16 KiB aligned inside 0xC0000-0xFFFFF.");
        for (uint a = start; a < start + length; a += SegmentSize)
            _romOffset[(a - ShadowStart) / SegmentSize] = backingOffset < 0 ? -1 : backingOffset + (int)(a - start);
        ApplyAll();
    }

    /// <summary>Machine reset: PAM back to "everything to ROM/PCI" (the BIOS runs from ROM again), SMRAM control default.</summary>
    public void Reset()
    {
        for (int i = 0; i < PamCount; i++) Config[PamBase + i] = 0;
        Config[SmramControl] = 0x02;
        ApplyAll();
    }

    /// <summary>The 2-bit PAM attribute (RE | WE) in force for <paramref name="address"/> (0xC0000–0xFFFFF).</summary>
    public int PamAttribute(uint address)
    {
        int seg = (int)((address - ShadowStart) / SegmentSize);
        if (seg >= 12) return (Config[PamBase] >> 4) & 3;
        byte reg = Config[PamBase + 1 + seg / 2];
        return (seg & 1) == 0 ? reg & 3 : (reg >> 4) & 3;
    }

    /// <summary>Applies the PAM registers to the memory map (after construction and when the machine resets).</summary>
    public void ApplyAll()
    {
        for (int seg = 0; seg < SegmentCount; seg++) Apply(seg);
    }

    protected override void OnConfigLoaded() => ApplyAll();

    protected override void WriteDeviceRegister(int offset, byte value)
    {
        if (offset >= PamBase && offset < PamBase + PamCount)
        {
            Config[offset] = (byte)(value & (offset == PamBase ? 0x30 : 0x33));
            ApplyAll();
            return;
        }
        if (offset == SmramControl)
        {
            // D_LCK (bit 4) freezes the register; D_OPEN/D_CLS would expose SMRAM, which we do not model.
            if ((Config[SmramControl] & 0x10) == 0) Config[SmramControl] = (byte)((value & 0x78) | 0x02);
            return;
        }
        base.WriteDeviceRegister(offset, value);
    }

    private void Apply(int seg)
    {
        uint start = ShadowStart + (uint)seg * SegmentSize;
        int attr = PamAttribute(start);
        _memory.SetShadow(start, SegmentSize, (attr & PamReadEnable) != 0, (attr & PamWriteEnable) != 0, _romOffset[seg]);
    }
}

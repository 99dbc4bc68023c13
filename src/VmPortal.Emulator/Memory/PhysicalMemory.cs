using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Memory;

/// <summary>
/// Guest physical address space (32-bit, 4 KiB pages): RAM, ROM images and MMIO devices.
/// RAM and ROM bytes live in one pinned array (<see cref="Backing"/>); each page has a read and a write
/// mapping holding the offset of its bytes in that array, or a negative value for MMIO/unmapped pages,
/// so a normal access is one table lookup plus an array index.
/// The A20 gate masks address bit 20 when disabled. Pages marked as holding decoded code
/// (<see cref="MarkCodePage"/>) report writes through <see cref="CodePageWritten"/> so the CPU can drop
/// its decoded-instruction cache for that page (self-modifying code).
/// </summary>
public sealed class PhysicalMemory
{
    public const int PageShift = 12;
    public const uint PageSize = 1u << PageShift;
    private const int PageCount = 1 << 20;
    private const int Unmapped = -1;
    private const int Mmio = -2;

    /// <summary>RAM bytes [0, RamSize), then ROM images appended after it.</summary>
    public byte[] Backing { get; private set; }
    public uint RamSize { get; }

    private readonly int[] _readMap = new int[PageCount];
    private readonly int[] _writeMap = new int[PageCount];
    private readonly byte[] _codePages = new byte[PageCount];
    private readonly List<(uint Start, uint End, IMmioDevice Device)> _mmio = new();
    private int _backingUsed;
    private uint _a20Mask = 0xFFFF_FFFF;

    /// <summary>Called with the physical page number when a page marked as code is written.</summary>
    public Action<uint>? CodePageWritten { get; set; }

    /// <summary>
    /// RAM of <paramref name="ramSizeBytes"/>, zero — or, with <paramref name="reuse"/> (the <see cref="Backing"/> of a
    /// memory of the same size that is being replaced, e.g. by a state load), that array as it is: its RAM bytes are
    /// kept (the caller overwrites them) and ROM images are copied in again. Reusing saves allocating and first-touching
    /// the whole RAM (a page fault per 4 KiB page of a fresh array).
    /// </summary>
    public PhysicalMemory(uint ramSizeBytes, byte[]? reuse = null)
    {
        if (ramSizeBytes < 1024 * 1024 || ramSizeBytes > 3u * 1024 * 1024 * 1024)
            throw new ArgumentOutOfRangeException(nameof(ramSizeBytes), "RAM must be between 1 MiB and 3 GiB.");
        RamSize = ramSizeBytes & ~(PageSize - 1);
        Backing = reuse != null && reuse.Length >= (long)RamSize + 4 * 1024 * 1024 ? reuse
            : GC.AllocateArray<byte>((int)RamSize + 4 * 1024 * 1024, pinned: true);
        _backingUsed = (int)RamSize;
        Array.Fill(_readMap, Unmapped);
        Array.Fill(_writeMap, Unmapped);
        for (uint p = 0; p < RamSize >> PageShift; p++)
        {
            _readMap[p] = (int)(p << PageShift);
            _writeMap[p] = (int)(p << PageShift);
        }
    }

    public bool A20Enabled
    {
        get => _a20Mask == 0xFFFF_FFFF;
        set { _a20Mask = value ? 0xFFFF_FFFF : 0xFFEF_FFFF; MappingVersion++; }
    }

    /// <summary>
    /// Incremented whenever the physical map changes (MMIO, ROM, shadow/PAM, A20). The CPU's TLB caches
    /// backing offsets and flushes itself when this changes.
    /// </summary>
    public int MappingVersion { get; private set; }

    public uint A20Mask => _a20Mask;

    /// <summary>Maps a device over [start, start+length). Both must be page aligned.</summary>
    public void MapMmio(uint start, uint length, IMmioDevice device)
    {
        CheckAligned(start, length);
        MappingVersion++;
        _mmio.Add((start, start + length - 1, device));
        for (uint p = start >> PageShift; p <= (start + length - 1) >> PageShift; p++)
        {
            _readMap[p] = Mmio;
            _writeMap[p] = Mmio;
        }
    }

    public void UnmapMmio(IMmioDevice device)
    {
        foreach (var r in _mmio.Where(r => r.Device == device).ToList())
        {
            _mmio.Remove(r);
            MappingVersion++;
            for (uint p = r.Start >> PageShift; p <= r.End >> PageShift; p++)
            {
                bool ram = p < (RamSize >> PageShift);
                _readMap[p] = ram ? (int)(p << PageShift) : Unmapped;
                _writeMap[p] = ram ? (int)(p << PageShift) : Unmapped;
            }
        }
    }

    /// <summary>
    /// Copies a ROM image into the backing store and maps it read-only at <paramref name="start"/>.
    /// Returns the offset of the image in <see cref="Backing"/> (to map the same bytes again elsewhere).
    /// </summary>
    public int LoadRom(uint start, ReadOnlySpan<byte> image)
    {
        uint length = ((uint)image.Length + PageSize - 1) & ~(PageSize - 1);
        if (_backingUsed + length > Backing.Length)
        {
            var bigger = GC.AllocateArray<byte>(_backingUsed + (int)length + 1024 * 1024, pinned: true);
            Buffer.BlockCopy(Backing, 0, bigger, 0, _backingUsed);
            Backing = bigger;
        }
        int offset = _backingUsed;
        image.CopyTo(Backing.AsSpan(offset));
        _backingUsed += (int)length;
        MapRom(start, length, offset);
        return offset;
    }

    /// <summary>Maps existing backing bytes (e.g. a ROM loaded by <see cref="LoadRom"/>) read-only at another address.</summary>
    public void MapRom(uint start, uint length, int backingOffset)
    {
        CheckAligned(start, length);
        MappingVersion++;
        for (uint i = 0; i < length >> PageShift; i++)
        {
            _readMap[(start >> PageShift) + i] = backingOffset + (int)(i << PageShift);
            _writeMap[(start >> PageShift) + i] = Unmapped; // writes to ROM are dropped
        }
        InvalidateCode(start, length);
    }

    /// <summary>
    /// Chooses, for a range below 1 MiB (the PAM-controlled 0xC0000–0xFFFFF area), whether reads and writes go
    /// to the shadow RAM or to the ROM/PCI side (<paramref name="romBackingOffset"/>, negative for unmapped).
    /// </summary>
    public void SetShadow(uint start, uint length, bool readRam, bool writeRam, int romBackingOffset)
    {
        CheckAligned(start, length);
        MappingVersion++;
        for (uint i = 0; i < length >> PageShift; i++)
        {
            uint p = (start >> PageShift) + i;
            int ram = (int)(p << PageShift);
            int rom = romBackingOffset < 0 ? Unmapped : romBackingOffset + (int)(i << PageShift);
            _readMap[p] = readRam ? ram : rom;
            _writeMap[p] = writeRam ? ram : Unmapped;
        }
        InvalidateCode(start, length);
    }

    /// <summary>Offset in <see cref="Backing"/> of the readable bytes of the page holding <paramref name="address"/>, or negative for MMIO/unmapped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadPageOffset(uint address) => _readMap[(address & _a20Mask) >> PageShift];

    /// <summary>Offset in <see cref="Backing"/> of the writable bytes of the page, or negative for MMIO/ROM/unmapped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int WritePageOffset(uint address) => _writeMap[(address & _a20Mask) >> PageShift];

    public void MarkCodePage(uint pageNumber) => _codePages[pageNumber] = 1;
    public void UnmarkCodePage(uint pageNumber) => _codePages[pageNumber] = 0;
    public bool IsCodePage(uint pageNumber) => _codePages[pageNumber] != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Read8(uint address)
    {
        address &= _a20Mask;
        int off = _readMap[address >> PageShift];
        if (off >= 0) return Backing[off + (int)(address & (PageSize - 1))];
        return (byte)SlowRead(address, 1);
    }

    public ushort Read16(uint address)
    {
        if ((address & (PageSize - 1)) > PageSize - 2) return (ushort)(Read8(address) | Read8(address + 1) << 8);
        address &= _a20Mask;
        int off = _readMap[address >> PageShift];
        if (off >= 0) return Unsafe.ReadUnaligned<ushort>(ref Backing[off + (int)(address & (PageSize - 1))]);
        return (ushort)SlowRead(address, 2);
    }

    public uint Read32(uint address)
    {
        if ((address & (PageSize - 1)) > PageSize - 4) return Read16(address) | (uint)Read16(address + 2) << 16;
        address &= _a20Mask;
        int off = _readMap[address >> PageShift];
        if (off >= 0) return Unsafe.ReadUnaligned<uint>(ref Backing[off + (int)(address & (PageSize - 1))]);
        return SlowRead(address, 4);
    }

    public void Write8(uint address, byte value)
    {
        address &= _a20Mask;
        uint page = address >> PageShift;
        int off = _writeMap[page];
        if (off >= 0)
        {
            Backing[off + (int)(address & (PageSize - 1))] = value;
            if (_codePages[page] != 0) CodeWritten(page);
        }
        else SlowWrite(address, 1, value);
    }

    public void Write16(uint address, ushort value)
    {
        if ((address & (PageSize - 1)) > PageSize - 2) { Write8(address, (byte)value); Write8(address + 1, (byte)(value >> 8)); return; }
        address &= _a20Mask;
        uint page = address >> PageShift;
        int off = _writeMap[page];
        if (off >= 0)
        {
            Unsafe.WriteUnaligned(ref Backing[off + (int)(address & (PageSize - 1))], value);
            if (_codePages[page] != 0) CodeWritten(page);
        }
        else SlowWrite(address, 2, value);
    }

    public void Write32(uint address, uint value)
    {
        if ((address & (PageSize - 1)) > PageSize - 4) { Write16(address, (ushort)value); Write16(address + 2, (ushort)(value >> 16)); return; }
        address &= _a20Mask;
        uint page = address >> PageShift;
        int off = _writeMap[page];
        if (off >= 0)
        {
            Unsafe.WriteUnaligned(ref Backing[off + (int)(address & (PageSize - 1))], value);
            if (_codePages[page] != 0) CodeWritten(page);
        }
        else SlowWrite(address, 4, value);
    }

    /// <summary>Bulk copy into guest memory (DMA, loaders). Honors ROM/MMIO mappings and code invalidation.</summary>
    public void WriteBytes(uint address, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++) Write8(address + (uint)i, data[i]);
    }

    public void ReadBytes(uint address, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++) data[i] = Read8(address + (uint)i);
    }

    /// <summary>The device mapped at <paramref name="address"/>, if any.</summary>
    public IMmioDevice? FindMmio(uint address)
    {
        foreach (var r in _mmio)
            if (address >= r.Start && address <= r.End) return r.Device;
        return null;
    }

    private uint SlowRead(uint address, int size)
    {
        var dev = FindMmio(address);
        if (dev != null) return dev.MmioRead(address, size);
        return size switch { 1 => 0xFF, 2 => 0xFFFF, _ => 0xFFFF_FFFF };
    }

    private void SlowWrite(uint address, int size, uint value)
    {
        FindMmio(address)?.MmioWrite(address, size, value);
    }

    private void CodeWritten(uint page) => CodePageWritten?.Invoke(page);

    private void InvalidateCode(uint start, uint length)
    {
        for (uint p = start >> PageShift; p <= (start + length - 1) >> PageShift; p++)
            if (_codePages[p] != 0) CodeWritten(p);
    }

    private static void CheckAligned(uint start, uint length)
    {
        if ((start & (PageSize - 1)) != 0 || (length & (PageSize - 1)) != 0 || length == 0)
            throw new ArgumentException($"Range 0x{start:X}+0x{length:X} is not page aligned.");
    }
}

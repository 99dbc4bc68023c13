using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VmPortal.Emulator.Cpu;

// Linear and segmented memory access: segment limit checks, paging (2-level, 4 KiB and 4 MiB pages), and a
// software TLB per access kind mapping a linear page to an offset into PhysicalMemory.Backing.
public sealed partial class Cpu
{
    private const int TlbBits = 10;
    private const int TlbEntries = 1 << TlbBits;
    private const uint TlbIndexMask = TlbEntries - 1;
    private const uint InvalidTag = 1; // never equal to a page-aligned address
    // Kinds: 0 supervisor read, 1 supervisor write, 2 user read, 3 user write (each TlbEntries long).
    // A fifth and sixth region (NoFastTlbBase, Cpu.Debug.cs) is never filled: data accesses use it while
    // alignment checking or a data breakpoint needs every access on the slow path.
    private readonly uint[] _tlbTag = new uint[6 * TlbEntries];
    private readonly int[] _tlbDelta = new int[6 * TlbEntries];
    // The same entries as host addresses (address of Backing[0] + delta; the backing array is pinned), for compiled
    // code (Jit/JitEmitter.cs): valid only while the entry's tag is. A new backing array always comes with a full
    // TLB flush (CheckMappingVersion), so no tag outlives the array its address points into.
    private readonly long[] _tlbHost = new long[6 * TlbEntries];
    private readonly bool[] _tlbGlobal = new bool[6 * TlbEntries];
    // Indexes filled since the TLB was last emptied, so a flush touches only those (guests flush often: every CR3
    // load, SeaBIOS's real/protected mode switches). More than TlbFillLog fills: a flush clears everything.
    private const int TlbFillLog = 512;
    private readonly int[] _tlbFilled = new int[TlbFillLog];
    private int _tlbFilledCount;
    private int _tlbUserBase;       // data accesses: 0 at CPL 0-2, 2*TlbEntries at CPL 3, NoFastTlbBase with hooks
    private int _mapVersion;

    private uint _fetchPage = InvalidTag;
    private int _fetchDelta;
    private uint _csBase;

    // Segment access checks: valid iff (long)(uint)(offset - lo) <= max[size index]; max -1 means never.
    private readonly long[] _segMaxR = new long[18];
    private readonly long[] _segMaxW = new long[18];

    /// <summary>The flat segments: bit s when segment s reads anywhere in 4 GiB at base 0 (base 0, offsets
    /// 0..0xFFFFFFFF valid, readable), bit 8+s the same for writes; bit <see cref="FlatCsLimit"/> when CS's limit is
    /// 4 GiB (no near jump can pass it). Compiled code specialised for a flat segment skips its limit check and base
    /// add, for a 4 GiB CS the jump targets' limit check (Jit/JitEmitter.cs); a change sets _checkEvents, so compiled
    /// code stops at once.</summary>
    private int _flatMask;

    private const int FlatCsLimit = 1 << 16;

    private void InitTlb()
    {
        _tlbFilledCount = TlbFillLog + 1; // the arrays start zeroed (tag 0 is a valid page): clear them all once
        FlushTlb(true);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref T At<T>(T[] array, int index) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(array), index);

    /// <summary>Drops TLB entries (all, or all but global pages) and the cached fetch page.</summary>
    private void FlushTlb(bool includingGlobal)
    {
        bool keepGlobal = !includingGlobal && (_cr4 & CR4_PGE) != 0;
        if (_tlbFilledCount <= TlbFillLog)
        {
            int kept = 0;
            for (int k = 0; k < _tlbFilledCount; k++)
            {
                int i = _tlbFilled[k];
                if (keepGlobal && _tlbGlobal[i] && _tlbTag[i] != InvalidTag) { _tlbFilled[kept++] = i; continue; }
                _tlbTag[i] = InvalidTag;
                _tlbGlobal[i] = false;
            }
            _tlbFilledCount = kept;
        }
        else if (!keepGlobal)
        {
            Array.Fill(_tlbTag, InvalidTag);
            Array.Clear(_tlbGlobal);
            _tlbFilledCount = 0;
        }
        else
        {
            _tlbFilledCount = 0;
            for (int i = 0; i < _tlbTag.Length; i++)
            {
                if (_tlbTag[i] == InvalidTag) continue;
                if (!_tlbGlobal[i]) { _tlbTag[i] = InvalidTag; continue; }
                if (_tlbFilledCount < TlbFillLog) _tlbFilled[_tlbFilledCount] = i;
                _tlbFilledCount++;
            }
        }
        _mapVersion = Memory.MappingVersion;
        _ram = Memory.Backing;
        InvalidateFetch();
    }

    private void FlushTlbPage(uint lin)
    {
        uint i = (lin >> 12) & TlbIndexMask;
        for (int k = 0; k < 4; k++) _tlbTag[k * TlbEntries + i] = InvalidTag;
        InvalidateFetch();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void InvalidateFetch() => _fetchPage = InvalidTag;

    private void CheckMappingVersion()
    {
        if (_mapVersion != Memory.MappingVersion || !ReferenceEquals(_ram, Memory.Backing)) FlushTlb(true);
    }

    // ---------------- Paging ----------------

    /// <summary>Page-table walks since power-on (statistics for tests and benchmarks: TLB misses and uncached accesses).</summary>
    public long PageWalks { get; private set; }

    /// <summary>Translates a linear address, raising #PF. Sets accessed/dirty bits. Returns the physical address.</summary>
    private uint Translate(uint lin, bool write, bool user, out bool global)
    {
        global = false;
        if (!_paging) return lin;
        PageWalks++;
        uint pdeAddr = (_cr3 & 0xFFFF_F000) | ((lin >> 20) & 0xFFC);
        uint pde = Memory.Read32(pdeAddr);
        if ((pde & 1) == 0) PageFault(lin, false, write, user);
        if ((pde & 0x80) != 0 && (_cr4 & CR4_PSE) != 0)
        {
            CheckPagePermission(lin, pde, write, user);
            uint npde = pde | 0x20 | (write ? 0x40u : 0u);
            if (npde != pde) Memory.Write32(pdeAddr, npde);
            global = (pde & 0x100) != 0 && (_cr4 & CR4_PGE) != 0;
            return (pde & 0xFFC0_0000) | (lin & 0x003F_FFFF);
        }
        uint pteAddr = (pde & 0xFFFF_F000) | ((lin >> 10) & 0xFFC);
        uint pte = Memory.Read32(pteAddr);
        if ((pte & 1) == 0) PageFault(lin, false, write, user);
        CheckPagePermission(lin, pde & pte, write, user);
        if ((pde & 0x20) == 0) Memory.Write32(pdeAddr, pde | 0x20);
        uint npte = pte | 0x20 | (write ? 0x40u : 0u);
        if (npte != pte) Memory.Write32(pteAddr, npte);
        global = (pte & 0x100) != 0 && (_cr4 & CR4_PGE) != 0;
        return (pte & 0xFFFF_F000) | (lin & 0xFFF);
    }

    private void CheckPagePermission(uint lin, uint bits, bool write, bool user)
    {
        if (user)
        {
            if ((bits & 4) == 0 || (write && (bits & 2) == 0)) PageFault(lin, true, write, user);
        }
        else if (write && (bits & 2) == 0 && (_cr0 & CR0_WP) != 0) PageFault(lin, true, write, user);
    }

    private void PageFault(uint lin, bool present, bool write, bool user)
    {
        _cr2 = lin;
        uint code = (present ? 1u : 0u) | (write ? 2u : 0u) | (user ? 4u : 0u);
        throw Fault(14, code);
    }

    /// <summary>Translates and fills the TLB entry for the given kind. Returns the backing delta, or null (MMIO/ROM write) via ok=false.</summary>
    private unsafe bool FillTlb(uint lin, bool write, bool user, out uint phys)
    {
        phys = Translate(lin, write, user, out bool global);
        int off = write ? Memory.WritePageOffset(phys) : Memory.ReadPageOffset(phys);
        if (off < 0) return false;
        // Never a fast write entry for a page holding decoded code: its writes go through PhysicalMemory,
        // which reports them (OnCodePageWritten) so the decoded blocks are dropped.
        if (write && Memory.IsCodePage((uint)off >> 12)) return false;
        int idx = (user ? 2 * TlbEntries : 0) + (write ? TlbEntries : 0) + (int)((lin >> 12) & TlbIndexMask);
        _tlbTag[idx] = lin & 0xFFFF_F000;
        _tlbDelta[idx] = off - (int)(lin & 0xFFFF_F000);
        _tlbHost[idx] = (long)(nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_ram)) + off - (lin & 0xFFFF_F000);
        _tlbGlobal[idx] = global;
        if (_tlbFilledCount < TlbFillLog) _tlbFilled[_tlbFilledCount] = idx;
        if (_tlbFilledCount <= TlbFillLog) _tlbFilledCount++;
        return true;
    }

    // ---------------- Linear access ----------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte ReadLin8(uint lin)
    {
        int i = _tlbUserBase + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000)) return At(_ram, At(_tlbDelta, i) + (int)lin);
        return (byte)ReadLinSlow(lin, 1, _cpl == 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort ReadLin16(uint lin)
    {
        int i = _tlbUserBase + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000) && (lin & 0xFFF) <= 0xFFE)
            return Unsafe.ReadUnaligned<ushort>(ref At(_ram, At(_tlbDelta, i) + (int)lin));
        return (ushort)ReadLinSlow(lin, 2, _cpl == 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadLin32(uint lin)
    {
        int i = _tlbUserBase + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000) && (lin & 0xFFF) <= 0xFFC)
            return Unsafe.ReadUnaligned<uint>(ref At(_ram, At(_tlbDelta, i) + (int)lin));
        return ReadLinSlow(lin, 4, _cpl == 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteLin8(uint lin, byte v)
    {
        int i = _tlbUserBase + TlbEntries + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000)) { At(_ram, At(_tlbDelta, i) + (int)lin) = v; return; }
        WriteLinSlow(lin, 1, v, _cpl == 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteLin16(uint lin, ushort v)
    {
        int i = _tlbUserBase + TlbEntries + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000) && (lin & 0xFFF) <= 0xFFE)
        { Unsafe.WriteUnaligned(ref At(_ram, At(_tlbDelta, i) + (int)lin), v); return; }
        WriteLinSlow(lin, 2, v, _cpl == 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteLin32(uint lin, uint v)
    {
        int i = _tlbUserBase + TlbEntries + (int)((lin >> 12) & TlbIndexMask);
        if (At(_tlbTag, i) == (lin & 0xFFFF_F000) && (lin & 0xFFF) <= 0xFFC)
        { Unsafe.WriteUnaligned(ref At(_ram, At(_tlbDelta, i) + (int)lin), v); return; }
        WriteLinSlow(lin, 4, v, _cpl == 3);
    }

    private uint ReadLinSlow(uint lin, int size, bool user)
    {
        if (_memHooks) MemoryHooks(lin, size, false);
        if ((lin & 0xFFF) > 0x1000 - size)
        {
            uint v = 0;
            for (int k = 0; k < size; k++) v |= (uint)ReadByteUncached(lin + (uint)k, user) << (8 * k);
            return v;
        }
        if (FillTlb(lin, false, user, out uint phys))
            return LoadThroughTlb((user ? 2 * TlbEntries : 0) + (int)((lin >> 12) & TlbIndexMask), lin, size);
        return ReadPhysical(phys, size);
    }

    /// <summary>Loads from RAM through the filled TLB entry <paramref name="i"/> (an access inside one page).</summary>
    private uint LoadThroughTlb(int i, uint lin, int size)
    {
        ref byte b = ref _ram[_tlbDelta[i] + (int)lin];
        return size == 1 ? b : size == 2 ? Unsafe.ReadUnaligned<ushort>(ref b) : Unsafe.ReadUnaligned<uint>(ref b);
    }

    /// <summary>Loads through PhysicalMemory (MMIO, ROM: no TLB entry).</summary>
    private uint ReadPhysical(uint phys, int size) =>
        size == 1 ? Memory.Read8(phys) : size == 2 ? Memory.Read16(phys) : Memory.Read32(phys);

    private byte ReadByteUncached(uint lin, bool user)
    {
        uint phys = Translate(lin, false, user, out _);
        return Memory.Read8(phys);
    }

    private void WriteLinSlow(uint lin, int size, uint v, bool user)
    {
        if (_memHooks) MemoryHooks(lin, size, true);
        if ((lin & 0xFFF) > 0x1000 - size)
        {
            // Page-crossing write: translate both pages first so a fault leaves memory untouched.
            uint p0 = Translate(lin, true, user, out _);
            uint p1 = Translate(lin + (uint)size - 1, true, user, out _);
            for (int k = 0; k < size; k++)
            {
                uint l = lin + (uint)k;
                uint p = ((l ^ lin) & 0xFFFF_F000) == 0 ? p0 + (uint)k : (p1 & 0xFFFF_F000) | (l & 0xFFF);
                Memory.Write8(p, (byte)(v >> (8 * k)));
            }
            return;
        }
        if (FillTlb(lin, true, user, out uint phys))
        {
            StoreThroughTlb((user ? 3 * TlbEntries : TlbEntries) + (int)((lin >> 12) & TlbIndexMask), lin, size, v);
            return;
        }
        WritePhysical(phys, size, v);
        CheckMappingVersion();
    }

    /// <summary>Stores to RAM through the filled TLB entry <paramref name="i"/> (an access inside one page).</summary>
    private void StoreThroughTlb(int i, uint lin, int size, uint v)
    {
        ref byte b = ref _ram[_tlbDelta[i] + (int)lin];
        if (size == 1) b = (byte)v;
        else if (size == 2) Unsafe.WriteUnaligned(ref b, (ushort)v);
        else Unsafe.WriteUnaligned(ref b, v);
    }

    /// <summary>Stores through PhysicalMemory (MMIO, ROM, a page holding decoded code: no TLB write entry).</summary>
    private void WritePhysical(uint phys, int size, uint v)
    {
        if (size == 1) Memory.Write8(phys, (byte)v);
        else if (size == 2) Memory.Write16(phys, (ushort)v);
        else Memory.Write32(phys, v);
    }

    /// <summary>Checks that a linear range is writable (for instructions that must not fault half-way).</summary>
    private void ProbeWrite(uint lin, int size)
    {
        bool user = _cpl == 3;
        Translate(lin, true, user, out _);
        if (((lin + (uint)size - 1) ^ lin) > 0xFFF) Translate(lin + (uint)size - 1, true, user, out _);
    }

    // System (supervisor, implicit) accesses: descriptor tables, TSS, IDT, the stack of an interrupt or task switch —
    // always privileged, never seen by the debug hooks. Through the supervisor TLB entries like any data access (a
    // walk only on a miss; an interrupt from user mode used to walk some fifty times); an access that crosses a page
    // goes byte by byte, each byte translated.
    private byte SysRead8(uint lin) => (byte)SysRead(lin, 1);
    private ushort SysRead16(uint lin) => (ushort)SysRead(lin, 2);
    private uint SysRead32(uint lin) => SysRead(lin, 4);
    private void SysWrite8(uint lin, byte v) => SysWrite(lin, 1, v);
    private void SysWrite16(uint lin, ushort v) => SysWrite(lin, 2, v);
    private void SysWrite32(uint lin, uint v) => SysWrite(lin, 4, v);

    private uint SysRead(uint lin, int size)
    {
        if ((lin & 0xFFF) > 0x1000 - size)
        {
            uint v = 0;
            for (int k = 0; k < size; k++) v |= (uint)ReadByteUncached(lin + (uint)k, false) << (8 * k);
            return v;
        }
        int i = (int)((lin >> 12) & TlbIndexMask);
        if (_tlbTag[i] == (lin & 0xFFFF_F000) || FillTlb(lin, false, false, out uint phys)) return LoadThroughTlb(i, lin, size);
        return ReadPhysical(phys, size);
    }

    private void SysWrite(uint lin, int size, uint v)
    {
        if ((lin & 0xFFF) > 0x1000 - size)
        {
            for (int k = 0; k < size; k++) Memory.Write8(Translate(lin + (uint)k, true, false, out _), (byte)(v >> (8 * k)));
            return;
        }
        // A write entry never points at a page holding decoded code (FillTlb), so such writes reach PhysicalMemory.
        int i = TlbEntries + (int)((lin >> 12) & TlbIndexMask);
        if (_tlbTag[i] == (lin & 0xFFFF_F000) || FillTlb(lin, true, false, out uint phys)) StoreThroughTlb(i, lin, size, v);
        else WritePhysical(phys, size, v);
    }

    // ---------------- Segmented access ----------------

    private void UpdateSegCache(int s)
    {
        uint attr = _segAttr[s];
        uint limit = _segLimit[s];
        bool present = (attr & 0x80) != 0;
        bool code = (attr & 0x08) != 0;
        bool valid = present && (attr & 0x10) != 0;
        bool readable = valid && (!code || (attr & 0x02) != 0);
        bool writable = valid && !code && (attr & 0x02) != 0;
        if (!_pe || _v86)
        {
            // Real and V86 mode check limits only, never access rights. A code segment's attributes stay cached
            // (a return from protected mode through a 16-bit code segment, as GRUB 2 does): its bit 2 is the
            // conforming bit, not expand-down, so every offset up to the limit stays valid.
            readable = writable = true;
            valid = true;
        }
        bool expandDown = valid && !code && (attr & 0x04) != 0;
        uint lo = 0, hi = limit;
        if (expandDown)
        {
            lo = limit + 1;
            hi = (attr & 0x4000) != 0 ? 0xFFFF_FFFF : 0xFFFF;
        }
        _segLo[s] = lo;
        _segHi[s] = hi;
        _segReadable[s] = readable;
        _segWritable[s] = writable;
        for (int k = 0; k < 3; k++)
        {
            int size = 1 << k;
            long max = lo > hi ? -1 : (long)(hi - lo) - (size - 1);
            _segMaxR[s * 3 + k] = readable ? max : -1;
            _segMaxW[s * 3 + k] = writable ? max : -1;
        }
        if (s == CS) _csBase = _segBase[CS];
        bool flat = _segBase[s] == 0 && lo == 0 && hi == 0xFFFF_FFFF;
        int m = (_flatMask & ~(0x101 << s)) | (flat && readable ? 1 << s : 0) | (flat && writable ? 0x100 << s : 0);
        if (s == CS) m = (m & ~FlatCsLimit) | (limit == 0xFFFF_FFFF ? FlatCsLimit : 0);
        if (m != _flatMask) { _flatMask = m; _checkEvents = true; }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint LinRead(int seg, uint off, int sizeIdx)
    {
        if ((long)(uint)(off - At(_segLo, seg)) > At(_segMaxR, seg * 3 + sizeIdx)) SegmentFault(seg, off, false);
        return At(_segBase, seg) + off;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint LinWrite(int seg, uint off, int sizeIdx)
    {
        if ((long)(uint)(off - At(_segLo, seg)) > At(_segMaxW, seg * 3 + sizeIdx)) SegmentFault(seg, off, true);
        return At(_segBase, seg) + off;
    }

    private void SegmentFault(int seg, uint off, bool write)
    {
        if (!_pe || _v86)
        {
            // Real mode: a data access past the 64 KiB limit is #GP(0) (#SS(0) for SS).
            throw Fault(seg == SS ? 12 : 13, 0);
        }
        if (_sel[seg] < 4 && seg != SS && seg != CS) throw Fault(13, 0);
        throw Fault(seg == SS ? 12 : 13, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte Read8(int seg, uint off) => ReadLin8(LinRead(seg, off, 0));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort Read16(int seg, uint off) => ReadLin16(LinRead(seg, off, 1));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Read32(int seg, uint off) => ReadLin32(LinRead(seg, off, 2));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Write8(int seg, uint off, byte v) => WriteLin8(LinWrite(seg, off, 0), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Write16(int seg, uint off, ushort v) => WriteLin16(LinWrite(seg, off, 1), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Write32(int seg, uint off, uint v) => WriteLin32(LinWrite(seg, off, 2), v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadSized(int seg, uint off, int size) =>
        size == 1 ? Read8(seg, off) : size == 2 ? Read16(seg, off) : Read32(seg, off);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteSized(int seg, uint off, int size, uint v)
    {
        if (size == 1) Write8(seg, off, (byte)v);
        else if (size == 2) Write16(seg, off, (ushort)v);
        else Write32(seg, off, v);
    }

    // ---------------- Instruction fetch ----------------

    // The cached fetch page is only set up when the whole page lies inside the CS limit, so the fast paths need
    // no limit check; near the end of the segment every byte goes through the slow path, which checks it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte Fetch8()
    {
        uint lin = _csBase + _eip;
        if ((lin & 0xFFFF_F000) != _fetchPage) return FetchSlow8(lin);
        _eip++;
        return At(_ram, _fetchDelta + (int)lin);
    }

    private byte FetchSlow8(uint lin)
    {
        if (_eip > _segLimit[CS]) throw Fault(13, 0);
        bool user = _cpl == 3;
        byte b;
        uint phys = 0;
        int i = (user ? 2 * TlbEntries : 0) + (int)((lin >> 12) & TlbIndexMask);
        if (_tlbTag[i] == (lin & 0xFFFF_F000) || FillTlb(lin, false, user, out phys))
        {
            ulong pageEndOffset = (ulong)_eip + (0xFFF - (lin & 0xFFF));
            if (pageEndOffset <= _segLimit[CS])
            {
                _fetchPage = lin & 0xFFFF_F000;
                _fetchDelta = _tlbDelta[i];
            }
            b = _ram[_tlbDelta[i] + (int)lin];
        }
        else b = Memory.Read8(phys);
        _eip++;
        return b;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort Fetch16()
    {
        uint lin = _csBase + _eip;
        if ((lin & 0xFFFF_F000) == _fetchPage && (lin & 0xFFF) <= 0xFFE)
        {
            _eip += 2;
            return Unsafe.ReadUnaligned<ushort>(ref At(_ram, _fetchDelta + (int)lin));
        }
        return (ushort)(Fetch8() | Fetch8() << 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Fetch32()
    {
        uint lin = _csBase + _eip;
        if ((lin & 0xFFFF_F000) == _fetchPage && (lin & 0xFFF) <= 0xFFC)
        {
            _eip += 4;
            return Unsafe.ReadUnaligned<uint>(ref At(_ram, _fetchDelta + (int)lin));
        }
        return Fetch16() | (uint)Fetch16() << 16;
    }

    // ---------------- Registers ----------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref uint Reg(int i) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_r), i & 7);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte GetReg8(int i) => (byte)(i < 4 ? Reg(i) : Reg(i - 4) >> 8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetReg8(int i, uint v)
    {
        if (i < 4) { ref uint r = ref Reg(i); r = (r & 0xFFFF_FF00) | (v & 0xFF); }
        else { ref uint r = ref Reg(i - 4); r = (r & 0xFFFF_00FF) | ((v & 0xFF) << 8); }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint GetReg(int size, int i) => size == 1 ? GetReg8(i) : size == 2 ? Reg(i) & 0xFFFF : Reg(i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetReg(int size, int i, uint v)
    {
        if (size == 4) Reg(i) = v;
        else if (size == 2) { ref uint r = ref Reg(i); r = (r & 0xFFFF_0000) | (v & 0xFFFF); }
        else SetReg8(i, v);
    }

    // ---------------- Stack ----------------

    private uint StackPtr => _ss32 ? _r[ESP] : _r[ESP] & 0xFFFF;

    private void SetStackPtr(uint v)
    {
        if (_ss32) _r[ESP] = v;
        else _r[ESP] = (_r[ESP] & 0xFFFF_0000) | (v & 0xFFFF);
    }

    private void Push16(ushort v)
    {
        uint sp = (_r[ESP] - 2) & (_ss32 ? 0xFFFF_FFFF : 0xFFFF);
        Write16(SS, sp, v);
        SetStackPtr(sp);
    }

    private void Push32(uint v)
    {
        uint sp = (_r[ESP] - 4) & (_ss32 ? 0xFFFF_FFFF : 0xFFFF);
        Write32(SS, sp, v);
        SetStackPtr(sp);
    }

    private void Push(int size, uint v)
    {
        if (size == 4) Push32(v); else Push16((ushort)v);
    }

    private ushort Pop16()
    {
        uint sp = StackPtr;
        ushort v = Read16(SS, sp);
        SetStackPtr(sp + 2);
        return v;
    }

    private uint Pop32()
    {
        uint sp = StackPtr;
        uint v = Read32(SS, sp);
        SetStackPtr(sp + 4);
        return v;
    }

    private uint Pop(int size) => size == 4 ? Pop32() : Pop16();

    /// <summary>Reads the stack at SP+offset without popping.</summary>
    private uint PeekStack(int size, uint offset)
    {
        uint sp = (StackPtr + offset) & (_ss32 ? 0xFFFF_FFFF : 0xFFFF);
        return size == 4 ? Read32(SS, sp) : Read16(SS, sp);
    }
}

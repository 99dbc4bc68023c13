using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VmPortal.Emulator.Cpu;

// The decoded-instruction cache: guest code is decoded once into blocks of DecodedOp (Cpu.Handlers.cs executes
// them) keyed by the offset of their bytes in PhysicalMemory.Backing (so paging and segment bases do not matter)
// and by CS.D. A block never crosses a 4 KiB page. Every page holding a block is marked as code in PhysicalMemory;
// a write to it (CPU store through the slow path — the TLB never holds a fast write entry for a code page — or a
// device/DMA write through PhysicalMemory) bumps the page's code version, which drops all its blocks at once, and
// ends the running block after the current instruction so self-modifying code takes effect at the next one.
public sealed unsafe partial class Cpu
{
    private const int BlockTableBits = 16;
    private const int BlockWays = 4;
    internal const uint NoBlockKey = 0xFFFF_FFFF;
    private readonly CodeBlock?[] _blocks = new CodeBlock?[1 << BlockTableBits];
    // The key of each slot's block (BlockKey), beside the table so that a lookup compares the ways of a set without
    // touching (often cold) CodeBlock objects; NoBlockKey for an empty slot.
    private readonly uint[] _blockKeys = NewBlockKeys();
    private int[] _codeVersion = new int[1];
    private readonly DecodedOp[] _scratchOps = new DecodedOp[CodeBlock.MaxOps];
    private bool _decOverrun;
    private CodeBlock? _lastBlock; // the block that ran last: its links find the next block across RunBlock calls

    /// <summary>Blocks decoded since power-on (statistics for tests and benchmarks).</summary>
    public long BlocksCompiled { get; private set; }

    /// <summary>Code pages whose blocks were dropped because the page was written (statistics).</summary>
    public long CodePageInvalidations { get; private set; }

    private static uint[] NewBlockKeys()
    {
        var keys = new uint[1 << BlockTableBits];
        Array.Fill(keys, NoBlockKey);
        return keys;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BlockSet(int off) => (int)((uint)off * 0x9E37_79B1u >> (32 - BlockTableBits)) & ~(BlockWays - 1);

    // Backing offsets are below 2^31 (a managed array), so bit 31 is free for CS.D.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint BlockKey(int off, bool cs32) => (uint)off | (cs32 ? 0x8000_0000u : 0);

    /// <summary>The block-table set of a block whose code starts at this offset of <see cref="Memory.PhysicalMemory.Backing"/>
    /// (for tests of the table; RAM starts at offset 0).</summary>
    public static int BlockTableSet(int backingOffset) => BlockSet(backingOffset);

    /// <summary>PhysicalMemory callback: a page marked as code was written.</summary>
    private void OnCodePageWritten(uint page)
    {
        if (page < (uint)_codeVersion.Length) _codeVersion[page]++;
        Memory.UnmarkCodePage(page);
        CodePageInvalidations++;
        _checkEvents = true; // leave the running block after this instruction
    }

    /// <summary>
    /// Runs one cached block at CS:EIP (decoding it first if needed). Returns false when the instruction there must
    /// go through the interpreter (no cacheable fetch page, block would wrap IP, cache disabled).
    /// </summary>
    private bool RunBlock(long end)
    {
        bool ran = false, afterJit = false;
        int jitPage = 0;
        CodeBlock? prev = _lastBlock;
        while (true)
        {
            uint lin = _csBase + _eip;
            if ((lin & 0xFFFF_F000) != _fetchPage && !PrepareFetch(lin)) { _lastBlock = prev; return ran; }
            int off = _fetchDelta + (int)lin;
            // The block that ran last remembers the last two blocks that followed it: most blocks are found there,
            // without the block table's hash and its (often cold) cache line. A link is valid exactly when a table
            // lookup would return the same block: same offset and CS.D (its key, kept beside the link so that a
            // link that does not match costs no load of its block), current code version, still in the table.
            uint key = BlockKey(off, _cs32);
            CodeBlock? b = null;
            if (prev != null)
            {
                if (prev.Next0Key == key) b = prev.Next0;
                else if (prev.Next1Key == key) b = prev.Next1;
            }
            if (b == null || b.Displaced || b.Version != At(_codeVersion, off >> 12))
            {
                b = LookupBlock(off);
                if (prev != null)
                {
                    prev.Next1 = prev.Next0; prev.Next1Key = prev.Next0Key;
                    prev.Next0 = b; prev.Next0Key = key;
                }
            }
            prev = b;
            if ((ulong)_eip + (uint)b.Bytes > (ulong)_ipMask + 1) { _lastBlock = b; return ran; }
            PrefetchBlock(b.Next0);
            long budget = end - InstructionCount;
            ref DecodedOp op = ref MemoryMarshal.GetArrayDataReference(b.Ops);
            if (afterJit && JitFallbackCounts != null) CountAfterJit(b, budget, jitPage);
            if (_jitEnabled && b.Jit == null && b.Hits++ >= _jitThreshold && !b.CompileFailed) JitHot(b);
            // Compiled code runs whole blocks; with an event already pending (single-step armed, an interrupt shadow)
            // the interpreter's loop below runs just the one instruction the event allows.
            if (b.Jit != null && (b.JitFlat & ~_flatMask) != 0) JitFlatMismatch(b);
            if (b.Jit != null && budget >= b.Count && !_checkEvents)
            {
                long before = InstructionCount;
                JitEntries++;
                if (b.JitRan) b.Jit(this, ref op, end);
                else JitFirstRun(b, ref op, end);
                JitInstructions += InstructionCount - before;
                afterJit = true;
                jitPage = b.Offset >> 12;
                goto blockDone;
            }
            int n = b.Count <= budget ? b.Count : (int)budget;
            long countBefore = JitFallbackCounts != null ? InstructionCount : 0;
            int ran1 = 0;
            for (int i = 0; ;)
            {
                uint e = _eip;
                _startEip = e;
                uint next = e + op.Len;
                _eip = next;
                op.Handler(this, ref op);
                InstructionCount++;
                // A Jcc inside the block that jumped leaves it (the ops after it are its fall-through).
                if (++i >= n || _checkEvents || _eip != next) { ran1 = i; break; }
                op = ref Unsafe.Add(ref op, 1);
            }
            if (JitFallbackCounts != null) CountInterpreted(b, ran1, InstructionCount - countBefore);
            afterJit = false;
        blockDone:
            // After an interpreted instruction (it may have changed anything, e.g. halted) the run loop looks first.
            if (b.EndsInInterpreter || _checkEvents || InstructionCount >= end) { _lastBlock = b; return true; }
            ran = true;
            _startEip = _eip;
        }
    }

    /// <summary>
    /// Asks the host CPU to bring the block that most likely runs next into its cache while this one runs: after a
    /// guest's idle sleep (and in code that runs too rarely to stay cached) every block's object and ops miss the host
    /// caches, and RunBlock waited for each miss in turn. A block's ops array is allocated right after its object
    /// (CompileBlock), so the lines after the object hold the first ops. Only a hint: an object the GC moved
    /// meanwhile costs nothing but the wasted prefetch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchBlock(CodeBlock? next)
    {
        if (next == null || !System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        byte* p = (byte*)Unsafe.As<CodeBlock, nint>(ref next);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 64);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 128);
        System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + 192);
    }

    /// <summary>
    /// The current block at backing offset <paramref name="off"/> for the current CS.D, decoded if the table has none.
    /// The table (64 K slots) is four-way set associative, with the keys in their own array: in a two-way table an
    /// idle Linux guest had three hot blocks in one set (and a few such sets), and they pushed each other out on every
    /// timer tick, ~1,000 decodes a second. A new block takes the first way and moves the ways before the one it
    /// replaces down by one; the block that leaves the table is <see cref="CodeBlock.Displaced"/> (its compiled code dropped).
    /// </summary>
    private CodeBlock LookupBlock(int off)
    {
        // _codeVersion grows only as blocks are decoded (CompileBlock): read it for a page only once a block of that
        // page is known to exist (At() does not check bounds).
        int set = BlockSet(off);
        uint key = BlockKey(off, _cs32);
        int victim = WayOf(set, key); // a stale copy of this block is replaced
        if (victim >= 0 && At(_blocks, set + victim) is { } hit && hit.Version == At(_codeVersion, off >> 12)) return hit;
        var b = CompileBlock(off);
        if (victim < 0) victim = InsertVictim(set);
        ref uint keys = ref At(_blockKeys, set);
        Evict(At(_blocks, set + victim));
        for (int w = victim; w > 0; w--)
        {
            At(_blocks, set + w) = At(_blocks, set + w - 1);
            Unsafe.Add(ref keys, w) = Unsafe.Add(ref keys, w - 1);
        }
        At(_blocks, set) = b;
        keys = key;
        return b;
    }

    /// <summary>The way of a set that a new block replaces: an empty one, else one whose page was written since, else the last.</summary>
    private int InsertVictim(int set)
    {
        for (int w = 0; w < BlockWays; w++)
            if (At(_blockKeys, set + w) == NoBlockKey) return w;
        for (int w = 0; w < BlockWays; w++)
        {
            var x = At(_blocks, set + w)!;
            if (x.Version != At(_codeVersion, x.Offset >> 12)) return w;
        }
        return BlockWays - 1;
    }

    /// <summary>The block in the table at <paramref name="off"/> for CS.D <paramref name="cs32"/> (any code version), or null.</summary>
    private CodeBlock? FindBlock(int off, bool cs32)
    {
        int set = BlockSet(off), w = WayOf(set, BlockKey(off, cs32));
        return w >= 0 ? At(_blocks, set + w) : null;
    }

    /// <summary>The way of <paramref name="set"/> holding <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int WayOf(int set, uint key)
    {
        for (int w = 0; w < BlockWays; w++)
            if (At(_blockKeys, set + w) == key) return w;
        return -1;
    }

    private void Evict(CodeBlock? b)
    {
        if (b == null) return;
        if (b.Jit != null) JitDrop(b); // its compiled code can be collected now
        b.Displaced = true;
        b.Next0 = b.Next1 = null;
        b.Next0Key = b.Next1Key = NoBlockKey;
    }

    /// <summary>Sets up the cached fetch page for a linear code address without consuming a byte (may raise #PF). The
    /// page comes from the read TLB entry of the current privilege (a fetch needs the same permission as a read; there is
    /// no NX without PAE), and is walked only when that entry is missing, as a CPU's instruction TLB does: code that
    /// crosses pages (calls into libc, the kernel's functions) walked the page tables at every crossing before.</summary>
    private bool PrepareFetch(uint lin)
    {
        uint limit = _segLimit[CS];
        if (_eip > limit) return false; // the interpreter raises the #GP
        bool user = _cpl == 3;
        int i = (user ? 2 * TlbEntries : 0) + (int)((lin >> 12) & TlbIndexMask);
        if (_tlbTag[i] != (lin & 0xFFFF_F000) && !FillTlb(lin, false, user, out _)) return false;
        ulong pageEndOffset = (ulong)_eip + (0xFFF - (lin & 0xFFF));
        if (pageEndOffset > limit) return false;
        _fetchPage = lin & 0xFFFF_F000;
        _fetchDelta = _tlbDelta[i];
        return true;
    }

    private CodeBlock CompileBlock(int off)
    {
        int page = off >> 12;
        if (page >= _codeVersion.Length)
        {
            var bigger = new int[Math.Max(page + 1, _ram.Length >> 12)];
            Array.Copy(_codeVersion, bigger, _codeVersion.Length);
            _codeVersion = bigger;
        }
        if ((uint)off < Memory.RamSize && !Memory.IsCodePage((uint)page))
        {
            Memory.MarkCodePage((uint)page);
            DropWriteTlbForPage(page);
        }
        int pageEnd = (off & ~0xFFF) + 0x1000;
        int n = 0, p = off;
        var ops = _scratchOps;
        bool cs32 = _cs32, interp = false;
        while (n < CodeBlock.MaxOps)
        {
            ref DecodedOp d = ref ops[n];
            _decOverrun = false;
            bool ok = DecodeOp(p, pageEnd, cs32, ref d, out bool ends);
            if (!ok || _decOverrun)
            {
                d = default;
                d.Handler = &OpInterpret;
                n++;
                interp = true;
                break;
            }
            n++;
            p += d.Len;
            if (ends || p >= pageEnd) break;
        }
        var b = new CodeBlock(n) { Offset = off, Cs32 = cs32, Version = _codeVersion[page], Count = n, Bytes = p - off, EndsInInterpreter = interp };
        Array.Copy(ops, b.Ops, n);
        BlocksCompiled++;
        return b;
    }

    /// <summary>
    /// Whether a Jcc ends its block: a backward one does (a loop's back edge, mostly taken: what follows the loop would
    /// only lengthen the block, and a compiled region's instruction budget, with code that runs once per loop). A
    /// forward one does not (an "if" skipping a few instructions, mostly not taken): the instructions after it are its
    /// fall-through, and the block loop leaves the block when a handler has moved EIP elsewhere.
    /// </summary>
    private static bool JccEndsBlock(uint rel) => (int)rel < 0;

    /// <summary>Drops the fast write TLB entries that point into a backing page (it now holds decoded code).</summary>
    private void DropWriteTlbForPage(int page)
    {
        for (int k = 1; k < 4; k += 2)
        {
            int baseIdx = k * TlbEntries;
            for (int i = 0; i < TlbEntries; i++)
            {
                uint tag = _tlbTag[baseIdx + i];
                if (tag != InvalidTag && (((int)tag + _tlbDelta[baseIdx + i]) >> 12) == page) _tlbTag[baseIdx + i] = InvalidTag;
            }
        }
    }

    // ---------------- Decoder ----------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte DecByte(ref int p, int end)
    {
        if (p >= end) { _decOverrun = true; p++; return 0; }
        return _ram[p++];
    }

    private uint DecImm(ref int p, int end, int size)
    {
        uint v = DecByte(ref p, end);
        if (size == 1) return v;
        v |= (uint)DecByte(ref p, end) << 8;
        if (size == 2) return v;
        v |= (uint)DecByte(ref p, end) << 16;
        v |= (uint)DecByte(ref p, end) << 24;
        return v;
    }

    private void DecModRM(ref DecodedOp d, ref int p, int end, bool a32, int segOvr)
    {
        byte m = DecByte(ref p, end);
        int mod = m >> 6, rm = m & 7;
        d.Reg = (byte)((m >> 3) & 7);
        d.Rm = (byte)rm;
        if (mod == 3) { d.Mem = 0; return; }
        d.Mem = 1;
        int seg = DS, bas = 8, idx = 8, scale = 0;
        uint disp = 0;
        if (!a32)
        {
            switch (rm)
            {
                case 0: bas = EBX; idx = ESI; break;
                case 1: bas = EBX; idx = EDI; break;
                case 2: bas = EBP; idx = ESI; seg = SS; break;
                case 3: bas = EBP; idx = EDI; seg = SS; break;
                case 4: bas = ESI; break;
                case 5: bas = EDI; break;
                case 6:
                    if (mod == 0) disp = DecImm(ref p, end, 2);
                    else { bas = EBP; seg = SS; }
                    break;
                default: bas = EBX; break;
            }
            if (mod == 1) disp = (uint)(sbyte)DecByte(ref p, end);
            else if (mod == 2) disp = DecImm(ref p, end, 2);
        }
        else
        {
            if (rm == 4)
            {
                byte sib = DecByte(ref p, end);
                scale = sib >> 6;
                int index = (sib >> 3) & 7, b = sib & 7;
                if (b == 5 && mod == 0) disp = DecImm(ref p, end, 4);
                else
                {
                    bas = b;
                    if (b == ESP || b == EBP) seg = SS;
                }
                if (index != 4) idx = index;
            }
            else if (rm == 5 && mod == 0) disp = DecImm(ref p, end, 4);
            else
            {
                bas = rm;
                if (rm == EBP) seg = SS;
            }
            if (mod == 1) disp = (uint)(sbyte)DecByte(ref p, end);
            else if (mod == 2) disp = DecImm(ref p, end, 4);
        }
        d.Base = (byte)bas;
        d.Index = (byte)idx;
        d.Scale = (byte)scale;
        d.Disp = disp;
        d.Seg = (byte)(segOvr >= 0 ? segOvr : seg);
    }

    /// <summary>MOVS, CMPS, STOS, LODS or SCAS (the opcodes a REP prefix repeats).</summary>
    private static bool IsStringOp(byte op) => op is >= 0xA4 and <= 0xA7 or >= 0xAA and <= 0xAF;

    /// <summary>
    /// Decodes one instruction at backing offset <paramref name="start"/> into <paramref name="d"/>. Returns false
    /// for instructions left to the interpreter (the block then ends with an interpreter step).
    /// </summary>
    private bool DecodeOp(int start, int end, bool cs32, ref DecodedOp d, out bool ends)
    {
        ends = false;
        d = default;
        int p = start;
        int osz = cs32 ? 4 : 2;
        bool a32 = cs32;
        int segOvr = -1;
        int prefixes = 0;
        byte rep = 0;
        byte op;
        while (true)
        {
            op = DecByte(ref p, end);
            switch (op)
            {
                case 0x26: segOvr = ES; break;
                case 0x2E: segOvr = CS; break;
                case 0x36: segOvr = SS; break;
                case 0x3E: segOvr = DS; break;
                case 0x64: segOvr = FS; break;
                case 0x65: segOvr = GS; break;
                case 0x66: osz = cs32 ? 2 : 4; break;
                case 0x67: a32 = !cs32; break;
                case 0xF2: case 0xF3: rep = op; break;
                default: goto opcode;
            }
            if (++prefixes > 4) return false;
        }
    opcode:
        // REP/REPNE only with a string instruction, and F3 90 (PAUSE, a NOP here); other uses stay with the interpreter.
        if (rep != 0 && !IsStringOp(op) && !(rep == 0xF3 && op == 0x90)) return false;
        d.Size = (byte)osz;
        d.AMask = a32 ? 0xFFFF_FFFFu : 0xFFFFu;
        d.Base = d.Index = 8;
        d.Seg = (byte)(segOvr >= 0 ? segOvr : DS);
        uint szMask = SizeMask(osz);
        switch (op)
        {
            case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38:
            case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39:
                DecModRM(ref d, ref p, end, a32, segOvr);
                d.Sub = (byte)(op >> 3);
                if ((op & 1) == 0) d.Size = 1;
                d.Handler = d.Size != 4 ? &OpAluRmReg : d.Mem == 0 ? &OpAluRR32 : &OpAluMR32;
                break;
            case 0x02: case 0x0A: case 0x12: case 0x1A: case 0x22: case 0x2A: case 0x32: case 0x3A:
            case 0x03: case 0x0B: case 0x13: case 0x1B: case 0x23: case 0x2B: case 0x33: case 0x3B:
                DecModRM(ref d, ref p, end, a32, segOvr);
                d.Sub = (byte)(op >> 3);
                if ((op & 1) == 0) d.Size = 1;
                if (d.Mem == 0 && d.Size == 4) { (d.Reg, d.Rm) = (d.Rm, d.Reg); d.Handler = &OpAluRR32; }
                else d.Handler = d.Size == 4 ? &OpAluRM32 : &OpAluRegRm;
                break;
            case 0x04: case 0x0C: case 0x14: case 0x1C: case 0x24: case 0x2C: case 0x34: case 0x3C:
            case 0x05: case 0x0D: case 0x15: case 0x1D: case 0x25: case 0x2D: case 0x35: case 0x3D:
                if ((op & 1) == 0) d.Size = 1;
                d.Sub = (byte)(op >> 3);
                d.Rm = EAX;
                d.Imm = DecImm(ref p, end, d.Size);
                d.Handler = d.Size == 4 ? &OpAluRI32 : &OpAluRmImm;
                break;
            case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
            case 0x48: case 0x49: case 0x4A: case 0x4B: case 0x4C: case 0x4D: case 0x4E: case 0x4F:
                d.Rm = (byte)(op & 7);
                d.Sub = (byte)((op >> 3) & 1);
                d.Handler = osz == 4 ? &OpIncDecR32 : &OpIncDecRm;
                break;
            case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
                d.Reg = (byte)(op & 7);
                d.Handler = osz == 4 ? &OpPushR32 : &OpPushReg;
                break;
            case 0x58: case 0x59: case 0x5A: case 0x5B: case 0x5C: case 0x5D: case 0x5E: case 0x5F:
                d.Reg = (byte)(op & 7);
                d.Handler = osz == 4 ? &OpPopR32 : &OpPopReg;
                break;
            case 0x68:
                d.Imm = DecImm(ref p, end, osz);
                d.Handler = &OpPushImm;
                break;
            case 0x6A:
                d.Imm = (uint)(sbyte)DecByte(ref p, end) & szMask;
                d.Handler = &OpPushImm;
                break;
            case 0x69: case 0x6B:
                DecModRM(ref d, ref p, end, a32, segOvr);
                d.Imm = op == 0x6B ? (uint)(sbyte)DecByte(ref p, end) : DecImm(ref p, end, osz);
                d.Handler = &OpImulImm;
                break;
            case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
            case 0x78: case 0x79: case 0x7A: case 0x7B: case 0x7C: case 0x7D: case 0x7E: case 0x7F:
                d.Sub = (byte)(op & 15);
                d.Imm = (uint)(sbyte)DecByte(ref p, end);
                d.Handler = &OpJcc;
                ends = JccEndsBlock(d.Imm);
                break;
            case 0x80: case 0x82:
                DecModRM(ref d, ref p, end, a32, segOvr);
                d.Size = 1;
                d.Sub = d.Reg;
                d.Imm = DecByte(ref p, end);
                d.Handler = &OpAluRmImm;
                break;
            case 0x81: case 0x83:
                DecModRM(ref d, ref p, end, a32, segOvr);
                d.Sub = d.Reg;
                d.Imm = op == 0x81 ? DecImm(ref p, end, osz) : (uint)(sbyte)DecByte(ref p, end) & szMask;
                d.Handler = osz != 4 ? &OpAluRmImm : d.Mem == 0 ? &OpAluRI32 : &OpAluMI32;
                break;
            case 0x84: case 0x85:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0x84) d.Size = 1;
                d.Handler = d.Size == 4 && d.Mem == 0 ? &OpTestRR32 : &OpTestRmReg;
                break;
            case 0x86: case 0x87:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0x86) d.Size = 1;
                d.Handler = &OpXchgRmReg;
                break;
            case 0x88: case 0x89:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0x88) d.Size = 1;
                d.Handler = d.Size == 4 ? (d.Mem != 0 ? &OpMovMemReg32 : &OpMovRR32) : &OpMovRmReg;
                break;
            case 0x8A: case 0x8B:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0x8A) d.Size = 1;
                if (d.Size == 4 && d.Mem == 0) { (d.Reg, d.Rm) = (d.Rm, d.Reg); d.Handler = &OpMovRR32; }
                else d.Handler = d.Size == 4 ? &OpMovRegMem32 : &OpMovRegRm;
                break;
            case 0x8D:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (d.Mem == 0) return false;
                d.Handler = &OpLea;
                break;
            case 0x90:
                d.Handler = &OpNop;
                break;
            case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
                d.Reg = (byte)(op & 7);
                d.Rm = EAX;
                d.Handler = &OpXchgRmReg;
                break;
            case 0x98: d.Handler = &OpCbw; break;
            case 0x99: d.Handler = &OpCwd; break;
            case 0xA0: case 0xA1:
                d.Mem = 1;
                d.Disp = DecImm(ref p, end, a32 ? 4 : 2);
                d.Reg = EAX;
                if (op == 0xA0) d.Size = 1;
                d.Handler = &OpMovRegRm;
                break;
            case 0xA2: case 0xA3:
                d.Mem = 1;
                d.Disp = DecImm(ref p, end, a32 ? 4 : 2);
                d.Reg = EAX;
                if (op == 0xA2) d.Size = 1;
                d.Handler = &OpMovRmReg;
                break;
            case 0xA4: case 0xA5: case 0xA6: case 0xA7: case 0xAA: case 0xAB: case 0xAC: case 0xAD: case 0xAE: case 0xAF:
                // MOVS/CMPS/STOS/LODS/SCAS: d.Seg is the source segment (ES:EDI is fixed), Imm8 the REP prefix. A REP form
                // ends its block: it retires up to RepChunk iterations, and the next block checks the run budget first.
                if ((op & 1) == 0) d.Size = 1;
                d.Sub = op;
                d.Imm8 = rep;
                d.Handler = &OpString;
                ends = rep != 0;
                break;
            case 0xA8: case 0xA9:
                if (op == 0xA8) d.Size = 1;
                d.Rm = EAX;
                d.Imm = DecImm(ref p, end, d.Size);
                d.Handler = &OpTestRmImm;
                break;
            case 0xB0: case 0xB1: case 0xB2: case 0xB3: case 0xB4: case 0xB5: case 0xB6: case 0xB7:
                d.Size = 1;
                d.Rm = (byte)(op & 7);
                d.Imm = DecByte(ref p, end);
                d.Handler = &OpMovRmImm;
                break;
            case 0xB8: case 0xB9: case 0xBA: case 0xBB: case 0xBC: case 0xBD: case 0xBE: case 0xBF:
                d.Rm = (byte)(op & 7);
                d.Imm = DecImm(ref p, end, osz);
                d.Handler = &OpMovRmImm;
                break;
            case 0xC0: case 0xC1: case 0xD0: case 0xD1:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if ((op & 1) == 0) d.Size = 1;
                d.Sub = d.Reg;
                d.Imm8 = op >= 0xD0 ? (byte)1 : DecByte(ref p, end);
                if (d.Size == 4 && d.Mem == 0 && d.Sub >= 4)
                {
                    d.Imm8 &= 0x1F;
                    d.Handler = &OpShiftRI32;
                }
                else d.Handler = &OpShiftImm;
                break;
            case 0xD2: case 0xD3:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if ((op & 1) == 0) d.Size = 1;
                d.Sub = d.Reg;
                d.Handler = &OpShiftCl;
                break;
            case 0xC2:
                d.Imm = DecImm(ref p, end, 2);
                d.Handler = &OpRetImm;
                ends = true;
                break;
            case 0xC3:
                d.Handler = &OpRet;
                ends = true;
                break;
            case 0xC6: case 0xC7:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0xC6) d.Size = 1;
                d.Imm = DecImm(ref p, end, d.Size);
                d.Handler = &OpMovRmImm;
                break;
            case 0xC9: d.Handler = &OpLeave; break;
            case 0xE8:
                d.Imm = DecImm(ref p, end, osz);
                d.Handler = &OpCallRel;
                ends = true;
                break;
            case 0xE9:
                d.Imm = DecImm(ref p, end, osz);
                d.Handler = &OpJmpRel;
                ends = true;
                break;
            case 0xEB:
                d.Imm = (uint)(sbyte)DecByte(ref p, end);
                d.Handler = &OpJmpRel;
                ends = true;
                break;
            case 0xF5: d.Handler = &OpCmc; break;
            case 0xF6: case 0xF7:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (op == 0xF6) d.Size = 1;
                if (d.Reg < 2)
                {
                    d.Imm = DecImm(ref p, end, d.Size);
                    d.Handler = &OpTestRmImm;
                }
                else d.Handler = &OpGroup3;
                break;
            case 0xF8: case 0xF9: d.Sub = (byte)(op & 1); d.Handler = &OpSetCarry; break;
            case 0xFC: case 0xFD: d.Sub = (byte)(op & 1); d.Handler = &OpSetDirection; break;
            case 0xFE:
                DecModRM(ref d, ref p, end, a32, segOvr);
                if (d.Reg > 1) return false;
                d.Size = 1;
                d.Sub = d.Reg;
                d.Handler = &OpIncDecRm;
                break;
            case 0xFF:
                DecModRM(ref d, ref p, end, a32, segOvr);
                switch (d.Reg)
                {
                    case 0: case 1: d.Sub = d.Reg; d.Handler = &OpIncDecRm; break;
                    case 2: d.Handler = &OpCallRm; ends = true; break;
                    case 4: d.Handler = &OpJmpRm; ends = true; break;
                    case 6: d.Handler = &OpPushRm; break;
                    default: return false;
                }
                break;
            case 0x0F:
            {
                byte op2 = DecByte(ref p, end);
                switch (op2)
                {
                    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
                    case 0x48: case 0x49: case 0x4A: case 0x4B: case 0x4C: case 0x4D: case 0x4E: case 0x4F:
                        DecModRM(ref d, ref p, end, a32, segOvr);
                        d.Sub = (byte)(op2 & 15);
                        d.Handler = &OpCmov;
                        break;
                    case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
                    case 0x88: case 0x89: case 0x8A: case 0x8B: case 0x8C: case 0x8D: case 0x8E: case 0x8F:
                        d.Sub = (byte)(op2 & 15);
                        d.Imm = osz == 4 ? DecImm(ref p, end, 4) : (uint)(short)DecImm(ref p, end, 2);
                        d.Handler = &OpJcc;
                        ends = JccEndsBlock(d.Imm);
                        break;
                    case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
                    case 0x98: case 0x99: case 0x9A: case 0x9B: case 0x9C: case 0x9D: case 0x9E: case 0x9F:
                        DecModRM(ref d, ref p, end, a32, segOvr);
                        d.Sub = (byte)(op2 & 15);
                        d.Size = 1;
                        d.Handler = &OpSetcc;
                        break;
                    case 0xAF:
                        DecModRM(ref d, ref p, end, a32, segOvr);
                        d.Handler = &OpImulRegRm;
                        break;
                    case 0xB6: case 0xB7: case 0xBE: case 0xBF:
                        DecModRM(ref d, ref p, end, a32, segOvr);
                        d.Handler = op2 switch { 0xB6 => &OpMovzxB, 0xB7 => &OpMovzxW, 0xBE => &OpMovsxB, _ => &OpMovsxW };
                        break;
                    default:
                        return false;
                }
                break;
            }
            default:
                return false;
        }
        int len = p - start;
        if (len > 15) return false;
        d.Len = (byte)len;
        return true;
    }
}

namespace VmPortal.Emulator.Cpu;

// String instructions with REP/REPE/REPNE, 16/32-bit address sizes. A long REP runs in chunks: after
// RepChunk iterations EIP is left on the instruction so interrupts are taken between chunks (as hardware
// does between iterations); registers always reflect the iterations done, so a fault restarts correctly.
// Every iteration counts as one retired instruction (InstructionCount paces guest time, Timing/MachineClock.cs):
// a REP with ECX=n retires n (1 when ECX=0), bulk copies add their element count, so a guest timing a REP MOVS
// sees the time its n iterations take, not that of one instruction. The counter is decremented once before the
// first iteration because the run loop adds the instruction itself; a fault keeps the iterations done.
public sealed partial class Cpu
{
    private const int RepChunk = 4096;

    private uint Count => _r[ECX] & AddrMask;

    /// <summary>
    /// Leaves a REP instruction between iterations (chunk end, or a data breakpoint hit by an iteration that was not
    /// the last): EIP stays on it so it resumes, and RF is set, as hardware does for an event between iterations,
    /// so that the resumed instruction does not hit its own instruction breakpoint again.
    /// </summary>
    private void RepInterrupted()
    {
        _eip = _startEip;
        _flags |= RF;
        _checkEvents = true;
    }

    private void SetCount(uint v)
    {
        if (_addr32) _r[ECX] = v; else _r[ECX] = (_r[ECX] & 0xFFFF_0000) | (v & 0xFFFF);
    }

    private void AdvanceIndex(int reg, int size)
    {
        uint delta = (_flags & DF) != 0 ? (uint)-size : (uint)size;
        if (_addr32) _r[reg] += delta;
        else _r[reg] = (_r[reg] & 0xFFFF_0000) | ((_r[reg] + delta) & 0xFFFF);
    }

    /// <summary>
    /// Bulk step of REP MOVS (<paramref name="copy"/>) or REP STOS with 32-bit addresses and DF=0: does at once the
    /// whole elements that lie in the current source and destination pages when both are TLB hits (so RAM or ROM,
    /// never MMIO nor a page holding decoded code), inside the segment limits and not overlapping. Returns the
    /// number of elements done, 0 when the element-by-element path must take the next one (it fills the TLB, checks
    /// and faults exactly). Registers advance as the elements do, so interruption and faults stay exact.
    /// </summary>
    private int StringBulk(int srcSeg, int size, int maxElems, bool copy, uint value)
    {
        uint count = _r[ECX];
        if (count > (uint)maxElems) count = (uint)maxElems;
        uint di = _r[EDI];
        uint linD = _segBase[ES] + di;
        uint k = Math.Min(count, (0x1000 - (linD & 0xFFF)) / (uint)size);
        uint si = _r[ESI], linS = 0;
        if (copy)
        {
            linS = _segBase[srcSeg] + si;
            k = Math.Min(k, (0x1000 - (linS & 0xFFF)) / (uint)size);
        }
        if (k < 2) return 0;
        uint bytes = k * (uint)size;
        int sizeIdx = size == 1 ? 0 : size == 2 ? 1 : 2;
        // Segment checks on the first and the last element (the valid range is contiguous; no offset wrap).
        if ((ulong)di + bytes > 0x1_0000_0000ul) return 0;
        if ((long)(uint)(di - _segLo[ES]) > _segMaxW[ES * 3 + sizeIdx]) return 0;
        if ((long)(uint)(di + bytes - (uint)size - _segLo[ES]) > _segMaxW[ES * 3 + sizeIdx]) return 0;
        int wi = _tlbUserBase + TlbEntries + (int)((linD >> 12) & TlbIndexMask);
        if (_tlbTag[wi] != (linD & 0xFFFF_F000)) return 0;
        int d = _tlbDelta[wi] + (int)linD;
        if (copy)
        {
            if ((ulong)si + bytes > 0x1_0000_0000ul) return 0;
            if ((long)(uint)(si - _segLo[srcSeg]) > _segMaxR[srcSeg * 3 + sizeIdx]) return 0;
            if ((long)(uint)(si + bytes - (uint)size - _segLo[srcSeg]) > _segMaxR[srcSeg * 3 + sizeIdx]) return 0;
            int ri = _tlbUserBase + (int)((linS >> 12) & TlbIndexMask);
            if (_tlbTag[ri] != (linS & 0xFFFF_F000)) return 0;
            int sOff = _tlbDelta[ri] + (int)linS;
            if (sOff < d + (int)bytes && d < sOff + (int)bytes) return 0; // overlapping: element order matters
            _ram.AsSpan(sOff, (int)bytes).CopyTo(_ram.AsSpan(d, (int)bytes));
            _r[ESI] = si + bytes;
        }
        else
        {
            var span = _ram.AsSpan(d, (int)bytes);
            if (size == 1) span.Fill((byte)value);
            else if (size == 2) System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(span).Fill((ushort)value);
            else System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(span).Fill(value);
        }
        _r[EDI] = di + bytes;
        _r[ECX] -= k;
        return (int)k;
    }

    private void Movs(int size)
    {
        int src = DataSeg;
        if (_rep == 0)
        {
            uint v = ReadSized(src, _r[ESI] & AddrMask, size);
            WriteSized(ES, _r[EDI] & AddrMask, size, v);
            AdvanceIndex(ESI, size);
            AdvanceIndex(EDI, size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--; // each iteration retires as one instruction (RetireIteration)
        while (Count != 0)
        {
            if (n == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            if (_addr32 && (_flags & DF) == 0)
            {
                int k = StringBulk(src, size, RepChunk - n, true, 0);
                if (k > 0) { n += k; InstructionCount += k; continue; }
            }
            n++;
            InstructionCount++;
            uint v = ReadSized(src, _r[ESI] & AddrMask, size);
            WriteSized(ES, _r[EDI] & AddrMask, size, v);
            AdvanceIndex(ESI, size);
            AdvanceIndex(EDI, size);
            SetCount(Count - 1);
        }
    }

    private void Stos(int size)
    {
        uint v = GetReg(size, EAX);
        if (_rep == 0)
        {
            WriteSized(ES, _r[EDI] & AddrMask, size, v);
            AdvanceIndex(EDI, size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            if (_addr32 && (_flags & DF) == 0)
            {
                int k = StringBulk(-1, size, RepChunk - n, false, v);
                if (k > 0) { n += k; InstructionCount += k; continue; }
            }
            n++;
            InstructionCount++;
            WriteSized(ES, _r[EDI] & AddrMask, size, v);
            AdvanceIndex(EDI, size);
            SetCount(Count - 1);
        }
    }

    private void Lods(int size)
    {
        int src = DataSeg;
        if (_rep == 0)
        {
            SetReg(size, EAX, ReadSized(src, _r[ESI] & AddrMask, size));
            AdvanceIndex(ESI, size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n++ == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            InstructionCount++;
            SetReg(size, EAX, ReadSized(src, _r[ESI] & AddrMask, size));
            AdvanceIndex(ESI, size);
            SetCount(Count - 1);
        }
    }

    private void Cmps(int size)
    {
        int src = DataSeg;
        if (_rep == 0)
        {
            uint a = ReadSized(src, _r[ESI] & AddrMask, size);
            uint b = ReadSized(ES, _r[EDI] & AddrMask, size);
            AdvanceIndex(ESI, size);
            AdvanceIndex(EDI, size);
            SetLazy(LazyOp.Sub, a, b, (a - b) & SizeMask(size), size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n++ == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            InstructionCount++;
            uint a = ReadSized(src, _r[ESI] & AddrMask, size);
            uint b = ReadSized(ES, _r[EDI] & AddrMask, size);
            AdvanceIndex(ESI, size);
            AdvanceIndex(EDI, size);
            SetCount(Count - 1);
            uint r = (a - b) & SizeMask(size);
            SetLazy(LazyOp.Sub, a, b, r, size);
            if (_rep == 0xF3 ? r != 0 : r == 0) return;
        }
    }

    private void Scas(int size)
    {
        uint a = GetReg(size, EAX);
        if (_rep == 0)
        {
            uint b = ReadSized(ES, _r[EDI] & AddrMask, size);
            AdvanceIndex(EDI, size);
            SetLazy(LazyOp.Sub, a, b, (a - b) & SizeMask(size), size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n++ == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            InstructionCount++;
            uint b = ReadSized(ES, _r[EDI] & AddrMask, size);
            AdvanceIndex(EDI, size);
            SetCount(Count - 1);
            uint r = (a - b) & SizeMask(size);
            SetLazy(LazyOp.Sub, a, b, r, size);
            if (_rep == 0xF3 ? r != 0 : r == 0) return;
        }
    }

    private void Ins(int size)
    {
        ushort port = (ushort)_r[EDX];
        CheckIo(port, size);
        if (_rep == 0)
        {
            uint di = _r[EDI] & AddrMask;
            ProbeWrite(LinWrite(ES, di, size >> 1), size);
            WriteSized(ES, di, size, In(port, size));
            AdvanceIndex(EDI, size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n++ == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            InstructionCount++;
            uint di = _r[EDI] & AddrMask;
            ProbeWrite(LinWrite(ES, di, size >> 1), size);
            WriteSized(ES, di, size, In(port, size));
            AdvanceIndex(EDI, size);
            SetCount(Count - 1);
        }
    }

    private void Outs(int size)
    {
        ushort port = (ushort)_r[EDX];
        CheckIo(port, size);
        int src = DataSeg;
        if (_rep == 0)
        {
            Out(port, size, ReadSized(src, _r[ESI] & AddrMask, size));
            AdvanceIndex(ESI, size);
            return;
        }
        int n = 0;
        if (Count != 0) InstructionCount--;
        while (Count != 0)
        {
            if (n++ == RepChunk || _dbTrapHits != 0) { RepInterrupted(); return; }
            InstructionCount++;
            Out(port, size, ReadSized(src, _r[ESI] & AddrMask, size));
            AdvanceIndex(ESI, size);
            SetCount(Count - 1);
        }
    }

    /// <summary>I/O permission: in protected mode with CPL &gt; IOPL, or in V86 mode, the TSS I/O bitmap decides.</summary>
    private void CheckIo(ushort port, int size)
    {
        if (!_pe) return;
        if (!_v86 && _cpl <= (int)((_flags & IOPL) >> 12)) return;
        // 32-bit TSS only has a bitmap.
        if ((_trAttr & 0x0F) != 0x09 && (_trAttr & 0x0F) != 0x0B) throw Fault(13, 0);
        if (_trLimit < 0x67) throw Fault(13, 0);
        uint mapBase = SysRead16(_trBase + 0x66);
        uint byteOff = mapBase + (uint)(port >> 3);
        if (byteOff + 1 > _trLimit) throw Fault(13, 0);
        uint bits = SysRead16(_trBase + byteOff);
        uint mask = ((1u << size) - 1) << (port & 7);
        if ((bits & mask) != 0) throw Fault(13, 0);
    }
}

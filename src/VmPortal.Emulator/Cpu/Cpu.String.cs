namespace VmPortal.Emulator.Cpu;

// String instructions with REP/REPE/REPNE, 16/32-bit address sizes. A long REP runs in chunks: after
// RepChunk iterations EIP is left on the instruction so interrupts are taken between chunks (as hardware
// does between iterations); registers always reflect the iterations done, so a fault restarts correctly.
public sealed partial class Cpu
{
    private const int RepChunk = 4096;

    private uint Count => _r[ECX] & AddrMask;

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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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
        while (Count != 0)
        {
            if (n++ == RepChunk) { _eip = _startEip; return; }
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

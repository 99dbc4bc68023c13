namespace VmPortal.Emulator.Cpu;

// Exceptions and interrupts: raising guest faults, double/triple fault, delivery through the real-mode IVT or
// the protected-mode IDT (interrupt, trap and task gates, privilege change, V86 entry/exit).
public sealed partial class Cpu
{
    private enum InterruptKind { External, Exception, Software, Trap }

    private readonly CpuFault _fault;
    private int _deliveringVector = -1;

    private static bool HasErrorCode(int v) => v == 8 || (v >= 10 && v <= 14) || v == 17;

    internal CpuFault Fault(int vector)
    {
        _fault.Vector = vector;
        _fault.ErrorCode = 0;
        _fault.HasErrorCode = false;
        return _fault;
    }

    internal CpuFault Fault(int vector, uint errorCode)
    {
        _fault.Vector = vector;
        _fault.ErrorCode = errorCode;
        _fault.HasErrorCode = HasErrorCode(vector);
        return _fault;
    }

    private static bool IsContributory(int v) => v == 0 || (v >= 10 && v <= 13);

    private void HandleFault(CpuFault f)
    {
        int vector = f.Vector;
        uint code = f.ErrorCode;
        bool hasCode = f.HasErrorCode;
        InstructionCount++; // the faulting instruction counts as a step, so a fault loop cannot hang Run
        // The instruction did not complete: no single-step or data breakpoint trap for it. Every fault except an
        // instruction breakpoint pushes RF=1 (SDM 17.3.1.1) so the restarted instruction does not hit its own
        // instruction breakpoint again; delivery clears RF in EFLAGS.
        _traceArmed = false;
        _dbTrapHits = 0;
        if (_codeBreakpointFault) _codeBreakpointFault = false;
        else if (_pe) _flags |= RF;
        ExceptionRaised?.Invoke(vector, hasCode ? code : 0, _sel[CS], _startEip);
        for (int attempt = 0; attempt < 4; attempt++)
        {
            int first = _deliveringVector;
            _deliveringVector = -1;
            if (first == 8)
            {
                TripleFault($"triple fault: #{vector} while delivering #DF at {_sel[CS]:X4}:{_startEip:X8}");
                return;
            }
            if (first >= 0 && ((IsContributory(first) && IsContributory(vector)) || (first == 14 && (vector == 14 || IsContributory(vector)))))
            {
                vector = 8; code = 0; hasCode = true;
            }
            _eip = _startEip;
            InvalidateFetch();
            try
            {
                DeliverInterrupt(vector, InterruptKind.Exception, hasCode, code);
                return;
            }
            catch (CpuFault f2)
            {
                vector = f2.Vector; code = f2.ErrorCode; hasCode = f2.HasErrorCode;
            }
        }
        TripleFault($"triple fault: repeated faults delivering exceptions at {_sel[CS]:X4}:{_startEip:X8}");
    }

    private void TripleFault(string reason)
    {
        _deliveringVector = -1;
        ShutdownPending = true;
        ShutdownReason = reason;
    }

    /// <summary>INT n, INT3, INTO, INT1. In V86 mode only INT n (CD) is IOPL-sensitive and, with CR4.VME, subject
    /// to the TSS redirection bitmap; INT3/INTO/INT1 always go to the protected-mode handler (SDM INT n pseudo-code).</summary>
    private void SoftwareInterrupt(int vector, bool int3OrInto, bool icebp = false)
    {
        if (_v86 && !int3OrInto)
        {
            if ((_cr4 & CR4_VME) != 0 && RedirectV86Interrupt(vector)) return;
            if ((_flags & IOPL) != IOPL) throw Fault(13, 0);
        }
        DeliverInterrupt(vector, icebp ? InterruptKind.Trap : InterruptKind.Software, false, 0);
    }

    /// <summary>Delivers an interrupt or exception. EIP must already be the return address (next instruction for
    /// INT n and traps, the faulting instruction for faults).</summary>
    private void DeliverInterrupt(int vector, InterruptKind kind, bool hasError, uint error)
    {
        _deliveringVector = kind == InterruptKind.Exception ? vector : -1;
        if (kind == InterruptKind.External || kind == InterruptKind.Trap) _deliveringVector = -1;
        if (kind == InterruptKind.Software) _traceArmed = false; // INT n/INT3/INTO: no single-step trap after them
        if (vector == 1 && kind != InterruptKind.Software) _dr[7] &= ~DR7_GD; // lets the #DB handler use the DRs
        Halted = false;
        if (!_pe) DeliverReal(vector);
        else DeliverProtected(vector, kind, hasError, error);
        _deliveringVector = -1;
        _checkEvents = true;
    }

    private void DeliverReal(int vector)
    {
        uint entry = (uint)vector * 4;
        if (entry + 3 > _idtLimit) throw Fault(13, 0); // becomes #DF → triple fault on a bad IVT limit
        uint off = SysRead16(_idtBase + entry);
        ushort sel = SysRead16(_idtBase + entry + 2);
        uint flags = GetFlags();
        Push16((ushort)flags);
        Push16(_sel[CS]);
        Push16((ushort)_eip);
        _flags &= ~(IF | TF | AC | RF);
        LoadCsReal(sel);
        _eip = off;
    }

    private void LoadCsReal(ushort sel)
    {
        _sel[CS] = sel;
        _segBase[CS] = (uint)sel << 4;
        if (_v86) { _segLimit[CS] = 0xFFFF; _segAttr[CS] = 0xFB; }
        UpdateSegCache(CS);
        InvalidateFetch();
    }

    private void DeliverProtected(int vector, InterruptKind kind, bool hasError, uint error)
    {
        uint ext = kind == InterruptKind.External || kind == InterruptKind.Exception ? 1u : 0u;
        uint idtErr = (uint)vector * 8 + 2 + ext;
        if ((uint)vector * 8 + 7 > _idtLimit) throw Fault(13, idtErr);
        uint lo = SysRead32(_idtBase + (uint)vector * 8);
        uint hi = SysRead32(_idtBase + (uint)vector * 8 + 4);
        int type = (int)((hi >> 8) & 0x1F);
        int dpl = (int)((hi >> 13) & 3);
        if (type != 0x05 && type != 0x06 && type != 0x07 && type != 0x0E && type != 0x0F) throw Fault(13, idtErr);
        if (kind == InterruptKind.Software && dpl < _cpl) throw Fault(13, idtErr);
        if ((hi & 0x8000) == 0) throw Fault(11, idtErr);

        if (type == 0x05)
        {
            ushort tss = (ushort)(lo >> 16);
            TaskSwitch(tss, TaskSwitchSource.Call, ext);
            if (hasError)
            {
                if (_ss32) Push32(error); else Push16((ushort)error);
            }
            return;
        }

        bool gate32 = (type & 8) != 0;
        bool trapGate = (type & 1) != 0;
        ushort sel = (ushort)(lo >> 16);
        uint offset = gate32 ? (lo & 0xFFFF) | (hi & 0xFFFF_0000) : lo & 0xFFFF;
        if ((sel & 0xFFFC) == 0) throw Fault(13, ext);
        ReadDescriptorChecked(sel, ext, out uint dlo, out uint dhi);
        uint attr = (dhi >> 8) & 0xF0FF;
        int cdpl = (int)((attr >> 5) & 3);
        if ((attr & 0x18) != 0x18 || cdpl > _cpl) throw Fault(13, (sel & 0xFFFCu) + ext);
        if ((attr & 0x80) == 0) throw Fault(11, (sel & 0xFFFCu) + ext);
        bool conforming = (attr & 0x04) != 0;
        uint oldFlags = GetFlags();
        int psize = gate32 ? 4 : 2;

        if (!conforming && cdpl < _cpl)
        {
            // Inner privilege: switch to the stack for the new CPL from the TSS.
            GetTssStack(cdpl, out ushort newSs, out uint newEsp, ext);
            LoadStackDescriptorForSwitch(newSs, cdpl, ext, out uint ssBase, out uint ssLimit, out uint ssAttr);
            bool newSs32 = (ssAttr & 0x4000) != 0;
            uint sp = newEsp;
            uint mask = newSs32 ? 0xFFFF_FFFF : 0xFFFF;
            int count = (_v86 ? 9 : 5) + (hasError ? 1 : 0);
            // Write the frame first (restartable: nothing is committed until every push succeeded).
            void PushNew(uint v)
            {
                sp = (sp - (uint)psize) & mask;
                uint lin = ssBase + sp;
                if (psize == 4) SysWrite32(lin, v); else SysWrite16(lin, (ushort)v);
            }
            _ = count;
            if (_v86)
            {
                PushNew(_sel[GS]); PushNew(_sel[FS]); PushNew(_sel[DS]); PushNew(_sel[ES]);
            }
            PushNew(_sel[SS]);
            PushNew(_r[ESP]);
            PushNew(oldFlags);
            PushNew(_sel[CS]);
            PushNew(_eip);
            if (hasError) PushNew(error);
            bool fromV86 = _v86;
            // Commit.
            SetSegmentFromDescriptor(SS, (ushort)((newSs & 0xFFFCu) | (uint)cdpl), ssBase, ssLimit, ssAttr);
            if (newSs32) _r[ESP] = sp; else _r[ESP] = (_r[ESP] & 0xFFFF_0000) | sp;
            _flags &= ~(TF | NT | RF | VM);
            if (!trapGate) _flags &= ~IF;
            if (fromV86)
            {
                for (int s = 0; s < 6; s++)
                    if (s == ES || s == DS || s == FS || s == GS) LoadNullSegment(s);
            }
            SetCpl(cdpl);
            LoadCodeDescriptor((ushort)((sel & 0xFFFCu) | (uint)cdpl), dlo, dhi);
            UpdateMode();
            _eip = offset;
            return;
        }
        if (_v86) throw Fault(13, (sel & 0xFFFCu) + ext);
        // Same privilege.
        {
            uint sp = _r[ESP];
            uint mask = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
            uint s0 = sp;
            void PushCur(uint v)
            {
                s0 = (s0 - (uint)psize) & mask;
                if (psize == 4) Write32(SS, s0, v); else Write16(SS, s0, (ushort)v);
            }
            PushCur(oldFlags);
            PushCur(_sel[CS]);
            PushCur(_eip);
            if (hasError) PushCur(error);
            if (_ss32) _r[ESP] = s0; else _r[ESP] = (_r[ESP] & 0xFFFF_0000) | s0;
            _flags &= ~(TF | NT | RF | VM);
            if (!trapGate) _flags &= ~IF;
            int newCpl = conforming ? _cpl : cdpl;
            LoadCodeDescriptor((ushort)((sel & 0xFFFCu) | (uint)newCpl), dlo, dhi);
            _eip = offset;
        }
    }

    private void GetTssStack(int dpl, out ushort ss, out uint esp, uint ext)
    {
        if ((_trAttr & 0x08) != 0)
        {
            uint off = 4 + (uint)dpl * 8;
            if (off + 5 > _trLimit) throw Fault(10, (_trSel & 0xFFFCu) + ext);
            esp = SysRead32(_trBase + off);
            ss = SysRead16(_trBase + off + 4);
        }
        else
        {
            uint off = 2 + (uint)dpl * 4;
            if (off + 3 > _trLimit) throw Fault(10, (_trSel & 0xFFFCu) + ext);
            esp = SysRead16(_trBase + off);
            ss = SysRead16(_trBase + off + 2);
        }
    }

    private void LoadStackDescriptorForSwitch(ushort ss, int dpl, uint ext, out uint bas, out uint limit, out uint attr)
    {
        if ((ss & 0xFFFC) == 0) throw Fault(10, ext);
        if ((ss & 3) != dpl) throw Fault(10, (ss & 0xFFFCu) + ext);
        if (!TryReadDescriptor(ss, out uint lo, out uint hi)) throw Fault(10, (ss & 0xFFFCu) + ext);
        attr = (hi >> 8) & 0xF0FF;
        if ((attr & 0x1A) != 0x12 || ((attr >> 5) & 3) != dpl) throw Fault(10, (ss & 0xFFFCu) + ext);
        if ((attr & 0x80) == 0) throw Fault(12, (ss & 0xFFFCu) + ext);
        DecodeDescriptor(lo, hi, out bas, out limit, out _);
        SetAccessed(ss, hi);
    }
}

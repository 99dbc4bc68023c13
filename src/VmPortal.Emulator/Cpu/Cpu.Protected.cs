namespace VmPortal.Emulator.Cpu;

// Protected-mode segmentation: descriptor tables, segment loads with their privilege checks, far JMP/CALL/RET
// (call gates, conforming code), IRET (including return to V86 and nested-task return), hardware task switch.
public sealed partial class Cpu
{
    private enum TaskSwitchSource { Jmp, Call, Iret }

    // ---------------- Descriptors ----------------

    private bool TryReadDescriptor(ushort sel, out uint lo, out uint hi)
    {
        uint index = (uint)sel & 0xFFF8;
        uint tbase, tlimit;
        if ((sel & 4) != 0)
        {
            if ((_ldtSel & 0xFFFC) == 0) { lo = hi = 0; return false; }
            tbase = _ldtBase; tlimit = _ldtLimit;
        }
        else { tbase = _gdtBase; tlimit = _gdtLimit; }
        if (index + 7 > tlimit) { lo = hi = 0; return false; }
        lo = SysRead32(tbase + index);
        hi = SysRead32(tbase + index + 4);
        return true;
    }

    private void ReadDescriptorChecked(ushort sel, uint ext, out uint lo, out uint hi)
    {
        if (!TryReadDescriptor(sel, out lo, out hi)) throw Fault(13, (sel & 0xFFFCu) + ext);
    }

    private static void DecodeDescriptor(uint lo, uint hi, out uint bas, out uint limit, out uint attr)
    {
        bas = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF00_0000);
        limit = (lo & 0xFFFF) | (hi & 0xF_0000);
        if ((hi & 0x80_0000) != 0) limit = (limit << 12) | 0xFFF;
        attr = (hi >> 8) & 0xF0FF;
    }

    private void SetAccessed(ushort sel, uint hi)
    {
        if ((hi & 0x100) != 0) return;
        uint tbase = (sel & 4) != 0 ? _ldtBase : _gdtBase;
        SysWrite8(tbase + (sel & 0xFFF8u) + 5, (byte)((hi >> 8) | 1));
    }

    private void SetSegmentFromDescriptor(int s, ushort sel, uint bas, uint limit, uint attr)
    {
        _sel[s] = sel;
        _segBase[s] = bas;
        _segLimit[s] = limit;
        _segAttr[s] = attr | 0x01;
        UpdateSegCache(s);
        if (s == SS) _ss32 = (attr & 0x4000) != 0;
        if (s == CS)
        {
            _cs32 = (attr & 0x4000) != 0;
            _ipMask = _cs32 ? 0xFFFF_FFFF : 0xFFFF;
            InvalidateFetch();
        }
    }

    private void LoadNullSegment(int s)
    {
        _sel[s] = 0;
        _segBase[s] = 0;
        _segLimit[s] = 0;
        _segAttr[s] = 0; // not present: any access faults
        UpdateSegCache(s);
    }

    private void LoadCodeDescriptor(ushort sel, uint lo, uint hi)
    {
        DecodeDescriptor(lo, hi, out uint bas, out uint limit, out uint attr);
        SetAccessed(sel, hi);
        SetSegmentFromDescriptor(CS, sel, bas, limit, attr);
    }

    private void SetCpl(int cpl)
    {
        _cpl = cpl;
        UpdateMemHooks();
        InvalidateFetch();
    }

    /// <summary>Recomputes mode flags after CR0.PE / EFLAGS.VM changes.</summary>
    private void UpdateMode()
    {
        _pe = (_cr0 & CR0_PE) != 0;
        _v86 = _pe && (_flags & VM) != 0;
        if (_v86) SetCpl(3);
        else if (!_pe) SetCpl(0);
        _ipMask = _cs32 ? 0xFFFF_FFFF : 0xFFFF;
        for (int s = 0; s < 6; s++) UpdateSegCache(s);
        InvalidateFetch();
    }

    // ---------------- Segment register loads ----------------

    private void LoadSegment(int s, ushort sel)
    {
        if (!_pe || _v86)
        {
            _sel[s] = sel;
            _segBase[s] = (uint)sel << 4;
            if (_v86) { _segLimit[s] = 0xFFFF; _segAttr[s] = s == CS ? 0xFBu : 0xF3u; }
            else if (s != CS) _segAttr[s] = (_segAttr[s] & 0xF000) | 0x93; // limit and big bit kept (unreal mode)
            UpdateSegCache(s);
            if (s == CS) InvalidateFetch();
            return;
        }
        if (s == SS)
        {
            if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
            ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
            uint attr = (hi >> 8) & 0xF0FF;
            int dpl = (int)((attr >> 5) & 3);
            if ((sel & 3) != _cpl || dpl != _cpl || (attr & 0x1A) != 0x12) throw Fault(13, sel & 0xFFFCu);
            if ((attr & 0x80) == 0) throw Fault(12, sel & 0xFFFCu);
            DecodeDescriptor(lo, hi, out uint bas, out uint limit, out attr);
            SetAccessed(sel, hi);
            SetSegmentFromDescriptor(SS, sel, bas, limit, attr);
            return;
        }
        if ((sel & 0xFFFC) == 0)
        {
            LoadNullSegment(s);
            _sel[s] = sel;
            return;
        }
        {
            ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
            uint attr = (hi >> 8) & 0xF0FF;
            int dpl = (int)((attr >> 5) & 3);
            if ((attr & 0x10) == 0) throw Fault(13, sel & 0xFFFCu);
            bool code = (attr & 0x08) != 0;
            if (code && (attr & 0x02) == 0) throw Fault(13, sel & 0xFFFCu);
            bool conforming = code && (attr & 0x04) != 0;
            if (!conforming && (dpl < _cpl || dpl < (sel & 3))) throw Fault(13, sel & 0xFFFCu);
            if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
            DecodeDescriptor(lo, hi, out uint bas, out uint limit, out attr);
            SetAccessed(sel, hi);
            SetSegmentFromDescriptor(s, sel, bas, limit, attr);
        }
    }

    /// <summary>After a return to an outer level, data segments the new CPL may not use become null.</summary>
    private void ValidateDataSegmentsForCpl()
    {
        for (int s = 0; s < 6; s++)
        {
            if (s == CS || s == SS) continue;
            uint attr = _segAttr[s];
            if ((attr & 0x80) == 0) continue;
            int dpl = (int)((attr >> 5) & 3);
            bool conformingCode = (attr & 0x0C) == 0x0C;
            if (!conformingCode && dpl < _cpl) LoadNullSegment(s);
        }
    }

    // ---------------- Far transfers ----------------

    private void FarJump(ushort sel, uint off, int osz)
    {
        if (osz == 2) off &= 0xFFFF;
        if (!_pe || _v86)
        {
            LoadCsReal(sel);
            _eip = off;
            return;
        }
        if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
        ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
        uint attr = (hi >> 8) & 0xF0FF;
        int dpl = (int)((attr >> 5) & 3);
        if ((attr & 0x10) != 0)
        {
            CheckCodeTarget(sel, attr, dpl);
            DecodeDescriptor(lo, hi, out _, out uint limit, out _);
            if (off > limit) throw Fault(13, 0);
            LoadCodeDescriptor((ushort)((sel & 0xFFFCu) | (uint)_cpl), lo, hi);
            _eip = off;
            return;
        }
        int type = (int)(attr & 0x1F);
        switch (type)
        {
            case 0x04: case 0x0C: // call gate
            {
                if (dpl < _cpl || dpl < (sel & 3)) throw Fault(13, sel & 0xFFFCu);
                if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
                ushort csel = (ushort)(lo >> 16);
                uint goff = type == 0x0C ? (lo & 0xFFFF) | (hi & 0xFFFF_0000) : lo & 0xFFFF;
                if ((csel & 0xFFFC) == 0) throw Fault(13, 0);
                ReadDescriptorChecked(csel, 0, out uint clo, out uint chi);
                uint cattr = (chi >> 8) & 0xF0FF;
                int cdpl = (int)((cattr >> 5) & 3);
                if ((cattr & 0x18) != 0x18) throw Fault(13, csel & 0xFFFCu);
                bool conf = (cattr & 0x04) != 0;
                if (conf ? cdpl > _cpl : cdpl != _cpl) throw Fault(13, csel & 0xFFFCu);
                if ((cattr & 0x80) == 0) throw Fault(11, csel & 0xFFFCu);
                DecodeDescriptor(clo, chi, out _, out uint climit, out _);
                if (goff > climit) throw Fault(13, 0);
                LoadCodeDescriptor((ushort)((csel & 0xFFFCu) | (uint)_cpl), clo, chi);
                _eip = goff;
                return;
            }
            case 0x05: // task gate
            {
                if (dpl < _cpl || dpl < (sel & 3)) throw Fault(13, sel & 0xFFFCu);
                if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
                TaskSwitch((ushort)(lo >> 16), TaskSwitchSource.Jmp, 0);
                return;
            }
            case 0x01: case 0x09: // available TSS
                if (dpl < _cpl || dpl < (sel & 3)) throw Fault(13, sel & 0xFFFCu);
                TaskSwitch(sel, TaskSwitchSource.Jmp, 0);
                return;
            default:
                throw Fault(13, sel & 0xFFFCu);
        }
    }

    private void CheckCodeTarget(ushort sel, uint attr, int dpl)
    {
        if ((attr & 0x08) == 0) throw Fault(13, sel & 0xFFFCu);
        bool conforming = (attr & 0x04) != 0;
        if (conforming) { if (dpl > _cpl) throw Fault(13, sel & 0xFFFCu); }
        else if ((sel & 3) > _cpl || dpl != _cpl) throw Fault(13, sel & 0xFFFCu);
        if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
    }

    private void FarCall(ushort sel, uint off, int osz)
    {
        if (osz == 2) off &= 0xFFFF;
        if (!_pe || _v86)
        {
            uint mask = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
            uint sp = _r[ESP];
            uint s1 = (sp - (uint)osz) & mask, s2 = (sp - 2u * (uint)osz) & mask;
            WriteSized(SS, s1, osz, _sel[CS]);
            WriteSized(SS, s2, osz, _eip);
            SetStackPtr(s2);
            LoadCsReal(sel);
            _eip = off;
            return;
        }
        if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
        ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
        uint attr = (hi >> 8) & 0xF0FF;
        int dpl = (int)((attr >> 5) & 3);
        if ((attr & 0x10) != 0)
        {
            CheckCodeTarget(sel, attr, dpl);
            DecodeDescriptor(lo, hi, out _, out uint limit, out _);
            if (off > limit) throw Fault(13, 0);
            uint mask = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
            uint sp = _r[ESP];
            uint s1 = (sp - (uint)osz) & mask, s2 = (sp - 2u * (uint)osz) & mask;
            WriteSized(SS, s1, osz, _sel[CS]);
            WriteSized(SS, s2, osz, _eip);
            SetStackPtr(s2);
            LoadCodeDescriptor((ushort)((sel & 0xFFFCu) | (uint)_cpl), lo, hi);
            _eip = off;
            return;
        }
        int type = (int)(attr & 0x1F);
        switch (type)
        {
            case 0x04: case 0x0C:
                CallGate(sel, lo, hi, attr, dpl, type == 0x0C);
                return;
            case 0x05:
                if (dpl < _cpl || dpl < (sel & 3)) throw Fault(13, sel & 0xFFFCu);
                if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
                TaskSwitch((ushort)(lo >> 16), TaskSwitchSource.Call, 0);
                return;
            case 0x01: case 0x09:
                if (dpl < _cpl || dpl < (sel & 3)) throw Fault(13, sel & 0xFFFCu);
                TaskSwitch(sel, TaskSwitchSource.Call, 0);
                return;
            default:
                throw Fault(13, sel & 0xFFFCu);
        }
    }

    private void CallGate(ushort gsel, uint lo, uint hi, uint attr, int dpl, bool gate32)
    {
        if (dpl < _cpl || dpl < (gsel & 3)) throw Fault(13, gsel & 0xFFFCu);
        if ((attr & 0x80) == 0) throw Fault(11, gsel & 0xFFFCu);
        ushort csel = (ushort)(lo >> 16);
        uint goff = gate32 ? (lo & 0xFFFF) | (hi & 0xFFFF_0000) : lo & 0xFFFF;
        int paramCount = (int)(hi & 0x1F);
        if ((csel & 0xFFFC) == 0) throw Fault(13, 0);
        ReadDescriptorChecked(csel, 0, out uint clo, out uint chi);
        uint cattr = (chi >> 8) & 0xF0FF;
        int cdpl = (int)((cattr >> 5) & 3);
        if ((cattr & 0x18) != 0x18 || cdpl > _cpl) throw Fault(13, csel & 0xFFFCu);
        if ((cattr & 0x80) == 0) throw Fault(11, csel & 0xFFFCu);
        DecodeDescriptor(clo, chi, out _, out uint climit, out _);
        if (goff > climit) throw Fault(13, 0);
        int psize = gate32 ? 4 : 2;
        bool conforming = (cattr & 0x04) != 0;
        if (!conforming && cdpl < _cpl)
        {
            GetTssStack(cdpl, out ushort newSs, out uint newEsp, 0);
            LoadStackDescriptorForSwitch(newSs, cdpl, 0, out uint ssBase, out uint ssLimit, out uint ssAttr);
            bool newSs32 = (ssAttr & 0x4000) != 0;
            uint mask = newSs32 ? 0xFFFF_FFFF : 0xFFFF;
            uint sp = newEsp;
            void PushNew(uint v)
            {
                sp = (sp - (uint)psize) & mask;
                if (psize == 4) SysWrite32(ssBase + sp, v); else SysWrite16(ssBase + sp, (ushort)v);
            }
            PushNew(_sel[SS]);
            PushNew(_r[ESP]);
            uint oldSp = StackPtr;
            for (int i = paramCount - 1; i >= 0; i--)
                PushNew(ReadSized(SS, (oldSp + (uint)(i * psize)) & (_ss32 ? 0xFFFF_FFFF : 0xFFFF), psize));
            PushNew(_sel[CS]);
            PushNew(_eip);
            SetSegmentFromDescriptor(SS, (ushort)((newSs & 0xFFFCu) | (uint)cdpl), ssBase, ssLimit, ssAttr);
            if (newSs32) _r[ESP] = sp; else _r[ESP] = (_r[ESP] & 0xFFFF_0000) | sp;
            SetCpl(cdpl);
            LoadCodeDescriptor((ushort)((csel & 0xFFFCu) | (uint)cdpl), clo, chi);
            _eip = goff;
            return;
        }
        {
            uint mask = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
            uint sp = _r[ESP];
            uint s1 = (sp - (uint)psize) & mask, s2 = (sp - 2u * (uint)psize) & mask;
            WriteSized(SS, s1, psize, _sel[CS]);
            WriteSized(SS, s2, psize, _eip);
            SetStackPtr(s2);
            LoadCodeDescriptor((ushort)((csel & 0xFFFCu) | (uint)_cpl), clo, chi);
            _eip = goff;
        }
    }

    private void FarReturn(int osz, ushort extra)
    {
        uint ip = PeekStack(osz, 0);
        ushort sel = (ushort)PeekStack(osz, (uint)osz);
        if (!_pe || _v86)
        {
            if (osz == 2) ip &= 0xFFFF;
            LoadCsReal(sel);
            _eip = ip;
            SetStackPtr(StackPtr + 2u * (uint)osz + extra);
            return;
        }
        if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
        int rpl = sel & 3;
        if (rpl < _cpl) throw Fault(13, sel & 0xFFFCu);
        ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
        uint attr = (hi >> 8) & 0xF0FF;
        int dpl = (int)((attr >> 5) & 3);
        if ((attr & 0x18) != 0x18) throw Fault(13, sel & 0xFFFCu);
        bool conforming = (attr & 0x04) != 0;
        if (conforming ? dpl > rpl : dpl != rpl) throw Fault(13, sel & 0xFFFCu);
        if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
        if (osz == 2) ip &= 0xFFFF;
        if (rpl > _cpl)
        {
            uint esp = PeekStack(osz, 2u * (uint)osz + extra);
            ushort ss = (ushort)PeekStack(osz, 3u * (uint)osz + extra);
            ReturnToOuter(sel, lo, hi, ip, ss, esp, osz, extra);
            return;
        }
        DecodeDescriptor(lo, hi, out _, out uint limit, out _);
        if (ip > limit) throw Fault(13, 0);
        SetStackPtr(StackPtr + 2u * (uint)osz + extra);
        LoadCodeDescriptor(sel, lo, hi);
        _eip = ip;
    }

    private void ReturnToOuter(ushort sel, uint lo, uint hi, uint ip, ushort ss, uint esp, int osz, ushort extra)
    {
        int rpl = sel & 3;
        if ((ss & 0xFFFC) == 0) throw Fault(13, 0);
        if ((ss & 3) != rpl) throw Fault(13, ss & 0xFFFCu);
        ReadDescriptorChecked(ss, 0, out uint slo, out uint shi);
        uint sattr = (shi >> 8) & 0xF0FF;
        if ((sattr & 0x1A) != 0x12 || ((sattr >> 5) & 3) != rpl) throw Fault(13, ss & 0xFFFCu);
        if ((sattr & 0x80) == 0) throw Fault(12, ss & 0xFFFCu);
        DecodeDescriptor(lo, hi, out _, out uint limit, out _);
        if (ip > limit) throw Fault(13, 0);
        DecodeDescriptor(slo, shi, out uint sbase, out uint slimit, out sattr);
        SetCpl(rpl);
        LoadCodeDescriptor(sel, lo, hi);
        _eip = ip;
        SetAccessed(ss, shi);
        SetSegmentFromDescriptor(SS, ss, sbase, slimit, sattr);
        if (osz == 2) esp &= 0xFFFF;
        SetStackPtr(esp + extra);
        if (!_ss32 && osz == 4) { }
        ValidateDataSegmentsForCpl();
    }

    private void Iret(int osz)
    {
        if (!_pe)
        {
            uint ip = PeekStack(osz, 0);
            ushort cs = (ushort)PeekStack(osz, (uint)osz);
            uint fl = PeekStack(osz, 2u * (uint)osz);
            SetStackPtr(StackPtr + 3u * (uint)osz);
            LoadCsReal(cs);
            _eip = osz == 2 ? ip & 0xFFFF : ip;
            WriteFlagsIret(fl, osz);
            return;
        }
        if (_v86)
        {
            if ((_flags & IOPL) != IOPL) { IretVme(osz); return; }
            uint ip = PeekStack(osz, 0);
            ushort cs = (ushort)PeekStack(osz, (uint)osz);
            uint fl = PeekStack(osz, 2u * (uint)osz);
            SetStackPtr(StackPtr + 3u * (uint)osz);
            LoadCsReal(cs);
            _eip = osz == 2 ? ip & 0xFFFF : ip;
            WriteFlagsIret(fl, osz);
            return;
        }
        if ((_flags & NT) != 0)
        {
            ushort back = SysRead16(_trBase);
            TaskSwitch(back, TaskSwitchSource.Iret, 0);
            return;
        }
        {
            uint ip = PeekStack(osz, 0);
            ushort sel = (ushort)PeekStack(osz, (uint)osz);
            uint fl = PeekStack(osz, 2u * (uint)osz);
            if (osz == 4 && (fl & VM) != 0 && _cpl == 0)
            {
                IretToV86(ip, sel, fl);
                return;
            }
            if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
            int rpl = sel & 3;
            if (rpl < _cpl) throw Fault(13, sel & 0xFFFCu);
            ReadDescriptorChecked(sel, 0, out uint lo, out uint hi);
            uint attr = (hi >> 8) & 0xF0FF;
            int dpl = (int)((attr >> 5) & 3);
            if ((attr & 0x18) != 0x18) throw Fault(13, sel & 0xFFFCu);
            bool conforming = (attr & 0x04) != 0;
            if (conforming ? dpl > rpl : dpl != rpl) throw Fault(13, sel & 0xFFFCu);
            if ((attr & 0x80) == 0) throw Fault(11, sel & 0xFFFCu);
            if (osz == 2) ip &= 0xFFFF;
            int oldCpl = _cpl;
            if (rpl > _cpl)
            {
                uint esp = PeekStack(osz, 3u * (uint)osz);
                ushort ss = (ushort)PeekStack(osz, 4u * (uint)osz);
                WriteFlagsIretPm(fl, osz, oldCpl);
                ReturnToOuter(sel, lo, hi, ip, ss, esp, osz, 0);
                return;
            }
            DecodeDescriptor(lo, hi, out _, out uint limit, out _);
            if (ip > limit) throw Fault(13, 0);
            SetStackPtr(StackPtr + 3u * (uint)osz);
            LoadCodeDescriptor(sel, lo, hi);
            _eip = ip;
            WriteFlagsIretPm(fl, osz, oldCpl);
        }
    }

    private void WriteFlagsIret(uint fl, int osz)
    {
        MaterializeFlags();
        uint mask = CF | PF | AF | ZF | SF | TF | IF | DF | OF | NT | IOPL;
        if (osz == 4) mask |= AC | ID | RF;
        if (_v86) mask &= ~IOPL;
        _flags = (_flags & ~mask) | (fl & mask) | 2;
        _checkEvents = true;
        UpdateMemHooks();
    }

    private void WriteFlagsIretPm(uint fl, int osz, int cpl)
    {
        MaterializeFlags();
        uint mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
        if (osz == 4) mask |= AC | ID | RF;
        if (cpl == 0) mask |= IOPL;
        if (cpl == 0 && osz == 4) mask |= VIF | VIP; // SDM IRET: at CPL 0 the 32-bit form loads VIF and VIP
        if (cpl <= (int)((_flags & IOPL) >> 12)) mask |= IF;
        _flags = (_flags & ~mask) | (fl & mask) | 2;
        _checkEvents = true;
        UpdateMemHooks();
    }

    private void IretToV86(uint ip, ushort cs, uint fl)
    {
        uint esp = PeekStack(4, 12);
        ushort ss = (ushort)PeekStack(4, 16);
        ushort es = (ushort)PeekStack(4, 20);
        ushort ds = (ushort)PeekStack(4, 24);
        ushort fs = (ushort)PeekStack(4, 28);
        ushort gs = (ushort)PeekStack(4, 32);
        MaterializeFlags();
        _flags = (fl & 0x003F_7FD5) | 2 | VM;
        UpdateMode(); // CPL 3, V86
        LoadSegment(CS, cs);
        _cs32 = false;
        _ipMask = 0xFFFF;
        LoadSegment(SS, ss);
        _ss32 = false;
        LoadSegment(ES, es);
        LoadSegment(DS, ds);
        LoadSegment(FS, fs);
        LoadSegment(GS, gs);
        _r[ESP] = esp;
        _eip = ip & 0xFFFF;
        _checkEvents = true;
        UpdateMemHooks();
    }

    // ---------------- Task switch ----------------

    private void TaskSwitch(ushort sel, TaskSwitchSource source, uint ext)
    {
        if ((sel & 4) != 0 || (sel & 0xFFFC) == 0) throw Fault(10, (sel & 0xFFFCu) + ext);
        if (!TryReadDescriptor(sel, out uint lo, out uint hi)) throw Fault(10, (sel & 0xFFFCu) + ext);
        uint attr = (hi >> 8) & 0xF0FF;
        int type = (int)(attr & 0x1F);
        bool busyExpected = source == TaskSwitchSource.Iret;
        bool ok = busyExpected ? (type == 0x03 || type == 0x0B) : (type == 0x01 || type == 0x09);
        if (!ok) throw Fault(source == TaskSwitchSource.Iret ? 10 : 13, (sel & 0xFFFCu) + ext);
        if ((attr & 0x80) == 0) throw Fault(11, (sel & 0xFFFCu) + ext);
        DecodeDescriptor(lo, hi, out uint nbase, out uint nlimit, out _);
        bool new32 = (type & 8) != 0;
        if (nlimit < (new32 ? 0x67u : 0x2Bu)) throw Fault(10, (sel & 0xFFFCu) + ext);

        // Save the outgoing state.
        uint flags = GetFlags();
        if (source == TaskSwitchSource.Iret) flags &= ~NT;
        bool old32 = (_trAttr & 0x08) != 0;
        uint ob = _trBase;
        if (old32)
        {
            SysWrite32(ob + 0x20, _eip);
            SysWrite32(ob + 0x24, flags);
            for (int i = 0; i < 8; i++) SysWrite32(ob + 0x28 + (uint)i * 4, _r[i]);
            for (int s = 0; s < 6; s++) SysWrite16(ob + 0x48 + (uint)s * 4, _sel[s]);
        }
        else
        {
            SysWrite16(ob + 0x0E, (ushort)_eip);
            SysWrite16(ob + 0x10, (ushort)flags);
            for (int i = 0; i < 8; i++) SysWrite16(ob + 0x12 + (uint)i * 2, (ushort)_r[i]);
            for (int s = 0; s < 4; s++) SysWrite16(ob + 0x22 + (uint)s * 2, _sel[s]);
        }
        if (source != TaskSwitchSource.Call)
        {
            // Clear the busy bit of the old task.
            uint d = _gdtBase + (_trSel & 0xFFF8u) + 5;
            SysWrite8(d, (byte)(SysRead8(d) & ~0x02));
        }
        if (source == TaskSwitchSource.Call) SysWrite16(nbase, _trSel);
        if (source != TaskSwitchSource.Iret)
        {
            uint d = _gdtBase + (sel & 0xFFF8u) + 5;
            SysWrite8(d, (byte)(SysRead8(d) | 0x02));
        }

        // Load the incoming state.
        uint neip, nflags, ncr3 = 0;
        var regs = _popaTmp;
        Span<ushort> segs = stackalloc ushort[6];
        ushort ldt;
        if (new32)
        {
            ncr3 = SysRead32(nbase + 0x1C);
            neip = SysRead32(nbase + 0x20);
            nflags = SysRead32(nbase + 0x24);
            for (int i = 0; i < 8; i++) regs[i] = SysRead32(nbase + 0x28 + (uint)i * 4);
            for (int s = 0; s < 6; s++) segs[s] = SysRead16(nbase + 0x48 + (uint)s * 4);
            ldt = SysRead16(nbase + 0x60);
        }
        else
        {
            neip = SysRead16(nbase + 0x0E);
            nflags = SysRead16(nbase + 0x10);
            for (int i = 0; i < 8; i++) regs[i] = 0xFFFF_0000u | SysRead16(nbase + 0x12 + (uint)i * 2);
            for (int s = 0; s < 4; s++) segs[s] = SysRead16(nbase + 0x22 + (uint)s * 2);
            segs[FS] = segs[GS] = 0;
            ldt = SysRead16(nbase + 0x2A);
        }
        if (source == TaskSwitchSource.Call) nflags |= NT;

        _trSel = sel;
        _trBase = nbase;
        _trLimit = nlimit;
        _trAttr = attr | 0x02;
        _cr0 |= CR0_TS;
        if (new32 && _paging && ncr3 != _cr3) { _cr3 = ncr3; FlushTlb(false); }
        else if (new32) _cr3 = ncr3;
        for (int i = 0; i < 8; i++) _r[i] = new32 ? regs[i] : (_r[i] & 0xFFFF_0000) | (regs[i] & 0xFFFF);
        _eip = neip;
        SetFlagsRaw(nflags | 2);
        if ((_dr[7] & DR7_LocalEnables) != 0) { _dr[7] &= ~DR7_LocalEnables; UpdateDebugState(); } // L0-L3 end with the task
        _pe = true;
        _v86 = (nflags & VM) != 0;

        // LDT.
        if ((ldt & 0xFFFC) == 0) { _ldtSel = 0; _ldtBase = 0; _ldtLimit = 0; }
        else
        {
            if ((ldt & 4) != 0) throw Fault(10, ldt & 0xFFFCu);
            uint idx = ldt & 0xFFF8u;
            if (idx + 7 > _gdtLimit) throw Fault(10, ldt & 0xFFFCu);
            uint llo = SysRead32(_gdtBase + idx), lhi = SysRead32(_gdtBase + idx + 4);
            if (((lhi >> 8) & 0x1F) != 0x02) throw Fault(10, ldt & 0xFFFCu);
            if ((lhi & 0x8000) == 0) throw Fault(10, ldt & 0xFFFCu);
            DecodeDescriptor(llo, lhi, out _ldtBase, out _ldtLimit, out _);
            _ldtSel = ldt;
        }

        if (_v86)
        {
            SetCpl(3);
            for (int s = 0; s < 6; s++) LoadSegment(s, segs[s]);
            _cs32 = false; _ss32 = false; _ipMask = 0xFFFF;
        }
        else
        {
            int cpl = segs[CS] & 3;
            SetCpl(cpl);
            // CS.
            ushort cs = segs[CS];
            if ((cs & 0xFFFC) == 0) throw Fault(10, 0);
            if (!TryReadDescriptor(cs, out uint clo, out uint chi)) throw Fault(10, cs & 0xFFFCu);
            uint cattr = (chi >> 8) & 0xF0FF;
            if ((cattr & 0x18) != 0x18) throw Fault(10, cs & 0xFFFCu);
            if ((cattr & 0x80) == 0) throw Fault(11, cs & 0xFFFCu);
            LoadCodeDescriptor(cs, clo, chi);
            try
            {
                LoadSegment(SS, segs[SS]);
                for (int s = 0; s < 6; s++)
                    if (s != CS && s != SS) LoadSegment(s, segs[s]);
            }
            catch (CpuFault f) when (f.Vector == 13)
            {
                throw Fault(10, f.ErrorCode);
            }
        }
        UpdateMode();
        InvalidateFetch();
        _checkEvents = true;
        // The new TSS's T bit (offset 64h, bit 0): a debug trap (DR6.BT) before the new task's first instruction.
        if (new32 && (SysRead16(nbase + 0x64) & 1) != 0) _dbTrapHits |= DR6_BT;
    }

    // ---------------- System segment instructions ----------------

    private void Arpl()
    {
        if (!_pe || _v86) throw Fault(6);
        DecodeModRM();
        uint dst = ReadRM(2);
        uint src = GetReg(2, _regField);
        MaterializeFlags();
        if ((dst & 3) < (src & 3))
        {
            WriteRM(2, (dst & ~3u) | (src & 3));
            _flags |= ZF;
        }
        else _flags &= ~ZF;
    }

    private void Lldt(ushort sel)
    {
        if ((sel & 0xFFFC) == 0) { _ldtSel = 0; _ldtBase = 0; _ldtLimit = 0; return; }
        if ((sel & 4) != 0) throw Fault(13, sel & 0xFFFCu);
        uint idx = sel & 0xFFF8u;
        if (idx + 7 > _gdtLimit) throw Fault(13, sel & 0xFFFCu);
        uint lo = SysRead32(_gdtBase + idx), hi = SysRead32(_gdtBase + idx + 4);
        if (((hi >> 8) & 0x1F) != 0x02) throw Fault(13, sel & 0xFFFCu);
        if ((hi & 0x8000) == 0) throw Fault(11, sel & 0xFFFCu);
        DecodeDescriptor(lo, hi, out _ldtBase, out _ldtLimit, out _);
        _ldtSel = sel;
    }

    private void Ltr(ushort sel)
    {
        if ((sel & 0xFFFC) == 0) throw Fault(13, 0);
        if ((sel & 4) != 0) throw Fault(13, sel & 0xFFFCu);
        uint idx = sel & 0xFFF8u;
        if (idx + 7 > _gdtLimit) throw Fault(13, sel & 0xFFFCu);
        uint lo = SysRead32(_gdtBase + idx), hi = SysRead32(_gdtBase + idx + 4);
        uint type = (hi >> 8) & 0x1F;
        if (type != 0x01 && type != 0x09) throw Fault(13, sel & 0xFFFCu);
        if ((hi & 0x8000) == 0) throw Fault(11, sel & 0xFFFCu);
        DecodeDescriptor(lo, hi, out _trBase, out _trLimit, out uint attr);
        _trAttr = attr | 0x02;
        _trSel = sel;
        SysWrite8(_gdtBase + idx + 5, (byte)((hi >> 8) | 0x02));
    }

    /// <summary>LAR/LSL/VERR/VERW: descriptor visible from the current CPL? Sets ZF.</summary>
    private bool DescriptorAccessible(ushort sel, int kind, out uint lo, out uint hi)
    {
        lo = hi = 0;
        if ((sel & 0xFFFC) == 0) return false;
        if (!TryReadDescriptor(sel, out lo, out hi)) return false;
        uint attr = (hi >> 8) & 0xFF;
        int dpl = (int)((attr >> 5) & 3);
        bool system = (attr & 0x10) == 0;
        if (system)
        {
            int type = (int)(attr & 0x0F);
            bool valid = kind switch
            {
                0 => type is 1 or 2 or 3 or 4 or 5 or 9 or 0xB or 0xC, // LAR
                1 => type is 1 or 2 or 3 or 9 or 0xB,                  // LSL
                _ => false,                                            // VERR/VERW
            };
            if (!valid) return false;
            return dpl >= _cpl && dpl >= (sel & 3);
        }
        bool code = (attr & 0x08) != 0;
        bool conforming = code && (attr & 0x04) != 0;
        if (kind == 2 && code && (attr & 0x02) == 0) return false;          // VERR: execute-only code
        if (kind == 3 && (code || (attr & 0x02) == 0)) return false;        // VERW: writable data only
        if (!conforming && (dpl < _cpl || dpl < (sel & 3))) return false;
        return true;
    }
}

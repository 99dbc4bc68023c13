using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// The one-byte opcode map: this switch is the decode table for the primary opcodes (0F xx in Cpu.Execute0F.cs).
public sealed partial class Cpu
{
    private static readonly bool[] s_isPrefix = BuildPrefixTable();
    private static bool[] BuildPrefixTable()
    {
        var t = new bool[256];
        foreach (var b in new byte[] { 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3 }) t[b] = true;
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Step()
    {
        bool big = _cs32;
        _opSize = big ? 4 : 2;
        _addr32 = big;
        _segOvr = -1;
        _rep = 0;
        byte op = Fetch8();
        if (!At(s_isPrefix, op))
        {
            Execute(op);
            _eip &= _ipMask;
            return;
        }
        StepWithPrefixes(op);
    }

    private void StepWithPrefixes(byte op)
    {
        int prefixes = 0;
        bool firstByte = true, locked = false;
        while (true)
        {
            if (!firstByte) op = Fetch8();
            firstByte = false;
            switch (op)
            {
                case 0x26: _segOvr = ES; break;
                case 0x2E: _segOvr = CS; break;
                case 0x36: _segOvr = SS; break;
                case 0x3E: _segOvr = DS; break;
                case 0x64: _segOvr = FS; break;
                case 0x65: _segOvr = GS; break;
                case 0x66: _opSize = _cs32 ? 2 : 4; break;
                case 0x67: _addr32 = !_cs32; break;
                case 0xF0: locked = true; break; // LOCK: one CPU, every access is atomic here; checked below
                case 0xF2: _rep = 0xF2; break;
                case 0xF3: _rep = 0xF3; break;
                default: goto decoded;
            }
            if (++prefixes >= 15) throw Fault(13, 0);
        }
    decoded:
        if (locked) CheckLockable(op);
        Execute(op);
        _eip &= _ipMask; // 16-bit code: IP wraps at 64 KiB
    }

    /// <summary>
    /// LOCK is allowed only on ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B DEC INC NEG NOT OR SBB SUB XCHG XADD XOR
    /// with a memory destination; anything else raises #UD before the instruction does anything. Peeks at the
    /// opcode's following bytes (ModRM, 0F xx) and leaves EIP where it was.
    /// </summary>
    private void CheckLockable(byte op)
    {
        uint eip = _eip;
        bool ok;
        switch (op)
        {
            case 0x00: case 0x01: case 0x08: case 0x09: case 0x10: case 0x11: case 0x18: case 0x19:
            case 0x20: case 0x21: case 0x28: case 0x29: case 0x30: case 0x31: case 0x86: case 0x87:
                ok = Fetch8() < 0xC0;
                break;
            case 0x80: case 0x81: case 0x82: case 0x83:
            {
                byte m = Fetch8();
                ok = m < 0xC0 && ((m >> 3) & 7) != 7; // not CMP
                break;
            }
            case 0xF6: case 0xF7:
            {
                byte m = Fetch8();
                ok = m < 0xC0 && ((m >> 3) & 7) is 2 or 3; // NOT, NEG
                break;
            }
            case 0xFE: case 0xFF:
            {
                byte m = Fetch8();
                ok = m < 0xC0 && ((m >> 3) & 7) is 0 or 1; // INC, DEC
                break;
            }
            case 0x0F:
            {
                byte op2 = Fetch8();
                byte m = Fetch8();
                ok = m < 0xC0 && op2 switch
                {
                    0xAB or 0xB3 or 0xBB or 0xB0 or 0xB1 or 0xC0 or 0xC1 => true, // BTS BTR BTC CMPXCHG XADD
                    0xBA => ((m >> 3) & 7) >= 5,                                  // BTS BTR BTC imm8
                    0xC7 => ((m >> 3) & 7) == 1,                                  // CMPXCHG8B
                    _ => false,
                };
                break;
            }
            default: ok = false; break;
        }
        _eip = eip;
        if (!ok) throw Fault(6);
    }

    /// <summary>
    /// Diagnostics: when the environment variable VMPORTAL_CPU_HISTOGRAM=1 is set, counts of the opcodes executed by
    /// the interpreter (not by the decoded-instruction cache) since the process started: [0..255] one-byte
    /// opcodes, [256 + x] for 0F x. Null otherwise. Used to choose which instructions the cache should handle.
    /// </summary>
    public static long[]? InterpreterOpcodeHistogram { get; } =
        Environment.GetEnvironmentVariable("VMPORTAL_CPU_HISTOGRAM") == "1" ? new long[512] : null;

    private void Execute(byte op)
    {
        if (InterpreterOpcodeHistogram is { } hist)
        {
            int k = op;
            if (op == 0x0F)
            {
                uint lin = _csBase + _eip;
                if ((lin & 0xFFFF_F000) == _fetchPage) k = 256 + At(_ram, _fetchDelta + (int)lin);
            }
            hist[k]++;
        }
        int osz = _opSize;
        switch (op)
        {
            // ---- ALU: ADD OR ADC SBB AND SUB XOR CMP ----
            case 0x00: case 0x08: case 0x10: case 0x18: case 0x20: case 0x28: case 0x30: case 0x38:
                AluRmReg(op >> 3, 1); return;
            case 0x01: case 0x09: case 0x11: case 0x19: case 0x21: case 0x29: case 0x31: case 0x39:
                AluRmReg(op >> 3, osz); return;
            case 0x02: case 0x0A: case 0x12: case 0x1A: case 0x22: case 0x2A: case 0x32: case 0x3A:
                AluRegRm(op >> 3, 1); return;
            case 0x03: case 0x0B: case 0x13: case 0x1B: case 0x23: case 0x2B: case 0x33: case 0x3B:
                AluRegRm(op >> 3, osz); return;
            case 0x04: case 0x0C: case 0x14: case 0x1C: case 0x24: case 0x2C: case 0x34: case 0x3C:
            {
                uint b = Fetch8();
                uint a = GetReg8(EAX);
                uint r = AluCalc(op >> 3, a, b, 1, out var lop);
                if ((op >> 3) != 7) SetReg8(EAX, r);
                SetLazy(lop, a, b, r, 1);
                return;
            }
            case 0x05: case 0x0D: case 0x15: case 0x1D: case 0x25: case 0x2D: case 0x35: case 0x3D:
            {
                uint b = FetchImm(osz);
                uint a = GetReg(osz, EAX);
                uint r = AluCalc(op >> 3, a, b, osz, out var lop);
                if ((op >> 3) != 7) SetReg(osz, EAX, r);
                SetLazy(lop, a, b, r, osz);
                return;
            }
            case 0x06: PushSeg(ES); return;
            case 0x07: PopSeg(ES); return;
            case 0x0E: PushSeg(CS); return;
            case 0x0F: Execute0F(); return;
            case 0x16: PushSeg(SS); return;
            case 0x17: PopSeg(SS); return;
            case 0x1E: PushSeg(DS); return;
            case 0x1F: PopSeg(DS); return;
            case 0x27: Daa(); return;
            case 0x2F: Das(); return;
            case 0x37: Aaa(); return;
            case 0x3F: Aas(); return;

            // ---- INC/DEC/PUSH/POP reg ----
            case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
            {
                uint a = GetReg(osz, op & 7);
                uint r = (a + 1) & SizeMask(osz);
                SetReg(osz, op & 7, r);
                SetLazyIncDec(LazyOp.Inc, a, r, osz);
                return;
            }
            case 0x48: case 0x49: case 0x4A: case 0x4B: case 0x4C: case 0x4D: case 0x4E: case 0x4F:
            {
                uint a = GetReg(osz, op & 7);
                uint r = (a - 1) & SizeMask(osz);
                SetReg(osz, op & 7, r);
                SetLazyIncDec(LazyOp.Dec, a, r, osz);
                return;
            }
            case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
                Push(osz, GetReg(osz, op & 7)); return;
            case 0x58: case 0x59: case 0x5A: case 0x5B: case 0x5C: case 0x5D: case 0x5E: case 0x5F:
            {
                uint v = Pop(osz);
                SetReg(osz, op & 7, v);
                return;
            }
            case 0x60: Pusha(); return;
            case 0x61: Popa(); return;
            case 0x62: Bound(); return;
            case 0x63: Arpl(); return;
            case 0x68: Push(osz, FetchImm(osz)); return;
            case 0x69: case 0x6B:
            {
                DecodeModRM();
                uint a = ReadRM(osz);
                uint b = op == 0x6B ? (uint)(sbyte)Fetch8() : FetchImm(osz);
                SetReg(osz, _regField, IMul2(a, b, osz));
                return;
            }
            case 0x6A: Push(osz, (uint)(sbyte)Fetch8()); return;
            case 0x6C: Ins(1); return;
            case 0x6D: Ins(osz); return;
            case 0x6E: Outs(1); return;
            case 0x6F: Outs(osz); return;

            // ---- Jcc short ----
            case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
            case 0x78: case 0x79: case 0x7A: case 0x7B: case 0x7C: case 0x7D: case 0x7E: case 0x7F:
            {
                uint d = (uint)(sbyte)Fetch8();
                if (Condition(op & 15)) JumpNear(_eip + d);
                return;
            }

            // ---- Group 1 ----
            case 0x80: case 0x82:
            {
                DecodeModRM();
                uint a = ReadRM(1);
                uint b = Fetch8();
                uint r = AluCalc(_regField, a, b, 1, out var lop);
                if (_regField != 7) WriteRM(1, r);
                SetLazy(lop, a, b, r, 1);
                return;
            }
            case 0x81: case 0x83:
            {
                DecodeModRM();
                uint a = ReadRM(osz);
                uint b = op == 0x81 ? FetchImm(osz) : (uint)(sbyte)Fetch8() & SizeMask(osz);
                uint r = AluCalc(_regField, a, b, osz, out var lop);
                if (_regField != 7) WriteRM(osz, r);
                SetLazy(lop, a, b, r, osz);
                return;
            }
            case 0x84: case 0x85:
            {
                int size = op == 0x84 ? 1 : osz;
                DecodeModRM();
                uint a = ReadRM(size), b = GetReg(size, _regField);
                SetLazy(LazyOp.Logic, a, b, a & b, size);
                return;
            }
            case 0x86: case 0x87:
            {
                int size = op == 0x86 ? 1 : osz;
                DecodeModRM();
                uint a = ReadRM(size), b = GetReg(size, _regField);
                WriteRM(size, b);
                SetReg(size, _regField, a);
                return;
            }
            case 0x88: DecodeModRM(); WriteRM(1, GetReg8(_regField)); return;
            case 0x89: DecodeModRM(); WriteRM(osz, GetReg(osz, _regField)); return;
            case 0x8A: DecodeModRM(); SetReg8(_regField, ReadRM(1)); return;
            case 0x8B: DecodeModRM(); SetReg(osz, _regField, ReadRM(osz)); return;
            case 0x8C:
            {
                DecodeModRM();
                if (_regField > 5) throw Fault(6);
                uint v = _sel[_regField];
                if (_mod == 3) SetReg(osz, _rm, v); else Write16(_eaSeg, _ea, (ushort)v);
                return;
            }
            case 0x8D:
                DecodeModRM();
                if (_mod == 3) throw Fault(6);
                SetReg(osz, _regField, _ea);
                return;
            case 0x8E:
            {
                DecodeModRM();
                if (_regField > 5 || _regField == CS) throw Fault(6);
                ushort sel = (ushort)ReadRM(2);
                LoadSegment(_regField, sel);
                if (_regField == SS) { _shadow = _ssShadow = true; _checkEvents = true; }
                return;
            }
            case 0x8F:
            {
                // POP r/m: ESP is incremented before the effective address is used.
                uint v = PeekStack(osz, 0);
                uint oldEsp = _r[ESP];
                SetStackPtr(StackPtr + (uint)osz);
                try
                {
                    DecodeModRM();
                    WriteRM(osz, v);
                }
                catch (CpuFault)
                {
                    _r[ESP] = oldEsp;
                    throw;
                }
                return;
            }
            case 0x90:
                if (_rep == 0xF3) { /* PAUSE */ }
                return;
            case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
            {
                uint a = GetReg(osz, EAX), b = GetReg(osz, op & 7);
                SetReg(osz, EAX, b);
                SetReg(osz, op & 7, a);
                return;
            }
            case 0x98:
                if (osz == 2) SetReg(2, EAX, (uint)(sbyte)_r[EAX]);
                else _r[EAX] = (uint)(short)_r[EAX];
                return;
            case 0x99:
                if (osz == 2) SetReg(2, EDX, (_r[EAX] & 0x8000) != 0 ? 0xFFFFu : 0);
                else _r[EDX] = (_r[EAX] & 0x8000_0000) != 0 ? 0xFFFF_FFFFu : 0;
                return;
            case 0x9A:
            {
                uint off = FetchImm(osz);
                ushort sel = Fetch16();
                FarCall(sel, off, osz);
                return;
            }
            case 0x9B: FpuWait(); return;
            case 0x9C: Pushf(); return;
            case 0x9D: Popf(); return;
            case 0x9E:
            {
                MaterializeFlags();
                uint ah = (_r[EAX] >> 8) & 0xD5;
                _flags = (_flags & ~0xD5u) | ah | 2;
                return;
            }
            case 0x9F:
                SetReg8(4, GetFlags() & 0xFF);
                return;
            case 0xA0: SetReg8(EAX, Read8(DataSeg, FetchImm(_addr32 ? 4 : 2))); return;
            case 0xA1: { uint off = FetchImm(_addr32 ? 4 : 2); SetReg(osz, EAX, ReadSized(DataSeg, off, osz)); return; }
            case 0xA2: Write8(DataSeg, FetchImm(_addr32 ? 4 : 2), GetReg8(EAX)); return;
            case 0xA3: { uint off = FetchImm(_addr32 ? 4 : 2); WriteSized(DataSeg, off, osz, GetReg(osz, EAX)); return; }
            case 0xA4: Movs(1); return;
            case 0xA5: Movs(osz); return;
            case 0xA6: Cmps(1); return;
            case 0xA7: Cmps(osz); return;
            case 0xA8: { uint b = Fetch8(); uint a = GetReg8(EAX); SetLazy(LazyOp.Logic, a, b, a & b, 1); return; }
            case 0xA9: { uint b = FetchImm(osz); uint a = GetReg(osz, EAX); SetLazy(LazyOp.Logic, a, b, a & b, osz); return; }
            case 0xAA: Stos(1); return;
            case 0xAB: Stos(osz); return;
            case 0xAC: Lods(1); return;
            case 0xAD: Lods(osz); return;
            case 0xAE: Scas(1); return;
            case 0xAF: Scas(osz); return;
            case 0xB0: case 0xB1: case 0xB2: case 0xB3: case 0xB4: case 0xB5: case 0xB6: case 0xB7:
                SetReg8(op & 7, Fetch8()); return;
            case 0xB8: case 0xB9: case 0xBA: case 0xBB: case 0xBC: case 0xBD: case 0xBE: case 0xBF:
                SetReg(osz, op & 7, FetchImm(osz)); return;

            // ---- Group 2 shifts ----
            case 0xC0: { DecodeModRM(); uint a = ReadRM(1); int c = Fetch8(); ShiftOp(_regField, a, c, 1); return; }
            case 0xC1: { DecodeModRM(); uint a = ReadRM(osz); int c = Fetch8(); ShiftOp(_regField, a, c, osz); return; }
            case 0xD0: { DecodeModRM(); ShiftOp(_regField, ReadRM(1), 1, 1); return; }
            case 0xD1: { DecodeModRM(); ShiftOp(_regField, ReadRM(osz), 1, osz); return; }
            case 0xD2: { DecodeModRM(); ShiftOp(_regField, ReadRM(1), (int)(_r[ECX] & 0xFF), 1); return; }
            case 0xD3: { DecodeModRM(); ShiftOp(_regField, ReadRM(osz), (int)(_r[ECX] & 0xFF), osz); return; }

            case 0xC2: { ushort n = Fetch16(); uint ip = Pop(osz); JumpNear(ip); SetStackPtr(StackPtr + n); return; }
            case 0xC3: { uint ip = PeekStack(osz, 0); JumpNear(ip); SetStackPtr(StackPtr + (uint)osz); return; }
            case 0xC4: LoadFarPointer(ES); return;
            case 0xC5: LoadFarPointer(DS); return;
            case 0xC6: DecodeModRM(); WriteRM(1, Fetch8()); return;
            case 0xC7: DecodeModRM(); WriteRM(osz, FetchImm(osz)); return;
            case 0xC8: Enter(); return;
            case 0xC9:
            {
                uint bp = _ss32 ? _r[EBP] : _r[EBP] & 0xFFFF;
                uint v = ReadSized(SS, bp, osz);
                SetStackPtr(bp + (uint)osz);
                SetReg(osz, EBP, v);
                return;
            }
            case 0xCA: { ushort n = Fetch16(); FarReturn(osz, n); return; }
            case 0xCB: FarReturn(osz, 0); return;
            case 0xCC: SoftwareInterrupt(3, true); return;
            case 0xCD: SoftwareInterrupt(Fetch8(), false); return;
            case 0xCE: if (GetOF()) SoftwareInterrupt(4, true); return;
            case 0xCF: Iret(osz); return;
            case 0xD4:
            {
                byte b = Fetch8();
                if (b == 0) throw Fault(0);
                uint al = _r[EAX] & 0xFF;
                uint r = ((al / b) << 8) | (al % b);
                SetReg(2, EAX, r);
                SetFlagsResult(r & 0xFF, 1, false, false, false);
                return;
            }
            case 0xD5:
            {
                byte b = Fetch8();
                uint r = ((_r[EAX] & 0xFF) + ((_r[EAX] >> 8) & 0xFF) * b) & 0xFF;
                uint a0 = _r[EAX] & 0xFF, m = (((_r[EAX] >> 8) & 0xFF) * b) & 0xFF;
                SetReg(2, EAX, r);
                SetLazy(LazyOp.Add, a0, m, r, 1);
                return;
            }
            case 0xD6: SetReg8(EAX, GetCF() ? 0xFFu : 0); return; // SALC
            case 0xD7: SetReg8(EAX, Read8(DataSeg, (_r[EBX] + (_r[EAX] & 0xFF)) & AddrMask)); return;
            case 0xD8: case 0xD9: case 0xDA: case 0xDB: case 0xDC: case 0xDD: case 0xDE: case 0xDF:
                EscapeFpu(op); return;
            case 0xE0: case 0xE1: case 0xE2:
            {
                uint d = (uint)(sbyte)Fetch8();
                uint c = (GetReg(_addr32 ? 4 : 2, ECX) - 1) & AddrMask;
                SetReg(_addr32 ? 4 : 2, ECX, c);
                bool take = c != 0 && (op == 0xE2 || (op == 0xE1 ? GetZF() : !GetZF()));
                if (take) JumpNear(_eip + d);
                return;
            }
            case 0xE3:
            {
                uint d = (uint)(sbyte)Fetch8();
                if ((_r[ECX] & AddrMask) == 0) JumpNear(_eip + d);
                return;
            }
            case 0xE4: { ushort p = Fetch8(); CheckIo(p, 1); SetReg8(EAX, In(p, 1)); return; }
            case 0xE5: { ushort p = Fetch8(); CheckIo(p, osz); SetReg(osz, EAX, In(p, osz)); return; }
            case 0xE6: { ushort p = Fetch8(); CheckIo(p, 1); Out(p, 1, _r[EAX]); return; }
            case 0xE7: { ushort p = Fetch8(); CheckIo(p, osz); Out(p, osz, _r[EAX]); return; }
            case 0xE8:
            {
                uint d = FetchImm(osz);
                uint target = (_eip + d) & (osz == 4 ? 0xFFFF_FFFF : 0xFFFF);
                CheckNearTarget(target);
                Push(osz, _eip);
                JumpNear(target);
                return;
            }
            case 0xE9: { uint d = FetchImm(osz); JumpNear(_eip + d); return; }
            case 0xEA: { uint off = FetchImm(osz); ushort sel = Fetch16(); FarJump(sel, off, osz); return; }
            case 0xEB: { uint d = (uint)(sbyte)Fetch8(); JumpNear(_eip + d); return; }
            case 0xEC: { ushort p = (ushort)_r[EDX]; CheckIo(p, 1); SetReg8(EAX, In(p, 1)); return; }
            case 0xED: { ushort p = (ushort)_r[EDX]; CheckIo(p, osz); SetReg(osz, EAX, In(p, osz)); return; }
            case 0xEE: { ushort p = (ushort)_r[EDX]; CheckIo(p, 1); Out(p, 1, _r[EAX]); return; }
            case 0xEF: { ushort p = (ushort)_r[EDX]; CheckIo(p, osz); Out(p, osz, _r[EAX]); return; }
            case 0xF1: SoftwareInterrupt(1, true, icebp: true); return;
            case 0xF4:
                if (_pe && _cpl != 0) throw Fault(13, 0);
                Halted = true;
                _stopLoop = true;
                return;
            case 0xF5: SetCF(!GetCF()); return;
            case 0xF6: case 0xF7: Group3(op == 0xF6 ? 1 : osz); return;
            case 0xF8: SetCF(false); return;
            case 0xF9: SetCF(true); return;
            case 0xFA:
                if (!IoplAllows()) { VirtualCliSti(false); return; }
                _flags &= ~IF;
                return;
            case 0xFB:
                if (!IoplAllows()) { VirtualCliSti(true); return; }
                if ((_flags & IF) == 0) { _shadow = true; }
                _flags |= IF;
                _checkEvents = true;
                return;
            case 0xFC: _flags &= ~DF; return;
            case 0xFD: _flags |= DF; return;
            case 0xFE:
            {
                DecodeModRM();
                if (_regField > 1) throw Fault(6);
                uint a = ReadRM(1);
                uint r = (_regField == 0 ? a + 1 : a - 1) & 0xFF;
                WriteRM(1, r);
                SetLazyIncDec(_regField == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, 1);
                return;
            }
            case 0xFF: Group5(osz); return;
            default:
                throw Fault(6);
        }
    }

    // ---------------- helpers ----------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AluRmReg(int aluOp, int size)
    {
        DecodeModRM();
        uint a = ReadRM(size), b = GetReg(size, _regField);
        uint r = AluCalc(aluOp & 7, a, b, size, out var lop);
        if ((aluOp & 7) != 7) WriteRM(size, r);
        SetLazy(lop, a, b, r, size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AluRegRm(int aluOp, int size)
    {
        DecodeModRM();
        uint b = ReadRM(size), a = GetReg(size, _regField);
        uint r = AluCalc(aluOp & 7, a, b, size, out var lop);
        if ((aluOp & 7) != 7) SetReg(size, _regField, r);
        SetLazy(lop, a, b, r, size);
    }

    /// <summary>Computes an ALU result without touching flags (the caller writes, then sets the flags).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint AluCalc(int aluOp, uint a, uint b, int size, out LazyOp lop)
    {
        uint m = SizeMask(size);
        switch (aluOp & 7)
        {
            case 0: lop = LazyOp.Add; return (a + b) & m;
            case 1: lop = LazyOp.Logic; return a | b;
            case 2: { bool c = GetCF(); lop = c ? LazyOp.Adc : LazyOp.Add; return (a + b + (c ? 1u : 0u)) & m; }
            case 3: { bool c = GetCF(); lop = c ? LazyOp.Sbb : LazyOp.Sub; return (a - b - (c ? 1u : 0u)) & m; }
            case 4: lop = LazyOp.Logic; return a & b;
            case 5: lop = LazyOp.Sub; return (a - b) & m;
            case 6: lop = LazyOp.Logic; return a ^ b;
            default: lop = LazyOp.Sub; return (a - b) & m;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void JumpNear(uint target)
    {
        if (_opSize == 2) target &= 0xFFFF;
        CheckNearTarget(target);
        _eip = target;
    }

    private void CheckNearTarget(uint target)
    {
        if (_pe && !_v86 && target > _segLimit[CS]) throw Fault(13, 0);
    }

    private void ShiftOp(int kind, uint a, int count, int size)
    {
        count &= 0x1F;
        if (count == 0) return;
        int bits = size * 8;
        uint m = SizeMask(size), sign = SignBit(size);
        uint r;
        bool cf, of;
        switch (kind)
        {
            case 0: // ROL
            {
                int c = count % bits;
                r = c == 0 ? a : ((a << c) | (a >> (bits - c))) & m;
                cf = (r & 1) != 0;
                of = ((r & sign) != 0) ^ cf;
                WriteRM(size, r);
                SetCFOF(cf, of);
                return;
            }
            case 1: // ROR
            {
                int c = count % bits;
                r = c == 0 ? a : ((a >> c) | (a << (bits - c))) & m;
                cf = (r & sign) != 0;
                of = ((r ^ (r << 1)) & sign) != 0;
                WriteRM(size, r);
                SetCFOF(cf, of);
                return;
            }
            case 2: // RCL
            {
                int c = count % (bits + 1);
                ulong v = a | ((GetCF() ? 1ul : 0ul) << bits);
                for (int k = 0; k < c; k++) v = ((v << 1) | (v >> bits)) & ((1ul << (bits + 1)) - 1);
                r = (uint)v & m;
                cf = ((v >> bits) & 1) != 0;
                of = ((r & sign) != 0) ^ cf;
                WriteRM(size, r);
                SetCFOF(cf, of);
                return;
            }
            case 3: // RCR
            {
                int c = count % (bits + 1);
                ulong v = a | ((GetCF() ? 1ul : 0ul) << bits);
                for (int k = 0; k < c; k++) v = ((v >> 1) | ((v & 1) << bits)) & ((1ul << (bits + 1)) - 1);
                r = (uint)v & m;
                cf = ((v >> bits) & 1) != 0;
                of = ((r ^ (r << 1)) & sign) != 0;
                WriteRM(size, r);
                SetCFOF(cf, of);
                return;
            }
            case 4: case 6: // SHL/SAL
                r = ShlCalc(a, count, size, out cf, out of);
                WriteRM(size, r);
                SetFlagsResult(r, size, cf, of, false);
                return;
            case 5: // SHR
                r = ShrCalc(a, count, size, out cf, out of);
                WriteRM(size, r);
                SetFlagsResult(r, size, cf, of, false);
                return;
            default: // SAR
                r = SarCalc(a, count, size, out cf);
                WriteRM(size, r);
                SetFlagsResult(r, size, cf, false, false);
                return;
        }
    }

    // SHL/SHR/SAR results and CF/OF for a count of 1-31 (shared with the decoded-instruction cache).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ShlCalc(uint a, int count, int size, out bool cf, out bool of)
    {
        int bits = size * 8;
        ulong v = (ulong)a << count;
        uint r = (uint)v & SizeMask(size);
        cf = ((v >> bits) & 1) != 0;
        of = ((r & SignBit(size)) != 0) ^ cf;
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ShrCalc(uint a, int count, int size, out bool cf, out bool of)
    {
        int bits = size * 8;
        cf = count <= bits && ((a >> (count - 1)) & 1) != 0;
        of = count == 1 && (a & SignBit(size)) != 0; // OF from the last 1-bit step (0 for counts > 1), as the 286 does
        return count >= bits ? 0 : a >> count;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint SarCalc(uint a, int count, int size, out bool cf)
    {
        int bits = size * 8;
        uint m = SizeMask(size);
        int sa = (int)(size == 1 ? (uint)(sbyte)a : size == 2 ? (uint)(short)a : a);
        if (count >= bits) { cf = sa < 0; return sa < 0 ? m : 0; }
        cf = ((sa >> (count - 1)) & 1) != 0;
        return (uint)(sa >> count) & m;
    }

    private void SetCFOF(bool cf, bool of)
    {
        MaterializeFlags();
        _flags = (_flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
    }

    private uint IMul2(uint a, uint b, int size)
    {
        long r;
        bool ovf;
        uint res;
        if (size == 2)
        {
            r = (long)(short)a * (short)b;
            res = (uint)r & 0xFFFF;
            ovf = r != (short)r;
        }
        else
        {
            r = (long)(int)a * (int)b;
            res = (uint)r;
            ovf = r != (int)r;
        }
        SetFlagsResult(res, size, ovf, ovf, false);
        return res;
    }

    private void Group3(int size)
    {
        DecodeModRM();
        Group3Body(size);
    }

    /// <summary>F6/F7 after the ModRM byte is decoded (also called by the decoded-instruction cache for /2-/7).</summary>
    private void Group3Body(int size)
    {
        switch (_regField)
        {
            case 0: case 1:
            {
                uint a = ReadRM(size), b = FetchImm(size);
                SetLazy(LazyOp.Logic, a, b, a & b, size);
                return;
            }
            case 2: WriteRM(size, ~ReadRM(size) & SizeMask(size)); return;
            case 3:
            {
                uint a = ReadRM(size);
                uint r = (0 - a) & SizeMask(size);
                WriteRM(size, r);
                SetLazy(LazyOp.Sub, 0, a, r, size);
                return;
            }
            case 4: // MUL
            {
                uint b = ReadRM(size);
                if (size == 1)
                {
                    uint r = (_r[EAX] & 0xFF) * b;
                    SetReg(2, EAX, r);
                    bool hi = (r & 0xFF00) != 0;
                    SetFlagsResult(r & 0xFF, 1, hi, hi, false);
                }
                else if (size == 2)
                {
                    uint r = (_r[EAX] & 0xFFFF) * b;
                    SetReg(2, EAX, r);
                    SetReg(2, EDX, r >> 16);
                    bool hi = (r >> 16) != 0;
                    SetFlagsResult(r & 0xFFFF, 2, hi, hi, false);
                }
                else
                {
                    ulong r = (ulong)_r[EAX] * b;
                    _r[EAX] = (uint)r;
                    _r[EDX] = (uint)(r >> 32);
                    bool hi = (r >> 32) != 0;
                    SetFlagsResult((uint)r, 4, hi, hi, false);
                }
                return;
            }
            case 5: // IMUL
            {
                uint b = ReadRM(size);
                if (size == 1)
                {
                    int r = (sbyte)_r[EAX] * (sbyte)b;
                    SetReg(2, EAX, (uint)r);
                    bool ovf = r != (sbyte)r;
                    SetFlagsResult((uint)r & 0xFF, 1, ovf, ovf, false);
                }
                else if (size == 2)
                {
                    int r = (short)_r[EAX] * (short)b;
                    SetReg(2, EAX, (uint)r);
                    SetReg(2, EDX, (uint)r >> 16);
                    bool ovf = r != (short)r;
                    SetFlagsResult((uint)r & 0xFFFF, 2, ovf, ovf, false);
                }
                else
                {
                    long r = (long)(int)_r[EAX] * (int)b;
                    _r[EAX] = (uint)r;
                    _r[EDX] = (uint)((ulong)r >> 32);
                    bool ovf = r != (int)r;
                    SetFlagsResult((uint)r, 4, ovf, ovf, false);
                }
                return;
            }
            case 6: // DIV
            {
                uint b = ReadRM(size);
                if (b == 0) throw Fault(0);
                if (size == 1)
                {
                    uint n = _r[EAX] & 0xFFFF;
                    uint q = n / b;
                    if (q > 0xFF) throw Fault(0);
                    SetReg(2, EAX, ((n % b) << 8) | q);
                }
                else if (size == 2)
                {
                    uint n = ((_r[EDX] & 0xFFFF) << 16) | (_r[EAX] & 0xFFFF);
                    uint q = n / b;
                    if (q > 0xFFFF) throw Fault(0);
                    SetReg(2, EAX, q);
                    SetReg(2, EDX, n % b);
                }
                else
                {
                    ulong n = ((ulong)_r[EDX] << 32) | _r[EAX];
                    ulong q = n / b;
                    if (q > 0xFFFF_FFFF) throw Fault(0);
                    _r[EAX] = (uint)q;
                    _r[EDX] = (uint)(n % b);
                }
                return;
            }
            default: // IDIV
            {
                uint b = ReadRM(size);
                if (b == 0) throw Fault(0);
                if (size == 1)
                {
                    int n = (short)_r[EAX];
                    int d = (sbyte)b;
                    int q = n / d;
                    if (q > 127 || q < -128) throw Fault(0);
                    SetReg(2, EAX, ((uint)(n % d) & 0xFF) << 8 | ((uint)q & 0xFF));
                }
                else if (size == 2)
                {
                    int n = (int)(((_r[EDX] & 0xFFFF) << 16) | (_r[EAX] & 0xFFFF));
                    int d = (short)b;
                    long q = (long)n / d;
                    if (q > 32767 || q < -32768) throw Fault(0);
                    SetReg(2, EAX, (uint)q);
                    SetReg(2, EDX, (uint)((long)n % d));
                }
                else
                {
                    long n = (long)(((ulong)_r[EDX] << 32) | _r[EAX]);
                    long d = (int)b;
                    if (n == long.MinValue && d == -1) throw Fault(0);
                    long q = n / d;
                    if (q > int.MaxValue || q < int.MinValue) throw Fault(0);
                    _r[EAX] = (uint)q;
                    _r[EDX] = (uint)(n % d);
                }
                return;
            }
        }
    }

    private void Group5(int osz)
    {
        DecodeModRM();
        switch (_regField)
        {
            case 0: case 1:
            {
                uint a = ReadRM(osz);
                uint r = (_regField == 0 ? a + 1 : a - 1) & SizeMask(osz);
                WriteRM(osz, r);
                SetLazyIncDec(_regField == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, osz);
                return;
            }
            case 2:
            {
                uint target = ReadRM(osz);
                if (osz == 2) target &= 0xFFFF;
                CheckNearTarget(target);
                Push(osz, _eip);
                _eip = target;
                return;
            }
            case 3:
            {
                if (_mod == 3) throw Fault(6);
                uint off = ReadSized(_eaSeg, _ea, osz);
                ushort sel = Read16(_eaSeg, (_ea + (uint)osz) & AddrMask);
                FarCall(sel, off, osz);
                return;
            }
            case 4: JumpNear(ReadRM(osz)); return;
            case 5:
            {
                if (_mod == 3) throw Fault(6);
                uint off = ReadSized(_eaSeg, _ea, osz);
                ushort sel = Read16(_eaSeg, (_ea + (uint)osz) & AddrMask);
                FarJump(sel, off, osz);
                return;
            }
            case 6: Push(osz, ReadRM(osz)); return;
            default: throw Fault(6);
        }
    }

    private void PushSeg(int s)
    {
        if (_opSize == 4)
        {
            // A 32-bit push of a segment register writes only 16 bits on P6 (the upper half is unchanged).
            uint sp = (_r[ESP] - 4) & (_ss32 ? 0xFFFF_FFFF : 0xFFFF);
            Write16(SS, sp, _sel[s]);
            SetStackPtr(sp);
        }
        else Push16(_sel[s]);
    }

    private void PopSeg(int s)
    {
        ushort sel = (ushort)PeekStack(_opSize, 0);
        // The increment uses the size of the stack the selector came from: POP SS may change SS.B.
        bool oldSs32 = _ss32;
        uint sp = StackPtr + (uint)_opSize;
        LoadSegment(s, sel);
        if (oldSs32) _r[ESP] = sp;
        else _r[ESP] = (_r[ESP] & 0xFFFF_0000) | (sp & 0xFFFF);
        if (s == SS) { _shadow = _ssShadow = true; _checkEvents = true; }
    }

    private void Pusha()
    {
        int osz = _opSize;
        uint sp = _r[ESP];
        uint m = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
        // Check the whole area first so a fault leaves ESP unchanged.
        uint low = (sp - (uint)(8 * osz)) & m;
        for (int i = 0; i < 8; i++)
        {
            uint v = i == ESP ? sp : _r[i];
            uint addr = (sp - (uint)((i + 1) * osz)) & m;
            WriteSized(SS, addr, osz, osz == 2 ? v & 0xFFFF : v);
        }
        SetStackPtr(low);
    }

    private void Popa()
    {
        int osz = _opSize;
        uint sp = StackPtr;
        uint m = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
        uint[] vals = _popaTmp;
        for (int i = 7; i >= 0; i--)
            vals[i] = ReadSized(SS, (sp + (uint)((7 - i) * osz)) & m, osz);
        for (int i = 0; i < 8; i++)
            if (i != ESP) SetReg(osz, i, vals[i]);
        SetStackPtr(sp + (uint)(8 * osz));
    }
    private readonly uint[] _popaTmp = new uint[8];

    private void Bound()
    {
        DecodeModRM();
        if (_mod == 3) throw Fault(6);
        int osz = _opSize;
        if (osz == 2)
        {
            short idx = (short)_r[_regField];
            short lo = (short)Read16(_eaSeg, _ea), hi = (short)Read16(_eaSeg, (_ea + 2) & AddrMask);
            if (idx < lo || idx > hi) throw Fault(5);
        }
        else
        {
            int idx = (int)_r[_regField];
            int lo = (int)Read32(_eaSeg, _ea), hi = (int)Read32(_eaSeg, _ea + 4);
            if (idx < lo || idx > hi) throw Fault(5);
        }
    }

    private void LoadFarPointer(int seg)
    {
        DecodeModRM();
        if (_mod == 3) throw Fault(6);
        int osz = _opSize;
        uint off = ReadSized(_eaSeg, _ea, osz);
        ushort sel = Read16(_eaSeg, (_ea + (uint)osz) & AddrMask);
        LoadSegment(seg, sel);
        SetReg(osz, _regField, off);
        if (seg == SS) { _shadow = true; _checkEvents = true; }
    }

    private void Enter()
    {
        int osz = _opSize;
        ushort size = Fetch16();
        int level = Fetch8() & 31;
        uint m = _ss32 ? 0xFFFF_FFFF : 0xFFFF;
        uint sp = _r[ESP];
        uint bp = _r[EBP];
        sp = (sp - (uint)osz) & m;
        WriteSized(SS, sp, osz, bp);
        // The frame pointer is the whole ESP after that push (SS.B=0: SP wrapped, the upper half of ESP kept).
        uint frame = osz == 4 ? (_r[ESP] & ~m) | sp : sp & 0xFFFF;
        if (level > 0)
        {
            for (int i = 1; i < level; i++)
            {
                bp = (bp - (uint)osz) & m;
                uint v = ReadSized(SS, bp, osz);
                sp = (sp - (uint)osz) & m;
                WriteSized(SS, sp, osz, v);
            }
            sp = (sp - (uint)osz) & m;
            WriteSized(SS, sp, osz, frame);
        }
        sp = (sp - size) & m;
        // ENTER ends with a write check of the final stack top (#SS/#PF before ESP/EBP change).
        ProbeWrite(LinWrite(SS, sp, osz >> 1), osz);
        if (osz == 4) _r[EBP] = frame;
        else SetReg(2, EBP, frame);
        SetStackPtr(sp);
    }

    private void Pushf()
    {
        if (_v86 && (_flags & IOPL) != IOPL) { PushfVme(); return; }
        uint f = GetFlags() & ~(VM | RF);
        Push(_opSize, f);
    }

    private void Popf()
    {
        if (_v86 && (_flags & IOPL) != IOPL) { PopfVme(); return; }
        uint v = Pop(_opSize);
        uint mask = CF | PF | AF | ZF | SF | TF | DF | OF | NT;
        if (_opSize == 4) mask |= AC | ID;
        if (!_pe || _cpl == 0) mask |= IOPL;
        if (!_pe || _cpl <= (int)((_flags & IOPL) >> 12) || _v86) mask |= IF;
        if (_v86) mask &= ~IOPL;
        MaterializeFlags();
        uint nf = (_flags & ~mask) | (v & mask) | 2;
        _flags = nf;
        _checkEvents = true;
        if (_opSize == 4) UpdateMemHooks(); // AC

    }

    private bool IoplAllows() => !_pe || _cpl <= (int)((_flags & IOPL) >> 12);

    // ---- BCD ----
    private void Daa()
    {
        uint al = _r[EAX] & 0xFF;
        bool cf = GetCF(), af = GetAF();
        uint oldAl = al;
        bool newCf = false, newAf = false;
        if ((al & 0xF) > 9 || af) { newCf = cf || al + 6 > 0xFF; al = (al + 6) & 0xFF; newAf = true; }
        if (oldAl > 0x99 || cf) { al = (al + 0x60) & 0xFF; newCf = true; }
        SetReg8(EAX, al);
        SetFlagsResult(al, 1, newCf, false, newAf);
    }

    private void Das()
    {
        uint al = _r[EAX] & 0xFF;
        bool cf = GetCF(), af = GetAF();
        uint oldAl = al;
        bool newCf = false, newAf = false;
        if ((al & 0xF) > 9 || af) { newCf = cf || al < 6; al = (al - 6) & 0xFF; newAf = true; }
        if (oldAl > 0x99 || cf) { al = (al - 0x60) & 0xFF; newCf = true; }
        SetReg8(EAX, al);
        SetFlagsResult(al, 1, newCf, false, newAf);
    }

    private void Aaa()
    {
        uint ax = _r[EAX] & 0xFFFF;
        bool adj = (ax & 0xF) > 9 || GetAF();
        if (adj) ax = (ax + 0x106) & 0xFFFF;
        ax &= 0xFF0F;
        SetReg(2, EAX, ax);
        SetFlagsResult(ax & 0xFF, 1, adj, false, adj);
    }

    private void Aas()
    {
        uint ax = _r[EAX] & 0xFFFF;
        bool adj = (ax & 0xF) > 9 || GetAF();
        if (adj) ax = (ax - 6) & 0xFFFF;
        if (adj) ax = (ax & 0x00FF) | ((((ax >> 8) - 1) & 0xFF) << 8);
        ax &= 0xFF0F;
        SetReg(2, EAX, ax);
        SetFlagsResult(ax & 0xFF, 1, adj, false, adj);
    }

    // ---- I/O ----
    private uint In(ushort port, int size)
    {
        uint v = Io.Read(port, size);
        _checkEvents = true;
        if (_ioBpMask != 0) IoBreakpoints(port, size);
        CheckMappingVersion();
        return v;
    }

    private void Out(ushort port, int size, uint v)
    {
        Io.Write(port, size, v & SizeMask(size));
        _checkEvents = true;
        if (_ioBpMask != 0) IoBreakpoints(port, size);
        CheckMappingVersion();
    }
}

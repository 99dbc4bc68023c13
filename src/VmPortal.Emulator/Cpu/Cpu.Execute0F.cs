using System.Numerics;

namespace VmPortal.Emulator.Cpu;

// The two-byte opcode map (0F xx): this switch is the decode table for the 286/386/486/Pentium/P6 extensions.
public sealed partial class Cpu
{
    private void Execute0F()
    {
        byte op = Fetch8();
        int osz = _opSize;
        switch (op)
        {
            case 0x00: Group6(); return;
            case 0x01: Group7(); return;
            case 0x02: case 0x03: // LAR / LSL
            {
                if (!_pe || _v86) throw Fault(6);
                DecodeModRM();
                ushort sel = (ushort)ReadRM(2);
                MaterializeFlags();
                if (DescriptorAccessible(sel, op == 0x02 ? 0 : 1, out uint lo, out uint hi))
                {
                    uint v;
                    if (op == 0x02) v = hi & 0x00F0_FF00;
                    else { DecodeDescriptor(lo, hi, out _, out uint limit, out _); v = limit; }
                    SetReg(osz, _regField, v);
                    _flags |= ZF;
                }
                else _flags &= ~ZF;
                return;
            }
            case 0x06: // CLTS
                if (_pe && _cpl != 0) throw Fault(13, 0);
                _cr0 &= ~CR0_TS;
                return;
            case 0x08: case 0x09: // INVD / WBINVD
                if (_pe && _cpl != 0) throw Fault(13, 0);
                return;
            case 0x0B: throw Fault(6); // UD2
            case 0x18: case 0x19: case 0x1A: case 0x1B: case 0x1C: case 0x1D: case 0x1E: case 0x1F:
                DecodeModRM(); // hint NOPs / NOP Ev
                return;
            case 0x20: case 0x22: MovCr(op == 0x22); return;
            case 0x21: case 0x23: MovDr(op == 0x23); return;
            case 0x30: Wrmsr(); return;
            case 0x31: // RDTSC
            {
                if ((_cr4 & CR4_TSD) != 0 && _pe && _cpl != 0) throw Fault(13, 0);
                ulong t = ReadTsc();
                _r[EAX] = (uint)t;
                _r[EDX] = (uint)(t >> 32);
                return;
            }
            case 0x32: Rdmsr(); return;
            case 0x34: Sysenter(); return;
            case 0x35: Sysexit(); return;
            case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
            case 0x48: case 0x49: case 0x4A: case 0x4B: case 0x4C: case 0x4D: case 0x4E: case 0x4F:
            {
                DecodeModRM();
                uint v = ReadRM(osz);
                if (Condition(op & 15)) SetReg(osz, _regField, v);
                return;
            }
            case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
            case 0x88: case 0x89: case 0x8A: case 0x8B: case 0x8C: case 0x8D: case 0x8E: case 0x8F:
            {
                uint d = osz == 4 ? Fetch32() : (uint)(short)Fetch16();
                if (Condition(op & 15)) JumpNear(_eip + d);
                return;
            }
            case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
            case 0x98: case 0x99: case 0x9A: case 0x9B: case 0x9C: case 0x9D: case 0x9E: case 0x9F:
                DecodeModRM();
                WriteRM(1, Condition(op & 15) ? 1u : 0u);
                return;
            case 0xA0: PushSeg(FS); return;
            case 0xA1: PopSeg(FS); return;
            case 0xA2: Cpuid(); return;
            case 0xA3: BitOp(0, false); return;
            case 0xA4: DecodeModRM(); ShiftDouble(true, Fetch8()); return;
            case 0xA5: DecodeModRM(); ShiftDouble(true, (int)(_r[ECX] & 0xFF)); return;
            case 0xA8: PushSeg(GS); return;
            case 0xA9: PopSeg(GS); return;
            case 0xAB: BitOp(1, false); return;
            case 0xAC: DecodeModRM(); ShiftDouble(false, Fetch8()); return;
            case 0xAD: DecodeModRM(); ShiftDouble(false, (int)(_r[ECX] & 0xFF)); return;
            case 0xAE: Group15(); return;
            case 0xAF:
                DecodeModRM();
                SetReg(osz, _regField, IMul2(GetReg(osz, _regField), ReadRM(osz), osz));
                return;
            case 0xB0: case 0xB1: // CMPXCHG
            {
                int size = op == 0xB0 ? 1 : osz;
                DecodeModRM();
                uint dst = ReadRM(size);
                uint acc = GetReg(size, EAX);
                uint r = (acc - dst) & SizeMask(size);
                if (r == 0) WriteRM(size, GetReg(size, _regField));
                else
                {
                    WriteRM(size, dst); // the destination is always written (locked read-modify-write)
                    SetReg(size, EAX, dst);
                }
                SetLazy(LazyOp.Sub, acc, dst, r, size);
                return;
            }
            case 0xB2: LoadFarPointer(SS); return;
            case 0xB3: BitOp(3, false); return;
            case 0xB4: LoadFarPointer(FS); return;
            case 0xB5: LoadFarPointer(GS); return;
            case 0xB6: DecodeModRM(); SetReg(osz, _regField, ReadRM(1)); return;
            case 0xB7: DecodeModRM(); SetReg(osz, _regField, ReadRM(2)); return;
            case 0xBA:
            {
                DecodeModRM();
                if (_regField < 4) throw Fault(6);
                BitOp(_regField switch { 4 => 0, 5 => 1, 6 => 3, _ => 2 }, true); // BT BTS BTR BTC
                return;
            }
            case 0xBB: BitOp(2, false); return;
            case 0xBC: case 0xBD: // BSF / BSR
            {
                DecodeModRM();
                uint v = ReadRM(osz);
                MaterializeFlags();
                if (v == 0) { _flags |= ZF; return; }
                _flags &= ~ZF;
                uint idx = op == 0xBC ? (uint)BitOperations.TrailingZeroCount(v) : (uint)(31 - BitOperations.LeadingZeroCount(v));
                SetReg(osz, _regField, idx);
                return;
            }
            case 0xBE: DecodeModRM(); SetReg(osz, _regField, (uint)(sbyte)ReadRM(1)); return;
            case 0xBF: DecodeModRM(); SetReg(osz, _regField, (uint)(short)ReadRM(2)); return;
            case 0xC0: case 0xC1: // XADD
            {
                int size = op == 0xC0 ? 1 : osz;
                DecodeModRM();
                uint dst = ReadRM(size);
                uint src = GetReg(size, _regField);
                uint r = (dst + src) & SizeMask(size);
                WriteRM(size, r);
                SetReg(size, _regField, dst);
                SetLazy(LazyOp.Add, dst, src, r, size);
                return;
            }
            case 0xC7: // CMPXCHG8B
            {
                DecodeModRM();
                if (_regField != 1 || _mod == 3) throw Fault(6);
                uint lo = Read32(_eaSeg, _ea), hi = Read32(_eaSeg, _ea + 4);
                MaterializeFlags();
                if (lo == _r[EAX] && hi == _r[EDX])
                {
                    Write32(_eaSeg, _ea, _r[EBX]);
                    Write32(_eaSeg, _ea + 4, _r[ECX]);
                    _flags |= ZF;
                }
                else
                {
                    Write32(_eaSeg, _ea, lo);
                    Write32(_eaSeg, _ea + 4, hi);
                    _r[EAX] = lo; _r[EDX] = hi;
                    _flags &= ~ZF;
                }
                return;
            }
            case 0xC8: case 0xC9: case 0xCA: case 0xCB: case 0xCC: case 0xCD: case 0xCE: case 0xCF:
                if (osz == 4) Reg(op & 7) = BinaryPrimitives_ReverseEndianness(Reg(op & 7));
                else SetReg(2, op & 7, 0); // BSWAP r16 is undefined; P6 clears the low word
                return;
            default:
                throw Fault(6);
        }
    }

    private static uint BinaryPrimitives_ReverseEndianness(uint v) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v);

    private void Group6()
    {
        DecodeModRM();
        int reg = _regField;
        if (!_pe || _v86) throw Fault(6);
        switch (reg)
        {
            case 0: // SLDT
                if (_mod == 3) SetReg(_opSize, _rm, _ldtSel); else Write16(_eaSeg, _ea, _ldtSel);
                return;
            case 1: // STR
                if (_mod == 3) SetReg(_opSize, _rm, _trSel); else Write16(_eaSeg, _ea, _trSel);
                return;
            case 2: // LLDT
            {
                if (_cpl != 0) throw Fault(13, 0);
                Lldt((ushort)ReadRM(2));
                return;
            }
            case 3: // LTR
            {
                if (_cpl != 0) throw Fault(13, 0);
                Ltr((ushort)ReadRM(2));
                return;
            }
            case 4: case 5: // VERR / VERW
            {
                ushort sel = (ushort)ReadRM(2);
                bool ok = DescriptorAccessible(sel, reg == 4 ? 2 : 3, out _, out _);
                MaterializeFlags();
                _flags = ok ? _flags | ZF : _flags & ~ZF;
                return;
            }
            default: throw Fault(6);
        }
    }

    private void Group7()
    {
        DecodeModRM();
        switch (_regField)
        {
            case 0: case 1: // SGDT / SIDT
            {
                if (_mod == 3) throw Fault(6);
                uint bas = _regField == 0 ? _gdtBase : _idtBase;
                uint lim = _regField == 0 ? _gdtLimit : _idtLimit;
                Write16(_eaSeg, _ea, (ushort)lim);
                Write32(_eaSeg, (_ea + 2) & AddrMask, _opSize == 2 ? bas & 0x00FF_FFFF : bas);
                return;
            }
            case 2: case 3: // LGDT / LIDT
            {
                if (_mod == 3) throw Fault(6);
                if (_pe && _cpl != 0) throw Fault(13, 0);
                uint lim = Read16(_eaSeg, _ea);
                uint bas = Read32(_eaSeg, (_ea + 2) & AddrMask);
                if (_opSize == 2) bas &= 0x00FF_FFFF;
                if (_regField == 2) { _gdtBase = bas; _gdtLimit = lim; }
                else { _idtBase = bas; _idtLimit = lim; }
                return;
            }
            case 4: // SMSW
                if (_mod == 3) SetReg(_opSize, _rm, _cr0 & (_opSize == 4 ? 0xFFFF_FFFF : 0xFFFF));
                else Write16(_eaSeg, _ea, (ushort)_cr0);
                return;
            case 6: // LMSW: can set PE but not clear it
            {
                if (_pe && _cpl != 0) throw Fault(13, 0);
                uint v = ReadRM(2);
                uint ncr0 = (_cr0 & ~0xEu) | (v & 0xF);
                if ((_cr0 & CR0_PE) != 0) ncr0 |= CR0_PE;
                WriteCr0(ncr0);
                return;
            }
            case 7: // INVLPG
            {
                if (_mod == 3) throw Fault(6);
                if (_pe && _cpl != 0) throw Fault(13, 0);
                FlushTlbPage(_segBase[_eaSeg] + _ea);
                return;
            }
            default: throw Fault(6);
        }
    }

    private void Group15()
    {
        DecodeModRM();
        switch (_regField)
        {
            case 0: case 1:
                if (_mod == 3) throw Fault(6);
                FxSaveRestore(_regField == 0);
                return;
            default:
                throw Fault(6);
        }
    }

    /// <summary>BT/BTS/BTR/BTC. kind: 0 BT, 1 BTS, 2 BTC, 3 BTR. With a register bit offset and a memory
    /// operand the offset addresses beyond the operand (signed).</summary>
    private void BitOp(int kind, bool imm)
    {
        int osz = _opSize;
        if (!imm) DecodeModRM();
        int bits = osz * 8;
        uint offset = imm ? Fetch8() : GetReg(osz, _regField);
        uint v, bit;
        if (_mod == 3 || imm)
        {
            bit = offset & (uint)(bits - 1);
            v = ReadRM(osz);
        }
        else
        {
            int soff = osz == 2 ? (short)offset : (int)offset;
            int disp = (soff >> (osz == 2 ? 4 : 5)) * osz;
            _ea = (uint)(_ea + disp) & AddrMask;
            bit = offset & (uint)(bits - 1);
            v = ReadRM(osz);
        }
        bool old = ((v >> (int)bit) & 1) != 0;
        if (kind != 0)
        {
            uint nv = kind switch { 1 => v | (1u << (int)bit), 2 => v ^ (1u << (int)bit), _ => v & ~(1u << (int)bit) };
            WriteRM(osz, nv);
        }
        SetCF(old);
    }

    private void ShiftDouble(bool left, int count)
    {
        int osz = _opSize;
        count &= 31;
        if (count == 0) return;
        uint dst = ReadRM(osz);
        uint src = GetReg(osz, _regField);
        int bits = osz * 8;
        uint r;
        bool cf;
        if (osz == 4)
        {
            if (left)
            {
                ulong x = ((ulong)dst << 32) | src;
                r = (uint)((x << count) >> 32);
                cf = ((dst >> (32 - count)) & 1) != 0;
            }
            else
            {
                ulong x = ((ulong)src << 32) | dst;
                r = (uint)(x >> count);
                cf = ((dst >> (count - 1)) & 1) != 0;
            }
        }
        else
        {
            // 16-bit: counts above 16 use the 48-bit pattern dst:src:dst as P6 does.
            ulong x;
            if (left)
            {
                x = ((ulong)dst << 32) | ((ulong)src << 16) | dst;
                ulong y = x << count;
                r = (uint)(y >> 32) & 0xFFFF;
                cf = ((y >> 48) & 1) != 0;
            }
            else
            {
                x = ((ulong)dst << 32) | ((ulong)src << 16) | dst;
                x = ((ulong)dst) | ((ulong)src << 16) | ((ulong)dst << 32);
                r = (uint)(x >> count) & 0xFFFF;
                cf = ((x >> (count - 1)) & 1) != 0;
            }
        }
        uint sign = SignBit(osz);
        bool of = ((r ^ dst) & sign) != 0;
        WriteRM(osz, r);
        SetFlagsResult(r, osz, cf, of, false);
        _ = bits;
    }
}

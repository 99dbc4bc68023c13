using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// Prefixes, ModRM/SIB effective addresses and operand access for the instruction being executed.
public sealed partial class Cpu
{
    private uint _startEip;       // EIP of the current instruction (first prefix): faults restart here
    private int _opSize;          // 2 or 4
    private bool _addr32;
    private int _segOvr;          // -1: none
    private int _rep;             // 0, 0xF2 (REPNE), 0xF3 (REP/REPE)

    private int _mod, _regField, _rm;
    private uint _ea;
    private int _eaSeg;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DecodeModRM()
    {
        byte m = Fetch8();
        _mod = m >> 6;
        _regField = (m >> 3) & 7;
        _rm = m & 7;
        if (_mod != 3)
        {
            if (_addr32) DecodeEA32(); else DecodeEA16();
        }
    }

    private void DecodeEA16()
    {
        uint ea;
        int seg = DS;
        switch (_rm)
        {
            case 0: ea = _r[EBX] + _r[ESI]; break;
            case 1: ea = _r[EBX] + _r[EDI]; break;
            case 2: ea = _r[EBP] + _r[ESI]; seg = SS; break;
            case 3: ea = _r[EBP] + _r[EDI]; seg = SS; break;
            case 4: ea = _r[ESI]; break;
            case 5: ea = _r[EDI]; break;
            case 6:
                if (_mod == 0) { ea = Fetch16(); _ea = ea; _eaSeg = _segOvr >= 0 ? _segOvr : DS; return; }
                ea = _r[EBP]; seg = SS; break;
            default: ea = _r[EBX]; break;
        }
        if (_mod == 1) ea += (uint)(sbyte)Fetch8();
        else if (_mod == 2) ea += Fetch16();
        _ea = ea & 0xFFFF;
        _eaSeg = _segOvr >= 0 ? _segOvr : seg;
    }

    private void DecodeEA32()
    {
        uint ea;
        int seg = DS;
        if (_rm == 4)
        {
            byte sib = Fetch8();
            int scale = sib >> 6, index = (sib >> 3) & 7, bas = sib & 7;
            if (bas == 5 && _mod == 0) ea = Fetch32();
            else
            {
                ea = _r[bas];
                if (bas == ESP || bas == EBP) seg = SS;
            }
            if (index != 4) ea += _r[index] << scale;
        }
        else if (_rm == 5 && _mod == 0)
        {
            ea = Fetch32();
        }
        else
        {
            ea = _r[_rm];
            if (_rm == EBP) seg = SS;
        }
        if (_mod == 1) ea += (uint)(sbyte)Fetch8();
        else if (_mod == 2) ea += Fetch32();
        _ea = ea;
        _eaSeg = _segOvr >= 0 ? _segOvr : seg;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadRM(int size) => _mod == 3 ? GetReg(size, _rm) : ReadSized(_eaSeg, _ea, size);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteRM(int size, uint v)
    {
        if (_mod == 3) SetReg(size, _rm, v);
        else WriteSized(_eaSeg, _ea, size, v);
    }

    private uint ReadRM8() => _mod == 3 ? GetReg8(_rm) : Read8(_eaSeg, _ea);
    private uint ReadRM16() => _mod == 3 ? _r[_rm] & 0xFFFF : Read16(_eaSeg, _ea);

    /// <summary>Reads an immediate of the operand size (1, 2 or 4 bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint FetchImm(int size) => size == 1 ? Fetch8() : size == 2 ? Fetch16() : Fetch32();

    private int DataSeg => _segOvr >= 0 ? _segOvr : DS;

    /// <summary>The offset part of an address register (SI/DI/CX) honouring the address size.</summary>
    private uint AddrMask => _addr32 ? 0xFFFF_FFFF : 0xFFFF;
}

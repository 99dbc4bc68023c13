using System.Numerics;
using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// Lazy arithmetic flags: an instruction that sets OF/SF/ZF/AF/PF/CF records its operation, operands and result;
// each flag is computed only when something reads it. _lazy says which bits are lazy; the others live in _flags.
public sealed partial class Cpu
{
    private enum LazyOp : byte { Add, Adc, Sub, Sbb, Logic, Inc, Dec, Result /* SF/ZF/PF from result only */ }

    private uint _lazy;          // flag bits whose value must be computed from the fields below
    private LazyOp _lfOp;
    private uint _lfA, _lfB, _lfRes;
    private uint _lfMask = 0xFF, _lfSign = 0x80;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetLazy(LazyOp op, uint a, uint b, uint res, int size)
    {
        _lfOp = op; _lfA = a; _lfB = b; _lfRes = res;
        _lfMask = SizeMask(size); _lfSign = SignBit(size);
        _lazy = ArithFlags;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetLazyIncDec(LazyOp op, uint a, uint res, int size)
    {
        if ((_lazy & CF) != 0) _flags = (_flags & ~CF) | (ComputeCF() ? CF : 0);
        _lfOp = op; _lfA = a; _lfB = 1; _lfRes = res;
        _lfMask = SizeMask(size); _lfSign = SignBit(size);
        _lazy = ArithFlags & ~CF;
    }

    /// <summary>Sets SF/ZF/PF from a result and CF/OF/AF explicitly (shifts, multiplies, BCD...).</summary>
    private void SetFlagsResult(uint res, int size, bool cf, bool of, bool af)
    {
        _lfOp = LazyOp.Result; _lfRes = res; _lfA = 0; _lfB = 0;
        _lfMask = SizeMask(size); _lfSign = SignBit(size);
        _lazy = SF | ZF | PF;
        _flags = (_flags & ~(CF | OF | AF)) | (cf ? CF : 0) | (of ? OF : 0) | (af ? AF : 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint SizeMask(int size) => size == 1 ? 0xFFu : size == 2 ? 0xFFFFu : 0xFFFF_FFFFu;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint SignBit(int size) => size == 1 ? 0x80u : size == 2 ? 0x8000u : 0x8000_0000u;

    private bool ComputeCF()
    {
        uint a = _lfA & _lfMask, b = _lfB & _lfMask, r = _lfRes & _lfMask;
        return _lfOp switch
        {
            LazyOp.Add => r < a,
            LazyOp.Adc => r <= a,
            LazyOp.Sub => a < b,
            LazyOp.Sbb => a <= b,
            _ => false,
        };
    }

    private bool ComputeOF()
    {
        uint a = _lfA, b = _lfB, r = _lfRes;
        return _lfOp switch
        {
            LazyOp.Add or LazyOp.Adc or LazyOp.Inc => ((a ^ r) & (b ^ r) & _lfSign) != 0,
            LazyOp.Sub or LazyOp.Sbb or LazyOp.Dec => ((a ^ b) & (a ^ r) & _lfSign) != 0,
            _ => false,
        };
    }

    private bool ComputeAF() => _lfOp switch
    {
        LazyOp.Logic => false,
        _ => ((_lfA ^ _lfB ^ _lfRes) & 0x10) != 0,
    };

    private static readonly byte[] s_parity = BuildParity();
    private static byte[] BuildParity()
    {
        var t = new byte[256];
        for (int i = 0; i < 256; i++) t[i] = (byte)((BitOperations.PopCount((uint)i) & 1) == 0 ? 1 : 0);
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool GetCF() => (_lazy & CF) != 0 ? ComputeCF() : (_flags & CF) != 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool GetZF() => (_lazy & ZF) != 0 ? (_lfRes & _lfMask) == 0 : (_flags & ZF) != 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool GetSF() => (_lazy & SF) != 0 ? (_lfRes & _lfSign) != 0 : (_flags & SF) != 0;
    private bool GetOF() => (_lazy & OF) != 0 ? ComputeOF() : (_flags & OF) != 0;
    private bool GetPF() => (_lazy & PF) != 0 ? s_parity[_lfRes & 0xFF] != 0 : (_flags & PF) != 0;
    private bool GetAF() => (_lazy & AF) != 0 ? ComputeAF() : (_flags & AF) != 0;

    /// <summary>Computes every lazy flag into _flags.</summary>
    private void MaterializeFlags()
    {
        if (_lazy == 0) return;
        _flags = ComputedFlags();
        _lazy = 0;
    }

    /// <summary>EFLAGS with the lazy flags computed but not stored (no side effect on the CPU state).</summary>
    private uint PeekFlags() => ComputedFlags() | 2;

    /// <summary>_flags with each lazy flag replaced by its value from the last result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ComputedFlags()
    {
        uint l = _lazy;
        uint f = _flags & ~l;
        if ((l & CF) != 0 && ComputeCF()) f |= CF;
        if ((l & PF) != 0 && s_parity[_lfRes & 0xFF] != 0) f |= PF;
        if ((l & AF) != 0 && ComputeAF()) f |= AF;
        if ((l & ZF) != 0 && (_lfRes & _lfMask) == 0) f |= ZF;
        if ((l & SF) != 0 && (_lfRes & _lfSign) != 0) f |= SF;
        if ((l & OF) != 0 && ComputeOF()) f |= OF;
        return f;
    }

    private uint GetFlags()
    {
        MaterializeFlags();
        return _flags | 2;
    }

    /// <summary>Writes EFLAGS without privilege checks (reset, task switch, tests). Mode bits take effect.</summary>
    private void SetFlagsRaw(uint value)
    {
        _lazy = 0;
        uint old = _flags;
        _flags = (value & 0x003F_7FD5) | 2;
        if (((old ^ _flags) & VM) != 0) UpdateMode();
        if ((_flags & (IF | TF | RF)) != 0) _checkEvents = true;
        UpdateMemHooks();
    }

    /// <summary>Sets one arithmetic flag (CF for CLC/STC/CMC and shifts) keeping the lazy others.</summary>
    private void SetCF(bool v)
    {
        if ((_lazy & CF) != 0) { MaterializeFlags(); }
        _flags = v ? _flags | CF : _flags & ~CF;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Condition(int cc)
    {
        bool r;
        switch (cc >> 1)
        {
            case 0: r = GetOF(); break;
            case 1: r = GetCF(); break;
            case 2: r = GetZF(); break;
            case 3: r = GetCF() || GetZF(); break;
            case 4: r = GetSF(); break;
            case 5: r = GetPF(); break;
            case 6: r = GetSF() != GetOF(); break;
            default: r = GetZF() || GetSF() != GetOF(); break;
        }
        return (cc & 1) != 0 ? !r : r;
    }
}

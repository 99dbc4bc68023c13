using System.Buffers.Binary;

namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>
/// The x87 floating-point unit of the i686-class CPU (Intel SDM vol. 1 ch. 8, vol. 2 "FADD".."FYL2XP1").
/// Registers hold the exact 80-bit format; arithmetic goes through <see cref="SoftFloat80"/> (exact, correctly
/// rounded per PC/RC), transcendentals through <see cref="X87Math"/> (approximate, see its header).
/// The CPU owns #NM/#MF/IRQ13: it checks <see cref="ExceptionPending"/> before waiting instructions (everything
/// but <see cref="IsNoWait"/> forms), reads memory operands as described by <see cref="Classify"/>, calls
/// <see cref="Execute"/>, and writes <c>memoryOut</c> back unless the result is
/// <see cref="FpuResult.StoreSuppressed"/> (an unmasked exception cancelled the store, as on hardware).
/// </summary>
public sealed partial class X87
{
    private readonly Float80[] _regs = new Float80[8];  // physical registers R0..R7
    private int _emptyMask;                               // bit i set: physical register i is empty (tag 11)
    private int _top;
    private int _cw;
    private int _sw;                                      // status word without the TOP field
    private ushort _fcs, _fds, _fop;
    private uint _fip, _fdp;

    public X87() => Reset();

    /// <summary>FNINIT state: CW=037F, SW=0, all tags empty, pointers and opcode cleared. Register contents stay.</summary>
    public void Reset()
    {
        _cw = 0x037F;
        _sw = 0;
        _top = 0;
        _emptyMask = 0xFF;
        _fcs = _fds = _fop = 0;
        _fip = _fdp = 0;
    }

    /// <summary>
    /// Hardware RESET state (SDM vol. 3 table 9-1): FCW=0040h, FSW=0, all registers +0.0 with tag "zero"
    /// (FTW=5555h), pointers cleared. INIT leaves the FPU alone; FNINIT is <see cref="Reset"/>.
    /// </summary>
    public void PowerOnReset()
    {
        Reset();
        _cw = 0x0040;
        for (int i = 0; i < 8; i++) _regs[i] = Float80.Zero(false);
        _emptyMask = 0;
    }

    public ushort StatusWord => (ushort)((_sw & ~FpuStatus.TopMask) | (_top << FpuStatus.TopShift));
    public ushort ControlWord => (ushort)_cw;

    /// <summary>Full 2-bit-per-register tag word computed from the register contents (00 valid, 01 zero, 10 special, 11 empty).</summary>
    public ushort TagWord
    {
        get
        {
            int tw = 0;
            for (int i = 0; i < 8; i++) tw |= TagOf(i) << (2 * i);
            return (ushort)tw;
        }
    }

    /// <summary>ES: an unmasked exception is pending (the CPU turns it into #MF or FERR#/IRQ13).</summary>
    public bool ExceptionPending => (_sw & FpuStatus.ErrorSummary) != 0;

    public int Top => _top;
    public ushort LastOpcode => _fop;
    public uint InstructionPointer => _fip;
    public ushort InstructionSelector => _fcs;
    public uint DataPointer => _fdp;
    public ushort DataSelector => _fds;

    /// <summary>The 10 bytes of physical register <paramref name="physicalIndex"/> (little-endian, as FSAVE stores them). Allocates: for debuggers.</summary>
    public ReadOnlySpan<byte> GetRegister80(int physicalIndex)
    {
        var bytes = new byte[10];
        _regs[physicalIndex & 7].WriteTo(bytes);
        return bytes;
    }

    /// <summary>ST(i) as an exact 80-bit value (whatever the tag says).</summary>
    public Float80 St(int i) => _regs[(_top + i) & 7];

    /// <summary>ST(i) rounded to the nearest double (debuggers and tests).</summary>
    public double StDouble(int i) => St(i).ToDouble();

    public bool IsEmpty(int i) => (_emptyMask & (1 << ((_top + i) & 7))) != 0;

    private int TagOf(int physical)
    {
        if ((_emptyMask & (1 << physical)) != 0) return 3;
        return _regs[physical].Classify() switch
        {
            Float80Class.Normal => 0,
            Float80Class.Zero => 1,
            _ => 2,
        };
    }

    // ---------------------------------------------------------------- decoding helpers

    /// <summary>What memory the instruction needs. Register forms and undefined memory forms return None.</summary>
    public static FpuMemoryOperand Classify(byte opcode, byte modrm, bool operand32)
    {
        if ((modrm >> 6) == 3) return default;
        int reg = (modrm >> 3) & 7;
        FpuMemoryOperand R(int size) => new(FpuMemoryAccess.Read, size);
        FpuMemoryOperand W(int size) => new(FpuMemoryAccess.Write, size);
        int env = operand32 ? 28 : 14;
        int save = operand32 ? 108 : 94;
        return opcode switch
        {
            0xD8 => R(4),
            0xDA => R(4),
            0xDC => R(8),
            0xDE => R(2),
            0xD9 => reg switch { 0 => R(4), 2 or 3 => W(4), 4 => R(env), 5 => R(2), 6 => W(env), 7 => W(2), _ => default },
            0xDB => reg switch { 0 => R(4), 2 or 3 => W(4), 5 => R(10), 7 => W(10), _ => default },
            0xDD => reg switch { 0 => R(8), 2 or 3 => W(8), 4 => R(save), 6 => W(save), 7 => W(2), _ => default },
            0xDF => reg switch { 0 => R(2), 2 or 3 => W(2), 4 => R(10), 5 => R(8), 6 => W(10), 7 => W(8), _ => default },
            _ => default,
        };
    }

    /// <summary>The no-wait control forms that do not check for a pending unmasked exception first.</summary>
    public static bool IsNoWait(byte opcode, byte modrm)
    {
        int mod = modrm >> 6, reg = (modrm >> 3) & 7;
        return opcode switch
        {
            0xDB => modrm is 0xE0 or 0xE1 or 0xE2 or 0xE3 or 0xE4,    // FNENI FNDISI FNCLEX FNINIT FNSETPM
            0xD9 => mod != 3 && reg is 6 or 7,                       // FNSTENV FNSTCW
            0xDD => mod != 3 && reg is 6 or 7,                       // FNSAVE FNSTSW m16
            0xDF => modrm == 0xE0,                                   // FNSTSW AX
            _ => false,
        };
    }

    /// <summary>Control instructions leave FIP/FCS/FOP/FDP/FDS untouched (they describe the last non-control instruction).</summary>
    private static bool IsControl(int opcode, int modrm)
    {
        int mod = modrm >> 6, reg = (modrm >> 3) & 7;
        return opcode switch
        {
            0xD9 => mod != 3 && reg >= 4,                            // FLDENV FLDCW FNSTENV FNSTCW
            0xDB => modrm is 0xE0 or 0xE1 or 0xE2 or 0xE3 or 0xE4,
            0xDD => mod != 3 && reg is 4 or 6 or 7,                  // FRSTOR FNSAVE FNSTSW
            0xDF => modrm == 0xE0,
            _ => false,
        };
    }

    // ---------------------------------------------------------------- execution

    public FpuResult Execute(byte opcode, byte modrm, ReadOnlySpan<byte> memoryIn, Span<byte> memoryOut, ref FpuContext ctx)
    {
        if (opcode < 0xD8 || opcode > 0xDF) return FpuResult.InvalidOpcode;
        int mod = modrm >> 6;
        if (mod != 3)
        {
            FpuMemoryOperand op = Classify(opcode, modrm, ctx.Operand32);
            if (op.Access == FpuMemoryAccess.None) return FpuResult.InvalidOpcode;
            if (op.Access == FpuMemoryAccess.Read && memoryIn.Length < op.Size)
                throw new ArgumentException($"x87 {opcode:X2} /{(modrm >> 3) & 7} needs {op.Size} input bytes", nameof(memoryIn));
            if (op.Access == FpuMemoryAccess.Write && memoryOut.Length < op.Size)
                throw new ArgumentException($"x87 {opcode:X2} /{(modrm >> 3) & 7} needs {op.Size} output bytes", nameof(memoryOut));
        }
        else if (!IsValidRegisterForm(opcode, modrm))
        {
            return FpuResult.InvalidOpcode;
        }
        if (!IsControl(opcode, modrm))
        {
            _fip = ctx.InstructionOffset;
            _fcs = ctx.CodeSelector;
            _fop = (ushort)(((opcode & 7) << 8) | modrm);
            if (mod != 3)
            {
                _fdp = ctx.DataOffset;
                _fds = ctx.DataSelector;
            }
        }
        return mod == 3
            ? ExecuteRegister(opcode, modrm, ref ctx)
            : ExecuteMemory(opcode, (modrm >> 3) & 7, memoryIn, memoryOut, ref ctx);
    }

    private static bool IsValidRegisterForm(int opcode, int modrm)
    {
        int reg = (modrm >> 3) & 7, rm = modrm & 7;
        return opcode switch
        {
            0xD9 => reg switch { 2 => rm == 0, 4 => rm is 0 or 1 or 4 or 5, 5 => rm != 7, _ => true },
            0xDA => reg < 4 || modrm == 0xE9,
            0xDB => reg switch { 4 => rm <= 4, 7 => false, _ => true },
            0xDD => reg < 6,
            0xDE => reg != 3 || rm == 1,
            0xDF => reg switch { 4 => false, 7 => false, _ => true },   // DF E0 (FNSTSW AX) belongs to the CPU
            _ => true,
        };
    }

    // ---------------------------------------------------------------- register stack primitives

    private int Phys(int i) => (_top + i) & 7;
    private void SetSt(int i, Float80 v)
    {
        int p = Phys(i);
        _regs[p] = v;
        _emptyMask &= ~(1 << p);
    }
    private void Push(Float80 v)
    {
        _top = (_top - 1) & 7;
        SetSt(0, v);
    }
    private void Pop()
    {
        _emptyMask |= 1 << _top;
        _top = (_top + 1) & 7;
    }

    private FpuEnv NewEnv() => new(_cw);

    private void SetC1(bool on) => _sw = on ? _sw | FpuStatus.C1 : _sw & ~FpuStatus.C1;

    private void UpdateSummary()
    {
        if ((_sw & ~_cw & FpuStatus.ExceptionMask) != 0) _sw |= FpuStatus.ErrorSummary | FpuStatus.Busy;
        else _sw &= ~(FpuStatus.ErrorSummary | FpuStatus.Busy);
    }

    /// <summary>
    /// Merges the exceptions an operation raised into the status word and decides whether its result is
    /// delivered: unmasked IE/DE/ZE suppress the result (only those flags are recorded); unmasked OE/UE suppress
    /// it only for memory stores (register destinations get the scaled result). C1 reports "rounded up".
    /// <paramref name="denormalSuppresses"/> is false for FLD m32/m64, which silicon completes even with #D unmasked.
    /// </summary>
    private bool Commit(ref FpuEnv env, bool memoryStore = false, bool denormalSuppresses = true)
    {
        int exc = env.Flags & FpuStatus.ExceptionMask;
        int unmasked = exc & ~_cw & FpuStatus.ExceptionMask;
        int pre = FpuStatus.Invalid | FpuStatus.ZeroDivide | (denormalSuppresses ? FpuStatus.Denormal : 0);
        bool suppress = (unmasked & pre) != 0;
        if (suppress)
        {
            exc &= pre | FpuStatus.Denormal;
            unmasked &= pre | FpuStatus.Denormal;
            SetC1(false);
        }
        else if (memoryStore && (unmasked & (FpuStatus.Overflow | FpuStatus.Underflow)) != 0)
        {
            // the store is cancelled: silicon reports just OE/UE (no PE, C1 = 0)
            suppress = true;
            exc &= ~FpuStatus.Precision;
            unmasked &= ~FpuStatus.Precision;
            SetC1(false);
        }
        else
        {
            SetC1((env.Flags & FpuStatus.C1) != 0);
        }
        _sw |= exc;
        if (unmasked != 0) _sw |= FpuStatus.ErrorSummary | FpuStatus.Busy;
        return !suppress;
    }

    /// <summary>Stack underflow (empty source): IE+SF, C1=0. Returns true when masked (caller delivers indefinite).</summary>
    private bool StackUnderflow()
    {
        _sw |= FpuStatus.Invalid | FpuStatus.StackFault;
        _sw &= ~FpuStatus.C1;
        if ((_cw & FpuStatus.Invalid) != 0) return true;
        _sw |= FpuStatus.ErrorSummary | FpuStatus.Busy;
        return false;
    }

    /// <summary>Stack overflow (push onto a full register): IE+SF, C1=1. Returns true when masked.</summary>
    private bool StackOverflow()
    {
        _sw |= FpuStatus.Invalid | FpuStatus.StackFault | FpuStatus.C1;
        if ((_cw & FpuStatus.Invalid) != 0) return true;
        _sw |= FpuStatus.ErrorSummary | FpuStatus.Busy;
        return false;
    }

    /// <summary>Push with overflow check: true when the caller may push (ST(7) empty).</summary>
    private bool CanPush()
    {
        if (IsEmpty(7)) return true;
        if (StackOverflow()) Push(Float80.Indefinite);
        return false;
    }

    private void SetConditionCodes(int c3c2c0) =>
        _sw = (_sw & ~(FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3)) | c3c2c0;

    private static int CompareCodes(int r) => r switch
    {
        -1 => FpuStatus.C0,
        0 => FpuStatus.C3,
        1 => 0,
        _ => FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3,
    };

    // ---------------------------------------------------------------- memory forms

    private FpuResult ExecuteMemory(int opcode, int reg, ReadOnlySpan<byte> input, Span<byte> output, ref FpuContext ctx)
    {
        switch (opcode)
        {
            case 0xD8:
            case 0xDA:
            case 0xDC:
            case 0xDE:
                return MemoryArithmetic(opcode, reg, input);
            case 0xD9:
                switch (reg)
                {
                    case 0: return LoadReal(input, 4);
                    case 2: return StoreReal(output, 4, pop: false);
                    case 3: return StoreReal(output, 4, pop: true);
                    case 4: LoadEnvironment(input, ctx.Operand32, ctx.ProtectedMode); return FpuResult.Ok;
                    case 5: LoadControlWord(BinaryPrimitives.ReadUInt16LittleEndian(input)); return FpuResult.Ok;
                    case 6:
                        StoreEnvironment(output, ctx.Operand32, ctx.ProtectedMode);
                        _cw |= FpuStatus.ExceptionMask;     // FNSTENV masks all exceptions after storing
                        UpdateSummary();
                        return FpuResult.Ok;
                    case 7: BinaryPrimitives.WriteUInt16LittleEndian(output, ControlWord); return FpuResult.Ok;
                }
                break;
            case 0xDB:
                switch (reg)
                {
                    case 0: return LoadInteger(input, 4);
                    case 2: return StoreInteger(output, 4, pop: false);
                    case 3: return StoreInteger(output, 4, pop: true);
                    case 5: return LoadExtended(input);
                    case 7: return StoreExtended(output);
                }
                break;
            case 0xDD:
                switch (reg)
                {
                    case 0: return LoadReal(input, 8);
                    case 2: return StoreReal(output, 8, pop: false);
                    case 3: return StoreReal(output, 8, pop: true);
                    case 4: Restore(input, ctx.Operand32, ctx.ProtectedMode); return FpuResult.Ok;
                    case 6: Save(output, ctx.Operand32, ctx.ProtectedMode); return FpuResult.Ok;
                    case 7: BinaryPrimitives.WriteUInt16LittleEndian(output, StatusWord); return FpuResult.Ok;
                }
                break;
            case 0xDF:
                switch (reg)
                {
                    case 0: return LoadInteger(input, 2);
                    case 2: return StoreInteger(output, 2, pop: false);
                    case 3: return StoreInteger(output, 2, pop: true);
                    case 4: return LoadBcd(input);
                    case 5: return LoadInteger(input, 8);
                    case 6: return StoreBcd(output);
                    case 7: return StoreInteger(output, 8, pop: true);
                }
                break;
        }
        return FpuResult.InvalidOpcode;
    }

    private static Float80 ReadOperand(int opcode, ReadOnlySpan<byte> input, ref FpuEnv env) => opcode switch
    {
        0xD8 => SoftFloat80.FromFloat32Bits(BinaryPrimitives.ReadUInt32LittleEndian(input), ref env, quietSignaling: false),
        0xDC => SoftFloat80.FromFloat64Bits(BinaryPrimitives.ReadUInt64LittleEndian(input), ref env, quietSignaling: false),
        0xDA => SoftFloat80.FromInt64(BinaryPrimitives.ReadInt32LittleEndian(input)),
        _ => SoftFloat80.FromInt64(BinaryPrimitives.ReadInt16LittleEndian(input)),
    };

    private FpuResult MemoryArithmetic(int opcode, int reg, ReadOnlySpan<byte> input)
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow())
            {
                if (reg is 2 or 3) SetConditionCodes(CompareCodes(SoftFloat80.Unordered));
                else SetSt(0, Float80.Indefinite);
                if (reg == 3) Pop();
            }
            return FpuResult.Ok;
        }
        FpuEnv env = NewEnv();
        Float80 b = ReadOperand(opcode, input, ref env);
        Float80 a = St(0);
        if (reg is 2 or 3)
        {
            int r = SoftFloat80.Compare(a, b, quiet: false, ref env);
            if (!Commit(ref env))
            {
                SetConditionCodes(CompareCodes(r));      // silicon sets the codes even for an unmasked #IA/#D
                return FpuResult.Ok;
            }
            SetConditionCodes(CompareCodes(r));
            if (reg == 3) Pop();
            return FpuResult.Ok;
        }
        Float80 result = Arithmetic(reg, a, b, ref env);
        if (Commit(ref env)) SetSt(0, result);
        return FpuResult.Ok;
    }

    /// <summary>a = ST(0), b = the other operand; reg selects add, mul, a−b, b−a, a/b, b/a.</summary>
    private static Float80 Arithmetic(int reg, Float80 a, Float80 b, ref FpuEnv env) => reg switch
    {
        0 => SoftFloat80.Add(a, b, ref env),
        1 => SoftFloat80.Mul(a, b, ref env),
        4 => SoftFloat80.Sub(a, b, ref env),
        5 => SoftFloat80.Sub(b, a, ref env),
        6 => SoftFloat80.Div(a, b, ref env),
        _ => SoftFloat80.Div(b, a, ref env),
    };

    private FpuResult LoadReal(ReadOnlySpan<byte> input, int size)
    {
        if (!CanPush()) return FpuResult.Ok;
        FpuEnv env = NewEnv();
        Float80 v = size == 4
            ? SoftFloat80.FromFloat32Bits(BinaryPrimitives.ReadUInt32LittleEndian(input), ref env)
            : SoftFloat80.FromFloat64Bits(BinaryPrimitives.ReadUInt64LittleEndian(input), ref env);
        if (Commit(ref env, denormalSuppresses: false)) Push(v);      // an unmasked #D still loads (silicon)
        return FpuResult.Ok;
    }

    private FpuResult StoreReal(Span<byte> output, int size, bool pop)
    {
        if (IsEmpty(0))
        {
            if (!StackUnderflow()) return FpuResult.StoreSuppressed;
            if (size == 4) BinaryPrimitives.WriteUInt32LittleEndian(output, 0xFFC0_0000);
            else BinaryPrimitives.WriteUInt64LittleEndian(output, 0xFFF8_0000_0000_0000UL);
            if (pop) Pop();
            return FpuResult.Ok;
        }
        FpuEnv env = NewEnv();
        if (size == 4)
        {
            uint bits = SoftFloat80.ToFloat32Bits(St(0), ref env);
            if (!Commit(ref env, memoryStore: true)) return FpuResult.StoreSuppressed;
            BinaryPrimitives.WriteUInt32LittleEndian(output, bits);
        }
        else
        {
            ulong bits = SoftFloat80.ToFloat64Bits(St(0), ref env);
            if (!Commit(ref env, memoryStore: true)) return FpuResult.StoreSuppressed;
            BinaryPrimitives.WriteUInt64LittleEndian(output, bits);
        }
        if (pop) Pop();
        return FpuResult.Ok;
    }

    private FpuResult LoadExtended(ReadOnlySpan<byte> input)
    {
        if (!CanPush()) return FpuResult.Ok;
        SetC1(false);
        Push(Float80.ReadFrom(input));
        return FpuResult.Ok;
    }

    private FpuResult StoreExtended(Span<byte> output)
    {
        if (IsEmpty(0))
        {
            if (!StackUnderflow()) return FpuResult.StoreSuppressed;
            Float80.Indefinite.WriteTo(output);
        }
        else
        {
            SetC1(false);
            St(0).WriteTo(output);
        }
        Pop();
        return FpuResult.Ok;
    }

    private FpuResult LoadInteger(ReadOnlySpan<byte> input, int size)
    {
        if (!CanPush()) return FpuResult.Ok;
        long v = size switch
        {
            2 => BinaryPrimitives.ReadInt16LittleEndian(input),
            4 => BinaryPrimitives.ReadInt32LittleEndian(input),
            _ => BinaryPrimitives.ReadInt64LittleEndian(input),
        };
        SetC1(false);
        Push(SoftFloat80.FromInt64(v));
        return FpuResult.Ok;
    }

    private static void WriteInteger(Span<byte> output, int size, long v)
    {
        switch (size)
        {
            case 2: BinaryPrimitives.WriteInt16LittleEndian(output, (short)v); break;
            case 4: BinaryPrimitives.WriteInt32LittleEndian(output, (int)v); break;
            default: BinaryPrimitives.WriteInt64LittleEndian(output, v); break;
        }
    }

    private static long IntegerIndefinite(int size) => size switch { 2 => short.MinValue, 4 => int.MinValue, _ => long.MinValue };

    private FpuResult StoreInteger(Span<byte> output, int size, bool pop)
    {
        if (IsEmpty(0))
        {
            if (!StackUnderflow()) return FpuResult.StoreSuppressed;
            WriteInteger(output, size, IntegerIndefinite(size));
            if (pop) Pop();
            return FpuResult.Ok;
        }
        FpuEnv env = NewEnv();
        bool ok = SoftFloat80.ToInt(St(0), size * 8, ref env, out long value);
        if (!Commit(ref env, memoryStore: true)) return FpuResult.StoreSuppressed;
        WriteInteger(output, size, ok ? value : IntegerIndefinite(size));
        if (pop) Pop();
        return FpuResult.Ok;
    }

    private FpuResult LoadBcd(ReadOnlySpan<byte> input)
    {
        if (!CanPush()) return FpuResult.Ok;
        ulong v = 0;
        for (int i = 8; i >= 0; i--)
        {
            v = v * 10 + (ulong)((input[i] >> 4) & 0xF);
            v = v * 10 + (ulong)(input[i] & 0xF);
        }
        SetC1(false);
        Push(SoftFloat80.FromUInt128((input[9] & 0x80) != 0, v));
        return FpuResult.Ok;
    }

    private FpuResult StoreBcd(Span<byte> output)
    {
        if (IsEmpty(0))
        {
            if (!StackUnderflow()) return FpuResult.StoreSuppressed;
            WriteBcdIndefinite(output);
            Pop();
            return FpuResult.Ok;
        }
        FpuEnv env = NewEnv();
        Float80 a = St(0);
        UInt128 mag = UInt128.Zero;
        bool ok = false;
        Float80Class c = a.Classify();
        if (c is Float80Class.QuietNaN or Float80Class.SignalingNaN or Float80Class.Infinity or Float80Class.Unsupported)
        {
            env.Flags |= FpuStatus.Invalid;
        }
        else
        {
            if (SoftFloat80.RoundToIntegerMagnitude(a, env.Rounding, out mag, out bool inexact, out bool up) &&
                mag <= 999_999_999_999_999_999UL)
            {
                ok = true;
                if (inexact) env.Flags |= FpuStatus.Precision | (up ? FpuStatus.C1 : 0);
            }
            else
            {
                env.Flags |= FpuStatus.Invalid;
            }
        }
        if (!Commit(ref env, memoryStore: true)) return FpuResult.StoreSuppressed;
        if (!ok)
        {
            WriteBcdIndefinite(output);
        }
        else
        {
            ulong v = (ulong)mag;
            for (int i = 0; i < 9; i++)
            {
                int lo = (int)(v % 10);
                v /= 10;
                int hi = (int)(v % 10);
                v /= 10;
                output[i] = (byte)((hi << 4) | lo);
            }
            output[9] = (byte)(a.Sign ? 0x80 : 0);
        }
        Pop();
        return FpuResult.Ok;
    }

    private static void WriteBcdIndefinite(Span<byte> output)
    {
        output[..10].Clear();
        output[7] = 0xC0;
        output[8] = 0xFF;
        output[9] = 0xFF;
    }

    private void LoadControlWord(int value)
    {
        _cw = (value & FpuControl.WritableBits) | FpuControl.ReservedOnes;
        UpdateSummary();
    }
}

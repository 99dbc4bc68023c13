namespace VmPortal.Emulator.Cpu.Fpu;

// Register-form (mod = 3) x87 instructions.
public sealed partial class X87
{
    private const uint FlagCF = 0x0001, FlagPF = 0x0004, FlagAF = 0x0010, FlagZF = 0x0040, FlagSF = 0x0080, FlagOF = 0x0800;

    private FpuResult ExecuteRegister(int opcode, int modrm, ref FpuContext ctx)
    {
        int reg = (modrm >> 3) & 7, i = modrm & 7;
        switch (opcode)
        {
            case 0xD8:
                if (reg is 2 or 3) CompareRegisters(i, quiet: false, pops: reg - 2);
                else RegisterArithmetic(reg, 0, i, pop: false);
                break;
            case 0xDC:
                if (reg is 2 or 3) CompareRegisters(i, quiet: false, pops: reg - 2);  // FCOM2/FCOMP3 aliases
                else RegisterArithmetic(reg, i, i, pop: false);
                break;
            case 0xDE:
                if (reg == 2) CompareRegisters(i, quiet: false, pops: 1);            // FCOMP5 alias
                else if (reg == 3) CompareRegisters(1, quiet: false, pops: 2);       // FCOMPP
                else RegisterArithmetic(reg, i, i, pop: true);
                break;
            case 0xD9:
                ExecuteD9(reg, i);
                break;
            case 0xDA:
                if (reg < 4) ConditionalMove(reg, negate: false, i, ctx.Eflags);
                else CompareRegisters(1, quiet: true, pops: 2);                      // FUCOMPP (DA E9)
                break;
            case 0xDB:
                if (reg < 4) ConditionalMove(reg, negate: true, i, ctx.Eflags);
                else if (reg == 4)
                {
                    if (i == 2) _sw &= ~(FpuStatus.ExceptionMask | FpuStatus.StackFault | FpuStatus.ErrorSummary | FpuStatus.Busy);
                    else if (i == 3) Reset();
                    // DB E0/E1/E4 (FENI, FDISI, FSETPM): no-ops on the 387 and later
                }
                else CompareToEflags(i, quiet: reg == 5, pop: false, ref ctx);       // FUCOMI / FCOMI
                break;
            case 0xDD:
                switch (reg)
                {
                    case 0: _emptyMask |= 1 << Phys(i); SetC1(false); break;         // FFREE
                    case 1: Exchange(i); break;                                      // FXCH4 alias
                    case 2: StoreRegister(i, pop: false); break;
                    case 3: StoreRegister(i, pop: true); break;
                    case 4: CompareRegisters(i, quiet: true, pops: 0); break;        // FUCOM
                    case 5: CompareRegisters(i, quiet: true, pops: 1); break;        // FUCOMP
                }
                break;
            case 0xDF:
                switch (reg)
                {
                    case 0: _emptyMask |= 1 << Phys(i); SetC1(false); Pop(); break; // FFREEP
                    case 1: Exchange(i); break;                                      // FXCH7 alias
                    case 2:
                    case 3: StoreRegister(i, pop: true); break;                      // FSTP8/FSTP9 aliases
                    case 5: CompareToEflags(i, quiet: true, pop: true, ref ctx); break;   // FUCOMIP
                    case 6: CompareToEflags(i, quiet: false, pop: true, ref ctx); break;  // FCOMIP
                }
                break;
        }
        return FpuResult.Ok;
    }

    private void ExecuteD9(int reg, int i)
    {
        switch (reg)
        {
            case 0: LoadRegister(i); break;
            case 1: Exchange(i); break;
            case 2: break;                                                           // FNOP
            case 3: StoreRegister(i, pop: true); break;                              // FSTP1 alias
            case 4:
                switch (i)
                {
                    case 0: SignOperation(negate: true); break;                      // FCHS
                    case 1: SignOperation(negate: false); break;                     // FABS
                    case 4: TestZero(); break;                                       // FTST
                    case 5: Examine(); break;                                        // FXAM
                }
                break;
            case 5: LoadConstant(i); break;
            case 6:
                switch (i)
                {
                    case 0: Unary(UnaryOp.F2xm1); break;
                    case 1: Binary(BinaryOp.Fyl2x); break;
                    case 2: PartialTangent(); break;
                    case 3: Binary(BinaryOp.Fpatan); break;
                    case 4: Extract(); break;
                    case 5: PartialRemainder(ieee: true); break;
                    case 6: _top = (_top - 1) & 7; SetC1(false); break;              // FDECSTP
                    case 7: _top = (_top + 1) & 7; SetC1(false); break;              // FINCSTP
                }
                break;
            case 7:
                switch (i)
                {
                    case 0: PartialRemainder(ieee: false); break;
                    case 1: Binary(BinaryOp.Fyl2xp1); break;
                    case 2: Unary(UnaryOp.Sqrt); break;
                    case 3: SineCosine(); break;
                    case 4: Unary(UnaryOp.RoundInt); break;
                    case 5: ScaleSt0(); break;
                    case 6: Unary(UnaryOp.Sin); break;
                    case 7: Unary(UnaryOp.Cos); break;
                }
                break;
        }
    }

    private void RegisterArithmetic(int reg, int dest, int other, bool pop)
    {
        if (IsEmpty(0) || IsEmpty(other))
        {
            if (StackUnderflow())
            {
                SetSt(dest, Float80.Indefinite);
                if (pop) Pop();
            }
            return;
        }
        FpuEnv env = NewEnv();
        Float80 r = Arithmetic(reg, St(0), St(other), ref env);
        if (!Commit(ref env)) return;
        SetSt(dest, r);
        if (pop) Pop();
    }

    private void CompareRegisters(int i, bool quiet, int pops)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            if (StackUnderflow())
            {
                SetConditionCodes(CompareCodes(SoftFloat80.Unordered));
                for (int k = 0; k < pops; k++) Pop();
            }
            return;
        }
        FpuEnv env = NewEnv();
        int r = SoftFloat80.Compare(St(0), St(i), quiet, ref env);
        if (!Commit(ref env))
        {
            // unmasked #IA/#D: silicon still sets the codes (the register stack is left alone)
            SetConditionCodes(CompareCodes(r));
            return;
        }
        SetConditionCodes(CompareCodes(r));
        for (int k = 0; k < pops; k++) Pop();
    }

    private static uint EflagsFor(int r) => r switch
    {
        -1 => FlagCF,
        0 => FlagZF,
        1 => 0,
        _ => FlagZF | FlagPF | FlagCF,
    };

    private static void SetEflags(ref FpuContext ctx, uint bits) =>
        ctx.Eflags = (ctx.Eflags & ~(FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF)) | bits;

    private void CompareToEflags(int i, bool quiet, bool pop, ref FpuContext ctx)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            if (StackUnderflow())
            {
                SetEflags(ref ctx, EflagsFor(SoftFloat80.Unordered));
                if (pop) Pop();
            }
            return;
        }
        FpuEnv env = NewEnv();
        int r = SoftFloat80.Compare(St(0), St(i), quiet, ref env);
        if (!Commit(ref env))
        {
            SetEflags(ref ctx, EflagsFor(r));                                      // set even when unmasked (silicon)
            return;
        }
        SetEflags(ref ctx, EflagsFor(r));
        if (pop) Pop();
    }

    private void ConditionalMove(int reg, bool negate, int i, uint eflags)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            if (StackUnderflow()) SetSt(0, Float80.Indefinite);
            return;
        }
        bool cond = reg switch
        {
            0 => (eflags & FlagCF) != 0,
            1 => (eflags & FlagZF) != 0,
            2 => (eflags & (FlagCF | FlagZF)) != 0,
            _ => (eflags & FlagPF) != 0,
        };
        if (cond != negate) SetSt(0, St(i));
    }

    private void LoadRegister(int i)
    {
        if (!CanPush()) return;
        if (IsEmpty(i))
        {
            if (StackUnderflow()) Push(Float80.Indefinite);
            return;
        }
        Float80 v = St(i);
        SetC1(false);
        Push(v);
    }

    private void StoreRegister(int i, bool pop)
    {
        if (IsEmpty(0))
        {
            if (!StackUnderflow()) return;
            SetSt(i, Float80.Indefinite);
        }
        else
        {
            SetC1(false);
            SetSt(i, St(0));
        }
        if (pop) Pop();
    }

    private void Exchange(int i)
    {
        if (IsEmpty(0) || IsEmpty(i))
        {
            if (!StackUnderflow()) return;
            if (IsEmpty(0)) SetSt(0, Float80.Indefinite);
            if (IsEmpty(i)) SetSt(i, Float80.Indefinite);
        }
        else
        {
            SetC1(false);
        }
        Float80 t = St(0);
        SetSt(0, St(i));
        SetSt(i, t);
    }

    private void SignOperation(bool negate)
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow()) SetSt(0, Float80.Indefinite);
            return;
        }
        SetC1(false);
        SetSt(0, negate ? St(0).Negate() : St(0).Abs());
    }

    private void TestZero()
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow()) SetConditionCodes(CompareCodes(SoftFloat80.Unordered));
            return;
        }
        FpuEnv env = NewEnv();
        int r = SoftFloat80.Compare(St(0), Float80.Zero(false), quiet: false, ref env);
        if (!Commit(ref env))
        {
            SetConditionCodes(CompareCodes(r));
            return;
        }
        SetConditionCodes(CompareCodes(r));
    }

    private void Examine()
    {
        Float80 v = St(0);
        int cc;
        if (IsEmpty(0)) cc = FpuStatus.C3 | FpuStatus.C0;
        else
        {
            cc = v.Classify() switch
            {
                Float80Class.Unsupported => 0,
                Float80Class.QuietNaN or Float80Class.SignalingNaN => FpuStatus.C0,
                Float80Class.Normal => FpuStatus.C2,
                Float80Class.Infinity => FpuStatus.C2 | FpuStatus.C0,
                Float80Class.Zero => FpuStatus.C3,
                _ => FpuStatus.C3 | FpuStatus.C2,     // denormal, pseudo-denormal
            };
        }
        SetConditionCodes(cc);
        SetC1(v.Sign);
    }

    // Constants as 128 truncated bits (value = hi:lo · 2^(E−127)), rounded per RC to 64 bits like the P6 does.
    private static readonly (ulong Hi, ulong Lo, int E)[] Constants =
    [
        (0x8000_0000_0000_0000UL, 0, 0),                                   // FLD1
        (0xD49A_784B_CD1B_8AFEUL, 0x492B_F6FF_4DAF_DB4CUL, 1),             // FLDL2T log2(10)
        (0xB8AA_3B29_5C17_F0BBUL, 0xBE87_FED0_691D_3E88UL, 0),             // FLDL2E log2(e)
        (0xC90F_DAA2_2168_C234UL, 0xC4C6_628B_80DC_1CD1UL, 1),             // FLDPI
        (0x9A20_9A84_FBCF_F798UL, 0x8F89_59AC_0B7C_9178UL, -2),            // FLDLG2 log10(2)
        (0xB172_17F7_D1CF_79ABUL, 0xC9E3_B398_03F2_F6AFUL, -1),            // FLDLN2 ln(2)
    ];

    /// <summary>The value FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ (index 0..6) pushes under rounding mode rc.</summary>
    public static Float80 ConstantValue(int index, int rc)
    {
        if (index == 6) return Float80.Zero(false);
        var (hi, lo, e) = Constants[index];
        UInt128 sig = new(hi, lo);
        if (index != 0) sig |= UInt128.One;    // the truncated tail is non-zero (irrational constants)
        return SoftFloat80.RoundWide(false, e - 1, sig, rc);
    }

    private void LoadConstant(int i)
    {
        if (!CanPush()) return;
        SetC1(false);
        Push(ConstantValue(i, (_cw >> FpuControl.RoundingShift) & 3));
    }
}

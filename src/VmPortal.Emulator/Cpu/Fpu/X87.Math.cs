namespace VmPortal.Emulator.Cpu.Fpu;

// x87 instructions beyond the basic four: FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM/FPREM1 (all exact), and the
// transcendentals (approximate, computed by X87Math).
public sealed partial class X87
{
    private enum UnaryOp { Sqrt, RoundInt, Sin, Cos, F2xm1 }
    private enum BinaryOp { Fyl2x, Fyl2xp1, Fpatan }

    /// <summary>|x| ≥ 2^63: FSIN/FCOS/FSINCOS/FPTAN leave the operand unchanged and set C2.</summary>
    private static bool OutOfTrigRange(Float80 a) =>
        !a.IsNaN && !a.IsInfinity && a.Classify() != Float80Class.Unsupported && a.Exponent >= Float80.Bias + 63;

    private void Unary(UnaryOp op)
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow()) SetSt(0, Float80.Indefinite);
            return;
        }
        FpuEnv env = NewEnv();
        Float80 a = St(0);
        Float80 r;
        switch (op)
        {
            case UnaryOp.Sqrt: r = SoftFloat80.Sqrt(a, ref env); break;
            case UnaryOp.RoundInt: r = SoftFloat80.RoundToInt(a, ref env); break;
            case UnaryOp.F2xm1: r = X87Math.TwoToXMinus1(a, ref env); break;
            default:
                _sw &= ~FpuStatus.C2;
                if (OutOfTrigRange(a))
                {
                    _sw |= FpuStatus.C2;
                    return;
                }
                r = op == UnaryOp.Sin ? X87Math.Sin(a, ref env) : X87Math.Cos(a, ref env);
                break;
        }
        if (Commit(ref env)) SetSt(0, r);
    }

    private void Binary(BinaryOp op)
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            if (StackUnderflow())
            {
                SetSt(1, Float80.Indefinite);
                Pop();
            }
            return;
        }
        FpuEnv env = NewEnv();
        Float80 x = St(0), y = St(1);
        Float80 r = op switch
        {
            BinaryOp.Fyl2x => X87Math.YLog2X(x, y, ref env),
            BinaryOp.Fyl2xp1 => X87Math.YLog2XPlus1(x, y, ref env),
            _ => X87Math.Atan2(y, x, ref env),
        };
        if (!Commit(ref env)) return;
        SetSt(1, r);
        Pop();
    }

    /// <summary>Shared prologue of FPTAN and FSINCOS (they replace ST0 and push a second result).</summary>
    private bool TrigPushPrologue()
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow())
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }
            return false;
        }
        if (!IsEmpty(7))
        {
            if (StackOverflow())
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }
            return false;
        }
        _sw &= ~FpuStatus.C2;
        if (OutOfTrigRange(St(0)))
        {
            _sw |= FpuStatus.C2;
            return false;
        }
        return true;
    }

    private void PartialTangent()
    {
        if (!TrigPushPrologue()) return;
        FpuEnv env = NewEnv();
        Float80 a = St(0);
        Float80 t = X87Math.Tan(a, ref env);
        if (!Commit(ref env)) return;
        SetSt(0, t);
        // a NaN operand pushes the NaN again instead of 1.0
        Push(t.IsNaN ? t : Float80.One);
    }

    private void SineCosine()
    {
        if (!TrigPushPrologue()) return;
        FpuEnv env = NewEnv();
        Float80 a = St(0);
        Float80 s = X87Math.Sin(a, ref env);
        Float80 c = X87Math.Cos(a, ref env);
        if (!Commit(ref env)) return;
        SetSt(0, s);
        Push(c);
    }

    private void ScaleSt0()
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            if (StackUnderflow()) SetSt(0, Float80.Indefinite);
            return;
        }
        FpuEnv env = new(_cw, 64);                       // precision control does not apply to FSCALE
        Float80 r = Scale(St(0), St(1), ref env);
        if (Commit(ref env)) SetSt(0, r);
    }

    /// <summary>FSCALE: ST0 · 2^trunc(ST1), exact apart from the final rounding (over/underflow, PC).</summary>
    internal static Float80 Scale(Float80 a, Float80 b, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, b, ref env, out Float80 nan)) return nan;
        if (a.IsDenormalOperand || b.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (b.IsInfinity)
        {
            if (!b.Sign)
            {
                if (a.IsZero) { env.Flags |= FpuStatus.Invalid; return Float80.Indefinite; }
                return Float80.Infinity(a.Sign);
            }
            if (a.IsInfinity) { env.Flags |= FpuStatus.Invalid; return Float80.Indefinite; }
            return Float80.Zero(a.Sign);
        }
        if (a.IsZero || a.IsInfinity) return a;
        int n;
        if (b.IsZero) n = 0;
        else
        {
            SoftFloat80.Unpack(b, out int eb, out ulong mb);
            if (eb < 0) n = 0;
            else if (eb >= 20) n = b.Sign ? -(1 << 20) : 1 << 20;
            else
            {
                int mag = (int)(mb >> (63 - eb));
                n = b.Sign ? -mag : mag;
            }
        }
        return SoftFloat80.Scale(a, n, ref env);
    }

    private void Extract()
    {
        if (IsEmpty(0))
        {
            if (StackUnderflow())
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }
            return;
        }
        if (!IsEmpty(7))
        {
            if (StackOverflow())
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }
            return;
        }
        FpuEnv env = NewEnv();
        Float80 a = St(0);
        Float80 exponent, significand;
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan))
        {
            exponent = significand = nan;
        }
        else if (a.IsZero)
        {
            env.Flags |= FpuStatus.ZeroDivide;
            exponent = Float80.Infinity(true);
            significand = a;
        }
        else if (a.IsInfinity)
        {
            exponent = Float80.Infinity(false);
            significand = a;
        }
        else
        {
            if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
            SoftFloat80.Unpack(a, out int e, out ulong m);
            exponent = SoftFloat80.FromInt64(e);
            significand = new Float80(a.Sign, Float80.Bias, m);
        }
        if (!Commit(ref env)) return;
        SetSt(0, exponent);
        Push(significand);
    }

    /// <summary>
    /// FPREM (truncating quotient) / FPREM1 (IEEE, round-to-nearest quotient). Exact. When the exponent
    /// difference is 64 or more, a partial remainder is produced (C2=1) by reducing the difference to
    /// 32 + (difference mod 32) − like the hardware, software loops until C2=0. C0/C3/C1 = quotient bits 2/1/0.
    /// </summary>
    private void PartialRemainder(bool ieee)
    {
        if (IsEmpty(0) || IsEmpty(1))
        {
            if (StackUnderflow()) SetSt(0, Float80.Indefinite);
            return;
        }
        FpuEnv env = new(_cw, 64);
        Float80 a = St(0), b = St(1);
        Float80 r;
        ulong q = 0;
        bool partial = false;
        if (SoftFloat80.PropagateNaN(a, b, ref env, out Float80 nan)) r = nan;
        else if (a.IsInfinity || b.IsZero)
        {
            env.Flags |= FpuStatus.Invalid;
            r = Float80.Indefinite;
        }
        else
        {
            if (a.IsDenormalOperand || b.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
            if (b.IsInfinity || a.IsZero) r = a;
            else r = Remainder(a, b, ieee, ref env, out q, out partial);
        }
        if (!Commit(ref env)) return;
        SetSt(0, r);
        int cc = 0;
        if (partial) cc |= FpuStatus.C2;
        else
        {
            if ((q & 4) != 0) cc |= FpuStatus.C0;          // C0 = Q2, C3 = Q1, C1 = Q0 (SDM; confirmed on silicon)
            if ((q & 2) != 0) cc |= FpuStatus.C3;
            SetC1((q & 1) != 0);
        }
        SetConditionCodes(cc);
    }

    private static Float80 Remainder(Float80 a, Float80 b, bool ieee, ref FpuEnv env, out ulong quotientLow, out bool partial)
    {
        SoftFloat80.Unpack(a, out int ea, out ulong ma);
        SoftFloat80.Unpack(b, out int eb, out ulong mb);
        int d = ea - eb;
        quotientLow = 0;
        partial = false;
        if (d < (ieee ? -1 : 0))
        {
            // the remainder is ST0 itself, but it still goes through rounding: a tiny result raises UE when
            // unmasked (and is then delivered scaled), as on silicon
            return SoftFloat80.RoundPack(a.Sign, ea, (UInt128)ma << 63, 64, ref env);
        }
        bool sign = a.Sign;
        UInt128 rem;
        int e;
        if (d < 64)
        {
            UInt128 num = (UInt128)ma << (d + 1);
            UInt128 den = (UInt128)mb << 1;
            UInt128 q = num / den;
            rem = num - q * den;
            if (ieee && (rem << 1 > den || (rem << 1 == den && (q & UInt128.One) != UInt128.Zero)))
            {
                rem = den - rem;
                q++;
                sign = !sign;
            }
            quotientLow = (ulong)q;
            e = eb + 62;   // value = rem · 2^(eb − 64)
        }
        else
        {
            int n = 32 + (d % 32);
            UInt128 num = (UInt128)ma << n;
            UInt128 q = num / mb;
            rem = num - q * mb;
            partial = true;
            e = ea + 63 - n;   // value = rem · 2^(ea − 63 − n)
        }
        if (rem == UInt128.Zero) return Float80.Zero(a.Sign);
        return SoftFloat80.NormalizeRoundPack(sign, e, rem, 64, ref env);
    }
}

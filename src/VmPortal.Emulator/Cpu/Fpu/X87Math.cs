namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>
/// Transcendental functions of the x87 (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1).
/// Accuracy: the special cases (zeros, infinities, NaNs, invalid domains, exact results such as log2(1)) follow the
/// SDM tables exactly; ordinary results are computed in IEEE double from the 80-bit operand (after an exact
/// reduction where cancellation would otherwise hurt: log2 splits off the exponent and computes log1p of the exact
/// remainder, 2^x−1 uses expm1 series, atan2 rescales both operands by a common power of two) and then, for
/// FYL2X/FYL2XP1, multiplied by ST1 in extended precision. Measured error is within a few double ulps (≈2^-52
/// relative), i.e. roughly 2^11 extended ulps: enough for libm/userland computing in double, not bit-identical to
/// silicon. Results always set PE (they are inexact) and C1=0.
/// </summary>
public static class X87Math
{
    private const double Ln2 = 0.69314718055994530942;

    private static Float80 FromDoubleResult(double d, ref FpuEnv env)
    {
        env.Flags |= FpuStatus.Precision;
        Float80 r = Float80.FromDouble(d);
        if (r.IsDenormalOperand || (r.IsZero && d == 0)) env.Flags |= FpuStatus.Underflow;
        return r;
    }

    /// <summary>Double value of a finite Float80 scaled by 2^-shift (avoids double overflow/underflow).</summary>
    private static double ToDoubleScaled(Float80 a, int shift)
    {
        if (a.IsZero) return a.Sign ? -0.0 : 0.0;
        if (a.IsInfinity) return a.Sign ? double.NegativeInfinity : double.PositiveInfinity;
        SoftFloat80.Unpack(a, out int e, out ulong m);
        // round the 64-bit significand to 53 bits (nearest) and scale
        double sig = (double)m;                 // exact rounding of ulong to double
        double v = Math.ScaleB(sig, e - 63 - shift);
        return a.Sign ? -v : v;
    }

    private static bool SmallTrig(Float80 a) => a.Exponent < Float80.Bias - 32;

    public static Float80 Sin(Float80 a, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsInfinity) return Invalid(ref env);
        if (a.IsZero) return a;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal | FpuStatus.Underflow;
        if (SmallTrig(a))
        {
            env.Flags |= FpuStatus.Precision;          // sin x = x − x³/6: x to 64 bits
            return a;
        }
        return FromDoubleResult(Math.Sin(ToDoubleScaled(a, 0)), ref env);
    }

    public static Float80 Cos(Float80 a, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsInfinity) return Invalid(ref env);
        if (a.IsZero) return Float80.One;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (SmallTrig(a))
        {
            env.Flags |= FpuStatus.Precision;
            return Float80.One;
        }
        return FromDoubleResult(Math.Cos(ToDoubleScaled(a, 0)), ref env);
    }

    public static Float80 Tan(Float80 a, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsInfinity) return Invalid(ref env);
        if (a.IsZero) return a;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal | FpuStatus.Underflow;
        if (SmallTrig(a))
        {
            env.Flags |= FpuStatus.Precision;
            return a;
        }
        return FromDoubleResult(Math.Tan(ToDoubleScaled(a, 0)), ref env);
    }

    /// <summary>FPATAN: atan2(y, x) following the C99/IEEE special cases, which match the SDM table.</summary>
    public static Float80 Atan2(Float80 y, Float80 x, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(y, x, ref env, out Float80 nan)) return nan;
        if (y.IsDenormalOperand || x.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (y.IsZero && !x.IsNaN)
        {
            // ±0 for x > +0 or x = +0; ±π otherwise
            if (!x.Sign) return y;
            return Pi(y.Sign, ref env);
        }
        int shift = 0;
        if (!y.IsInfinity && !x.IsInfinity)
        {
            int ey = 0, ex = int.MinValue;
            SoftFloat80.Unpack(y, out ey, out _);
            if (!x.IsZero) SoftFloat80.Unpack(x, out ex, out _);
            shift = Math.Max(ey, ex);
        }
        double r = Math.Atan2(ToDoubleScaled(y, shift), ToDoubleScaled(x, shift));
        return FromDoubleResult(r, ref env);
    }

    private static Float80 Pi(bool negative, ref FpuEnv env)
    {
        env.Flags |= FpuStatus.Precision;
        Float80 p = X87.ConstantValue(3, env.Rounding);
        return negative ? p.Negate() : p;
    }

    /// <summary>F2XM1: 2^x − 1 (defined for −1 ≤ x ≤ 1).</summary>
    public static Float80 TwoToXMinus1(Float80 a, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsZero) return a;
        if (a.IsInfinity) return a.Sign ? new Float80(true, Float80.Bias, Float80.IntegerBit) : a;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (a.Exponent < Float80.Bias - 60)
        {
            // 2^x − 1 = x·ln2·(1 + x·ln2/2 + …): the product with ln2 in extended precision is exact enough
            var wide = new FpuEnv(0x037F | (env.Rounding << FpuControl.RoundingShift), 64);
            Float80 r = SoftFloat80.Mul(a, X87.ConstantValue(5, FpuControl.RoundNearest), ref wide);
            env.Flags |= FpuStatus.Precision | (wide.Flags & FpuStatus.Underflow);
            return r;
        }
        double z = ToDoubleScaled(a, 0) * Ln2;
        return FromDoubleResult(ExpM1(z), ref env);
    }

    /// <summary>e^z − 1 without cancellation for small |z| (Taylor series), exp(z) − 1 otherwise.</summary>
    internal static double ExpM1(double z)
    {
        if (Math.Abs(z) > 0.5) return Math.Exp(z) - 1.0;
        double term = z, sum = z;
        for (int n = 2; n < 30; n++)
        {
            term *= z / n;
            double next = sum + term;
            if (next == sum) break;
            sum = next;
        }
        return sum;
    }

    /// <summary>ln(1 + t) accurate for small t (Goldberg's trick).</summary>
    internal static double Log1P(double t)
    {
        double u = 1.0 + t;
        if (u == 1.0) return t;
        return Math.Log(u) * t / (u - 1.0);
    }

    /// <summary>FYL2X: ST1 · log2(ST0). x = ST0, y = ST1.</summary>
    public static Float80 YLog2X(Float80 x, Float80 y, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(x, y, ref env, out Float80 nan)) return nan;
        if (x.IsDenormalOperand || y.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (x.Sign && !x.IsZero) return Invalid(ref env);
        if (x.IsZero)
        {
            if (y.IsZero) return Invalid(ref env);
            if (!y.IsInfinity) env.Flags |= FpuStatus.ZeroDivide;
            return Float80.Infinity(!y.Sign);
        }
        if (x.IsInfinity)
        {
            if (y.IsZero) return Invalid(ref env);
            return Float80.Infinity(y.Sign);
        }
        // finite positive x
        SoftFloat80.Unpack(x, out int k, out ulong m);
        bool isOne = k == 0 && m == Float80.IntegerBit;
        if (isOne)
        {
            if (y.IsInfinity) return Invalid(ref env);
            return Float80.Zero(y.Sign);
        }
        bool below1 = k < 0;
        if (y.IsInfinity) return Float80.Infinity(y.Sign ^ below1);
        if (y.IsZero) return Float80.Zero(y.Sign ^ below1);
        Float80 log = Log2(k, m, ref env);
        FpuEnv wide = WithMasks(env);
        Float80 r = SoftFloat80.Mul(y, log, ref wide);
        env.Flags |= wide.Flags | FpuStatus.Precision;
        return r;
    }

    /// <summary>The caller's masks and rounding at full 64-bit precision (transcendentals ignore PC).</summary>
    private static FpuEnv WithMasks(FpuEnv source) =>
        new(source.Masks | (source.Rounding << FpuControl.RoundingShift) | 0x0300, 64);

    /// <summary>log2 of m·2^(k−63) (m normalised) as an extended value, ≈ double accuracy relative to the result.</summary>
    private static Float80 Log2(int k, ulong m, ref FpuEnv env)
    {
        // x = f · 2^k, f = m/2^63 ∈ [1, 2); move f into [√½, √2) so log2(f) is small and t = f − 1 is exact.
        var exact = new FpuEnv(0x037F, 64);
        Float80 f = new(false, Float80.Bias, m);
        if (m > 0xB504_F333_F9DE_6484UL)
        {
            f = new Float80(false, Float80.Bias - 1, m);
            k++;
        }
        Float80 t = SoftFloat80.Sub(f, Float80.One, ref exact);
        double l = t.IsZero ? 0.0 : Log1P(t.ToDouble()) / Ln2;
        Float80 frac = Float80.FromDouble(l);
        if (k == 0) return frac;
        return SoftFloat80.Add(SoftFloat80.FromInt64(k), frac, ref exact);
    }

    /// <summary>FYL2XP1: ST1 · log2(ST0 + 1), for |ST0| &lt; 1 − √2/2.</summary>
    public static Float80 YLog2XPlus1(Float80 x, Float80 y, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(x, y, ref env, out Float80 nan)) return nan;
        if (x.IsDenormalOperand || y.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (x.IsZero)
        {
            if (y.IsInfinity) return Invalid(ref env);
            return Float80.Zero(x.Sign ^ y.Sign);
        }
        if (x.IsInfinity)
        {
            if (x.Sign || y.IsZero) return Invalid(ref env);
            return Float80.Infinity(y.Sign);
        }
        var exact = new FpuEnv(0x037F, 64);
        Float80 onePlus = SoftFloat80.Add(x, Float80.One, ref exact);
        if (onePlus.Sign && !onePlus.IsZero) return Invalid(ref env);
        if (onePlus.IsZero)
        {
            if (y.IsZero) return Invalid(ref env);
            env.Flags |= FpuStatus.ZeroDivide;
            return Float80.Infinity(!y.Sign);
        }
        if (y.IsInfinity) return Float80.Infinity(y.Sign ^ x.Sign);
        if (y.IsZero) return Float80.Zero(y.Sign ^ x.Sign);
        Float80 log;
        if (x.Exponent < Float80.Bias - 1)
        {
            log = Float80.FromDouble(Log1P(ToDoubleScaled(x, 0)) / Ln2);
        }
        else
        {
            SoftFloat80.Unpack(onePlus, out int k, out ulong m);
            log = Log2(k, m, ref env);
        }
        FpuEnv wide = WithMasks(env);
        Float80 r = SoftFloat80.Mul(y, log, ref wide);
        env.Flags |= wide.Flags | FpuStatus.Precision;
        return r;
    }

    private static Float80 Invalid(ref FpuEnv env)
    {
        env.Flags |= FpuStatus.Invalid;
        return Float80.Indefinite;
    }
}

namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>
/// Transcendental functions of the x87 (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1).
/// Special cases (zeros, infinities, NaNs, invalid domains, exact results such as log2(1)) follow the SDM tables.
/// Ordinary results are evaluated in double-double arithmetic (≈106 bits, exact argument conversion, series
/// evaluation) and rounded once to 64 bits in the current rounding mode. FSIN/FCOS/FSINCOS/FPTAN reduce their
/// argument exactly by the hardware's 66-bit π (so, like silicon, they return sin(x − k·π66/2)); FPATAN, F2XM1,
/// FYL2X and FYL2XP1 return the correctly rounded true value to within ~0.5 ulp. Measured: ≤ 0.5 ulp against a
/// 256-bit BigInteger reference and ≤ 1 ulp against vectors recorded on silicon (FpuTranscendentalTests,
/// FpuHardwareVectorTests). Outside the architecturally defined domains F2XM1 (|x| &gt; 1) and FYL2XP1 (x &lt; −1)
/// return the operand, as the recorded x87 does. PE is set unless the result is exact; C1 reports the final rounding
/// direction.
/// </summary>
public static class X87Math
{
    private static double D(ulong bits) => BitConverter.UInt64BitsToDouble(bits);

    private static readonly DoubleDouble PiO2 = new(D(0x3FF921FB54442D18), D(0x3C91A62633145C07));
    private static readonly DoubleDouble Pi = new(D(0x400921FB54442D18), D(0x3CA1A62633145C07));
    private static readonly DoubleDouble Ln2 = new(D(0x3FE62E42FEFA39EF), D(0x3C7ABC9E3B39803F));
    private static readonly DoubleDouble Log2E = new(D(0x3FF71547652B82FE), D(0x3C7777D0FFDA0D24));
    private const double Tiny = 1.2325951644078310e-32;   // 2^-106: series stop criterion

    // ---------------------------------------------------------------- conversions

    private static DoubleDouble ToDD(Float80 a, int shift = 0)
    {
        SoftFloat80.Unpack(a, out int e, out ulong m);
        return DoubleDouble.FromSignificand(a.Sign, m, e - shift);
    }

    private static void Decompose(double d, out ulong mant, out int exp)
    {
        ulong bits = BitConverter.DoubleToUInt64Bits(d);
        int be = (int)((bits >> 52) & 0x7FF);
        ulong frac = bits & 0xF_FFFF_FFFF_FFFFUL;
        if (be == 0)
        {
            mant = frac;
            exp = -1074;
        }
        else
        {
            mant = frac | (1UL << 52);
            exp = be - 1075;
        }
    }

    /// <summary>
    /// Rounds (hi + lo)·2^scale once to 64 bits in the current rounding mode. PE is raised unless the caller knows
    /// the double-double value is the exact result and the final rounding is exact too.
    /// </summary>
    private static Float80 Round(DoubleDouble v, int scale, ref FpuEnv env, bool exactValue = false)
    {
        if (!exactValue) env.Flags |= FpuStatus.Precision;
        if (v.Hi == 0) return Float80.Zero(double.IsNegative(v.Hi));
        if (double.IsNaN(v.Hi)) return Invalid(ref env);                 // only reachable outside defined domains
        if (double.IsInfinity(v.Hi))
        {
            env.Flags |= FpuStatus.Overflow | FpuStatus.Precision;
            return Float80.Infinity(v.Hi < 0);
        }
        bool neg = v.Hi < 0;
        Decompose(Math.Abs(v.Hi), out ulong mh, out int eh);
        UInt128 s = (UInt128)mh << 64;
        int eb = eh - 64;
        if (v.Lo != 0)
        {
            Decompose(Math.Abs(v.Lo), out ulong ml, out int el);
            UInt128 l = el >= eb ? (UInt128)ml << (el - eb) : SoftFloat80.ShiftRightJam(ml, eb - el);
            s = (v.Lo < 0) == neg ? s + l : s - l;
        }
        var wide = new FpuEnv(env.Masks | (env.Rounding << FpuControl.RoundingShift), 64);
        Float80 r = SoftFloat80.NormalizeRoundPack(neg, eb + scale + 126, s, 64, ref wide);
        env.Flags |= wide.Flags;
        return r;
    }

    // ---------------------------------------------------------------- trigonometry

    /// <summary>π rounded to 66 bits, as an integer: π66 = Pi66 · 2^-66 (the x87's internal π, SDM vol. 1 §8.3.10).</summary>
    private static readonly UInt128 Pi66 = new(0xC, 0x90FDAA22168C234CUL);

    /// <summary>
    /// x = k·(π66/2) + r with |r| ≤ π66/4, exactly, like the hardware: FSIN/FCOS/FSINCOS/FPTAN reduce with the
    /// 66-bit π, so near multiples of π they return sin(x − k·π66/2), not the true sine (recorded silicon agrees
    /// within 1 ulp). |x| = m·2^(e−63) = N·2^-67 with N = m·2^(e+4); π66/2 = Pi66·2^-67; k and r come from an exact
    /// shift-and-subtract division of N by Pi66.
    /// </summary>
    private static void Reduce(Float80 a, out DoubleDouble r, out int quadrant)
    {
        quadrant = 0;
        if (a.Exponent < Float80.Bias - 1 || (a.Exponent == Float80.Bias - 1 && a.Significand <= 0xC90FDAA22168C234UL))
        {
            r = ToDD(a);                                             // |x| ≤ π/4: no reduction
            return;
        }
        SoftFloat80.Unpack(a, out int e, out ulong m);               // e ∈ [−1, 62]
        UInt128 rem = m;                                             // m < 2^64 < Pi66
        int q = 0;
        for (int i = e + 4; i > 0; i--)
        {
            rem <<= 1;
            q = (q << 1) & 3;
            if (rem >= Pi66)
            {
                rem -= Pi66;
                q = (q + 1) & 3;
            }
        }
        bool negative = false;
        if ((rem << 1) > Pi66)
        {
            rem = Pi66 - rem;                                        // round k to nearest: r = rem − π66/2
            negative = true;
            q = (q + 1) & 3;
        }
        if (rem == UInt128.Zero)
        {
            r = new DoubleDouble(0);
        }
        else
        {
            int lz = (int)UInt128.LeadingZeroCount(rem);
            UInt128 t = rem << lz;                                   // value = t·2^(−67−lz)
            r = DoubleDouble.FromSignificand(negative, (ulong)(t >> 64), 60 - lz)
                + DoubleDouble.FromSignificand(negative, (ulong)t, -4 - lz);
        }
        quadrant = q;
        if (a.Sign)
        {
            r = -r;
            quadrant = (4 - q) & 3;
        }
    }

    private static void SinCosSeries(DoubleDouble r, out DoubleDouble sin, out DoubleDouble cos)
    {
        DoubleDouble r2 = r * r;
        DoubleDouble s = r, term = r;
        for (int n = 1; n < 40; n++)
        {
            term = term * r2 / ((2.0 * n) * (2.0 * n + 1));
            s = (n & 1) != 0 ? s - term : s + term;
            if (Math.Abs(term.Hi) <= Tiny * Math.Abs(s.Hi)) break;
        }
        DoubleDouble c = new(1), t = new(1);
        for (int n = 1; n < 40; n++)
        {
            t = t * r2 / ((2.0 * n - 1) * (2.0 * n));
            c = (n & 1) != 0 ? c - t : c + t;
            if (Math.Abs(t.Hi) <= Tiny) break;
        }
        sin = s;
        cos = c;
    }

    private enum Trig { Sin, Cos, Tan }

    private static Float80 Evaluate(Float80 a, Trig f, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsInfinity) return Invalid(ref env);
        if (a.IsZero) return f == Trig.Cos ? Float80.One : a;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (a.Exponent < Float80.Bias - 1000)
        {
            // sin x = x − x³/6, tan x = x + x³/3, cos x = 1 − x²/2: x (or 1) with a sticky bit below the last place,
            // just under or just over it, so that every rounding mode, C1 and UE come out right
            var wide = new FpuEnv(env.Masks | (env.Rounding << FpuControl.RoundingShift), 64);
            Float80 tiny;
            if (f == Trig.Cos)
            {
                tiny = SoftFloat80.NormalizeRoundPack(false, 0, (UInt128.One << 126) - UInt128.One, 64, ref wide);
            }
            else
            {
                SoftFloat80.Unpack(a, out int e, out ulong m);
                UInt128 sig = (UInt128)m << 63;
                tiny = SoftFloat80.RoundPack(a.Sign, e, f == Trig.Sin ? sig - UInt128.One : sig + UInt128.One, 64, ref wide);
            }
            env.Flags |= wide.Flags;
            return tiny;
        }
        Reduce(a, out DoubleDouble r, out int q);
        SinCosSeries(r, out DoubleDouble s, out DoubleDouble c);
        DoubleDouble v = f switch
        {
            Trig.Sin => q switch { 0 => s, 1 => c, 2 => -s, _ => -c },
            Trig.Cos => q switch { 0 => c, 1 => -s, 2 => -c, _ => s },
            _ => (q & 1) == 0 ? s / c : -(c / s),
        };
        return Round(v, 0, ref env);
    }

    public static Float80 Sin(Float80 a, ref FpuEnv env) => Evaluate(a, Trig.Sin, ref env);
    public static Float80 Cos(Float80 a, ref FpuEnv env) => Evaluate(a, Trig.Cos, ref env);
    public static Float80 Tan(Float80 a, ref FpuEnv env) => Evaluate(a, Trig.Tan, ref env);

    /// <summary>atan(t) for 0 ≤ t ≤ 1: two argument halvings, then the Taylor series.</summary>
    private static DoubleDouble Atan01(DoubleDouble t)
    {
        int halvings = 0;
        while (t.Hi > 0.2 && halvings < 4)
        {
            t /= new DoubleDouble(1) + (new DoubleDouble(1) + t * t).Sqrt();
            halvings++;
        }
        DoubleDouble t2 = t * t, p = t, s = t;
        for (int n = 1; n < 60; n++)
        {
            p *= t2;
            DoubleDouble term = p / (2.0 * n + 1);
            s = (n & 1) != 0 ? s - term : s + term;
            if (Math.Abs(term.Hi) <= Tiny * Math.Abs(s.Hi)) break;
        }
        return s * Math.ScaleB(1.0, halvings);
    }

    /// <summary>FPATAN: atan2(y, x) with the SDM's (= C99's) signed-zero and infinity rules.</summary>
    public static Float80 Atan2(Float80 y, Float80 x, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(y, x, ref env, out Float80 nan)) return nan;
        if (y.IsDenormalOperand || x.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        DoubleDouble angle;
        if (y.IsZero)
        {
            if (!x.Sign) return y;                                      // ±0 for x ≥ +0
            angle = Pi;
        }
        else if (y.IsInfinity)
        {
            angle = x.IsInfinity ? (x.Sign ? PiO2 * 1.5 : PiO2 * 0.5) : PiO2;
        }
        else if (x.IsInfinity)
        {
            if (!x.Sign) return Float80.Zero(y.Sign);
            angle = Pi;
        }
        else if (x.IsZero)
        {
            angle = PiO2;
        }
        else
        {
            SoftFloat80.Unpack(y, out int ey, out _);
            SoftFloat80.Unpack(x, out int ex, out _);
            if (ey - ex < -200 && !x.Sign)
            {
                // atan(t) = t(1 − t²/3 …) with t² < 2^-400: y/x rounded once is the answer
                var wide = new FpuEnv(env.Masks | (env.Rounding << FpuControl.RoundingShift), 64);
                Float80 q = SoftFloat80.Div(y, x, ref wide);
                env.Flags |= wide.Flags | FpuStatus.Precision;
                return q;
            }
            int shift = Math.Max(ey, ex);
            DoubleDouble ay = ToDD(y.Abs(), shift), ax = ToDD(x.Abs(), shift);
            bool swap = ay.Hi > ax.Hi || (ay.Hi == ax.Hi && ay.Lo > ax.Lo);
            DoubleDouble t = swap ? ax / ay : ay / ax;
            angle = Atan01(t);
            if (swap) angle = PiO2 - angle;
            if (x.Sign) angle = Pi - angle;
        }
        return Round(y.Sign ? -angle : angle, 0, ref env);
    }

    // ---------------------------------------------------------------- exponential and logarithms

    /// <summary>F2XM1: 2^x − 1 (architecturally defined for −1 ≤ x ≤ +1).</summary>
    public static Float80 TwoToXMinus1(Float80 a, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsZero) return a;
        if (a.IsInfinity) return a.Sign ? new Float80(true, Float80.Bias, Float80.IntegerBit) : a;
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (a.Exponent < Float80.Bias - 900)
        {
            // 2^x − 1 = x·ln2 (the next term is below 2^-900 relative)
            var wide = new FpuEnv(env.Masks | (env.Rounding << FpuControl.RoundingShift), 64);
            Float80 r = SoftFloat80.Mul(a, X87.ConstantValue(5, FpuControl.RoundNearest), ref wide);
            env.Flags |= wide.Flags | FpuStatus.Precision;
            return r;
        }
        if (a.Exponent == Float80.Bias && a.Significand == Float80.IntegerBit)
            return a.Sign ? new Float80(true, Float80.Bias - 1, Float80.IntegerBit) : Float80.One;   // −½ and 1 exactly
        if (a.Exponent >= Float80.Bias)
        {
            // |x| > 1 is architecturally undefined; the recorded x87 returns the operand unchanged (PE set)
            env.Flags |= FpuStatus.Precision;
            return a;
        }
        DoubleDouble z = ToDD(a) * Ln2;
        // e^z − 1 = Σ z^n/n!, with z = z'·2^h halved until small and expm1(2u) = expm1(u)·(expm1(u) + 2)
        int halvings = 0;
        while (Math.Abs(z.Hi) > 0.25)
        {
            z *= 0.5;
            halvings++;
        }
        DoubleDouble s = z, term = z;
        for (int n = 2; n < 40; n++)
        {
            term = term * z / n;
            s += term;
            if (Math.Abs(term.Hi) <= Tiny * Math.Abs(s.Hi)) break;
        }
        for (int i = 0; i < halvings; i++) s *= s + new DoubleDouble(2);
        return Round(s, 0, ref env);
    }

    /// <summary>ln((1 + t)/(1 − t)) / 2 = atanh t, for |t| ≤ 0.18.</summary>
    private static DoubleDouble Atanh(DoubleDouble t)
    {
        DoubleDouble t2 = t * t, p = t, s = t;
        for (int n = 1; n < 60; n++)
        {
            p *= t2;
            DoubleDouble term = p / (2.0 * n + 1);
            s += term;
            if (Math.Abs(term.Hi) <= Tiny * Math.Abs(s.Hi)) break;
        }
        return s;
    }

    /// <summary>log2 of m·2^(k−63) (m normalised) in double-double; exact when x is a power of two.</summary>
    private static DoubleDouble Log2(int k, ulong m, out bool exact)
    {
        exact = m == Float80.IntegerBit;
        // f = m/2^63 ∈ [1, 2), moved into [√½, √2); log2 f = 2·atanh((f − 1)/(f + 1))·log2(e)
        int fe = 0;
        if (m > 0xB504_F333_F9DE_6484UL)
        {
            fe = -1;
            k++;
        }
        DoubleDouble f = DoubleDouble.FromSignificand(false, m, fe);
        DoubleDouble one = new(1);
        DoubleDouble t = (f - one) / (f + one);
        DoubleDouble lf = Atanh(t) * 2.0 * Log2E;
        return new DoubleDouble(k) + lf;
    }

    /// <summary>y·L rounded once, with y's binary exponent applied exactly.</summary>
    private static Float80 ScaleProduct(Float80 y, DoubleDouble l, ref FpuEnv env, int extraScale = 0, bool exact = false)
    {
        SoftFloat80.Unpack(y, out int ey, out ulong my);
        DoubleDouble ym = DoubleDouble.FromSignificand(y.Sign, my, 0);
        return Round(ym * l, ey + extraScale, ref env, exact);
    }

    /// <summary>FYL2X: ST1 · log2(ST0). x = ST0, y = ST1.</summary>
    public static Float80 YLog2X(Float80 x, Float80 y, ref FpuEnv env)
    {
        if (SoftFloat80.PropagateNaN(x, y, ref env, out Float80 nan)) return nan;
        if (x.Sign && !x.IsZero) return Invalid(ref env);
        if (x.IsZero)
        {
            // log2(±0) = −∞: zero-divide, and (as for FDIV by zero on silicon) no #D for a denormal ST1
            if (y.IsZero) return Invalid(ref env);
            if (!y.IsInfinity) env.Flags |= FpuStatus.ZeroDivide;
            return Float80.Infinity(!y.Sign);
        }
        if (x.IsDenormalOperand || y.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
        if (x.IsInfinity)
        {
            if (y.IsZero) return Invalid(ref env);
            return Float80.Infinity(y.Sign);
        }
        SoftFloat80.Unpack(x, out int k, out ulong m);
        if (k == 0 && m == Float80.IntegerBit)
        {
            if (y.IsInfinity) return Invalid(ref env);
            return Float80.Zero(y.Sign);                            // log2(1) = +0 exactly
        }
        bool below1 = k < 0;
        if (y.IsInfinity) return Float80.Infinity(y.Sign ^ below1);
        if (y.IsZero) return Float80.Zero(y.Sign ^ below1);
        DoubleDouble log = Log2(k, m, out bool exact);
        return ScaleProduct(y, log, ref env, exact: exact);   // y·k for powers of two: exact (64×≤15 bits in 106)
    }

    /// <summary>FYL2XP1: ST1 · log2(ST0 + 1) (architecturally for |ST0| &lt; 1 − √2/2).</summary>
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
        if (onePlus.Sign && !onePlus.IsZero)
        {
            // x < −1 is outside the defined domain; the recorded x87 delivers x itself (PE set, no #IA)
            env.Flags |= FpuStatus.Precision;
            return x;
        }
        if (onePlus.IsZero)
        {
            if (y.IsZero) return Invalid(ref env);
            env.Flags |= FpuStatus.ZeroDivide;
            return Float80.Infinity(!y.Sign);
        }
        if (y.IsInfinity) return Float80.Infinity(y.Sign ^ x.Sign);
        if (y.IsZero) return Float80.Zero(y.Sign ^ x.Sign);
        DoubleDouble log;
        if (x.Exponent < Float80.Bias - 1)
        {
            // |x| < 0.5: ln(1 + x) = 2·atanh(x/(2 + x)), no cancellation
            if (x.Exponent < Float80.Bias - 900)
            {
                // log2(1 + x) = x·log2(e) to far beyond 64 bits; keep x's exponent out of the double range
                SoftFloat80.Unpack(x, out int ex, out ulong mx);
                return ScaleProduct(y, DoubleDouble.FromSignificand(x.Sign, mx, 0) * Log2E, ref env, ex);
            }
            DoubleDouble xd = ToDD(x);
            log = Atanh(xd / (new DoubleDouble(2) + xd)) * 2.0 * Log2E;
        }
        else
        {
            SoftFloat80.Unpack(onePlus, out int k, out ulong m);
            log = Log2(k, m, out _);
        }
        return ScaleProduct(y, log, ref env);
    }

    private static Float80 Invalid(ref FpuEnv env)
    {
        env.Flags |= FpuStatus.Invalid;
        return Float80.Indefinite;
    }
}

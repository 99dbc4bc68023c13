using System.Numerics;

namespace VmPortal.Emulator.Cpu.Fpu;

/// <summary>
/// Software extended-precision arithmetic with x87 semantics: every basic operation is computed exactly (128-bit
/// intermediate with a sticky bit) and rounded once to the precision-control width (24/53/64 bits) in one of the
/// four rounding modes, with the extended exponent range, gradual underflow (tininess detected after rounding, as
/// x86 does), masked/unmasked overflow and underflow (unmasked: the result is delivered scaled by 2^∓24576),
/// and the x87 rules for NaN propagation, denormal operands and unsupported encodings.
/// Working form: value = sig · 2^(e − 126) with the integer bit of <c>sig</c> at bit 126 (bit 127 is headroom).
/// </summary>
public static class SoftFloat80
{
    private const int ExtendedBias = 16383;
    public const int WrapBias = 24576;

    // ---------------------------------------------------------------- unpacking and rounding

    /// <summary>Finite non-zero value as sig · 2^(e−63) with bit 63 of sig set (denormals normalised).</summary>
    internal static void Unpack(Float80 a, out int e, out ulong sig)
    {
        int exp = a.Exponent;
        sig = a.Significand;
        if (exp == 0)
        {
            int lz = BitOperations.LeadingZeroCount(sig);
            sig <<= lz;
            e = 1 - ExtendedBias - lz;
        }
        else
        {
            e = exp - ExtendedBias;
        }
    }

    internal static UInt128 ShiftRightJam(UInt128 x, int n)
    {
        if (n <= 0) return x;
        if (n >= 128) return x != UInt128.Zero ? UInt128.One : UInt128.Zero;
        UInt128 r = x >> n;
        if ((x & ((UInt128.One << n) - UInt128.One)) != UInt128.Zero) r |= UInt128.One;
        return r;
    }

    /// <summary>Rounds away the low <paramref name="drop"/> bits (drop ≤ 127).</summary>
    internal static UInt128 RoundBits(UInt128 sig, int drop, bool negative, int rc, out bool inexact, out bool up)
    {
        up = false;
        UInt128 unit = UInt128.One << drop;
        UInt128 mask = unit - UInt128.One;
        UInt128 rem = sig & mask;
        UInt128 t = sig & ~mask;
        inexact = rem != UInt128.Zero;
        if (!inexact) return t;
        bool increment;
        switch (rc)
        {
            case FpuControl.RoundNearest:
                UInt128 half = unit >> 1;
                increment = rem > half || (rem == half && ((t >> drop) & UInt128.One) != UInt128.Zero);
                break;
            case FpuControl.RoundDown: increment = negative; break;
            case FpuControl.RoundUp: increment = !negative; break;
            default: increment = false; break;
        }
        if (increment)
        {
            t += unit;
            up = true;
        }
        return t;
    }

    /// <summary>
    /// Rounds sig·2^(e−126) (sig normalised at bit 126, non-zero) to <paramref name="p"/> significant bits in a
    /// binary format with the given exponent bias. Returns the biased exponent (0: denormal or zero,
    /// 2·bias+1: infinity) and the p-bit significand (integer bit at p−1 for normal numbers). With
    /// <paramref name="wrap"/>, unmasked overflow/underflow deliver the result scaled by 2^∓24576 (x87 register
    /// destination); without it they only raise the flag (memory destination: the caller does not store).
    /// </summary>
    internal static void RoundCore(bool negative, int e, UInt128 sig, int p, int bias, bool wrap, ref FpuEnv env,
        out int biasedExp, out ulong mant)
    {
        int drop = 127 - p;
        int emin = 1 - bias;
        int emax = bias;
        int rc = env.Rounding;
        bool inexact, up;
        if (e < emin)
        {
            bool tiny = true;
            if (e == emin - 1)
            {
                UInt128 probe = RoundBits(sig, drop, negative, rc, out _, out _);
                if ((probe >> 127) != UInt128.Zero) tiny = false;
            }
            if (tiny && wrap && !env.IsMasked(FpuStatus.Underflow))
            {
                env.Flags |= FpuStatus.Underflow;
                e += WrapBias;
                if (e < emin) e = emin; // beyond the wrap range: keep the exponent in range (not architecturally defined)
            }
            else
            {
                UInt128 shifted = ShiftRightJam(sig, emin - e);
                UInt128 r = RoundBits(shifted, drop, negative, rc, out inexact, out up);
                if (inexact)
                {
                    env.Flags |= FpuStatus.Precision;
                    if (up) env.Flags |= FpuStatus.C1;
                }
                if (tiny && (inexact || !env.IsMasked(FpuStatus.Underflow))) env.Flags |= FpuStatus.Underflow;
                biasedExp = (r >> 126) != UInt128.Zero ? 1 : 0;
                mant = (ulong)(r >> drop);
                return;
            }
        }
        UInt128 rr = RoundBits(sig, drop, negative, rc, out inexact, out up);
        if ((rr >> 127) != UInt128.Zero)
        {
            rr >>= 1;
            e++;
        }
        if (e > emax)
        {
            if (wrap && !env.IsMasked(FpuStatus.Overflow))
            {
                env.Flags |= FpuStatus.Overflow;
                e -= WrapBias;
                if (e > emax) e = emax;
            }
            else
            {
                env.Flags |= FpuStatus.Overflow | FpuStatus.Precision;
                bool toInfinity = rc == FpuControl.RoundNearest || (rc == FpuControl.RoundUp && !negative) ||
                                  (rc == FpuControl.RoundDown && negative);
                if (toInfinity)
                {
                    biasedExp = 2 * bias + 1;
                    mant = 1UL << (p - 1);
                    env.Flags |= FpuStatus.C1;
                }
                else
                {
                    biasedExp = 2 * bias;
                    mant = p == 64 ? ulong.MaxValue : (1UL << p) - 1;
                }
                return;
            }
        }
        if (inexact)
        {
            env.Flags |= FpuStatus.Precision;
            if (up) env.Flags |= FpuStatus.C1;
        }
        biasedExp = e + bias;
        mant = (ulong)(rr >> drop);
    }

    /// <summary>Rounds to the register format at the precision-control width.</summary>
    internal static Float80 RoundPack(bool negative, int e, UInt128 sig, ref FpuEnv env) =>
        RoundPack(negative, e, sig, env.PrecisionBits, ref env);

    internal static Float80 RoundPack(bool negative, int e, UInt128 sig, int p, ref FpuEnv env)
    {
        if (sig == UInt128.Zero) return Float80.Zero(negative);
        RoundCore(negative, e, sig, p, ExtendedBias, wrap: true, ref env, out int be, out ulong mant);
        return new Float80(negative, be, mant << (64 - p));
    }

    /// <summary>Normalises an arbitrary non-zero 128-bit significand whose value is sig·2^(e−126).</summary>
    internal static Float80 NormalizeRoundPack(bool negative, int e, UInt128 sig, int p, ref FpuEnv env)
    {
        if (sig == UInt128.Zero) return Float80.Zero(negative);
        int lz = (int)UInt128.LeadingZeroCount(sig);
        if (lz == 0)
        {
            sig = ShiftRightJam(sig, 1);
            e++;
        }
        else
        {
            sig <<= lz - 1;
            e -= lz - 1;
        }
        return RoundPack(negative, e, sig, p, ref env);
    }

    private static UInt128 Wide(ulong sig) => (UInt128)sig << 63;

    // ---------------------------------------------------------------- operand checks

    /// <summary>
    /// Two-operand NaN / unsupported handling. Returns true with the result when one operand decides it:
    /// unsupported → IE and indefinite; SNaN → IE; NaN result per the x87 rules (QNaN over SNaN, otherwise the
    /// larger significand), quieted.
    /// </summary>
    internal static bool PropagateNaN(Float80 a, Float80 b, ref FpuEnv env, out Float80 result)
    {
        Float80Class ca = a.Classify(), cb = b.Classify();
        if (ca == Float80Class.Unsupported || cb == Float80Class.Unsupported)
        {
            env.Flags |= FpuStatus.Invalid;
            result = Float80.Indefinite;
            return true;
        }
        bool aNaN = ca is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        bool bNaN = cb is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        if (!aNaN && !bNaN)
        {
            result = default;
            return false;
        }
        if (ca == Float80Class.SignalingNaN || cb == Float80Class.SignalingNaN) env.Flags |= FpuStatus.Invalid;
        if (aNaN && bNaN)
        {
            if (ca != cb) result = ca == Float80Class.QuietNaN ? a : b;
            else result = LargerSignificand(a, b);
        }
        else
        {
            result = aNaN ? a : b;
        }
        result = result.Quieted();
        return true;
    }

    private static Float80 LargerSignificand(Float80 a, Float80 b)
    {
        ulong sa = a.Significand | Float80.QuietBit, sb = b.Significand | Float80.QuietBit;
        if (sa != sb) return sa > sb ? a : b;
        return a.SignExponent <= b.SignExponent ? a : b;
    }

    /// <summary>One-operand version: unsupported → IE/indefinite, SNaN → IE and quieted, QNaN passes.</summary>
    internal static bool PropagateNaN(Float80 a, ref FpuEnv env, out Float80 result)
    {
        Float80Class c = a.Classify();
        switch (c)
        {
            case Float80Class.Unsupported:
                env.Flags |= FpuStatus.Invalid;
                result = Float80.Indefinite;
                return true;
            case Float80Class.SignalingNaN:
                env.Flags |= FpuStatus.Invalid;
                result = a.Quieted();
                return true;
            case Float80Class.QuietNaN:
                result = a;
                return true;
            default:
                result = default;
                return false;
        }
    }

    private static Float80 InvalidResult(ref FpuEnv env)
    {
        env.Flags |= FpuStatus.Invalid;
        return Float80.Indefinite;
    }

    private static void CheckDenormal(Float80 a, ref FpuEnv env)
    {
        if (a.IsDenormalOperand) env.Flags |= FpuStatus.Denormal;
    }

    // ---------------------------------------------------------------- basic arithmetic

    public static Float80 Add(Float80 a, Float80 b, ref FpuEnv env) => AddSub(a, b, false, ref env);
    public static Float80 Sub(Float80 a, Float80 b, ref FpuEnv env) => AddSub(a, b, true, ref env);

    private static Float80 AddSub(Float80 a, Float80 b, bool subtract, ref FpuEnv env)
    {
        if (PropagateNaN(a, b, ref env, out Float80 nan)) return nan;
        CheckDenormal(a, ref env);
        CheckDenormal(b, ref env);
        bool sa = a.Sign, sb = b.Sign ^ subtract;
        bool aInf = a.IsInfinity, bInf = b.IsInfinity;
        if (aInf || bInf)
        {
            if (aInf && bInf && sa != sb) return InvalidResult(ref env);
            return Float80.Infinity(aInf ? sa : sb);
        }
        bool aZero = a.IsZero, bZero = b.IsZero;
        if (aZero && bZero)
            return Float80.Zero(sa == sb ? sa : env.Rounding == FpuControl.RoundDown);
        if (bZero)
        {
            Unpack(a, out int ea0, out ulong ma0);
            return RoundPack(sa, ea0, Wide(ma0), ref env);
        }
        if (aZero)
        {
            Unpack(b, out int eb0, out ulong mb0);
            return RoundPack(sb, eb0, Wide(mb0), ref env);
        }
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        if (ea < eb || (ea == eb && ma < mb))
        {
            (ea, eb) = (eb, ea);
            (ma, mb) = (mb, ma);
            (sa, sb) = (sb, sa);
        }
        UInt128 x = Wide(ma);
        UInt128 y = ShiftRightJam(Wide(mb), ea - eb);
        int e = ea;
        UInt128 s;
        if (sa == sb)
        {
            s = x + y;
            if ((s >> 127) != UInt128.Zero)
            {
                s = ShiftRightJam(s, 1);
                e++;
            }
        }
        else
        {
            s = x - y;
            if (s == UInt128.Zero) return Float80.Zero(env.Rounding == FpuControl.RoundDown);
            int shift = (int)UInt128.LeadingZeroCount(s) - 1;
            s <<= shift;
            e -= shift;
        }
        return RoundPack(sa, e, s, ref env);
    }

    public static Float80 Mul(Float80 a, Float80 b, ref FpuEnv env)
    {
        if (PropagateNaN(a, b, ref env, out Float80 nan)) return nan;
        CheckDenormal(a, ref env);
        CheckDenormal(b, ref env);
        bool sign = a.Sign ^ b.Sign;
        if (a.IsInfinity || b.IsInfinity)
        {
            if (a.IsZero || b.IsZero) return InvalidResult(ref env);
            return Float80.Infinity(sign);
        }
        if (a.IsZero || b.IsZero) return Float80.Zero(sign);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        ulong hi = Math.BigMul(ma, mb, out ulong lo);
        UInt128 p = new(hi, lo);
        int e = ea + eb;
        if ((p >> 127) != UInt128.Zero)
        {
            p = ShiftRightJam(p, 1);
            e++;
        }
        return RoundPack(sign, e, p, ref env);
    }

    public static Float80 Div(Float80 a, Float80 b, ref FpuEnv env)
    {
        if (PropagateNaN(a, b, ref env, out Float80 nan)) return nan;
        bool sign = a.Sign ^ b.Sign;
        if (a.IsInfinity)
        {
            if (b.IsInfinity) return InvalidResult(ref env);
            CheckDenormal(b, ref env);
            return Float80.Infinity(sign);
        }
        if (b.IsInfinity)
        {
            CheckDenormal(a, ref env);
            return Float80.Zero(sign);
        }
        if (b.IsZero)
        {
            if (a.IsZero) return InvalidResult(ref env);
            env.Flags |= FpuStatus.ZeroDivide;                 // a denormal dividend raises no #D here (silicon)
            return Float80.Infinity(sign);
        }
        CheckDenormal(a, ref env);
        CheckDenormal(b, ref env);
        if (a.IsZero) return Float80.Zero(sign);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        UInt128 num = (UInt128)ma << 63;
        UInt128 q1 = num / mb;
        UInt128 r1 = num - q1 * mb;
        UInt128 num2 = r1 << 64;
        UInt128 q2 = num2 / mb;
        UInt128 r2 = num2 - q2 * mb;
        UInt128 q = (q1 << 64) | q2;
        if (r2 != UInt128.Zero) q |= UInt128.One;
        int e;
        if ((q >> 127) != UInt128.Zero)
        {
            q = ShiftRightJam(q, 1);
            e = ea - eb;
        }
        else
        {
            e = ea - eb - 1;
        }
        return RoundPack(sign, e, q, ref env);
    }

    public static Float80 Sqrt(Float80 a, ref FpuEnv env)
    {
        if (PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsZero) return a;
        if (a.Sign) return InvalidResult(ref env);
        if (a.IsInfinity) return a;
        CheckDenormal(a, ref env);
        Unpack(a, out int e, out ulong m);
        // a = m·2^(e−63) = N·2^(e−63−s), s ∈ {63, 64} chosen so that the exponent is even; N ∈ [2^126, 2^128).
        int s = ((e - 63 - 63) & 1) == 0 ? 63 : 64;
        UInt128 n = (UInt128)m << s;
        ulong root = ISqrt(n, out UInt128 rem);
        int resultE = 63 + (e - 63 - s) / 2;
        UInt128 sig = (UInt128)root << 63;
        if (rem > root) sig |= UInt128.One << 62;    // fraction of the true root ≥ 1/2 (never exactly 1/2)
        if (rem != UInt128.Zero) sig |= UInt128.One;
        return RoundPack(false, resultE, sig, ref env);
    }

    /// <summary>Integer square root of n ∈ [2^126, 2^128): floor root and remainder n − root².</summary>
    internal static ulong ISqrt(UInt128 n, out UInt128 remainder)
    {
        UInt128 rem = UInt128.Zero, root = UInt128.Zero;
        for (int i = 63; i >= 0; i--)
        {
            rem = (rem << 2) | (n >> (2 * i)) & 3;
            UInt128 trial = (root << 2) | UInt128.One;
            root <<= 1;
            if (rem >= trial)
            {
                rem -= trial;
                root |= UInt128.One;
            }
        }
        remainder = rem;
        return (ulong)root;
    }

    /// <summary>Exact scaling by 2^n (FSCALE), rounded to the precision-control width.</summary>
    public static Float80 Scale(Float80 a, int n, ref FpuEnv env)
    {
        if (a.IsZero || a.IsInfinity) return a;
        Unpack(a, out int e, out ulong m);
        long ne = (long)e + n;
        ne = Math.Clamp(ne, -100000, 100000);
        return RoundPack(a.Sign, (int)ne, Wide(m), ref env);
    }

    // ---------------------------------------------------------------- comparison

    /// <summary>Compare result: −1 less, 0 equal, 1 greater, 2 unordered.</summary>
    public const int Unordered = 2;

    /// <summary>
    /// FCOM (quiet=false: any NaN is invalid) / FUCOM (quiet=true: only SNaN is invalid). Unsupported operands are
    /// always invalid. Denormal operands raise DE.
    /// </summary>
    public static int Compare(Float80 a, Float80 b, bool quiet, ref FpuEnv env)
    {
        Float80Class ca = a.Classify(), cb = b.Classify();
        if (ca == Float80Class.Unsupported || cb == Float80Class.Unsupported)
        {
            env.Flags |= FpuStatus.Invalid;
            return Unordered;
        }
        bool aNaN = ca is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        bool bNaN = cb is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        if (aNaN || bNaN)
        {
            if (!quiet || ca == Float80Class.SignalingNaN || cb == Float80Class.SignalingNaN)
                env.Flags |= FpuStatus.Invalid;
            return Unordered;
        }
        CheckDenormal(a, ref env);
        CheckDenormal(b, ref env);
        return CompareOrdered(a, b);
    }

    /// <summary>Ordered comparison of two non-NaN supported values.</summary>
    internal static int CompareOrdered(Float80 a, Float80 b)
    {
        bool aZero = a.IsZero, bZero = b.IsZero;
        if (aZero && bZero) return 0;
        if (a.Sign != b.Sign) return a.Sign ? -1 : 1;
        int mag = CompareMagnitude(a, b);
        return a.Sign ? -mag : mag;
    }

    private static int CompareMagnitude(Float80 a, Float80 b)
    {
        if (a.IsZero) return b.IsZero ? 0 : -1;
        if (b.IsZero) return 1;
        int ea, eb;
        ulong ma, mb;
        if (a.IsInfinity) { ea = int.MaxValue; ma = 0; } else Unpack(a, out ea, out ma);
        if (b.IsInfinity) { eb = int.MaxValue; mb = 0; } else Unpack(b, out eb, out mb);
        if (ea != eb) return ea < eb ? -1 : 1;
        return ma == mb ? 0 : ma < mb ? -1 : 1;
    }

    // ---------------------------------------------------------------- integers

    /// <summary>
    /// Rounds a finite value to an integer in the given mode: the magnitude (≤ 2^64 when exponent ≤ 63), or
    /// returns false when the magnitude needs more than 64 bits.
    /// </summary>
    internal static bool RoundToIntegerMagnitude(Float80 a, int rc, out UInt128 magnitude, out bool inexact, out bool up)
    {
        inexact = false;
        up = false;
        if (a.IsZero)
        {
            magnitude = UInt128.Zero;
            return true;
        }
        Unpack(a, out int e, out ulong m);
        if (e >= 64)
        {
            magnitude = UInt128.Zero;
            return false;
        }
        if (e >= 63)
        {
            magnitude = m;
            return true;
        }
        if (e < -1)
        {
            inexact = true;
            bool one = rc == FpuControl.RoundUp ? !a.Sign : rc == FpuControl.RoundDown && a.Sign;
            up = one;
            magnitude = one ? UInt128.One : UInt128.Zero;
            return true;
        }
        int drop = 63 - e; // 1..64
        UInt128 r = RoundBits(m, drop, a.Sign, rc, out inexact, out up);
        magnitude = r >> drop;
        return true;
    }

    /// <summary>FRNDINT: round to integer in the current rounding mode (exact unless P).</summary>
    public static Float80 RoundToInt(Float80 a, ref FpuEnv env)
    {
        if (PropagateNaN(a, ref env, out Float80 nan)) return nan;
        if (a.IsInfinity || a.IsZero) return a;
        CheckDenormal(a, ref env);
        if (!RoundToIntegerMagnitude(a, env.Rounding, out UInt128 mag, out bool inexact, out bool up)) return a;
        if (inexact)
        {
            env.Flags |= FpuStatus.Precision;
            if (up) env.Flags |= FpuStatus.C1;
        }
        if (mag == UInt128.Zero) return Float80.Zero(a.Sign);
        return FromUInt128(a.Sign, mag);
    }

    /// <summary>Exact integer (up to 2^64) to extended.</summary>
    internal static Float80 FromUInt128(bool negative, UInt128 mag)
    {
        if (mag == UInt128.Zero) return Float80.Zero(negative);
        int lz = (int)UInt128.LeadingZeroCount(mag);
        int msb = 127 - lz;
        ulong sig = msb >= 63 ? (ulong)(mag >> (msb - 63)) : (ulong)mag << (63 - msb);
        return new Float80(negative, msb + ExtendedBias, sig);
    }

    public static Float80 FromInt64(long v)
    {
        bool neg = v < 0;
        ulong mag = neg ? (ulong)(-(v + 1)) + 1 : (ulong)v;
        return FromUInt128(neg, mag);
    }

    /// <summary>
    /// FIST conversion to a signed integer of <paramref name="bits"/> (16/32/64) in the current rounding mode.
    /// Returns false (IE raised) on NaN, infinity, unsupported or out of range; the caller stores the integer
    /// indefinite when IE is masked.
    /// </summary>
    public static bool ToInt(Float80 a, int bits, ref FpuEnv env, out long value)
    {
        value = 0;
        Float80Class c = a.Classify();
        if (c is Float80Class.QuietNaN or Float80Class.SignalingNaN or Float80Class.Infinity or Float80Class.Unsupported)
        {
            env.Flags |= FpuStatus.Invalid;
            return false;
        }
        // (no #D: the SDM lists only #IS, #IA and #P for FIST/FISTP)
        if (!RoundToIntegerMagnitude(a, env.Rounding, out UInt128 mag, out bool inexact, out bool up))
        {
            env.Flags |= FpuStatus.Invalid;
            return false;
        }
        UInt128 limit = (UInt128.One << (bits - 1)) - (a.Sign ? UInt128.Zero : UInt128.One);
        if (mag > limit)
        {
            env.Flags |= FpuStatus.Invalid;
            return false;
        }
        if (inexact)
        {
            env.Flags |= FpuStatus.Precision;
            if (up) env.Flags |= FpuStatus.C1;
        }
        ulong m = (ulong)mag;
        value = a.Sign ? (long)(0 - m) : (long)m;
        return true;
    }

    // ---------------------------------------------------------------- single / double formats

    /// <summary>FLD m32: exact widening. SNaN → IE and quieted; denormal → DE.</summary>
    public static Float80 FromFloat32Bits(uint bits, ref FpuEnv env, bool quietSignaling = true)
    {
        bool neg = (bits >> 31) != 0;
        int exp = (int)((bits >> 23) & 0xFF);
        ulong frac = bits & 0x7F_FFFF;
        return FromBinary(neg, exp, frac, 23, 0xFF, 127, ref env, quietSignaling);
    }

    /// <summary>FLD m64: exact widening. SNaN → IE and quieted; denormal → DE.</summary>
    public static Float80 FromFloat64Bits(ulong bits, ref FpuEnv env, bool quietSignaling = true)
    {
        bool neg = (bits >> 63) != 0;
        int exp = (int)((bits >> 52) & 0x7FF);
        ulong frac = bits & 0xF_FFFF_FFFF_FFFFUL;
        return FromBinary(neg, exp, frac, 52, 0x7FF, 1023, ref env, quietSignaling);
    }

    private static Float80 FromBinary(bool neg, int exp, ulong frac, int fracBits, int maxExp, int bias, ref FpuEnv env,
        bool quietSignaling)
    {
        if (exp == maxExp)
        {
            if (frac == 0) return Float80.Infinity(neg);
            ulong sig = Float80.IntegerBit | (frac << (63 - fracBits));
            if ((sig & Float80.QuietBit) == 0 && quietSignaling)
            {
                env.Flags |= FpuStatus.Invalid;
                sig |= Float80.QuietBit;
            }
            return new Float80(neg, Float80.MaxExponent, sig);
        }
        if (exp == 0)
        {
            if (frac == 0) return Float80.Zero(neg);
            env.Flags |= FpuStatus.Denormal;
            int lz = BitOperations.LeadingZeroCount(frac);
            ulong sig = frac << lz;
            // value = frac·2^(1−bias−fracBits) = sig·2^(1−bias−fracBits−lz) = (sig/2^63)·2^(64−bias−fracBits−lz)
            return new Float80(neg, 64 - bias - fracBits - lz + ExtendedBias, sig);
        }
        return new Float80(neg, exp - bias + ExtendedBias, Float80.IntegerBit | (frac << (63 - fracBits)));
    }

    /// <summary>FST m32: round with RC at 24 bits into the single range. IE for SNaN/unsupported.</summary>
    public static uint ToFloat32Bits(Float80 a, ref FpuEnv env) => (uint)ToBinary(a, 24, 127, 8, ref env);

    /// <summary>FST m64: round with RC at 53 bits into the double range. IE for SNaN/unsupported.</summary>
    public static ulong ToFloat64Bits(Float80 a, ref FpuEnv env) => ToBinary(a, 53, 1023, 11, ref env);

    private static ulong ToBinary(Float80 a, int p, int bias, int expBits, ref FpuEnv env)
    {
        int fracBits = p - 1;
        ulong signBit = a.Sign ? 1UL << (fracBits + expBits) : 0;
        ulong expAllOnes = ((1UL << expBits) - 1) << fracBits;
        ulong fracMask = (1UL << fracBits) - 1;
        switch (a.Classify())
        {
            case Float80Class.Unsupported:
                env.Flags |= FpuStatus.Invalid;
                return (1UL << (fracBits + expBits)) | expAllOnes | (1UL << (fracBits - 1));
            case Float80Class.SignalingNaN:
            case Float80Class.QuietNaN:
                if (a.IsSignalingNaN) env.Flags |= FpuStatus.Invalid;
                return signBit | expAllOnes | (1UL << (fracBits - 1)) | ((a.Significand >> (63 - fracBits)) & fracMask);
            case Float80Class.Infinity:
                return signBit | expAllOnes;
            case Float80Class.Zero:
                return signBit;
        }
        Unpack(a, out int e, out ulong m);
        RoundCore(a.Sign, e, Wide(m), p, bias, wrap: false, ref env, out int be, out ulong mant);
        return signBit | ((ulong)be << fracBits) | (mant & fracMask);
    }

    /// <summary>Rounds to 64 bits (used by constants and by transcendentals' extended results).</summary>
    internal static Float80 RoundWide(bool negative, int e, UInt128 sig, int rc)
    {
        var env = new FpuEnv(0x037F | (rc << FpuControl.RoundingShift));
        return NormalizeRoundPack(negative, e, sig, 64, ref env);
    }
}

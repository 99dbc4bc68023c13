using System.Buffers.Binary;
using System.Numerics;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>Drives X87.Execute with hand-encoded instructions, as the CPU will.</summary>
internal sealed class FpuHarness
{
    public readonly X87 Fpu = new();
    public FpuContext Ctx = new() { ProtectedMode = true, Operand32 = true, CodeSelector = 0x08, DataSelector = 0x10 };
    public readonly byte[] Out = new byte[512];

    // ModRM bytes for memory forms with [eax] (mod=00, rm=000): reg field selects the operation.
    public static byte M(int reg) => (byte)(reg << 3);
    // Register forms: mod=11.
    public static byte R(int reg, int i) => (byte)(0xC0 | (reg << 3) | i);

    public FpuResult Exec(byte opcode, byte modrm, ReadOnlySpan<byte> input = default)
    {
        Array.Clear(Out);
        var cls = X87.Classify(opcode, modrm, Ctx.Operand32);
        byte[] inBuf = new byte[Math.Max(cls.Size, input.Length)];
        input.CopyTo(inBuf);
        Ctx.InstructionOffset += 2;
        return Fpu.Execute(opcode, modrm, inBuf, Out, ref Ctx);
    }

    public void Ok(byte opcode, byte modrm, ReadOnlySpan<byte> input = default) =>
        Assert.Equal(FpuResult.Ok, Exec(opcode, modrm, input));

    public void SetControlWord(int cw)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)cw);
        Ok(0xD9, M(5), b);
    }

    public void Load(Float80 v)
    {
        var b = new byte[10];
        v.WriteTo(b);
        Ok(0xDB, M(5), b);
    }

    public void LoadDouble(double d)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(b, d);
        Ok(0xDD, M(0), b);
    }

    public Float80 Pop()
    {
        Ok(0xDB, M(7));
        return Float80.ReadFrom(Out);
    }

    public ushort Sw => Fpu.StatusWord;
    public int Exceptions => Fpu.StatusWord & 0x7F;

    public void ClearExceptions() => Ok(0xDB, 0xE2);
}

/// <summary>
/// Independent reference: exact rational arithmetic with BigInteger and a straightforward rounding to p bits
/// in the x87 extended exponent range (denormals, tininess after rounding, masked overflow rules).
/// </summary>
internal static class Reference
{
    public const int Emin = -16382, Emax = 16383;

    public readonly record struct Rounded(Float80 Value, bool Inexact, bool RoundedUp, bool Underflow, bool Overflow);

    /// <summary>value = Num · 2^Exp (Num signed), for a finite Float80.</summary>
    public static (BigInteger Num, int Exp) ToExact(Float80 f)
    {
        int e = f.Exponent;
        BigInteger m = f.Significand;
        int exp = e == 0 ? Emin - 63 : e - 16383 - 63;
        return (f.Sign ? -m : m, exp);
    }

    public static double Ulps(Float80 a, Float80 b)
    {
        // distance in units of the 64-bit ulp at b
        var (na, ea) = ToExact(a);
        var (nb, eb) = ToExact(b);
        int e = Math.Min(ea, eb);
        BigInteger diff = BigInteger.Abs((na << (ea - e)) - (nb << (eb - e)));
        int bexp = b.Exponent == 0 ? Emin : b.Exponent - 16383;
        int ulpExp = bexp - 63;
        return (double)diff * Math.Pow(2, e - ulpExp);
    }

    private static int FloorLog2(BigInteger n, BigInteger d)
    {
        long e = (long)n.GetBitLength() - (long)d.GetBitLength();
        // ensure 2^e ≤ n/d < 2^(e+1)
        while (Cmp(n, d, e) < 0) e--;
        while (Cmp(n, d, e + 1) >= 0) e++;
        return (int)e;
    }

    // compare n/d with 2^e
    private static int Cmp(BigInteger n, BigInteger d, long e) =>
        e >= 0 ? n.CompareTo(d << (int)e) : (n << (int)-e).CompareTo(d);

    /// <summary>Round sign·n/d (n, d &gt; 0 or n = 0) to p bits in mode rc (0 near, 1 down, 2 up, 3 chop).</summary>
    public static Rounded Round(bool negative, BigInteger n, BigInteger d, int p, int rc, int emin = Emin, int emax = Emax)
    {
        if (n.IsZero) return new(Float80.Zero(negative), false, false, false, false);
        int e = FloorLog2(n, d);
        // unbounded-exponent rounding for tininess detection
        var (iu, qu, _, _) = Quantize(negative, n, d, e - (p - 1), rc);
        bool tiny = Cmp(iu, BigInteger.One, (long)emin - qu) < 0; // iu·2^qu < 2^emin
        int q = Math.Max(e, emin) - (p - 1);
        var (i, qq, inexact, up) = Quantize(negative, n, d, q, rc);
        // overflow: i·2^qq ≥ 2^(emax+1)
        if (!i.IsZero && (long)i.GetBitLength() - 1 + qq > emax)
        {
            bool toInf = rc == 0 || (rc == 2 && !negative) || (rc == 1 && negative);
            Float80 v = toInf
                ? Float80.Infinity(negative)
                : new Float80(negative, emax + 16383, p == 64 ? ulong.MaxValue : ((1UL << p) - 1) << (64 - p));
            return new(v, true, toInf, false, true);
        }
        return new(Pack(negative, i, qq), inexact, up, tiny && inexact, false);
    }

    private static (BigInteger I, int Q, bool Inexact, bool Up) Quantize(bool negative, BigInteger n, BigInteger d, int q, int rc)
    {
        BigInteger num = q < 0 ? n << -q : n;
        BigInteger den = q > 0 ? d << q : d;
        BigInteger i = BigInteger.DivRem(num, den, out BigInteger rem);
        bool inexact = !rem.IsZero;
        bool inc = false;
        if (inexact)
        {
            inc = rc switch
            {
                0 => (rem * 2).CompareTo(den) is var c && (c > 0 || (c == 0 && !i.IsEven)),
                1 => negative,
                2 => !negative,
                _ => false,
            };
        }
        if (inc) i += 1;
        return (i, q, inexact, inc);
    }

    /// <summary>i·2^q (exactly representable) into the 80-bit format.</summary>
    public static Float80 Pack(bool negative, BigInteger i, int q)
    {
        const int emin = Emin;
        if (i.IsZero) return Float80.Zero(negative);
        int b = (int)i.GetBitLength();
        int msbExp = q + b - 1;
        if (msbExp >= emin)
        {
            ulong sig = (ulong)(b <= 64 ? i << (64 - b) : i >> (b - 64));
            return new Float80(negative, msbExp + 16383, sig);
        }
        int shift = q - (emin - 63);
        ulong dsig = (ulong)(i << shift);
        return new Float80(negative, 0, dsig);
    }

    public static Rounded Add(Float80 a, Float80 b, bool subtract, int p, int rc)
    {
        var (na, ea) = ToExact(a);
        var (nb, eb) = ToExact(b);
        if (subtract) nb = -nb;
        int e = Math.Min(ea, eb);
        BigInteger s = (na << (ea - e)) + (nb << (eb - e));
        if (s.IsZero)
        {
            bool neg = na.IsZero && nb.IsZero ? (a.Sign == (b.Sign ^ subtract) ? a.Sign : rc == 1) : rc == 1;
            return new(Float80.Zero(neg), false, false, false, false);
        }
        return FromScaled(s, e, p, rc);
    }

    public static Rounded Mul(Float80 a, Float80 b, int p, int rc)
    {
        var (na, ea) = ToExact(a);
        var (nb, eb) = ToExact(b);
        BigInteger prod = na * nb;
        if (prod.IsZero) return new(Float80.Zero(a.Sign ^ b.Sign), false, false, false, false);
        return FromScaled(prod, ea + eb, p, rc);
    }

    public static Rounded Div(Float80 a, Float80 b, int p, int rc)
    {
        var (na, ea) = ToExact(a);
        var (nb, eb) = ToExact(b);
        if (na.IsZero) return new(Float80.Zero(a.Sign ^ b.Sign), false, false, false, false);
        bool neg = (na.Sign < 0) ^ (nb.Sign < 0);
        BigInteger n = BigInteger.Abs(na), d = BigInteger.Abs(nb);
        int e = ea - eb;
        if (e >= 0) n <<= e; else d <<= -e;
        return Round(neg, n, d, p, rc);
    }

    private static Rounded FromScaled(BigInteger s, int e, int p, int rc)
    {
        bool neg = s.Sign < 0;
        BigInteger n = BigInteger.Abs(s), d = BigInteger.One;
        if (e >= 0) n <<= e; else d <<= -e;
        return Round(neg, n, d, p, rc);
    }

    /// <summary>Correctly rounded square root of a positive finite value.</summary>
    public static Rounded Sqrt(Float80 a, int p, int rc)
    {
        var (n, e) = ToExact(a);
        // make the exponent even and leave ≥ 2p+4 bits so that the integer root has ≥ p+2 bits
        int shift = 2 * p + 8;
        if (((e - shift) & 1) != 0) shift++;
        BigInteger x = n << shift;
        int ex = e - shift;                       // a = x·2^ex, ex even
        BigInteger r = ISqrt(x);
        BigInteger rem = x - r * r;
        // sqrt(a) = sqrt(x)·2^(ex/2); round sqrt(x) to p bits
        int bits = (int)r.GetBitLength();
        int drop = bits - p;
        BigInteger i = r >> drop;
        BigInteger lowPart = r - (i << drop);
        bool inexact = !rem.IsZero || !lowPart.IsZero;
        bool inc = false;
        if (inexact)
        {
            if (rc == 0)
            {
                // compare sqrt(x) with (i + 1/2)·2^drop  ⇔  4x vs (2i+1)²·4^drop
                BigInteger mid = ((2 * i + 1) << drop);
                inc = (4 * x).CompareTo(mid * mid) > 0;
            }
            else inc = rc == 2;
        }
        if (inc) i += 1;
        return new(Pack(false, i, drop + ex / 2), inexact, inc, false, false);
    }

    public static BigInteger ISqrt(BigInteger x)
    {
        if (x.IsZero) return 0;
        BigInteger r = BigInteger.One << (int)((x.GetBitLength() + 1) / 2);
        while (true)
        {
            BigInteger nr = (r + x / r) >> 1;
            if (nr >= r) break;
            r = nr;
        }
        while (r * r > x) r -= 1;
        while ((r + 1) * (r + 1) <= x) r += 1;
        return r;
    }
}

/// <summary>Deterministic random operands biased towards the hard cases.</summary>
internal sealed class OperandGenerator(int seed)
{
    private readonly Random _rng = new(seed);

    public int Next(int max) => _rng.Next(max);
    public int Next(int min, int max) => _rng.Next(min, max);

    public ulong Significand()
    {
        ulong s = (ulong)_rng.NextInt64() << 1 ^ (ulong)_rng.Next(2);
        switch (_rng.Next(6))
        {
            case 0: s &= ~((1UL << _rng.Next(64)) - 1); break;              // trailing zeros (ties under PC)
            case 1: s |= (1UL << _rng.Next(64)) - 1; break;                 // trailing ones
            case 2: s = ~0UL << _rng.Next(60); break;                        // all ones prefix
        }
        return s | Float80.IntegerBit;
    }

    /// <summary>A finite non-zero value: mostly normal, sometimes denormal or near the range limits.</summary>
    public Float80 Finite(int exponentSpread = 40)
    {
        bool neg = _rng.Next(2) == 1;
        switch (_rng.Next(10))
        {
            case 0:
                return new Float80(neg, 0, Significand() >> (1 + _rng.Next(63)));                 // denormal
            case 1:
                return new Float80(neg, 1 + _rng.Next(64), Significand());                          // near underflow
            case 2:
                return new Float80(neg, 0x7FFE - _rng.Next(64), Significand());                     // near overflow
            default:
                return new Float80(neg, 16383 + _rng.Next(-exponentSpread, exponentSpread), Significand());
        }
    }
}

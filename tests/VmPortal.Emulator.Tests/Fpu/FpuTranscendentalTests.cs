using System.Numerics;
using VmPortal.Emulator.Cpu.Fpu;
using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>
/// FSIN/FCOS/FPTAN/FSINCOS/FPATAN/F2XM1/FYL2X/FYL2XP1 measured against a 256-bit fixed-point BigInteger reference
/// (series evaluation, independent of the implementation's double-double code). Errors are reported in units of
/// the 64-bit extended ulp of the result; run with --logger "console;verbosity=detailed" to see the figures.
/// </summary>
public class FpuTranscendentalTests(ITestOutputHelper output)
{
    private const int F = 256;
    private static readonly BigInteger One = BigInteger.One << F;
    private static readonly BigInteger PiFix = 16 * AtanInv(5) - 4 * AtanInv(239);
    private static readonly BigInteger Ln2Fix = 2 * AtanhSeries((One) / 3);

    private static BigInteger AtanInv(int x)
    {
        BigInteger sum = 0, pow = One / x, x2 = (BigInteger)x * x;
        for (int k = 0; !pow.IsZero; k++)
        {
            sum += (k % 2 == 0 ? 1 : -1) * (pow / (2 * k + 1));
            pow /= x2;
        }
        return sum;
    }

    private static BigInteger Mul(BigInteger a, BigInteger b) => (a * b) >> F;
    private static BigInteger Div(BigInteger a, BigInteger b) => (a << F) / b;

    private static BigInteger AtanhSeries(BigInteger t)
    {
        BigInteger t2 = Mul(t, t), p = t, s = t;
        for (int n = 1; !p.IsZero; n++)
        {
            p = Mul(p, t2);
            s += p / (2 * n + 1);
        }
        return s;
    }

    private static BigInteger Fix(Float80 a)
    {
        var (n, e) = Reference.ToExact(a);
        return e + F >= 0 ? n << (e + F) : n >> -(e + F);
    }

    // The x87 reduces trigonometric arguments with its internal 66-bit π (SDM vol. 1 §8.3.10): the architected
    // FSIN(x) is sin(x − k·π66/2) with k the nearest integer to x/(π66/2).
    private static readonly BigInteger Pi66Fix =
        BigInteger.Parse("0C90FDAA22168C234C", System.Globalization.NumberStyles.HexNumber) << (F - 66);

    private static (BigInteger Sin, BigInteger Cos) SinCos(BigInteger x)
    {
        BigInteger halfPi = Pi66Fix / 2;
        BigInteger k = (x * 2 + (x.Sign >= 0 ? halfPi : -halfPi)) / (2 * halfPi);   // nearest multiple
        BigInteger r = x - k * halfPi;
        BigInteger r2 = Mul(r, r);
        BigInteger s = r, term = r;
        for (int n = 1; !term.IsZero; n++)
        {
            term = -Mul(term, r2) / ((2 * n) * (2 * n + 1));
            s += term;
        }
        BigInteger c = One, t = One;
        for (int n = 1; !t.IsZero; n++)
        {
            t = -Mul(t, r2) / ((2 * n - 1) * (2 * n));
            c += t;
        }
        int q = (int)(((k % 4) + 4) % 4);
        return q switch { 0 => (s, c), 1 => (c, -s), 2 => (-s, -c), _ => (-c, s) };
    }

    private static BigInteger Atan(BigInteger t)   // any t
    {
        bool neg = t.Sign < 0;
        t = BigInteger.Abs(t);
        bool inv = t > One;
        if (inv) t = Div(One, t);
        int halvings = 0;
        for (; halvings < 3; halvings++)
            t = Div(t, One + Reference.ISqrt((One << F) + t * t));
        BigInteger t2 = Mul(t, t), p = t, s = t;
        for (int n = 1; !p.IsZero; n++)
        {
            p = Mul(p, t2);
            s += (n % 2 == 1 ? -1 : 1) * (p / (2 * n + 1));
        }
        s <<= halvings;
        if (inv) s = PiFix / 2 - s;
        return neg ? -s : s;
    }

    private static BigInteger ExpM1(BigInteger z)
    {
        BigInteger s = 0, term = One;
        for (int n = 1; ; n++)
        {
            term = Mul(term, z) / n;
            if (term.IsZero) break;
            s += term;
        }
        return s;
    }

    private static BigInteger Ln(BigInteger x)      // x > 0
    {
        int k = (int)x.GetBitLength() - 1 - F;
        BigInteger f = k >= 0 ? x >> k : x << -k;      // [1, 2)
        BigInteger lf = 2 * AtanhSeries(Div(f - One, f + One));
        return k * Ln2Fix + lf;
    }

    private static double Ulps(Float80 r, BigInteger reference)
    {
        if (reference.IsZero) return r.IsZero ? 0 : double.PositiveInfinity;
        int refExp = (int)BigInteger.Abs(reference).GetBitLength() - 1 - F;   // exponent of the true value
        BigInteger diff = BigInteger.Abs(Fix(r) - reference);
        int ulpShift = F + refExp - 63;
        return (double)diff / Math.Pow(2, ulpShift);
    }

    private double Measure(string name, int count, Func<Random, (Float80 X, Float80 Y)> pick, byte opcode2,
        Func<Float80, Float80, BigInteger> exact, bool binary)
    {
        var rng = new Random(name.Sum(c => c) * 31 + count);   // stable seed (string.GetHashCode is randomised)
        double max = 0, sum = 0;
        for (int i = 0; i < count; i++)
        {
            var (x, y) = pick(rng);
            var h = new FpuHarness();
            if (binary) h.Load(y);
            h.Load(x);
            h.Ok(0xD9, opcode2);
            Float80 r = h.Fpu.St(0);
            double u = Ulps(r, exact(x, y));
            Assert.True(u < 1, $"{name}({x}, {y}) = {r}: {u} ulps");
            Assert.True((h.Sw & FpuStatus.Precision) != 0);
            max = Math.Max(max, u);
            sum += u;
        }
        output.WriteLine($"{name}: max {max:F3} ulp, mean {sum / count:F3} ulp over {count} operands (64-bit ulps)");
        return max;
    }

    private static Float80 Uniform(Random rng, double lo, double hi)
    {
        // a full 64-bit significand, not just a double
        double d = lo + (hi - lo) * rng.NextDouble();
        Float80 f = Float80.FromDouble(d);
        if (f.IsZero) return f;
        return new Float80(f.SignExponent, f.Significand | (ulong)(uint)rng.Next(2048));
    }

    [Fact]
    public void TrigonometricFunctionsAreAccurate()
    {
        Func<Random, (Float80, Float80)> small = r => (Uniform(r, -10, 10), default);
        Func<Random, (Float80, Float80)> wide = r =>
            (new Float80(r.Next(2) == 1, 16383 + r.Next(-30, 63), new OperandGenerator(r.Next()).Significand()), default);
        Measure("fsin", 400, small, 0xFE, (x, _) => SinCos(Fix(x)).Sin, false);
        Measure("fcos", 400, small, 0xFF, (x, _) => SinCos(Fix(x)).Cos, false);
        Measure("fsin wide", 600, wide, 0xFE, (x, _) => SinCos(Fix(x)).Sin, false);
        Measure("fcos wide", 600, wide, 0xFF, (x, _) => SinCos(Fix(x)).Cos, false);
        // the hard cases: 64-bit roundings of k·π/2, where the result is tiny and all the precision comes from
        // the (exact, 66-bit-π) argument reduction
        Func<Random, (Float80, Float80)> nearMultiples = r =>
        {
            BigInteger k = new BigInteger(r.NextInt64(1, 1L << 62)) >> r.Next(0, 62);   // k·π/2 < 2^63
            if (k.IsZero) k = 1;
            BigInteger v = k * (PiFix / 2);                       // fixed point, F fraction bits
            int bits = (int)v.GetBitLength();
            BigInteger top = v >> (bits - 64);
            if (((v >> (bits - 65)) & 1) == 1) top += 1;         // round to 64 bits
            if (top.GetBitLength() > 64) { top >>= 1; bits++; }
            var f = new Float80(r.Next(2) == 1, 16383 + bits - 1 - F, (ulong)top);
            return (f, default);
        };
        Measure("fsin near kπ/2", 400, nearMultiples, 0xFE, (x, _) => SinCos(Fix(x)).Sin, false);
        Measure("fcos near kπ/2", 400, nearMultiples, 0xFF, (x, _) => SinCos(Fix(x)).Cos, false);

        // FPTAN leaves 1.0 on top: measure ST1
        var rng = new Random(9);
        double max = 0;
        for (int i = 0; i < 300; i++)
        {
            Float80 x = Uniform(rng, -1.5, 1.5);
            var h = new FpuHarness();
            h.Load(x);
            h.Ok(0xD9, 0xF2);
            Assert.Equal(Float80.One, h.Fpu.St(0));
            var (s, c) = SinCos(Fix(x));
            double u = Ulps(h.Fpu.St(1), Div(s, c));
            Assert.True(u < 1, $"fptan({x}) {u}");
            max = Math.Max(max, u);
            // FSINCOS: ST0 = cos, ST1 = sin
            var g = new FpuHarness();
            g.Load(x);
            g.Ok(0xD9, 0xFB);
            Assert.True(Ulps(g.Fpu.St(0), c) < 1 && Ulps(g.Fpu.St(1), s) < 1);
        }
        output.WriteLine($"fptan: max {max:F3} ulp over 300 operands");
    }

    [Fact]
    public void ArctangentIsAccurate()
    {
        var rng = new Random(10);
        double max = 0;
        for (int i = 0; i < 600; i++)
        {
            Float80 y = Uniform(rng, -100, 100), x = i % 3 == 0 ? Uniform(rng, -1, 1) : Uniform(rng, -100, 100);
            var h = new FpuHarness();
            h.Load(y);
            h.Load(x);
            h.Ok(0xD9, 0xF3);                          // FPATAN: ST1 = atan2(ST1, ST0), pop
            Assert.Equal(7, h.Fpu.Top);
            BigInteger a = Atan(Div(Fix(y), Fix(x)));
            if (x.Sign) a += y.Sign ? -PiFix : PiFix;
            double u = Ulps(h.Fpu.St(0), a);
            Assert.True(u < 1, $"fpatan({y}, {x}) = {h.Fpu.St(0)}: {u}");
            max = Math.Max(max, u);
        }
        output.WriteLine($"fpatan: max {max:F3} ulp over 600 operands");
    }

    [Fact]
    public void ExponentialAndLogarithmsAreAccurate()
    {
        Measure("f2xm1", 600, r => (Uniform(r, -1, 1), default), 0xF0,
            (x, _) => ExpM1(Mul(Fix(x), Ln2Fix)), false);
        Measure("f2xm1 tiny", 200, r => (new Float80(r.Next(2) == 1, 16383 - r.Next(20, 120), new OperandGenerator(r.Next()).Significand()), default), 0xF0,
            (x, _) => ExpM1(Mul(Fix(x), Ln2Fix)), false);
        Measure("fyl2x", 600, r => (new Float80(false, 16383 + r.Next(-60, 60), new OperandGenerator(r.Next()).Significand()), Uniform(r, -3, 3)), 0xF1,
            (x, y) => Mul(Fix(y), Div(Ln(Fix(x)), Ln2Fix)), true);
        Measure("fyl2x near 1", 300, r => (Uniform(r, 0.999, 1.001), Float80.One), 0xF1,
            (x, y) => Div(Ln(Fix(x)), Ln2Fix), true);
        Measure("fyl2xp1", 600, r => (Uniform(r, -0.29, 0.29), Uniform(r, -3, 3)), 0xF9,
            (x, y) => Mul(Fix(y), Div(Ln(One + Fix(x)), Ln2Fix)), true);
    }

    [Fact]
    public void TranscendentalSpecialCases()
    {
        Float80 Run(byte op, Float80 x, Float80? y = null)
        {
            var h = new FpuHarness();
            if (y is { } yy) h.Load(yy);
            h.Load(x);
            h.Ok(0xD9, op);
            return h.Fpu.St(0);
        }
        Assert.Equal(Float80.Zero(true), Run(0xFE, Float80.Zero(true)));              // sin −0 = −0
        Assert.Equal(Float80.One, Run(0xFF, Float80.Zero(true)));                     // cos 0 = 1
        Assert.Equal(Float80.Indefinite, Run(0xFE, Float80.Infinity(false)));         // sin ∞: invalid
        Assert.Equal(new Float80(true, 16383, Float80.IntegerBit), Run(0xF0, Float80.Infinity(true)));  // 2^−∞ − 1 = −1
        Assert.Equal(Float80.Zero(false), Run(0xF1, Float80.One, Float80.FromDouble(5)));            // 5·log2(1) = +0
        Assert.Equal(Float80.Infinity(true), Run(0xF1, Float80.Zero(false), Float80.FromDouble(2))); // 2·log2(0) = −∞, ZE
        Assert.Equal(Float80.Indefinite, Run(0xF1, Float80.FromDouble(-1), Float80.One));            // log of negative
        Assert.Equal(X87.ConstantValue(3, 0), Run(0xF3, Float80.FromDouble(-1), Float80.Zero(false))); // atan2(+0, −1) = π
        Assert.Equal(Float80.FromDouble(3.0), Run(0xF1, Float80.FromDouble(8), Float80.One));         // log2 8 = 3 (rounded exactly)

        // exact cases raise no PE
        var e1 = new FpuHarness();
        e1.Load(Float80.FromDouble(-2.5)); e1.Load(Float80.FromDouble(1.0 / 1024));
        e1.Ok(0xD9, 0xF1);                                                            // −2.5·log2(2^-10) = 25
        Assert.Equal(Float80.FromDouble(25), e1.Fpu.St(0));
        Assert.Equal(0, e1.Exceptions);
        e1.Load(Float80.FromDouble(-1));
        e1.Ok(0xD9, 0xF0);                                                            // 2^-1 − 1 = −0.5
        Assert.Equal(Float80.FromDouble(-0.5), e1.Fpu.St(0));
        Assert.Equal(0, e1.Exceptions);

        // outside the defined domains the recorded x87 returns the operand (F2XM1 |x| > 1, FYL2XP1 x < −1)
        Assert.Equal(Float80.FromDouble(5000), Run(0xF0, Float80.FromDouble(5000)));
        Assert.Equal(Float80.FromDouble(-1.5), Run(0xF0, Float80.FromDouble(-1.5)));
        Assert.Equal(Float80.FromDouble(-3), Run(0xF9, Float80.FromDouble(-3), Float80.FromDouble(7)));

        // |x| ≥ 2^63: C2 set, operand unchanged
        var big = new Float80(false, 16383 + 63, Float80.IntegerBit);
        var h2 = new FpuHarness();
        h2.Load(big);
        h2.Ok(0xD9, 0xFE);
        Assert.Equal(big, h2.Fpu.St(0));
        Assert.True((h2.Sw & FpuStatus.C2) != 0);
        h2.Ok(0xD9, 0xF2);                                                            // FPTAN: nothing pushed
        Assert.Equal(7, h2.Fpu.Top);
    }
}

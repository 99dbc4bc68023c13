using System.Numerics;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>FPREM/FPREM1, FRNDINT, FSCALE, FXTRACT against exact BigInteger results.</summary>
public class FpuExactFunctionTests
{
    private static (BigInteger N, BigInteger D) Rational(Float80 f)
    {
        var (n, e) = Reference.ToExact(f);
        return e >= 0 ? (n << e, BigInteger.One) : (n, BigInteger.One << -e);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PartialRemainderLoopsToTheExactRemainder(bool ieee)
    {
        var gen = new OperandGenerator(ieee ? 41 : 42);
        for (int i = 0; i < 400; i++)
        {
            Float80 a = gen.Finite(i % 2 == 0 ? 40 : 400), b = gen.Finite(i % 2 == 0 ? 40 : 400);
            var h = new FpuHarness();
            h.Load(b);
            h.Load(a);
            int iterations = 0;
            do
            {
                h.Ok(0xD9, ieee ? (byte)0xF5 : (byte)0xF8);
                iterations++;
            } while ((h.Sw & FpuStatus.C2) != 0 && iterations < 2000);
            Assert.True(iterations < 2000);
            // exact: q = trunc(a/b) or nearest-even(a/b); r = a − q·b
            var (na, da) = Rational(a);
            var (nb, db) = Rational(b);
            BigInteger num = na * db, den = da * nb;           // a/b = num/den
            BigInteger q = BigInteger.DivRem(BigInteger.Abs(num), BigInteger.Abs(den), out BigInteger rem);
            if (ieee)
            {
                int c = (2 * rem).CompareTo(BigInteger.Abs(den));
                if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
            }
            if ((num.Sign < 0) != (den.Sign < 0)) q = -q;
            // r = a − q·b over the common denominator da·db
            BigInteger rn = na * db - q * nb * da, rd = da * db;
            Float80 r = h.Fpu.St(0);
            var (nr, dr) = Rational(r);
            Assert.True(nr * rd == rn * dr, $"{(ieee ? "FPREM1" : "FPREM")} {a} {b}: got {r}");
            if (rn.IsZero) Assert.Equal(a.Sign, r.Sign);
            int sw = h.Sw;
            long qLow = (long)(BigInteger.Abs(q) & 7);
            Assert.Equal((qLow & 4) != 0, (sw & FpuStatus.C0) != 0);      // C0 = Q2
            Assert.Equal((qLow & 2) != 0, (sw & FpuStatus.C3) != 0);      // C3 = Q1
            Assert.Equal((qLow & 1) != 0, (sw & FpuStatus.C1) != 0);      // C1 = Q0
            Assert.Equal(0, h.Exceptions & ~FpuStatus.Denormal & ~FpuStatus.Underflow);
        }
    }

    [Fact]
    public void PartialRemainderSpecialCases()
    {
        var h = new FpuHarness();
        h.LoadDouble(0); h.LoadDouble(5);                // 5 rem 0 → invalid
        h.Ok(0xD9, 0xF8);
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
        h = new FpuHarness();
        h.LoadDouble(double.PositiveInfinity); h.LoadDouble(-5);   // x rem ∞ = x
        h.Ok(0xD9, 0xF8);
        Assert.Equal(-5.0, h.Fpu.StDouble(0));
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(-7);               // FPREM: −7 rem 3 = −1, q=2; FPREM1: −7 − (−2)·3 = −1
        h.Ok(0xD9, 0xF8);
        Assert.Equal(-1.0, h.Fpu.StDouble(0));
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(8);                // FPREM1: 8 − 3·3 = −1
        h.Ok(0xD9, 0xF5);
        Assert.Equal(-1.0, h.Fpu.StDouble(0));
    }

    [Fact]
    public void FrndintRoundsToIntegersInEveryMode()
    {
        var gen = new OperandGenerator(43);
        for (int i = 0; i < 3000; i++)
        {
            int rc = i & 3;
            Float80 a = i % 3 == 0 ? gen.Finite(70) : new Float80(gen.Next(2) == 1, 16383 + gen.Next(-3, 66), gen.Significand());
            var h = new FpuHarness();
            h.SetControlWord(0x007F | (rc << 10));       // PC=24 must not matter for FRNDINT
            h.Load(a);
            h.Ok(0xD9, 0xFC);
            Float80 r = h.Fpu.St(0);
            var (n, d) = Rational(a);
            BigInteger mag = BigInteger.DivRem(BigInteger.Abs(n), d, out BigInteger rem);
            bool inexact = !rem.IsZero, up = false;
            if (inexact)
            {
                up = rc switch
                {
                    0 => (2 * rem).CompareTo(d) is var c && (c > 0 || (c == 0 && !mag.IsEven)),
                    1 => a.Sign,
                    2 => !a.Sign,
                    _ => false,
                };
                if (up) mag += 1;
            }
            var (nr, dr) = Rational(r);
            Assert.True(BigInteger.Abs(nr) == mag * dr, $"{a} rc={rc} → {r}");
            Assert.Equal(a.Sign, r.Sign);
            Assert.Equal(inexact, (h.Sw & FpuStatus.Precision) != 0);
            Assert.Equal(up, (h.Sw & FpuStatus.C1) != 0);
        }
    }

    [Fact]
    public void FscaleIsExactScalingWithCorrectRounding()
    {
        var gen = new OperandGenerator(44);
        var rng = new Random(44);
        for (int i = 0; i < 2000; i++)
        {
            int rc = i & 3;
            Float80 a = gen.Finite(100);
            int n = rng.Next(-20000, 20000) >> rng.Next(14);
            double frac = rng.Next(4) * 0.25 * Math.Sign(n);
            var h = new FpuHarness();
            h.SetControlWord(0x023F | (rc << 10));        // PC = 53: ignored by FSCALE (SDM: PC affects only + − × ÷ √)
            h.LoadDouble(n + frac);                       // FSCALE truncates ST1 toward zero
            h.Load(a);
            h.Ok(0xD9, 0xFD);
            var (na, ea) = Reference.ToExact(a);
            int e = ea + n;
            BigInteger num = BigInteger.Abs(na), den = BigInteger.One;
            if (e >= 0) num <<= e; else den <<= -e;
            var expected = Reference.Round(a.Sign, num, den, 64, rc);
            Assert.True(expected.Value == h.Fpu.St(0), $"{a} · 2^{n} rc={rc}: {expected.Value} vs {h.Fpu.St(0)}");
            Assert.Equal(expected.Inexact, (h.Sw & FpuStatus.Precision) != 0);
            Assert.Equal(expected.Overflow, (h.Sw & FpuStatus.Overflow) != 0);
            Assert.Equal(expected.Underflow, (h.Sw & FpuStatus.Underflow) != 0);
        }
    }

    [Fact]
    public void FxtractSplitsExponentAndSignificand()
    {
        var gen = new OperandGenerator(45);
        for (int i = 0; i < 1000; i++)
        {
            Float80 a = gen.Finite(2000);
            var h = new FpuHarness();
            h.Load(a);
            h.Ok(0xD9, 0xF4);
            Float80 sig = h.Fpu.St(0), exp = h.Fpu.St(1);
            Assert.Equal(16383, sig.Exponent);
            Assert.Equal(a.Sign, sig.Sign);
            var (ne, ee) = Reference.ToExact(exp);
            BigInteger e = ee >= 0 ? ne << ee : ne >> -ee;
            var (ns, es) = Reference.ToExact(sig);
            var (na, ea) = Reference.ToExact(a);
            // sig · 2^e == a
            Assert.Equal(na << 200, ns << (es + (int)e - ea + 200));
            Assert.Equal(a.Exponent == 0 ? FpuStatus.Denormal : 0, h.Exceptions);
        }
        var z = new FpuHarness();
        z.Load(Float80.Zero(true));
        z.Ok(0xD9, 0xF4);
        Assert.Equal(Float80.Zero(true), z.Fpu.St(0));
        Assert.Equal(Float80.Infinity(true), z.Fpu.St(1));
        Assert.Equal(FpuStatus.ZeroDivide, z.Exceptions);
    }
}

using System.Numerics;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>FCOM/FUCOM/FICOM/FTST/FXAM/FCOMI/FUCOMI condition codes and EFLAGS, FCMOVcc, constants.</summary>
public class FpuCompareTests
{
    private const int C0 = FpuStatus.C0, C1 = FpuStatus.C1, C2 = FpuStatus.C2, C3 = FpuStatus.C3;
    private const uint CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;

    private static BigInteger Scaled(Float80 f)
    {
        var (n, e) = Reference.ToExact(f);
        return n << (e + 17000);
    }

    [Fact]
    public void FcomMatchesExactOrderingOnRandomValues()
    {
        var gen = new OperandGenerator(21);
        for (int i = 0; i < 2000; i++)
        {
            Float80 a = gen.Finite(3), b = i % 5 == 0 ? a.Negate() : i % 7 == 0 ? a : gen.Finite(3);
            var h = new FpuHarness();
            h.Load(b);
            h.Load(a);
            h.Ok(0xD8, FpuHarness.R(2, 1));                                   // FCOM ST1
            int expected = Scaled(a).CompareTo(Scaled(b));
            int cc = h.Sw & (C0 | C2 | C3);
            Assert.Equal(expected < 0 ? C0 : expected == 0 ? C3 : 0, cc);
            Assert.Equal(0, h.Sw & C1);
            // FCOMI gives the same answer in EFLAGS and clears OF/SF/AF
            h.Ctx.Eflags = OF | SF | AF | 2;
            h.Ok(0xDB, FpuHarness.R(6, 1));
            uint fl = h.Ctx.Eflags;
            Assert.Equal(expected < 0 ? CF : expected == 0 ? ZF : 0, fl & (CF | PF | ZF));
            Assert.Equal(2u, fl & (OF | SF | AF | 2));
        }
    }

    [Fact]
    public void UnorderedAndQuietComparisons()
    {
        var qnan = new Float80(0x7FFF, 0xC000_0000_0000_0001);
        var snan = new Float80(0x7FFF, 0x8000_0000_0000_0001);
        // FUCOM with a QNaN: unordered, no exception; FCOM: unordered with IE
        var h = new FpuHarness();
        h.Load(qnan); h.LoadDouble(1);
        h.Ok(0xDD, FpuHarness.R(4, 1));
        Assert.Equal(C0 | C2 | C3, h.Sw & (C0 | C2 | C3));
        Assert.Equal(0, h.Exceptions);
        h.Ok(0xD8, FpuHarness.R(2, 1));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
        // FUCOM with an SNaN raises IE
        h = new FpuHarness();
        h.Load(snan); h.LoadDouble(1);
        h.Ok(0xDD, FpuHarness.R(4, 1));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
        // FUCOMIP sets ZF PF CF and pops; FCOMPP pops twice; FUCOMPP too
        h = new FpuHarness();
        h.Load(qnan); h.LoadDouble(1);
        h.Ok(0xDF, FpuHarness.R(5, 1));
        Assert.Equal(ZF | PF | CF, h.Ctx.Eflags & (ZF | PF | CF));
        Assert.Equal(7, h.Fpu.Top);
        h = new FpuHarness();
        h.LoadDouble(2); h.LoadDouble(1);
        h.Ok(0xDE, 0xD9);                                                     // FCOMPP: 1 < 2
        Assert.Equal(C0, h.Sw & (C0 | C2 | C3));
        Assert.Equal(0, h.Fpu.Top);
        h.LoadDouble(2); h.LoadDouble(2);
        h.Ok(0xDA, 0xE9);                                                     // FUCOMPP: equal
        Assert.Equal(C3, h.Sw & (C0 | C2 | C3));
        Assert.Equal(0, h.Fpu.Top);
        // +0 and −0 compare equal
        h.Load(Float80.Zero(true)); h.Load(Float80.Zero(false));
        h.Ok(0xD8, FpuHarness.R(3, 1));                                       // FCOMP
        Assert.Equal(C3, h.Sw & (C0 | C2 | C3));
        Assert.Equal(7, h.Fpu.Top);
        // empty operand: IE+SF, unordered codes
        h = new FpuHarness();
        h.Ok(0xD8, FpuHarness.R(2, 1));
        Assert.Equal(FpuStatus.Invalid | FpuStatus.StackFault, h.Exceptions);
        Assert.Equal(C0 | C2 | C3, h.Sw & (C0 | C2 | C3));
    }

    [Fact]
    public void MemoryAndIntegerComparisonsAndFtst()
    {
        var h = new FpuHarness();
        h.LoadDouble(2.5);
        h.Ok(0xD8, FpuHarness.M(2), BitConverter.GetBytes(2.5f));             // FCOM m32: equal
        Assert.Equal(C3, h.Sw & (C0 | C2 | C3));
        h.Ok(0xDC, FpuHarness.M(2), BitConverter.GetBytes(3.0));              // FCOM m64: less
        Assert.Equal(C0, h.Sw & (C0 | C2 | C3));
        h.Ok(0xDE, FpuHarness.M(2), BitConverter.GetBytes((short)2));         // FICOM m16: greater
        Assert.Equal(0, h.Sw & (C0 | C2 | C3));
        h.Ok(0xDA, FpuHarness.M(3), BitConverter.GetBytes(-7));               // FICOMP m32: greater, pop
        Assert.Equal(0, h.Sw & (C0 | C2 | C3));
        Assert.True(h.Fpu.IsEmpty(0));
        h.LoadDouble(-0.0);
        h.Ok(0xD9, 0xE4);                                                     // FTST: −0 = 0
        Assert.Equal(C3, h.Sw & (C0 | C2 | C3));
        h.LoadDouble(-1e-300);
        h.Ok(0xD9, 0xE4);
        Assert.Equal(C0, h.Sw & (C0 | C2 | C3));
    }

    [Fact]
    public void FxamClassifiesEveryKind()
    {
        (Float80 v, int cc)[] cases =
        {
            (new Float80(0x4000, 0x1234), 0),                                  // unnormal: unsupported
            (new Float80(0x7FFF, 0xC000_0000_0000_0000), C0),                  // NaN
            (new Float80(0x3FFF, 0x8000_0000_0000_0000), C2),                  // normal
            (Float80.Infinity(false), C2 | C0),
            (Float80.Zero(false), C3),
            (new Float80(0x0000, 0x0000_0000_0000_0001), C3 | C2),             // denormal
            (new Float80(0x0000, 0x8000_0000_0000_0001), C3 | C2),             // pseudo-denormal
        };
        foreach (var (v, cc) in cases)
        {
            foreach (bool neg in new[] { false, true })
            {
                var h = new FpuHarness();
                Float80 x = neg ? v.Negate() : v;
                h.Load(x);
                h.Ok(0xD9, 0xE5);
                Assert.Equal(cc | (neg ? C1 : 0), h.Sw & (C0 | C1 | C2 | C3));
            }
        }
        var e = new FpuHarness();
        e.Ok(0xD9, 0xE5);                                                     // empty
        Assert.Equal(C3 | C0, e.Sw & (C0 | C2 | C3));
        Assert.Equal(0, e.Exceptions);
    }

    [Fact]
    public void FcmovFollowsEflags()
    {
        (byte op, byte modrmBase, Func<uint, bool> cond)[] forms =
        {
            (0xDA, 0xC0, f => (f & CF) != 0), (0xDA, 0xC8, f => (f & ZF) != 0),
            (0xDA, 0xD0, f => (f & (CF | ZF)) != 0), (0xDA, 0xD8, f => (f & PF) != 0),
            (0xDB, 0xC0, f => (f & CF) == 0), (0xDB, 0xC8, f => (f & ZF) == 0),
            (0xDB, 0xD0, f => (f & (CF | ZF)) == 0), (0xDB, 0xD8, f => (f & PF) == 0),
        };
        foreach (var (op, baseModrm, cond) in forms)
        {
            foreach (uint flags in new[] { 0u, CF, ZF, PF, CF | ZF, CF | PF | ZF })
            {
                var h = new FpuHarness();
                h.LoadDouble(5); h.LoadDouble(1);
                h.Ctx.Eflags = flags;
                h.Ok(op, (byte)(baseModrm + 1));
                Assert.Equal(cond(flags) ? 5.0 : 1.0, h.Fpu.StDouble(0));
            }
        }
    }

    // ---- constants, checked against values computed here with BigInteger series (200 fraction bits)

    private const int Fb = 200;

    private static BigInteger AtanhInv(int x)   // atanh(1/x) · 2^Fb
    {
        BigInteger one = BigInteger.One << Fb, sum = 0, pow = one / x, x2 = (BigInteger)x * x;
        for (int k = 0; !pow.IsZero; k++)
        {
            sum += pow / (2 * k + 1);
            pow /= x2;
        }
        return sum;
    }

    private static BigInteger AtanInv(int x)    // atan(1/x) · 2^Fb
    {
        BigInteger one = BigInteger.One << Fb, sum = 0, pow = one / x, x2 = (BigInteger)x * x;
        for (int k = 0; !pow.IsZero; k++)
        {
            sum += (k % 2 == 0 ? 1 : -1) * (pow / (2 * k + 1));
            pow /= x2;
        }
        return sum;
    }

    [Fact]
    public void ConstantsAreCorrectlyRoundedInEveryMode()
    {
        BigInteger one = BigInteger.One << Fb;
        BigInteger ln2 = 2 * AtanhInv(3);                       // ln 2 = 2 atanh(1/3)
        BigInteger ln10 = 3 * ln2 + 2 * AtanhInv(9);            // ln 10 = 3 ln 2 + ln(5/4), ln(5/4) = 2 atanh(1/9)
        BigInteger pi = 16 * AtanInv(5) - 4 * AtanInv(239);
        BigInteger[] values =
        {
            one,
            (ln10 << Fb) / ln2,                                  // log2(10)
            (one << Fb) / ln2,                                   // log2(e)
            pi,
            (ln2 << Fb) / ln10,                                  // log10(2)
            ln2,
        };
        for (int k = 0; k < 6; k++)
        {
            for (int rc = 0; rc < 4; rc++)
            {
                // the series value is within a few units of 2^-200: strictly between neighbours, so rounding it is safe
                var expected = Reference.Round(false, values[k], one, 64, rc).Value;
                var h = new FpuHarness();
                h.SetControlWord(0x037F | (rc << 10));
                h.Ok(0xD9, (byte)(0xE8 + k));
                Assert.True(expected == h.Fpu.St(0), $"constant {k} rc={rc}: {expected} vs {h.Fpu.St(0)}");
                Assert.Equal(0, h.Exceptions);
            }
        }
        var z = new FpuHarness();
        z.Ok(0xD9, 0xEE);
        Assert.Equal(Float80.Zero(false), z.Fpu.St(0));
        // well-known silicon values under round-to-nearest
        Assert.Equal(0xC90F_DAA2_2168_C235UL, X87.ConstantValue(3, 0).Significand);
        Assert.Equal(0xC90F_DAA2_2168_C234UL, X87.ConstantValue(3, 3).Significand);
        Assert.Equal(0xD49A_784B_CD1B_8AFFUL, X87.ConstantValue(1, 2).Significand);
    }
}

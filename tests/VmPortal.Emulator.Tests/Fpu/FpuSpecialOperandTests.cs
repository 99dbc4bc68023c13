using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>
/// The SDM result tables for FADD, FSUB, FMUL, FDIV over {−∞, −F, −0, +0, +F, +∞} (F = 2.0 here) and the NaN
/// rules: every combination, checked for the result (value or class and sign) and IE/ZE.
/// </summary>
public class FpuSpecialOperandTests
{
    private static readonly double[] Values = { double.NegativeInfinity, -2.0, -0.0, 0.0, 2.0, double.PositiveInfinity };

    private static Float80 Run(int reg, double st0, double src, out int exceptions, int rc = 0)
    {
        var h = new FpuHarness();
        h.SetControlWord(0x037F | (rc << 10));
        h.LoadDouble(src);
        h.LoadDouble(st0);
        h.Ok(0xD8, FpuHarness.R(reg, 1));     // ST0 = ST0 op ST1
        exceptions = h.Exceptions;
        return h.Fpu.St(0);
    }

    [Fact]
    public void AdditionSubtractionTables()
    {
        foreach (int rc in new[] { 0, 1 })
        foreach (double a in Values)
        foreach (double b in Values)
        foreach (bool sub in new[] { false, true })
        {
            Float80 r = Run(sub ? 4 : 0, a, b, out int ex, rc);
            double bb = sub ? -b : b;
            if (double.IsInfinity(a) && double.IsInfinity(bb) && Math.Sign(a) != Math.Sign(bb))
            {
                Assert.Equal(Float80.Indefinite, r);
                Assert.Equal(FpuStatus.Invalid, ex);
                continue;
            }
            Assert.Equal(0, ex);
            double expected = a + bb;                       // IEEE double has the same rules for these values...
            if (expected == 0 && a == -bb && a != 0)        // ...except x − x under round-down
                expected = rc == 1 ? -0.0 : 0.0;
            if (expected == 0 && a == 0 && bb == 0 && double.IsNegative(a) != double.IsNegative(bb))
                expected = rc == 1 ? -0.0 : 0.0;            // (+0) + (−0)
            Assert.True(Float80.FromDouble(expected) == r, $"{a} {(sub ? "-" : "+")} {b} rc={rc}: {r}");
        }
    }

    [Fact]
    public void MultiplicationAndDivisionTables()
    {
        foreach (double a in Values)
        foreach (double b in Values)
        {
            Float80 m = Run(1, a, b, out int exm);
            bool zeroTimesInf = (a == 0 && double.IsInfinity(b)) || (b == 0 && double.IsInfinity(a));
            if (zeroTimesInf)
            {
                Assert.Equal(Float80.Indefinite, m);
                Assert.Equal(FpuStatus.Invalid, exm);
            }
            else
            {
                Assert.Equal(Float80.FromDouble(a * b), m);
                Assert.Equal(0, exm);
            }

            Float80 d = Run(6, a, b, out int exd);           // a / b
            bool invalid = (a == 0 && b == 0) || (double.IsInfinity(a) && double.IsInfinity(b));
            if (invalid)
            {
                Assert.Equal(Float80.Indefinite, d);
                Assert.Equal(FpuStatus.Invalid, exd);
                continue;
            }
            Assert.Equal(Float80.FromDouble(a / b), d);
            bool zeroDivide = b == 0 && !double.IsInfinity(a) && a != 0;   // F / 0 only (∞ / 0 is exact ∞)
            Assert.Equal(zeroDivide ? FpuStatus.ZeroDivide : 0, exd);
        }
    }

    [Fact]
    public void NaNOperandsPropagate()
    {
        var q1 = new Float80(0x7FFF, 0xC000_0000_0000_1000);
        var q2 = new Float80(0xFFFF, 0xC000_0000_0000_2000);
        var s1 = new Float80(0x7FFF, 0x8000_0000_0000_3000);
        var s2 = new Float80(0xFFFF, 0x8000_0000_0000_0100);
        (Float80 a, Float80 b, Float80 expected, int ie)[] cases =
        {
            (q1, Float80.One, q1, 0),
            (Float80.One, q2, q2, 0),
            (s1, Float80.One, s1.Quieted(), FpuStatus.Invalid),
            (q1, q2, q2, 0),                                  // larger significand
            (s1, s2, s1.Quieted(), FpuStatus.Invalid),        // larger significand, quieted
            (s1, q1, q1, FpuStatus.Invalid),                  // QNaN beats SNaN
            (q1, s1, q1, FpuStatus.Invalid),
            (Float80.Infinity(false), s2, s2.Quieted(), FpuStatus.Invalid),
        };
        foreach (var (a, b, expected, ie) in cases)
        {
            foreach (int reg in new[] { 0, 1, 4, 5, 6, 7 })
            {
                var h = new FpuHarness();
                h.Load(b);
                h.Load(a);
                h.Ok(0xD8, FpuHarness.R(reg, 1));
                Assert.True(expected == h.Fpu.St(0), $"{a} op{reg} {b}: {h.Fpu.St(0)}");
                Assert.Equal(ie, h.Exceptions);
            }
        }
    }
}

using System.Buffers.Binary;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>
/// FADD/FSUB/FMUL/FDIV/FSQRT on random 80-bit operands under every precision control and rounding mode, each
/// result compared bit-for-bit (value, PE, UE, OE, C1) with exact BigInteger rational arithmetic.
/// </summary>
public class FpuArithmeticTests
{
    public static IEnumerable<object[]> Modes()
    {
        foreach (int pc in new[] { 0, 2, 3 })
            for (int rc = 0; rc < 4; rc++)
                yield return new object[] { pc, rc };
    }

    private static int Bits(int pc) => pc switch { 0 => 24, 2 => 53, _ => 64 };

    private static void AssertMatches(Reference.Rounded expected, Float80 actual, int sw, string what)
    {
        Assert.True(expected.Value == actual, $"{what}: expected {expected.Value}, got {actual}");
        Assert.True(expected.Inexact == ((sw & FpuStatus.Precision) != 0), $"{what}: PE expected {expected.Inexact} sw={sw:X4}");
        Assert.True(expected.Underflow == ((sw & FpuStatus.Underflow) != 0), $"{what}: UE expected {expected.Underflow} sw={sw:X4}");
        Assert.True(expected.Overflow == ((sw & FpuStatus.Overflow) != 0), $"{what}: OE expected {expected.Overflow} sw={sw:X4}");
        Assert.True(expected.RoundedUp == ((sw & FpuStatus.C1) != 0), $"{what}: C1 expected {expected.RoundedUp} sw={sw:X4}");
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void RegisterArithmeticIsCorrectlyRounded(int pc, int rc)
    {
        var gen = new OperandGenerator(1000 + pc * 10 + rc);
        int p = Bits(pc);
        for (int n = 0; n < 1500; n++)
        {
            Float80 a = gen.Finite(), b = gen.Finite();
            int op = n % 4;
            var h = new FpuHarness();
            h.SetControlWord(0x003F | (pc << 8) | (rc << 10));
            h.Load(b);
            h.Load(a);                                   // ST0 = a, ST1 = b
            byte modrm = op switch
            {
                0 => FpuHarness.R(0, 1),                 // FADD ST0, ST1
                1 => FpuHarness.R(4, 1),                 // FSUB ST0, ST1  (a − b)
                2 => FpuHarness.R(1, 1),                 // FMUL
                _ => FpuHarness.R(6, 1),                 // FDIV ST0, ST1  (a / b)
            };
            h.Ok(0xD8, modrm);
            int sw = h.Sw;
            Float80 r = h.Pop();
            Reference.Rounded expected = op switch
            {
                0 => Reference.Add(a, b, false, p, rc),
                1 => Reference.Add(a, b, true, p, rc),
                2 => Reference.Mul(a, b, p, rc),
                _ => Reference.Div(a, b, p, rc),
            };
            string what = $"op{op} {a} {b} pc={pc} rc={rc}";
            AssertMatches(expected, r, sw, what);
            bool denormalOperand = a.Exponent == 0 || b.Exponent == 0;
            Assert.True(denormalOperand == ((sw & FpuStatus.Denormal) != 0), $"{what}: DE");
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void SquareRootIsCorrectlyRounded(int pc, int rc)
    {
        var gen = new OperandGenerator(2000 + pc * 10 + rc);
        int p = Bits(pc);
        for (int n = 0; n < 1000; n++)
        {
            Float80 a = gen.Finite(2000).Abs();
            var h = new FpuHarness();
            h.SetControlWord(0x003F | (pc << 8) | (rc << 10));
            h.Load(a);
            h.Ok(0xD9, 0xFA);
            int sw = h.Sw;
            AssertMatches(Reference.Sqrt(a, p, rc), h.Pop(), sw, $"sqrt {a} pc={pc} rc={rc}");
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void MemoryOperandFormsRoundLikeRegisterForms(int pc, int rc)
    {
        var gen = new OperandGenerator(3000 + pc * 10 + rc);
        var rng = new Random(pc * 4 + rc);
        int p = Bits(pc);
        for (int n = 0; n < 400; n++)
        {
            Float80 a = gen.Finite(100);
            int form = n % 4;
            byte[] mem;
            byte opcode;
            Float80 b;
            switch (form)
            {
                case 0:
                    float f = BitConverter.Int32BitsToSingle(rng.Next() | (rng.Next(2) << 31));
                    if (float.IsNaN(f) || float.IsInfinity(f)) f = 1.5f;
                    mem = BitConverter.GetBytes(f); opcode = 0xD8; b = Float80.FromDouble(f); break;
                case 1:
                    double d = BitConverter.Int64BitsToDouble(rng.NextInt64() >> rng.Next(2) << 2);
                    if (double.IsNaN(d) || double.IsInfinity(d)) d = -3.25;
                    mem = BitConverter.GetBytes(d); opcode = 0xDC; b = Float80.FromDouble(d); break;
                case 2:
                    int i32 = rng.Next(int.MinValue, int.MaxValue);
                    mem = BitConverter.GetBytes(i32); opcode = 0xDA; b = Float80.FromDouble(i32); break;
                default:
                    short i16 = (short)rng.Next(short.MinValue, short.MaxValue);
                    mem = BitConverter.GetBytes(i16); opcode = 0xDE; b = Float80.FromDouble(i16); break;
            }
            if (b.IsZero) continue;
            int op = rng.Next(6);
            int reg = op switch { 0 => 0, 1 => 1, 2 => 4, 3 => 5, 4 => 6, _ => 7 };
            var h = new FpuHarness();
            h.SetControlWord(0x003F | (pc << 8) | (rc << 10));
            h.Load(a);
            h.Ok(opcode, FpuHarness.M(reg), mem);
            int sw = h.Sw;
            Reference.Rounded expected = reg switch
            {
                0 => Reference.Add(a, b, false, p, rc),
                1 => Reference.Mul(a, b, p, rc),
                4 => Reference.Add(a, b, true, p, rc),
                5 => Reference.Add(b, a, true, p, rc),
                6 => Reference.Div(a, b, p, rc),
                _ => Reference.Div(b, a, p, rc),
            };
            AssertMatches(expected, h.Pop(), sw, $"{opcode:X2}/{reg} {a} {b}");
        }
    }

    [Fact]
    public void ReversedAndPoppingRegisterFormsUseTheRightOperandOrder()
    {
        Float80 Run(byte opcode, byte modrm, double st0, double st1, int pops)
        {
            var h = new FpuHarness();
            h.LoadDouble(st1);
            h.LoadDouble(st0);
            h.Ok(opcode, modrm);
            Float80 top = h.Fpu.St(0);
            if (pops == 0) return top;
            return top;
        }
        // D8: ST0 = ST0 op ST1
        Assert.Equal(7.0, Run(0xD8, FpuHarness.R(4, 1), 10, 3, 0).ToDouble());   // FSUB  10−3
        Assert.Equal(-7.0, Run(0xD8, FpuHarness.R(5, 1), 10, 3, 0).ToDouble());  // FSUBR 3−10
        Assert.Equal(2.5, Run(0xD8, FpuHarness.R(6, 1), 10, 4, 0).ToDouble());   // FDIV  10/4
        Assert.Equal(0.4, Run(0xD8, FpuHarness.R(7, 1), 10, 4, 0).ToDouble());   // FDIVR 4/10

        // DC E8+i FSUB ST(i),ST0: ST1 = ST1 − ST0; DC E0+i FSUBR ST(i),ST0: ST1 = ST0 − ST1
        var h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(10);
        h.Ok(0xDC, 0xE9);
        Assert.Equal(-7.0, h.Fpu.StDouble(1));
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(10);
        h.Ok(0xDC, 0xE1);
        Assert.Equal(7.0, h.Fpu.StDouble(1));
        // DE F9 FDIVP ST1,ST0: ST1 = ST1 / ST0, pop
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(12);
        h.Ok(0xDE, 0xF9);
        Assert.Equal(0.25, h.Fpu.StDouble(0));
        Assert.Equal(7, h.Fpu.Top);
        Assert.True(h.Fpu.IsEmpty(1));
        // DE F1 FDIVRP ST1,ST0: ST1 = ST0 / ST1, pop
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(12);
        h.Ok(0xDE, 0xF1);
        Assert.Equal(4.0, h.Fpu.StDouble(0));
        // DE C1 FADDP, DE C9 FMULP
        h = new FpuHarness();
        h.LoadDouble(3); h.LoadDouble(12);
        h.Ok(0xDE, 0xC9);
        Assert.Equal(36.0, h.Fpu.StDouble(0));
    }

    [Fact]
    public void SpecialOperandsFollowTheX87Rules()
    {
        var h = new FpuHarness();
        // ∞ − ∞ → invalid, indefinite
        h.Load(Float80.Infinity(false));
        h.Load(Float80.Infinity(false));
        h.Ok(0xD8, FpuHarness.R(4, 1));
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);

        // x / 0 → ZE, signed infinity
        h = new FpuHarness();
        h.Load(Float80.Zero(true));
        h.LoadDouble(5);
        h.Ok(0xD8, FpuHarness.R(6, 1));
        Assert.Equal(Float80.Infinity(true), h.Fpu.St(0));
        Assert.Equal(FpuStatus.ZeroDivide, h.Exceptions);

        // QNaN + SNaN → the QNaN, IE; two QNaNs → larger significand
        h = new FpuHarness();
        var snan = new Float80(false, 0x7FFF, 0x8000_0000_0000_0001);
        var qnan = new Float80(true, 0x7FFF, 0xC000_0000_0000_0002);
        h.Load(snan);
        h.Load(qnan);
        h.Ok(0xD8, FpuHarness.R(0, 1));
        Assert.Equal(qnan, h.Fpu.St(0));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
        h = new FpuHarness();
        var q2 = new Float80(false, 0x7FFF, 0xC000_0000_0000_0009);
        h.Load(q2);
        h.Load(qnan);
        h.Ok(0xD8, FpuHarness.R(1, 1));
        Assert.Equal(q2, h.Fpu.St(0));
        Assert.Equal(0, h.Exceptions);

        // SNaN alone is quieted
        h = new FpuHarness();
        h.LoadDouble(1);
        h.Load(snan);
        h.Ok(0xD8, FpuHarness.R(0, 1));
        Assert.Equal(snan.Quieted(), h.Fpu.St(0));

        // unnormal operand → invalid
        h = new FpuHarness();
        h.LoadDouble(1);
        h.Load(new Float80(false, 0x4000, 0x4000_0000_0000_0000));
        h.Ok(0xD8, FpuHarness.R(0, 1));
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);

        // x − x = +0, but −0 when rounding down
        h = new FpuHarness();
        h.LoadDouble(2); h.LoadDouble(2);
        h.Ok(0xD8, FpuHarness.R(4, 1));
        Assert.Equal(Float80.Zero(false), h.Fpu.St(0));
        h = new FpuHarness();
        h.SetControlWord(0x077F);
        h.LoadDouble(2); h.LoadDouble(2);
        h.Ok(0xD8, FpuHarness.R(4, 1));
        Assert.Equal(Float80.Zero(true), h.Fpu.St(0));

        // sqrt(−0) = −0, sqrt(−1) invalid
        h = new FpuHarness();
        h.Load(Float80.Zero(true));
        h.Ok(0xD9, 0xFA);
        Assert.Equal(Float80.Zero(true), h.Fpu.St(0));
        h.LoadDouble(-1);
        h.Ok(0xD9, 0xFA);
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
    }

    [Fact]
    public void UnmaskedExceptionsFollowTheSdm()
    {
        // unmasked ZE: destination unchanged, ES and B set
        var h = new FpuHarness();
        h.SetControlWord(0x037B);
        h.Load(Float80.Zero(false));
        h.LoadDouble(5);
        h.Ok(0xD8, FpuHarness.R(6, 1));
        Assert.Equal(5.0, h.Fpu.StDouble(0));
        Assert.True(h.Fpu.ExceptionPending);
        Assert.Equal(FpuStatus.ZeroDivide | FpuStatus.ErrorSummary | FpuStatus.Busy, h.Sw & 0x80FF);

        // unmasked overflow on a register result: delivered scaled by 2^-24576
        h = new FpuHarness();
        h.SetControlWord(0x0377);
        var big = new Float80(false, 0x7FFE, 0xC000_0000_0000_0000);
        h.Load(big);
        h.Load(big);
        h.Ok(0xD8, FpuHarness.R(1, 1));
        Float80 r = h.Fpu.St(0);
        Assert.Equal(0x7FFE + 0x7FFE - 16383 + 1 - 24576, r.Exponent);
        Assert.Equal(0x9000_0000_0000_0000UL, r.Significand);
        Assert.True((h.Sw & FpuStatus.Overflow) != 0 && h.Fpu.ExceptionPending);

        // unmasked underflow: scaled by 2^+24576 even when exact
        h = new FpuHarness();
        h.SetControlWord(0x036F);
        var tiny = new Float80(false, 1, 0x8000_0000_0000_0000);
        h.Load(Float80.FromDouble(0.5));
        h.Load(tiny);
        h.Ok(0xD8, FpuHarness.R(1, 1));
        Assert.Equal(24576, h.Fpu.St(0).Exponent);
        Assert.Equal(FpuStatus.Underflow, h.Sw & 0x3F);

        // masked underflow of an exact tiny result: no UE
        h = new FpuHarness();
        h.Load(Float80.FromDouble(0.5));
        h.Load(tiny);
        h.Ok(0xD8, FpuHarness.R(1, 1));
        Assert.Equal(new Float80(false, 0, 0x4000_0000_0000_0000), h.Fpu.St(0));
        Assert.Equal(0, h.Sw & 0x3F);

        // unmasked overflow on FST m32: nothing stored, source kept
        h = new FpuHarness();
        h.SetControlWord(0x0377);
        h.LoadDouble(1e300);
        Assert.Equal(FpuResult.StoreSuppressed, h.Exec(0xD9, FpuHarness.M(3)));
        Assert.Equal(1e300, h.Fpu.StDouble(0));
        Assert.Equal(7, h.Fpu.Top);

        // FLDCW unmasking an already-raised flag sets ES
        h = new FpuHarness();
        h.LoadDouble(1); h.LoadDouble(3);
        h.Ok(0xD8, FpuHarness.R(7, 1));           // 1/3 → PE (masked)
        Assert.False(h.Fpu.ExceptionPending);
        h.SetControlWord(0x035F);
        Assert.True(h.Fpu.ExceptionPending);
        h.ClearExceptions();
        Assert.False(h.Fpu.ExceptionPending);
        Assert.Equal(0, h.Sw & 0x80FF);
    }

    [Fact]
    public void TininessIsDetectedAfterRounding()
    {
        // 25 ones × 2^(emin−1): at PC=24 it rounds up to exactly 2^emin, so it is not tiny (x86 detects tininess
        // after rounding): PE and C1, no UE. A before-rounding implementation would raise UE here.
        var h = new FpuHarness();
        h.SetControlWord(0x007F);
        h.Load(new Float80(false, 0, 0xFFFF_FF80_0000_0000 >> 1));
        h.Load(Float80.Zero(false));
        h.Ok(0xD8, FpuHarness.R(0, 1));
        Assert.Equal(new Float80(false, 1, Float80.IntegerBit), h.Fpu.St(0));
        Assert.Equal(FpuStatus.Precision | FpuStatus.Denormal | FpuStatus.C1, h.Sw & (0x3F | FpuStatus.C1));
        // one bit less: rounds down, stays tiny and inexact → UE
        h = new FpuHarness();
        h.SetControlWord(0x007F);
        h.Load(new Float80(false, 0, 0xFFFF_FE40_0000_0000 >> 1));
        h.Load(Float80.Zero(false));
        h.Ok(0xD8, FpuHarness.R(0, 1));
        Assert.Equal(new Float80(false, 0, 0x7FFF_FF00_0000_0000), h.Fpu.St(0));
        Assert.Equal(FpuStatus.Precision | FpuStatus.Denormal | FpuStatus.Underflow, h.Sw & (0x3F | FpuStatus.C1));
    }

    [Fact]
    public void PrecisionControlAppliesToArithmeticButNotToLoads()
    {
        var h = new FpuHarness();
        h.SetControlWord(0x007F);                   // PC = 24 bits
        var odd = new Float80(false, 16383, 0xFFFF_FFFF_FFFF_FFFF);
        h.Load(odd);
        Assert.Equal(odd, h.Fpu.St(0));             // loads are exact
        h.Load(Float80.Zero(false));
        h.Ok(0xD8, FpuHarness.R(0, 1));             // 0 + x rounds x to 24 bits
        Assert.Equal(new Float80(false, 16384, 0x8000_0000_0000_0000), h.Fpu.St(0));
        Assert.Equal(FpuStatus.Precision | FpuStatus.C1, h.Sw & (0x3F | FpuStatus.C1));
        var mem = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(mem, 0x3FF0_0000_0000_0001);  // 1 + 2^-52 exactly representable in double
        h.Ok(0xDD, FpuHarness.M(0), mem);
        Assert.Equal(0x8000_0000_0000_0800UL, h.Fpu.St(0).Significand);
    }

    [Fact]
    public void UnmaskedExceptionsOnLoadsAndStoresFollowSilicon()
    {
        // FLD m32 SNaN with IE unmasked: nothing pushed, IE + ES
        var h = new FpuHarness();
        h.SetControlWord(0x037E);
        h.Ok(0xD9, FpuHarness.M(0), BitConverter.GetBytes(0x7F80_0001u));
        Assert.Equal(0, h.Fpu.Top);
        Assert.Equal(FpuStatus.Invalid | FpuStatus.ErrorSummary, h.Sw & 0xFF);
        // FLD m64 denormal with DE unmasked: silicon still pushes the (normalised) value, then reports #D
        h = new FpuHarness();
        h.SetControlWord(0x037D);
        h.Ok(0xDD, FpuHarness.M(0), BitConverter.GetBytes(1L));
        Assert.Equal(7, h.Fpu.Top);
        Assert.Equal(new Float80(false, 16383 - 1074, Float80.IntegerBit), h.Fpu.St(0));
        Assert.Equal(FpuStatus.Denormal | FpuStatus.ErrorSummary, h.Sw & 0xFF);
        // FSTP m32 of a value that underflows single with UE unmasked: store suppressed, no pop, only UE reported
        h = new FpuHarness();
        h.SetControlWord(0x036F);
        h.LoadDouble(1e-300);
        Assert.Equal(FpuResult.StoreSuppressed, h.Exec(0xD9, FpuHarness.M(3)));
        Assert.Equal(7, h.Fpu.Top);
        Assert.Equal(FpuStatus.Underflow | FpuStatus.ErrorSummary, h.Sw & (0xFF | FpuStatus.C1));
        // same with UE masked: a signed zero is stored, PE+UE, popped
        h = new FpuHarness();
        h.LoadDouble(-1e-300);
        h.Ok(0xD9, FpuHarness.M(3));
        Assert.Equal(0x8000_0000u, BitConverter.ToUInt32(h.Out, 0));
        Assert.Equal(FpuStatus.Underflow | FpuStatus.Precision, h.Exceptions);
        Assert.Equal(0, h.Fpu.Top);
        // unmasked PE: the rounded result is still delivered (post-computation exception)
        h = new FpuHarness();
        h.SetControlWord(0x035F);
        h.LoadDouble(3); h.LoadDouble(1);
        h.Ok(0xD8, FpuHarness.R(6, 1));
        Assert.Equal(new Float80(false, 16381, 0xAAAA_AAAA_AAAA_AAAB), h.Fpu.St(0));
        Assert.True(h.Fpu.ExceptionPending);
        Assert.True((h.Sw & FpuStatus.C1) != 0);
        // unmasked IE on FADDP: no result, no pop
        h = new FpuHarness();
        h.SetControlWord(0x037E);
        h.Load(Float80.Infinity(true)); h.Load(Float80.Infinity(false));
        h.Ok(0xDE, FpuHarness.R(0, 1));
        Assert.Equal(6, h.Fpu.Top);
        Assert.Equal(Float80.Infinity(false), h.Fpu.St(0));
    }
}

using System.Buffers.Binary;
using System.Numerics;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>FLD/FST/FSTP in all widths, FILD/FIST, FBLD/FBSTP, and the register-stack basics.</summary>
public class FpuLoadStoreTests
{
    private static IEnumerable<Float80> Patterns()
    {
        var gen = new OperandGenerator(7);
        for (int i = 0; i < 300; i++)
        {
            ulong sig = gen.Significand();
            yield return new Float80((ushort)gen.Next(0x10000), sig);                         // any exponent, incl. NaN/inf
            yield return new Float80((ushort)(gen.Next(2) << 15), sig >> gen.Next(64));         // denormals / pseudo-denormals
            yield return new Float80((ushort)gen.Next(0x10000), sig & 0x7FFF_FFFF_FFFF_FFFF);  // unnormals, pseudo-NaN/inf
        }
        yield return Float80.Zero(true);
        yield return Float80.Infinity(true);
        yield return Float80.Indefinite;
        yield return new Float80(0x7FFF, 0x8000_0000_0000_0001);                                // SNaN
        yield return new Float80(0x0000, 0x8000_0000_0000_0000);                                // pseudo-denormal
        yield return new Float80(0x7FFF, 0x0000_0000_0000_0000);                                // pseudo-infinity
    }

    [Fact]
    public void Fld80Fstp80RoundTripsEveryBitPattern()
    {
        var h = new FpuHarness();
        int n = 0;
        foreach (Float80 v in Patterns())
        {
            h.Load(v);
            Assert.Equal(v, h.Fpu.St(0));
            Assert.Equal(v, h.Pop());
            n++;
        }
        Assert.Equal(0, h.Exceptions);     // m80 loads and stores raise nothing, even for SNaN/unsupported
        Assert.True(n > 900);
    }

    [Fact]
    public void DoubleAndSingleLoadsAreExactAndStoresRoundCorrectly()
    {
        var rng = new Random(11);
        for (int i = 0; i < 3000; i++)
        {
            ulong bits = (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63);
            double d = BitConverter.Int64BitsToDouble((long)bits);
            if (double.IsNaN(d)) continue;
            var h = new FpuHarness();
            h.LoadDouble(d);
            Assert.Equal(d, h.Fpu.StDouble(0));
            h.Ok(0xDD, FpuHarness.M(3));                                          // FSTP m64
            Assert.Equal(bits, BinaryPrimitives.ReadUInt64LittleEndian(h.Out));
            bool denormal = (bits & 0x7FF0_0000_0000_0000) == 0 && (bits << 1) != 0;
            Assert.Equal(denormal ? FpuStatus.Denormal : 0, h.Exceptions);
        }
        // extended → m64 / m32 rounding in every mode against the reference (with double/single exponent ranges)
        var gen = new OperandGenerator(12);
        for (int i = 0; i < 4000; i++)
        {
            int rc = i & 3;
            bool single = (i & 4) != 0;
            int bias = single ? 127 : 1023;
            var v = new Float80(gen.Next(2) == 1, 16383 + gen.Next(-(bias + 70), bias + 3), gen.Significand());
            var h = new FpuHarness();
            h.SetControlWord(0x037F | (rc << 10));
            h.Load(v);
            h.Ok(single ? (byte)0xD9 : (byte)0xDD, FpuHarness.M(2));               // FST m32/m64
            var (num, exp) = Reference.ToExact(v);
            BigInteger n = BigInteger.Abs(num), d = BigInteger.One;
            if (exp >= 0) n <<= exp; else d <<= -exp;
            var r = Reference.Round(v.Sign, n, d, single ? 24 : 53, rc, 1 - bias, bias);
            ulong expected = ToBinary(r.Value, single);
            ulong actual = single ? BinaryPrimitives.ReadUInt32LittleEndian(h.Out) : BinaryPrimitives.ReadUInt64LittleEndian(h.Out);
            Assert.True(expected == actual, $"{v} rc={rc} single={single}: {expected:X} vs {actual:X}");
            int sw = h.Sw;
            Assert.Equal(r.Inexact, (sw & FpuStatus.Precision) != 0);
            Assert.Equal(r.Overflow, (sw & FpuStatus.Overflow) != 0);
            Assert.Equal(r.Underflow, (sw & FpuStatus.Underflow) != 0);
            Assert.Equal(r.RoundedUp, (sw & FpuStatus.C1) != 0);
            Assert.Equal(v, h.Fpu.St(0));                                           // FST does not pop
        }
    }

    // Reference packing of a Float80 already rounded into the narrower range.
    private static ulong ToBinary(Float80 r, bool single)
    {
        int bias = single ? 127 : 1023, frac = single ? 23 : 52, expBits = single ? 8 : 11;
        ulong sign = r.Sign ? 1UL << (frac + expBits) : 0;
        if (r.IsZero) return sign;
        if (r.IsInfinity) return sign | (((1UL << expBits) - 1) << frac);
        var (num, exp) = Reference.ToExact(r);
        BigInteger m = BigInteger.Abs(num);
        int msb = (int)m.GetBitLength() - 1 + exp;
        if (msb >= 1 - bias)
        {
            ulong fracBits = (ulong)((m << frac) >> (int)(m.GetBitLength() - 1)) & ((1UL << frac) - 1);
            return sign | ((ulong)(msb + bias) << frac) | fracBits;
        }
        // denormal: value = f·2^(1−bias−frac)
        int shift = exp - (1 - bias - frac);
        return sign | (ulong)(shift >= 0 ? m << shift : m >> -shift);
    }

    [Fact]
    public void SpecialValuesConvertBetweenFormats()
    {
        var h = new FpuHarness();
        var mem = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(mem, 0x7F80_0001);                 // SNaN single
        h.Ok(0xD9, FpuHarness.M(0), mem);
        Assert.Equal(new Float80(0x7FFF, 0xC000_0100_0000_0000), h.Fpu.St(0));       // quieted, payload kept
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);
        h.Ok(0xD9, FpuHarness.M(3));
        Assert.Equal(0x7FC0_0001u, BinaryPrimitives.ReadUInt32LittleEndian(h.Out));

        h = new FpuHarness();
        h.Load(new Float80(0xFFFF, 0x8000_0000_0000_0800));                           // SNaN extended
        h.Ok(0xDD, FpuHarness.M(3));                                                   // FSTP m64: IE, quiet NaN stored
        Assert.Equal(0xFFF8_0000_0000_0001UL, BinaryPrimitives.ReadUInt64LittleEndian(h.Out));
        Assert.Equal(FpuStatus.Invalid, h.Exceptions);

        h = new FpuHarness();
        h.Load(new Float80(0x4000, 0x1234));                                           // unnormal
        h.Ok(0xD9, FpuHarness.M(3));
        Assert.Equal(0xFFC0_0000u, BinaryPrimitives.ReadUInt32LittleEndian(h.Out));   // indefinite
    }

    [Theory]
    [InlineData(0, new long[] { 2, 2, -2, -2, 3, 0, 0 })]   // nearest-even
    [InlineData(1, new long[] { 2, 2, -3, -3, 3, 0, -1 })]  // down
    [InlineData(2, new long[] { 3, 3, -2, -2, 3, 1, 0 })]   // up
    [InlineData(3, new long[] { 2, 2, -2, -2, 3, 0, 0 })]   // chop
    public void FistRoundsPerControlWord(int rc, long[] expected)
    {
        double[] inputs = { 2.5, 2.25, -2.5, -2.25, 3.0, 0.25, -0.25 };
        for (int i = 0; i < inputs.Length; i++)
        {
            foreach (var (op, reg, size) in new[] { ((byte)0xDF, 3, 2), ((byte)0xDB, 3, 4), ((byte)0xDF, 7, 8) })
            {
                var h = new FpuHarness();
                h.SetControlWord(0x037F | (rc << 10));
                h.LoadDouble(inputs[i]);
                h.Ok(op, FpuHarness.M(reg));
                long got = size switch
                {
                    2 => BinaryPrimitives.ReadInt16LittleEndian(h.Out),
                    4 => BinaryPrimitives.ReadInt32LittleEndian(h.Out),
                    _ => BinaryPrimitives.ReadInt64LittleEndian(h.Out),
                };
                Assert.Equal(expected[i], got);
                Assert.Equal(inputs[i] != Math.Round(inputs[i]), (h.Sw & FpuStatus.Precision) != 0);
                Assert.Equal(Math.Abs(got) > Math.Abs(inputs[i]), (h.Sw & FpuStatus.C1) != 0);
                Assert.True(h.Fpu.IsEmpty(0));
            }
        }
    }

    [Fact]
    public void FistOverflowGivesIntegerIndefinite()
    {
        foreach (var (value, reg, op, size, ok) in new[]
                 {
                     (32768.0, 3, (byte)0xDF, 2, false), (-32768.0, 3, (byte)0xDF, 2, true), (-32768.6, 3, (byte)0xDF, 2, false),
                     (2147483648.0, 3, (byte)0xDB, 4, false), (-2147483648.0, 3, (byte)0xDB, 4, true),
                     (9223372036854775808.0, 7, (byte)0xDF, 8, false), (-9223372036854775808.0, 7, (byte)0xDF, 8, true),
                     (double.NaN, 3, (byte)0xDB, 4, false), (double.NegativeInfinity, 7, (byte)0xDF, 8, false),
                 })
        {
            var h = new FpuHarness();
            h.LoadDouble(value);
            h.Ok(op, FpuHarness.M(reg));
            long got = size switch
            {
                2 => BinaryPrimitives.ReadInt16LittleEndian(h.Out),
                4 => BinaryPrimitives.ReadInt32LittleEndian(h.Out),
                _ => BinaryPrimitives.ReadInt64LittleEndian(h.Out),
            };
            long min = size switch { 2 => short.MinValue, 4 => int.MinValue, _ => long.MinValue };
            Assert.Equal(min, got);
            Assert.Equal(ok ? 0 : FpuStatus.Invalid, h.Exceptions & FpuStatus.Invalid);
        }
        // unmasked IE: the store is suppressed and the register stays
        var u = new FpuHarness();
        u.SetControlWord(0x037E);
        u.LoadDouble(1e10);
        Assert.Equal(FpuResult.StoreSuppressed, u.Exec(0xDB, FpuHarness.M(3)));
        Assert.False(u.Fpu.IsEmpty(0));
        Assert.True(u.Fpu.ExceptionPending);
    }

    [Fact]
    public void IntegerLoadsAreExact()
    {
        var rng = new Random(5);
        for (int i = 0; i < 500; i++)
        {
            long v = rng.NextInt64(long.MinValue, long.MaxValue) >> rng.Next(63);
            var h = new FpuHarness();
            h.Ok(0xDF, FpuHarness.M(5), BitConverter.GetBytes(v));               // FILD m64
            h.Ok(0xDF, FpuHarness.M(7));                                          // FISTP m64
            Assert.Equal(v, BinaryPrimitives.ReadInt64LittleEndian(h.Out));
            Assert.Equal(0, h.Exceptions);
        }
        var h2 = new FpuHarness();
        h2.Ok(0xDF, FpuHarness.M(5), BitConverter.GetBytes(long.MinValue));
        Assert.Equal(new Float80(true, 16383 + 63, Float80.IntegerBit), h2.Fpu.St(0));
        h2.Ok(0xDE, FpuHarness.M(0), BitConverter.GetBytes((short)-5));          // FIADD m16
        h2.Ok(0xDA, FpuHarness.M(0), BitConverter.GetBytes(7));                   // FIADD m32
        Assert.Equal(-9223372036854775806.0, h2.Fpu.StDouble(0));
    }

    [Fact]
    public void PackedBcdRoundTripsAndOverflowsToIndefinite()
    {
        var rng = new Random(3);
        for (int i = 0; i < 300; i++)
        {
            var bcd = new byte[10];
            for (int k = 0; k < 9; k++) bcd[k] = (byte)((rng.Next(10) << 4) | rng.Next(10));
            bcd[9] = (byte)(rng.Next(2) << 7);
            var h = new FpuHarness();
            h.Ok(0xDF, FpuHarness.M(4), bcd);                                      // FBLD
            ulong expected = 0;
            for (int k = 8; k >= 0; k--) expected = expected * 100 + (ulong)((bcd[k] >> 4) * 10 + (bcd[k] & 15));
            Assert.Equal((double)expected * (bcd[9] != 0 ? -1 : 1), h.Fpu.StDouble(0));
            h.Ok(0xDF, FpuHarness.M(6));                                           // FBSTP
            Assert.Equal(bcd, h.Out[..10]);
        }
        var o = new FpuHarness();
        o.LoadDouble(1e18);
        o.Ok(0xDF, FpuHarness.M(6));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF }, o.Out[..10]);
        Assert.Equal(FpuStatus.Invalid, o.Exceptions);
        var r = new FpuHarness();
        r.LoadDouble(-12.5);                                                       // nearest-even → −12
        r.Ok(0xDF, FpuHarness.M(6));
        Assert.Equal(new byte[] { 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0x80 }, r.Out[..10]);
        Assert.Equal(FpuStatus.Precision, r.Exceptions);
    }

    [Fact]
    public void StackOverflowAndUnderflowFollowTheSdm()
    {
        var h = new FpuHarness();
        for (int i = 0; i < 8; i++) h.LoadDouble(i);
        Assert.Equal(0, h.Exceptions);
        h.LoadDouble(99);                                                          // 9th push: overflow
        Assert.Equal(FpuStatus.Invalid | FpuStatus.StackFault, h.Exceptions);
        Assert.True((h.Sw & FpuStatus.C1) != 0);                                   // C1=1: overflow
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));

        h = new FpuHarness();
        h.Ok(0xD8, FpuHarness.R(0, 1));                                            // FADD on empty registers
        Assert.Equal(FpuStatus.Invalid | FpuStatus.StackFault, h.Exceptions);
        Assert.False((h.Sw & FpuStatus.C1) != 0);                                  // C1=0: underflow
        Assert.Equal(Float80.Indefinite, h.Fpu.St(0));

        h = new FpuHarness();
        h.Ok(0xDD, FpuHarness.M(3));                                               // FSTP m64 of an empty ST0
        Assert.Equal(0xFFF8_0000_0000_0000UL, BinaryPrimitives.ReadUInt64LittleEndian(h.Out));
        Assert.Equal(1, h.Fpu.Top);

        // unmasked: nothing changes but the flags
        h = new FpuHarness();
        h.SetControlWord(0x037E);
        for (int i = 0; i < 8; i++) h.LoadDouble(i);
        h.LoadDouble(99);
        Assert.Equal(0, h.Fpu.Top);
        Assert.Equal(7.0, h.Fpu.StDouble(0));
        Assert.True(h.Fpu.ExceptionPending);
        h = new FpuHarness();
        h.SetControlWord(0x037E);
        Assert.Equal(FpuResult.StoreSuppressed, h.Exec(0xDD, FpuHarness.M(3)));
        Assert.Equal(0, h.Fpu.Top);
    }

    [Fact]
    public void ExchangeFreeAndStackPointerMoves()
    {
        var h = new FpuHarness();
        h.LoadDouble(1); h.LoadDouble(2); h.LoadDouble(3);
        h.Ok(0xD9, FpuHarness.R(1, 2));                                            // FXCH ST2
        Assert.Equal(1.0, h.Fpu.StDouble(0));
        Assert.Equal(3.0, h.Fpu.StDouble(2));
        h.Ok(0xDD, FpuHarness.R(0, 1));                                            // FFREE ST1
        Assert.True(h.Fpu.IsEmpty(1));
        Assert.Equal(0x33FF, h.Fpu.TagWord);                                       // R5, R7 valid; others empty
        h.Ok(0xD9, 0xF7);                                                          // FINCSTP
        Assert.Equal(6, h.Fpu.Top);
        Assert.True(h.Fpu.IsEmpty(0));
        h.Ok(0xD9, 0xF6);                                                          // FDECSTP
        Assert.Equal(5, h.Fpu.Top);
        h.Ok(0xD9, FpuHarness.R(0, 2));                                            // FLD ST2
        Assert.Equal(3.0, h.Fpu.StDouble(0));
        h.Ok(0xDD, FpuHarness.R(3, 3));                                            // FSTP ST3
        Assert.Equal(3.0, h.Fpu.StDouble(2));
        Assert.Equal(5, h.Fpu.Top);
        h.Ok(0xD9, 0xE0);                                                          // FCHS
        Assert.Equal(-1.0, h.Fpu.StDouble(0));
        h.Ok(0xD9, 0xE1);                                                          // FABS
        Assert.Equal(1.0, h.Fpu.StDouble(0));
    }

    [Fact]
    public void ControlAndStatusWordsStoreAndLoad()
    {
        var h = new FpuHarness();
        Assert.Equal(0x037F, h.Fpu.ControlWord);
        Assert.Equal(0, h.Fpu.StatusWord);
        Assert.Equal(0xFFFF, h.Fpu.TagWord);
        h.SetControlWord(0x0C00);
        h.Ok(0xD9, FpuHarness.M(7));                                               // FNSTCW
        Assert.Equal(0x0C40, BinaryPrimitives.ReadUInt16LittleEndian(h.Out));     // bit 6 reads as 1
        h.LoadDouble(1);
        h.Ok(0xDD, FpuHarness.M(7));                                               // FNSTSW m16
        Assert.Equal(7 << 11, BinaryPrimitives.ReadUInt16LittleEndian(h.Out));
        h.Ok(0xDB, 0xE3);                                                          // FNINIT
        Assert.Equal(0x037F, h.Fpu.ControlWord);
        Assert.Equal(0xFFFF, h.Fpu.TagWord);
        Assert.Equal(FpuResult.InvalidOpcode, h.Exec(0xDF, 0xE0));                // FNSTSW AX belongs to the CPU
        Assert.Equal(FpuResult.InvalidOpcode, h.Exec(0xD9, 0xD1));
        Assert.Equal(FpuResult.InvalidOpcode, h.Exec(0xDB, FpuHarness.M(1)));     // FISTTP is SSE3
        Assert.True(X87.IsNoWait(0xDB, 0xE3));
        Assert.True(X87.IsNoWait(0xDD, FpuHarness.M(6)));
        Assert.False(X87.IsNoWait(0xD9, FpuHarness.M(5)));
        Assert.Equal(new FpuMemoryOperand(FpuMemoryAccess.Write, 108), X87.Classify(0xDD, FpuHarness.M(6), true));
        Assert.Equal(new FpuMemoryOperand(FpuMemoryAccess.Read, 14), X87.Classify(0xD9, 0x60, false));
        Assert.Equal(new FpuMemoryOperand(FpuMemoryAccess.Write, 10), X87.Classify(0xDF, 0xB5, true));
        Assert.Equal(default, X87.Classify(0xD8, 0xC1, true));
    }
}

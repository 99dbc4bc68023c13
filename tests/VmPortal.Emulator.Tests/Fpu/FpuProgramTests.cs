using System.Buffers.Binary;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>
/// Instruction sequences as libm (glibc i386 e_exp.S / e_log.S / e_fmod.S style) uses them, executed through
/// Execute and compared with .NET's libm: checks that operand order, stack effects and the functions compose.
/// </summary>
public class FpuProgramTests
{
    private static double StoreDouble(FpuHarness h)
    {
        h.Ok(0xDD, FpuHarness.M(3));                           // FSTP m64
        return BinaryPrimitives.ReadDoubleLittleEndian(h.Out);
    }

    private static bool Close(double a, double b, double slack) =>
        UlpDistance(a, b) <= 1 || Math.Abs(a - b) <= slack + Math.BitIncrement(Math.Abs(b)) - Math.Abs(b);

    private static double UlpDistance(double a, double b) =>
        Math.Abs((double)(BitConverter.DoubleToInt64Bits(a) - BitConverter.DoubleToInt64Bits(b)));

    [Fact]
    public void ExpLikeGlibc()
    {
        var rng = new Random(1);
        for (int i = 0; i < 500; i++)
        {
            double x = (rng.NextDouble() - 0.5) * 1400;
            var h = new FpuHarness();
            h.LoadDouble(x);
            h.Ok(0xD9, 0xEA);                                  // FLDL2E
            h.Ok(0xDE, 0xC9);                                  // FMULP ST1,ST0: t = x·log2 e
            h.Ok(0xD9, 0xC0);                                  // FLD ST0
            h.Ok(0xD9, 0xFC);                                  // FRNDINT: n
            h.Ok(0xDC, 0xE9);                                  // FSUB ST1,ST0: f = t − n
            h.Ok(0xD9, 0xC9);                                  // FXCH ST1
            h.Ok(0xD9, 0xF0);                                  // F2XM1
            h.Ok(0xD9, 0xE8);                                  // FLD1
            h.Ok(0xDE, 0xC1);                                  // FADDP: 2^f
            h.Ok(0xD9, 0xFD);                                  // FSCALE
            h.Ok(0xDD, 0xD9);                                  // FSTP ST1
            double r = StoreDouble(h);
            Assert.True(UlpDistance(r, Math.Exp(x)) <= 1, $"exp({x}) = {r} vs {Math.Exp(x)}");
            Assert.Equal(0, h.Fpu.Top);
            Assert.Equal(0, h.Exceptions & ~(FpuStatus.Precision | FpuStatus.Underflow | FpuStatus.Denormal));
        }
    }

    [Fact]
    public void LogPowAndAtanLikeGlibc()
    {
        var rng = new Random(2);
        for (int i = 0; i < 500; i++)
        {
            double x = Math.Exp((rng.NextDouble() - 0.5) * 200);
            var h = new FpuHarness();
            h.Ok(0xD9, 0xED);                                  // FLDLN2
            h.LoadDouble(x);
            h.Ok(0xD9, 0xF1);                                  // FYL2X: ln2·log2 x
            double ln = StoreDouble(h);
            Assert.True(UlpDistance(ln, Math.Log(x)) <= 1, $"log({x}) = {ln} vs {Math.Log(x)}");

            h.LoadDouble(x);
            h.Ok(0xD9, 0xE8);                                  // FLD1
            h.Ok(0xD9, 0xF3);                                  // FPATAN: atan2(x, 1)
            double at = StoreDouble(h);
            Assert.True(UlpDistance(at, Math.Atan(x)) <= 1, $"atan({x})");

            double y = (rng.NextDouble() - 0.5) * 8;
            h.Ok(0xD9, 0xE8);                                  // FLD1... build x^y = 2^(y·log2 x)
            h.Ok(0xDD, 0xD8);                                  // FSTP ST0 (drop it again: exercises DD D8)
            h.LoadDouble(y);
            h.LoadDouble(x);
            h.Ok(0xD9, 0xF1);                                  // FYL2X: y·log2 x
            h.Ok(0xD9, 0xC0);                                  // FLD ST0
            h.Ok(0xD9, 0xFC);                                  // FRNDINT
            h.Ok(0xDC, 0xE9);                                  // FSUB ST1,ST0
            h.Ok(0xD9, 0xC9);                                  // FXCH
            h.Ok(0xD9, 0xF0);                                  // F2XM1
            h.Ok(0xD9, 0xE8);
            h.Ok(0xDE, 0xC1);
            h.Ok(0xD9, 0xFD);                                  // FSCALE
            h.Ok(0xDD, 0xD9);
            double p = StoreDouble(h);
            Assert.True(UlpDistance(p, Math.Pow(x, y)) <= 2, $"pow({x},{y}) = {p} vs {Math.Pow(x, y)}");
            Assert.Equal(0, h.Fpu.Top);
        }
    }

    [Fact]
    public void FmodLoopLikeGlibc()
    {
        var rng = new Random(3);
        for (int i = 0; i < 500; i++)
        {
            double x = (rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-20, 300));
            double y = (rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-20, 20));
            var h = new FpuHarness();
            h.LoadDouble(y);
            h.LoadDouble(x);
            int guard = 0;
            while (true)
            {
                h.Ok(0xD9, 0xF8);                              // FPREM
                h.Ok(0xDD, FpuHarness.M(7));                   // FNSTSW m16
                if ((BinaryPrimitives.ReadUInt16LittleEndian(h.Out) & FpuStatus.C2) == 0) break;
                Assert.True(++guard < 100);
            }
            h.Ok(0xDD, 0xD9);                                  // FSTP ST1
            double r = StoreDouble(h);
            Assert.Equal(x % y, r);
        }
    }

    [Fact]
    public void SinCosTanAgreeWithLibm()
    {
        var rng = new Random(4);
        for (int i = 0; i < 500; i++)
        {
            double x = (rng.NextDouble() - 0.5) * 200;
            var h = new FpuHarness();
            h.LoadDouble(x);
            h.Ok(0xD9, 0xFB);                                  // FSINCOS: ST0 = cos, ST1 = sin
            double c = StoreDouble(h), s = StoreDouble(h);
            // the x87 reduces by its 66-bit π: the argument differs from x mod π/2 by at most |x|·2^-67
            double slack = Math.Abs(x) * Math.Pow(2, -67);
            Assert.True(Close(s, Math.Sin(x), slack) && Close(c, Math.Cos(x), slack), $"sincos({x})");
            h.LoadDouble(x);
            h.Ok(0xD9, 0xF2);                                  // FPTAN
            h.Ok(0xDD, 0xD8);                                  // FSTP ST0 (drop the 1.0)
            double t = StoreDouble(h);
            Assert.True(Close(t, Math.Tan(x), slack * (1 + t * t)), $"tan({x}) = {t} vs {Math.Tan(x)}");
        }
    }

    [Fact]
    public void LinuxFpuProbeAndFdivBugCheck()
    {
        // fpu__init_system_early_generic: fninit; fnstsw; fnstcw — an FPU exists if fsw == 0 and (fcw & 103Fh) == 3Fh
        var h = new FpuHarness();
        h.Ok(0xDB, 0xE3);
        h.Ok(0xDD, FpuHarness.M(7));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(h.Out));
        h.Ok(0xD9, FpuHarness.M(7));
        Assert.Equal(0x003F, BinaryPrimitives.ReadUInt16LittleEndian(h.Out) & 0x103F);

        // fpu__init_check_bugs: fninit; fldl x; fdivl y; fmull y; fldl x; fsubp %st,%st(1) (DE E9); fistpl; fninit
        byte[] x = BitConverter.GetBytes(4195835.0), y = BitConverter.GetBytes(3145727.0);
        h.Ok(0xDB, 0xE3);
        h.Ok(0xDD, FpuHarness.M(0), x);
        h.Ok(0xDC, FpuHarness.M(6), y);
        h.Ok(0xDC, FpuHarness.M(1), y);
        h.Ok(0xDD, FpuHarness.M(0), x);
        h.Ok(0xDE, 0xE9);
        h.Ok(0xDB, FpuHarness.M(3));
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(h.Out));     // no FDIV bug
        Assert.False(h.Fpu.ExceptionPending);
        Assert.Equal(0, h.Fpu.Top);
    }
}

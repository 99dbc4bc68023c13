using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>Garbage in (any ESC encoding, random operand bytes, random control words): no host exception.</summary>
public class FpuFuzzTests
{
    [Fact]
    public void RandomInstructionStreamsNeverThrow()
    {
        var rng = new Random(99);
        var fpu = new X87();
        var ctx = new FpuContext();
        var input = new byte[108];
        var output = new byte[108];
        int invalid = 0, suppressed = 0;
        for (int i = 0; i < 200_000; i++)
        {
            byte opcode = (byte)(0xD8 + rng.Next(8));
            byte modrm = (byte)rng.Next(256);
            ctx.Operand32 = rng.Next(2) == 0;
            ctx.ProtectedMode = rng.Next(2) == 0;
            ctx.Eflags = (uint)rng.Next();
            rng.NextBytes(input);
            // bias operand bytes towards special encodings now and then
            if (rng.Next(4) == 0) { input[9] = (byte)(rng.Next(2) == 0 ? 0x7F : 0x00); input[8] = (byte)(rng.Next(2) == 0 ? 0xFF : 0x00); }
            FpuMemoryOperand op = X87.Classify(opcode, modrm, ctx.Operand32);
            if (op.Access == FpuMemoryAccess.Read && rng.Next(50) == 0 && op.Size == 2 && (modrm >> 3 & 7) == 5 && opcode == 0xD9)
                input[0] = (byte)rng.Next(256);                       // random FLDCW values
            FpuResult r = fpu.Execute(opcode, modrm, input.AsSpan(0, Math.Max(op.Size, 0)), output, ref ctx);
            Assert.True(r is FpuResult.Ok or FpuResult.InvalidOpcode or FpuResult.StoreSuppressed);
            if (r == FpuResult.InvalidOpcode) invalid++;
            if (r == FpuResult.StoreSuppressed) suppressed++;
            Assert.InRange(fpu.Top, 0, 7);
            Assert.Equal(fpu.ExceptionPending, (fpu.StatusWord & ~fpu.ControlWord & 0x3F) != 0);
            Assert.Equal(fpu.ExceptionPending, (fpu.StatusWord & 0x8000) != 0);
            if (rng.Next(1000) == 0) fpu.Reset();
        }
        Assert.True(invalid > 0 && suppressed > 0);
    }
}

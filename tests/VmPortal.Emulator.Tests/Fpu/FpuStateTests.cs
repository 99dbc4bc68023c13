using System.Buffers.Binary;
using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>FSTENV/FLDENV/FSAVE/FRSTOR in all four layouts, FXSAVE/FXRSTOR, and the FIP/FDP/FOP bookkeeping.</summary>
public class FpuStateTests
{
    private static FpuHarness Populated(bool protectedMode, bool op32)
    {
        var h = new FpuHarness();
        h.Ctx.ProtectedMode = protectedMode;
        h.Ctx.Operand32 = op32;
        h.SetControlWord(0x0A7B);                          // RC up, PC 53, ZE unmasked
        h.LoadDouble(1.5);
        h.Load(new Float80(0x7FFF, 0x8000_0000_0000_0005)); // SNaN (tag special)
        h.Load(Float80.Zero(true));                        // tag zero
        h.Load(new Float80(0x0000, 0x0000_0000_1234_5678)); // denormal (tag special)
        h.LoadDouble(3);
        h.Ok(0xDD, FpuHarness.R(0, 2));                     // FFREE ST2: a hole in the tags
        h.LoadDouble(0);
        h.LoadDouble(1);
        h.Ctx.CodeSelector = 0x1234;
        h.Ctx.InstructionOffset = 0x0000_5678 - 2;
        h.Ctx.DataSelector = 0x2345;
        h.Ctx.DataOffset = 0x0000_9ABC;
        h.Ok(0xD8, FpuHarness.M(6), BitConverter.GetBytes(0f));  // FDIV m32 by zero: unmasked ZE, records pointers
        Assert.True(h.Fpu.ExceptionPending);
        return h;
    }

    private static void AssertSameState(X87 a, X87 b)
    {
        Assert.Equal(a.ControlWord, b.ControlWord);
        Assert.Equal(a.StatusWord, b.StatusWord);
        Assert.Equal(a.TagWord, b.TagWord);
        Assert.Equal(a.ExceptionPending, b.ExceptionPending);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(a.IsEmpty(i), b.IsEmpty(i));
            Assert.Equal(a.St(i), b.St(i));
        }
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void FsaveFrstorRoundTrip(bool protectedMode, bool op32)
    {
        FpuHarness h = Populated(protectedMode, op32);
        var before = new FpuHarness();
        // snapshot the original via a second save/restore cycle
        int size = op32 ? 108 : 94;
        h.Ok(0xDD, FpuHarness.M(6));                        // FNSAVE
        byte[] image = h.Out[..size].ToArray();
        Assert.Equal(0x037F, h.Fpu.ControlWord);            // FNSAVE re-initialises
        Assert.Equal(0xFFFF, h.Fpu.TagWord);
        Assert.False(h.Fpu.ExceptionPending);

        h.Ok(0xDD, FpuHarness.M(4), image);                 // FRSTOR
        Assert.Equal(0x0A7B, h.Fpu.ControlWord);
        Assert.True(h.Fpu.ExceptionPending);
        Assert.Equal(1.0, h.Fpu.StDouble(0));
        h.Ok(0xDD, FpuHarness.M(6));
        Assert.Equal(image, h.Out[..size]);                 // byte-identical second image

        // FRSTOR into a fresh FPU gives the same state as the original
        before.Ctx = h.Ctx;
        before.Ok(0xDD, FpuHarness.M(4), image);
        h.Ok(0xDD, FpuHarness.M(4), image);
        AssertSameState(h.Fpu, before.Fpu);

        // layout checks
        int cw = BinaryPrimitives.ReadUInt16LittleEndian(image);
        int sw = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(op32 ? 4 : 2));
        int tw = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(op32 ? 8 : 4));
        Assert.Equal(0x0A7B, cw);
        Assert.Equal(FpuStatus.ZeroDivide | FpuStatus.ErrorSummary | FpuStatus.Busy | (1 << 11), sw);
        Assert.Equal(TagWordOf(h.Fpu), tw);
        Assert.Equal(0x2E13, tw);
        int env = op32 ? 28 : 14;
        Assert.Equal(Float80.One, Float80.ReadFrom(image.AsSpan(env)));         // ST0 first
        Assert.Equal(new Float80(0x7FFF, 0x8000_0000_0000_0005), Float80.ReadFrom(image.AsSpan(env + 50)));   // ST5
        ushort fop = (0xD8 & 7) << 8 | 0x30;
        if (protectedMode && op32)
        {
            Assert.Equal(0x5678u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(12)));
            Assert.Equal(0x1234u | ((uint)fop << 16), BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16)));
            Assert.Equal(0x9ABCu, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(20)));
            Assert.Equal(0x2345, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(24)));
        }
        else if (protectedMode)
        {
            Assert.Equal(0x5678, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
            Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(8)));
            Assert.Equal(0x9ABC, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(10)));
            Assert.Equal(0x2345, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
        }
        else
        {
            uint ip = 0x12340 + 0x5678, dp = 0x23450 + 0x9ABC;
            if (op32)
            {
                Assert.Equal(ip & 0xFFFF, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(12)) & 0xFFFF);
                Assert.Equal(((ip >> 16) << 12) | fop, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16)));
                Assert.Equal(dp & 0xFFFF, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(20)) & 0xFFFF);
                Assert.Equal((dp >> 16) << 12, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24)));
            }
            else
            {
                Assert.Equal(ip & 0xFFFF, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
                Assert.Equal(((ip >> 16) << 12) | fop, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(8)));
                Assert.Equal(dp & 0xFFFF, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(10)));
                Assert.Equal((dp >> 16) << 12, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
            }
        }
    }

    private static int TagWordOf(X87 fpu)
    {
        int tw = 0;
        for (int p = 0; p < 8; p++)
        {
            int st = (p - fpu.Top) & 7;
            int tag;
            if (fpu.IsEmpty(st)) tag = 3;
            else
            {
                Float80 v = fpu.St(st);
                tag = v.IsZero ? 1 : v.Classify() == Float80Class.Normal ? 0 : 2;
            }
            tw |= tag << (2 * p);
        }
        return tw;
    }

    [Fact]
    public void TagWordDistinguishesValidZeroSpecialEmpty()
    {
        FpuHarness h = Populated(true, true);
        // top = 1: R0 empty, R1 = 1.0, R2 = 0, R3 = 3, R4 = denormal, R5 = −0 freed, R6 = SNaN, R7 = 1.5
        int tw = h.Fpu.TagWord;
        Assert.Equal(1, h.Fpu.Top);
        Assert.Equal(3, tw & 3);                        // R0 empty
        Assert.Equal(0, (tw >> 2) & 3);                 // R1 = 1.0 valid
        Assert.Equal(1, (tw >> 4) & 3);                 // R2 = 0.0 zero
        Assert.Equal(0, (tw >> 6) & 3);                 // R3 = 3.0 valid
        Assert.Equal(2, (tw >> 8) & 3);                 // R4 = denormal special
        Assert.Equal(3, (tw >> 10) & 3);                // R5 = −0 freed → empty
        Assert.Equal(2, (tw >> 12) & 3);                // R6 = SNaN special
        Assert.Equal(0, (tw >> 14) & 3);                // R7 = 1.5 valid
    }

    [Fact]
    public void FstenvMasksExceptionsAndFldenvRestores()
    {
        FpuHarness h = Populated(true, true);
        ushort sw = h.Fpu.StatusWord;
        h.Ok(0xD9, FpuHarness.M(6));                    // FNSTENV
        byte[] env = h.Out[..28].ToArray();
        Assert.Equal(0xFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(env) >> 16);   // reserved halves
        Assert.Equal(0x0A7F, h.Fpu.ControlWord);        // all exceptions masked afterwards
        Assert.False(h.Fpu.ExceptionPending);
        Assert.Equal(sw & ~(FpuStatus.ErrorSummary | FpuStatus.Busy), h.Fpu.StatusWord);
        h.Ok(0xDB, 0xE3);                               // FNINIT
        h.Ok(0xD9, FpuHarness.M(4), env);               // FLDENV
        Assert.Equal(0x0A7B, h.Fpu.ControlWord);
        Assert.Equal(sw, h.Fpu.StatusWord);
        Assert.True(h.Fpu.ExceptionPending);
        Assert.Equal(0x5678u, h.Fpu.InstructionPointer);
        Assert.Equal(0x1234, h.Fpu.InstructionSelector);
        Assert.Equal(0x9ABCu, h.Fpu.DataPointer);
        Assert.Equal(0x2345, h.Fpu.DataSelector);
        Assert.Equal(0x030, h.Fpu.LastOpcode);
        // FLDENV with ES set in the image but nothing unmasked: ES is recomputed
        BinaryPrimitives.WriteUInt16LittleEndian(env, 0x037F);
        h.Ok(0xD9, FpuHarness.M(4), env);
        Assert.False(h.Fpu.ExceptionPending);
    }

    [Fact]
    public void ControlInstructionsDoNotTouchThePointers()
    {
        var h = new FpuHarness();
        h.Ctx.InstructionOffset = 0x100 - 2;
        h.Ctx.DataOffset = 0x200;
        h.LoadDouble(1);
        Assert.Equal(0x100u, h.Fpu.InstructionPointer);
        Assert.Equal(0x200u, h.Fpu.DataPointer);
        Assert.Equal(0x500 | 0x00, h.Fpu.LastOpcode);   // DD /0 [eax]
        h.Ctx.DataOffset = 0x300;
        h.SetControlWord(0x037F);                       // FLDCW: control
        h.Ok(0xD9, FpuHarness.M(7));                    // FNSTCW: control
        h.Ok(0xDD, FpuHarness.M(7));                    // FNSTSW: control
        Assert.Equal(0x100u, h.Fpu.InstructionPointer);
        Assert.Equal(0x200u, h.Fpu.DataPointer);
        h.Ok(0xD9, 0xE1);                               // FABS: register form updates FIP/FOP, not FDP
        Assert.Equal(0x108u, h.Fpu.InstructionPointer);
        Assert.Equal(0x1E1, h.Fpu.LastOpcode);
        Assert.Equal(0x200u, h.Fpu.DataPointer);
    }

    [Fact]
    public void FxsaveFxrstorRoundTrip()
    {
        FpuHarness h = Populated(true, true);
        var image = new byte[512];
        image.AsSpan(160).Fill(0xAA);                   // XMM area belongs to the CPU: left untouched
        h.Fpu.FxSave(image, h.Ctx);
        Assert.True(image.AsSpan(160).ToArray().All(b => b == 0xAA));
        Assert.Equal(0x0A7B, BinaryPrimitives.ReadUInt16LittleEndian(image));
        Assert.Equal(h.Fpu.StatusWord, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(2)));
        Assert.Equal(0b1101_1110, image[4]);            // abridged tags: R1 R2 R3 R4 R6 R7 non-empty
        Assert.Equal(0x030, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
        Assert.Equal(0x5678u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(8)));
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
        Assert.Equal(0x9ABCu, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16)));
        Assert.Equal(0x2345, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(20)));
        Assert.Equal(Float80.One, Float80.ReadFrom(image.AsSpan(32)));

        var fresh = new X87();
        fresh.FxRestore(image);
        AssertSameState(h.Fpu, fresh);
        var again = new byte[512];
        fresh.FxSave(again, h.Ctx);
        Assert.Equal(image.AsSpan(0, 160).ToArray(), again.AsSpan(0, 160).ToArray());
    }

    [Fact]
    public void PowerOnResetMatchesTheSdmTable()
    {
        var fpu = new X87();
        fpu.PowerOnReset();
        Assert.Equal(0x0040, fpu.ControlWord);
        Assert.Equal(0, fpu.StatusWord);
        Assert.Equal(0x5555, fpu.TagWord);
        Assert.Equal(Float80.Zero(false), fpu.St(3));
    }

    [Fact]
    public void SnapshotRestoresEverythingAfterAStoreThatTheCpuCouldNotWrite()
    {
        FpuHarness h = Populated(true, true);
        X87Snapshot snap = h.Fpu.Capture();
        h.Ok(0xDD, FpuHarness.M(6));                        // FNSAVE re-initialises...
        byte[] before = h.Out[..108].ToArray();
        h.Fpu.Restore(snap);                                // ...the CPU's write faulted: roll back
        h.Ok(0xDD, FpuHarness.M(6));
        Assert.Equal(before, h.Out[..108]);                 // identical image: nothing was lost
        h.Fpu.Restore(snap);
        Assert.True(h.Fpu.ExceptionPending);
        Assert.Equal(0x0A7B, h.Fpu.ControlWord);
        Assert.Equal(1, h.Fpu.Top);
    }
}

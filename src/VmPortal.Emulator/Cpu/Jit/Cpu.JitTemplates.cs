using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// Instruction templates of the JIT tier (Cpu.Jit.cs, JitCompiler.cs). Each mirrors one decoded-cache handler
// (Cpu.Handlers.cs) with the DecodedOp fields as parameters instead of a struct read at run time. The compiler emits
// a call with every parameter as an IL constant; the templates are AggressiveInlining, so the .NET JIT inlines them
// into the compiled block and folds the constants (register numbers become fixed offsets, the ALU switch collapses to
// one operation, a 32-bit-only path loses its size tests). They use the interpreter's helpers (AluCalc, SetLazy,
// ShiftOp, Read*/Write* with the inlined TLB fast path and the slow path behind a call), so flags, faults and edge
// cases stay those of the interpreter. `flags` false: a later instruction of the block overwrites every arithmetic
// flag before anything can read them (the compiler's flag liveness), so the lazy flags are not recorded.
//
// Parameter order of every template: (c, sub, size, reg, rm, mem, seg, bas, idx, scale, disp, amask, imm, imm8, flags).
public sealed unsafe partial class Cpu
{
    private const MethodImplOptions Inline = MethodImplOptions.AggressiveInlining;

    [MethodImpl(Inline)]
    private static uint JEa(Cpu c, int bas, int idx, int scale, uint disp, uint amask)
    {
        uint ea = disp;
        if (bas != 8) ea += c.Reg(bas);
        if (idx != 8) ea += c.Reg(idx) << scale;
        return amask == 0xFFFF_FFFF ? ea : ea & amask;
    }

    [MethodImpl(Inline)]
    private static uint JReadRm(Cpu c, int size, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask) =>
        mem != 0 ? (size == 4 ? c.Read32(seg, JEa(c, bas, idx, scale, disp, amask)) : c.ReadSized(seg, JEa(c, bas, idx, scale, disp, amask), size)) : c.GetReg(size, rm);

    [MethodImpl(Inline)]
    private static void JWriteRm(Cpu c, int size, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint v)
    {
        if (mem != 0)
        {
            uint ea = JEa(c, bas, idx, scale, disp, amask);
            if (size == 4) c.Write32(seg, ea, v); else c.WriteSized(seg, ea, size, v);
        }
        else c.SetReg(size, rm, v);
    }

    [MethodImpl(Inline)]
    private static uint JAlu(Cpu c, int sub, uint a, uint b, int size, out LazyOp lop)
    {
        uint m = SizeMask(size);
        switch (sub & 7)
        {
            case 0: lop = LazyOp.Add; return size == 4 ? a + b : (a + b) & m;
            case 1: lop = LazyOp.Logic; return a | b;
            case 4: lop = LazyOp.Logic; return a & b;
            case 5: case 7: lop = LazyOp.Sub; return size == 4 ? a - b : (a - b) & m;
            case 6: lop = LazyOp.Logic; return a ^ b;
            default: return c.AluCalc(sub, a, b, size, out lop);
        }
    }

    // ---- ALU (OpAluRR32, OpAluRI32, OpAluMR32, OpAluRM32, OpAluMI32, OpAluRmReg, OpAluRegRm, OpAluRmImm) ----

    /// <summary>ALU op with the r/m operand as destination and reg (or the immediate, useImm) as source.</summary>
    [MethodImpl(Inline)]
    private static void JAluRmSrc(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int useImm, bool flags)
    {
        if (mem != 0)
        {
            uint ea = JEa(c, bas, idx, scale, disp, amask);
            uint a = size == 4 ? c.Read32(seg, ea) : c.ReadSized(seg, ea, size);
            uint b = useImm != 0 ? imm : c.GetReg(size, reg);
            uint r = JAlu(c, sub, a, b, size, out var lop);
            if (sub != 7) { if (size == 4) c.Write32(seg, ea, r); else c.WriteSized(seg, ea, size, r); }
            if (flags) c.SetLazy(lop, a, b, r, size);
        }
        else
        {
            uint a = c.GetReg(size, rm);
            uint b = useImm != 0 ? imm : c.GetReg(size, reg);
            uint r = JAlu(c, sub, a, b, size, out var lop);
            if (sub != 7) c.SetReg(size, rm, r);
            if (flags) c.SetLazy(lop, a, b, r, size);
        }
    }

    [MethodImpl(Inline)]
    private static void JAluRmReg(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        JAluRmSrc(c, sub, size, reg, rm, mem, seg, bas, idx, scale, disp, amask, imm, 0, flags);

    [MethodImpl(Inline)]
    private static void JAluRmImm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        JAluRmSrc(c, sub, size, reg, rm, mem, seg, bas, idx, scale, disp, amask, imm, 1, flags);

    /// <summary>ALU op with reg as destination and r/m as source (OpAluRM32, OpAluRegRm).</summary>
    [MethodImpl(Inline)]
    private static void JAluRegRm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint b = JReadRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask);
        uint a = c.GetReg(size, reg);
        uint r = JAlu(c, sub, a, b, size, out var lop);
        if (sub != 7) c.SetReg(size, reg, r);
        if (flags) c.SetLazy(lop, a, b, r, size);
    }

    [MethodImpl(Inline)]
    private static void JTestRmReg(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint a = JReadRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask), b = c.GetReg(size, reg);
        if (flags) c.SetLazy(LazyOp.Logic, a, b, a & b, size);
    }

    [MethodImpl(Inline)]
    private static void JTestRmImm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint a = JReadRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask);
        if (flags) c.SetLazy(LazyOp.Logic, a, imm, a & imm, size);
    }

    [MethodImpl(Inline)]
    private static void JIncDec(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        if (mem != 0)
        {
            uint ea = JEa(c, bas, idx, scale, disp, amask);
            uint a = c.ReadSized(seg, ea, size);
            uint r = (sub == 0 ? a + 1 : a - 1) & SizeMask(size);
            c.WriteSized(seg, ea, size, r);
            c.SetLazyIncDec(sub == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, size);
        }
        else
        {
            uint a = c.GetReg(size, rm);
            uint r = (sub == 0 ? a + 1 : a - 1) & SizeMask(size);
            c.SetReg(size, rm, r);
            c.SetLazyIncDec(sub == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, size);
        }
    }

    /// <summary>SHL/SHR/SAR of a 32-bit register by a constant count (OpShiftRI32; imm8 already masked, not 0).</summary>
    [MethodImpl(Inline)]
    private static void JShiftRI32(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        ref uint dst = ref c.Reg(rm);
        uint a = dst, r;
        bool cf, of = false;
        if (sub == 5) r = ShrCalc(a, imm8, 4, out cf, out of);
        else if (sub == 7) r = SarCalc(a, imm8, 4, out cf);
        else r = ShlCalc(a, imm8, 4, out cf, out of);
        dst = r;
        if (flags) c.SetFlagsResult(r, 4, cf, of, false);
    }

    // ---- moves ----

    [MethodImpl(Inline)]
    private static void JMovRmReg(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        JWriteRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask, c.GetReg(size, reg));

    [MethodImpl(Inline)]
    private static void JMovRegRm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        c.SetReg(size, reg, JReadRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask));

    [MethodImpl(Inline)]
    private static void JMovRmImm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        JWriteRm(c, size, rm, mem, seg, bas, idx, scale, disp, amask, imm);

    [MethodImpl(Inline)]
    private static void JLea(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        c.SetReg(size, reg, JEa(c, bas, idx, scale, disp, amask));

    /// <summary>MOVZX/MOVSX: sub 0 zero-extends a byte, 1 a word, 2 sign-extends a byte, 3 a word.</summary>
    [MethodImpl(Inline)]
    private static void JMovx(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint v = JReadRm(c, (sub & 1) == 0 ? 1 : 2, rm, mem, seg, bas, idx, scale, disp, amask);
        if (sub == 2) v = (uint)(sbyte)v;
        else if (sub == 3) v = (uint)(short)v;
        c.SetReg(size, reg, v);
    }

    // ---- stack ----

    [MethodImpl(Inline)]
    private static void JPushReg(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        if (size == 4) c.Push32(c.Reg(reg));
        else c.Push16((ushort)c.Reg(reg));
    }

    [MethodImpl(Inline)]
    private static void JPopReg(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        if (size == 4) { uint v = c.Pop32(); c.Reg(reg) = v; }
        else { uint v = c.Pop16(); c.SetReg(2, reg, v); }
    }

    [MethodImpl(Inline)]
    private static void JPushImm(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags) =>
        c.Push(size, imm);

    // ---- control transfer (last in a block; EIP already at the next instruction) ----

    [MethodImpl(Inline)]
    private static void JJcc(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        if (c.Condition(sub))
        {
            c._opSize = size;
            c.JumpNear(c._eip + imm);
        }
    }

    [MethodImpl(Inline)]
    private static void JJmpRel(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        c._opSize = size;
        c.JumpNear(c._eip + imm);
    }

    [MethodImpl(Inline)]
    private static void JCallRel(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint target = (c._eip + imm) & (size == 4 ? 0xFFFF_FFFF : 0xFFFF);
        c.CheckNearTarget(target);
        c.Push(size, c._eip);
        c._opSize = size;
        c.JumpNear(target);
    }

    [MethodImpl(Inline)]
    private static void JRet(Cpu c, int sub, int size, int reg, int rm, int mem, int seg, int bas, int idx, int scale, uint disp, uint amask, uint imm, int imm8, bool flags)
    {
        uint ip = c.PeekStack(size, 0);
        c._opSize = size;
        c.JumpNear(ip);
        c.SetStackPtr(c.StackPtr + (uint)size);
    }

    // ---- bookkeeping emitted around the templates ----

    /// <summary>Before an instruction that can fault or call out: its EIP, the next EIP and the retired count so far.</summary>
    [MethodImpl(Inline)]
    private static void JEnter(Cpu c, uint startEip, uint nextEip, int retired)
    {
        c._startEip = startEip;
        c._eip = nextEip;
        if (retired != 0) c.InstructionCount += retired;
    }

    /// <summary>At a block exit: the next EIP (when the last instruction did not set it) and the retired count.</summary>
    [MethodImpl(Inline)]
    private static void JRetire(Cpu c, int retired) => c.InstructionCount += retired;

    [MethodImpl(Inline)]
    private static void JSetEip(Cpu c, uint eip) => c._eip = eip;

    [MethodImpl(Inline)]
    private static uint JGetEip(Cpu c) => c._eip;

    [MethodImpl(Inline)]
    private static bool JCheckEvents(Cpu c) => c._checkEvents;

    [MethodImpl(Inline)]
    private static uint JGetFetchPage(Cpu c) => c._fetchPage;

    [MethodImpl(Inline)]
    private static uint JGetCsBase(Cpu c) => c._csBase;

    /// <summary>A region's transition to one of its blocks (EIP <paramref name="target"/>, <paramref name="count"/>
    /// instructions, <paramref name="bytes"/> long): taken when EIP is there, nothing is pending, the budget covers the
    /// whole block, the code is still fetched from the same page (no TLB flush, same CS base and CS.D as at entry), and
    /// the block does not wrap IP — the checks the block loop (RunBlock) makes before running a block.</summary>
    [MethodImpl(Inline)]
    private static bool JGo(Cpu c, uint target, long end, int count, int bytes, uint fetchPage, uint csBase, bool cs32) =>
        c._eip == target && !c._checkEvents && end - c.InstructionCount >= count
        && c._fetchPage == fetchPage && c._csBase == csBase && c._cs32 == cs32
        && (ulong)target + (uint)bytes <= (ulong)c._ipMask + 1;
}

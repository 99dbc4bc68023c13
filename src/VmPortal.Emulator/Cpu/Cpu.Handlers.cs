using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// Handlers of the decoded-instruction cache (Cpu.BlockCache.cs). Each executes one DecodedOp with EIP already
// at the next instruction and _startEip at this one (faults restart there). They use the interpreter's own
// ALU, flag, memory, stack and jump helpers, so both paths share one definition of each instruction's semantics;
// the rarer forms set the interpreter's ModRM state (SetupModRM) and call its code directly.
public sealed unsafe partial class Cpu
{
    // ---- operand access ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint OpEa(ref DecodedOp o) => (At(_r, o.Base) + (At(_r, o.Index) << o.Scale) + o.Disp) & o.AMask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint OpReadRm(ref DecodedOp o, int size) => o.Mem != 0 ? ReadSized(o.Seg, OpEa(ref o), size) : GetReg(size, o.Rm);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void OpWriteRm(ref DecodedOp o, int size, uint v)
    {
        if (o.Mem != 0) WriteSized(o.Seg, OpEa(ref o), size, v);
        else SetReg(size, o.Rm, v);
    }

    /// <summary>Loads the interpreter's decode state (operand size, ModRM fields, effective address) from a decoded op.</summary>
    private void SetupModRM(ref DecodedOp o)
    {
        _opSize = o.Size == 1 ? (_cs32 ? 4 : 2) : o.Size;
        _addr32 = o.AMask != 0xFFFF;
        _regField = o.Reg;
        _rm = o.Rm;
        _segOvr = -1;
        _rep = 0;
        if (o.Mem != 0) { _mod = 0; _ea = OpEa(ref o); _eaSeg = o.Seg; }
        else _mod = 3;
    }

    // ---- fallback ----

    private static void OpInterpret(Cpu c, ref DecodedOp o)
    {
        c._eip = c._startEip;
        c.Step();
    }

    private static void OpNop(Cpu c, ref DecodedOp o) { }

    /// <summary>MOVS/CMPS/STOS/LODS/SCAS with or without REP/REPNE (o.Sub the opcode, o.Imm8 the prefix): the
    /// interpreter's string code (Cpu.String.cs) with its prefix state loaded from the decoded op.</summary>
    private static void OpString(Cpu c, ref DecodedOp o)
    {
        c._addr32 = o.AMask != 0xFFFF;
        c._segOvr = o.Seg;
        c._rep = o.Imm8;
        int size = o.Size;
        switch (o.Sub)
        {
            case 0xA4: case 0xA5: c.Movs(size); break;
            case 0xA6: case 0xA7: c.Cmps(size); break;
            case 0xAA: case 0xAB: c.Stos(size); break;
            case 0xAC: case 0xAD: c.Lods(size); break;
            default: c.Scas(size); break;
        }
    }

    // ---- ALU ----

    private static void OpAluRR32(Cpu c, ref DecodedOp o)
    {
        ref uint dst = ref c.Reg(o.Rm);
        uint a = dst, b = c.Reg(o.Reg);
        uint r = c.AluCalc(o.Sub, a, b, 4, out var lop);
        if (o.Sub != 7) dst = r;
        c.SetLazy(lop, a, b, r, 4);
    }

    private static void OpAluRI32(Cpu c, ref DecodedOp o)
    {
        ref uint dst = ref c.Reg(o.Rm);
        uint a = dst, b = o.Imm;
        uint r = c.AluCalc(o.Sub, a, b, 4, out var lop);
        if (o.Sub != 7) dst = r;
        c.SetLazy(lop, a, b, r, 4);
    }

    private static void OpAluMR32(Cpu c, ref DecodedOp o)
    {
        uint ea = c.OpEa(ref o);
        uint a = c.Read32(o.Seg, ea), b = c.Reg(o.Reg);
        uint r = c.AluCalc(o.Sub, a, b, 4, out var lop);
        if (o.Sub != 7) c.Write32(o.Seg, ea, r);
        c.SetLazy(lop, a, b, r, 4);
    }

    private static void OpAluRM32(Cpu c, ref DecodedOp o)
    {
        uint b = c.Read32(o.Seg, c.OpEa(ref o));
        ref uint dst = ref c.Reg(o.Reg);
        uint a = dst;
        uint r = c.AluCalc(o.Sub, a, b, 4, out var lop);
        if (o.Sub != 7) dst = r;
        c.SetLazy(lop, a, b, r, 4);
    }

    private static void OpAluMI32(Cpu c, ref DecodedOp o)
    {
        uint ea = c.OpEa(ref o);
        uint a = c.Read32(o.Seg, ea), b = o.Imm;
        uint r = c.AluCalc(o.Sub, a, b, 4, out var lop);
        if (o.Sub != 7) c.Write32(o.Seg, ea, r);
        c.SetLazy(lop, a, b, r, 4);
    }

    private static void OpTestRR32(Cpu c, ref DecodedOp o)
    {
        uint a = c.Reg(o.Rm), b = c.Reg(o.Reg);
        c.SetLazy(LazyOp.Logic, a, b, a & b, 4);
    }

    private static void OpIncDecR32(Cpu c, ref DecodedOp o)
    {
        ref uint dst = ref c.Reg(o.Rm);
        uint a = dst;
        uint r = o.Sub == 0 ? a + 1 : a - 1;
        dst = r;
        c.SetLazyIncDec(o.Sub == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, 4);
    }

    private static void OpAluRmReg(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size), b = c.GetReg(size, o.Reg);
        uint r = c.AluCalc(o.Sub, a, b, size, out var lop);
        if (o.Sub != 7) c.OpWriteRm(ref o, size, r);
        c.SetLazy(lop, a, b, r, size);
    }

    private static void OpAluRegRm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint b = c.OpReadRm(ref o, size), a = c.GetReg(size, o.Reg);
        uint r = c.AluCalc(o.Sub, a, b, size, out var lop);
        if (o.Sub != 7) c.SetReg(size, o.Reg, r);
        c.SetLazy(lop, a, b, r, size);
    }

    private static void OpAluRmImm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size), b = o.Imm;
        uint r = c.AluCalc(o.Sub, a, b, size, out var lop);
        if (o.Sub != 7) c.OpWriteRm(ref o, size, r);
        c.SetLazy(lop, a, b, r, size);
    }

    private static void OpTestRmReg(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size), b = c.GetReg(size, o.Reg);
        c.SetLazy(LazyOp.Logic, a, b, a & b, size);
    }

    private static void OpTestRmImm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size), b = o.Imm;
        c.SetLazy(LazyOp.Logic, a, b, a & b, size);
    }

    private static void OpIncDecRm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size);
        uint r = (o.Sub == 0 ? a + 1 : a - 1) & SizeMask(size);
        c.OpWriteRm(ref o, size, r);
        c.SetLazyIncDec(o.Sub == 0 ? LazyOp.Inc : LazyOp.Dec, a, r, size);
    }

    private static void OpImulImm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size);
        c.SetReg(size, o.Reg, c.IMul2(a, o.Imm, size));
    }

    private static void OpImulRegRm(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint b = c.OpReadRm(ref o, size);
        c.SetReg(size, o.Reg, c.IMul2(c.GetReg(size, o.Reg), b, size));
    }

    /// <summary>The ModRM state ShiftOp's WriteRM needs (destination register or address).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetupRmTarget(ref DecodedOp o)
    {
        if (o.Mem != 0) { _mod = 0; _ea = OpEa(ref o); _eaSeg = o.Seg; }
        else { _mod = 3; _rm = o.Rm; }
    }

    private static void OpShiftImm(Cpu c, ref DecodedOp o)
    {
        c.SetupRmTarget(ref o);
        uint a = c.OpReadRm(ref o, o.Size);
        c.ShiftOp(o.Sub, a, o.Imm8, o.Size);
    }

    /// <summary>SHL/SAL/SHR/SAR of a 32-bit register by an immediate count (Imm8 already masked to 0-31).</summary>
    private static void OpShiftRI32(Cpu c, ref DecodedOp o)
    {
        int count = o.Imm8;
        if (count == 0) return;
        ref uint dst = ref c.Reg(o.Rm);
        uint a = dst, r;
        bool cf, of = false;
        if (o.Sub == 5) r = ShrCalc(a, count, 4, out cf, out of);
        else if (o.Sub == 7) r = SarCalc(a, count, 4, out cf);
        else r = ShlCalc(a, count, 4, out cf, out of);
        dst = r;
        c.SetFlagsResult(r, 4, cf, of, false);
    }

    private static void OpMovzxB(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, c.OpReadRm(ref o, 1));
    private static void OpMovzxW(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, c.OpReadRm(ref o, 2));
    private static void OpMovsxB(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, (uint)(sbyte)c.OpReadRm(ref o, 1));
    private static void OpMovsxW(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, (uint)(short)c.OpReadRm(ref o, 2));

    private static void OpShiftCl(Cpu c, ref DecodedOp o)
    {
        c.SetupRmTarget(ref o);
        uint a = c.OpReadRm(ref o, o.Size);
        c.ShiftOp(o.Sub, a, (int)(c._r[ECX] & 0xFF), o.Size);
    }

    private static void OpGroup3(Cpu c, ref DecodedOp o)
    {
        c.SetupModRM(ref o);
        c.Group3Body(o.Size);
    }

    private static void OpCbw(Cpu c, ref DecodedOp o)
    {
        if (o.Size == 2) c.SetReg(2, EAX, (uint)(sbyte)c._r[EAX]);
        else c._r[EAX] = (uint)(short)c._r[EAX];
    }

    private static void OpCwd(Cpu c, ref DecodedOp o)
    {
        if (o.Size == 2) c.SetReg(2, EDX, (c._r[EAX] & 0x8000) != 0 ? 0xFFFFu : 0);
        else c._r[EDX] = (c._r[EAX] & 0x8000_0000) != 0 ? 0xFFFF_FFFFu : 0;
    }

    private static void OpCmc(Cpu c, ref DecodedOp o) => c.SetCF(!c.GetCF());
    private static void OpSetCarry(Cpu c, ref DecodedOp o) => c.SetCF(o.Sub != 0);

    private static void OpSetDirection(Cpu c, ref DecodedOp o)
    {
        if (o.Sub != 0) c._flags |= DF; else c._flags &= ~DF;
    }

    // ---- moves ----

    private static void OpMovRR32(Cpu c, ref DecodedOp o) => c.Reg(o.Rm) = c.Reg(o.Reg);

    private static void OpMovMemReg32(Cpu c, ref DecodedOp o) => c.Write32(o.Seg, c.OpEa(ref o), c.Reg(o.Reg));

    private static void OpMovRegMem32(Cpu c, ref DecodedOp o) => c.Reg(o.Reg) = c.Read32(o.Seg, c.OpEa(ref o));

    private static void OpMovRmReg(Cpu c, ref DecodedOp o) => c.OpWriteRm(ref o, o.Size, c.GetReg(o.Size, o.Reg));

    private static void OpMovRegRm(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, c.OpReadRm(ref o, o.Size));

    private static void OpMovRmImm(Cpu c, ref DecodedOp o) => c.OpWriteRm(ref o, o.Size, o.Imm);

    private static void OpLea(Cpu c, ref DecodedOp o) => c.SetReg(o.Size, o.Reg, c.OpEa(ref o));

    private static void OpXchgRmReg(Cpu c, ref DecodedOp o)
    {
        int size = o.Size;
        uint a = c.OpReadRm(ref o, size), b = c.GetReg(size, o.Reg);
        c.OpWriteRm(ref o, size, b);
        c.SetReg(size, o.Reg, a);
    }

    private static void OpCmov(Cpu c, ref DecodedOp o)
    {
        uint v = c.OpReadRm(ref o, o.Size);
        if (c.Condition(o.Sub)) c.SetReg(o.Size, o.Reg, v);
    }

    private static void OpSetcc(Cpu c, ref DecodedOp o) => c.OpWriteRm(ref o, 1, c.Condition(o.Sub) ? 1u : 0u);

    // ---- stack ----

    private static void OpPushR32(Cpu c, ref DecodedOp o) => c.Push32(c.Reg(o.Reg));

    private static void OpPopR32(Cpu c, ref DecodedOp o)
    {
        uint v = c.Pop32();
        c.Reg(o.Reg) = v;
    }

    private static void OpPushReg(Cpu c, ref DecodedOp o)
    {
        if (o.Size == 4) c.Push32(c.Reg(o.Reg));
        else c.Push16((ushort)c.Reg(o.Reg));
    }

    private static void OpPopReg(Cpu c, ref DecodedOp o)
    {
        if (o.Size == 4) { uint v = c.Pop32(); c.Reg(o.Reg) = v; }
        else { uint v = c.Pop16(); c.SetReg(2, o.Reg, v); }
    }

    private static void OpPushImm(Cpu c, ref DecodedOp o) => c.Push(o.Size, o.Imm);

    private static void OpPushRm(Cpu c, ref DecodedOp o) => c.Push(o.Size, c.OpReadRm(ref o, o.Size));

    private static void OpLeave(Cpu c, ref DecodedOp o)
    {
        int osz = o.Size;
        uint bp = c._ss32 ? c._r[EBP] : c._r[EBP] & 0xFFFF;
        uint v = c.ReadSized(SS, bp, osz);
        c.SetStackPtr(bp + (uint)osz);
        c.SetReg(osz, EBP, v);
    }

    // ---- control transfer (always last in a block) ----

    private static void OpJcc(Cpu c, ref DecodedOp o)
    {
        if (c.Condition(o.Sub))
        {
            c._opSize = o.Size;
            c.JumpNear(c._eip + o.Imm);
        }
    }

    private static void OpJmpRel(Cpu c, ref DecodedOp o)
    {
        c._opSize = o.Size;
        c.JumpNear(c._eip + o.Imm);
    }

    private static void OpCallRel(Cpu c, ref DecodedOp o)
    {
        int osz = o.Size;
        uint target = (c._eip + o.Imm) & (osz == 4 ? 0xFFFF_FFFF : 0xFFFF);
        c.CheckNearTarget(target);
        c.Push(osz, c._eip);
        c._opSize = osz;
        c.JumpNear(target);
    }

    private static void OpRet(Cpu c, ref DecodedOp o)
    {
        int osz = o.Size;
        uint ip = c.PeekStack(osz, 0);
        c._opSize = osz;
        c.JumpNear(ip);
        c.SetStackPtr(c.StackPtr + (uint)osz);
    }

    private static void OpRetImm(Cpu c, ref DecodedOp o)
    {
        int osz = o.Size;
        uint ip = c.Pop(osz);
        c._opSize = osz;
        c.JumpNear(ip);
        c.SetStackPtr(c.StackPtr + o.Imm);
    }

    private static void OpCallRm(Cpu c, ref DecodedOp o)
    {
        int osz = o.Size;
        uint target = c.OpReadRm(ref o, osz);
        if (osz == 2) target &= 0xFFFF;
        c.CheckNearTarget(target);
        c.Push(osz, c._eip);
        c._eip = target;
    }

    private static void OpJmpRm(Cpu c, ref DecodedOp o)
    {
        uint target = c.OpReadRm(ref o, o.Size);
        c._opSize = o.Size;
        c.JumpNear(target);
    }
}

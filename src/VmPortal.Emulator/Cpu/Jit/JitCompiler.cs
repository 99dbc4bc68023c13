using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

public sealed unsafe partial class Cpu
{
    /// <summary>
    /// Translates one <see cref="CodeBlock"/> into a collectible <see cref="DynamicMethod"/>
    /// <c>void (Cpu c, ref DecodedOp ops, long end)</c>:
    /// <list type="bullet">
    /// <item>each instruction the compiler knows becomes a call of its template (Cpu.JitTemplates.cs) with the decoded
    ///   operands as IL constants, which the .NET JIT inlines and folds; any other instruction calls its decoded-cache
    ///   handler (the function pointer as a constant, the DecodedOp by reference), so every block compiles;</item>
    /// <item>instructions that cannot fault and touch only registers (MOV/ALU/TEST/INC/DEC/LEA/MOVZX/shift by a
    ///   constant on registers) carry no bookkeeping; before any other instruction the compiler stores its EIP
    ///   (<c>_startEip</c>, where a fault restarts), the next EIP and the instructions retired so far, so a fault or a
    ///   handler sees exactly the interpreter's state; after it, a set <c>_checkEvents</c> (interrupt request, a write
    ///   into a code page, a debug trap) leaves the block as the interpreter's block loop does;</item>
    /// <item>flag liveness: a flag-writing instruction records its lazy flags only when something can observe them
    ///   before the next instruction that overwrites all of them (a flag reader, an instruction that can fault or
    ///   leave, the block end);</item>
    /// <item>a block whose last instruction jumps back to its own first one loops inside the method while no event is
    ///   pending and the run budget covers another full pass.</item>
    /// </list>
    /// </summary>
    private static class JitCompiler
    {
        // (DecodedOp[][] ops of the region's blocks (the bound target), Cpu c, ref DecodedOp entry ops, long end)
        private static readonly Type[] ParamTypes = { typeof(DecodedOp[][]), typeof(Cpu), typeof(DecodedOp).MakeByRefType(), typeof(long) };
        private static readonly Type[] HandlerParams = { typeof(Cpu), typeof(DecodedOp).MakeByRefType() };

        private static MethodInfo M(string name) =>
            typeof(Cpu).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static) ?? throw new MissingMethodException(nameof(Cpu), name);

        private static readonly MethodInfo MEnter = M(nameof(JEnter)), MRetire = M(nameof(JRetire)), MSetEip = M(nameof(JSetEip)),
            MCheckEvents = M(nameof(JCheckEvents)), MGo = M(nameof(JGo));

        /// <summary>What the compiler knows of one decoded instruction.</summary>
        private struct OpInfo
        {
            public MethodInfo? Template; // null: call the handler (or nothing when Skip)
            public bool Skip;            // no effect at all (NOP, shift by 0)
            public bool Pure;            // registers only: cannot fault, cannot raise an event
            public bool WritesAllFlags;  // overwrites OF SF ZF AF PF CF without reading them
            public bool FlagNeutral;     // neither reads nor writes a flag
            public int SubOverride;      // -1: use the op's Sub
            public bool Control;         // Jcc/JMP rel (a possible loop back to the block start)
        }

        private static OpInfo Classify(ref DecodedOp o)
        {
            nint h = (nint)o.Handler;
            var i = new OpInfo { SubOverride = -1 };
            bool reg = o.Mem == 0;
            bool aluWrites = (o.Sub & 7) is not (2 or 3);
            if (Is(h, &OpNop)) { i.Skip = i.Pure = i.FlagNeutral = true; }
            else if (Is(h, &OpAluRR32) || Is(h, &OpAluMR32) || Is(h, &OpAluRmReg)) { i.Template = M(nameof(JAluRmReg)); i.Pure = reg; i.WritesAllFlags = aluWrites; }
            else if (Is(h, &OpAluRI32) || Is(h, &OpAluMI32) || Is(h, &OpAluRmImm)) { i.Template = M(nameof(JAluRmImm)); i.Pure = reg; i.WritesAllFlags = aluWrites; }
            else if (Is(h, &OpAluRM32) || Is(h, &OpAluRegRm)) { i.Template = M(nameof(JAluRegRm)); i.Pure = reg; i.WritesAllFlags = aluWrites; }
            else if (Is(h, &OpTestRR32) || Is(h, &OpTestRmReg)) { i.Template = M(nameof(JTestRmReg)); i.Pure = reg; i.WritesAllFlags = true; }
            else if (Is(h, &OpTestRmImm)) { i.Template = M(nameof(JTestRmImm)); i.Pure = reg; i.WritesAllFlags = true; }
            else if (Is(h, &OpIncDecR32) || Is(h, &OpIncDecRm)) { i.Template = M(nameof(JIncDec)); i.Pure = reg; }
            else if (Is(h, &OpShiftRI32))
            {
                if (o.Imm8 == 0) { i.Skip = i.Pure = i.FlagNeutral = true; }
                else { i.Template = M(nameof(JShiftRI32)); i.Pure = true; i.WritesAllFlags = true; }
            }
            else if (Is(h, &OpMovRR32) || Is(h, &OpMovMemReg32) || Is(h, &OpMovRmReg)) { i.Template = M(nameof(JMovRmReg)); i.Pure = reg; i.FlagNeutral = true; }
            else if (Is(h, &OpMovRegMem32) || Is(h, &OpMovRegRm)) { i.Template = M(nameof(JMovRegRm)); i.Pure = reg; i.FlagNeutral = true; }
            else if (Is(h, &OpMovRmImm)) { i.Template = M(nameof(JMovRmImm)); i.Pure = reg; i.FlagNeutral = true; }
            else if (Is(h, &OpLea)) { i.Template = M(nameof(JLea)); i.Pure = true; i.FlagNeutral = true; }
            else if (Is(h, &OpMovzxB) || Is(h, &OpMovzxW) || Is(h, &OpMovsxB) || Is(h, &OpMovsxW))
            {
                i.Template = M(nameof(JMovx));
                i.SubOverride = Is(h, &OpMovzxB) ? 0 : Is(h, &OpMovzxW) ? 1 : Is(h, &OpMovsxB) ? 2 : 3;
                i.Pure = reg; i.FlagNeutral = true;
            }
            else if (Is(h, &OpPushR32) || Is(h, &OpPushReg)) { i.Template = M(nameof(JPushReg)); i.FlagNeutral = true; }
            else if (Is(h, &OpPopR32) || Is(h, &OpPopReg)) { i.Template = M(nameof(JPopReg)); i.FlagNeutral = true; }
            else if (Is(h, &OpPushImm)) { i.Template = M(nameof(JPushImm)); i.FlagNeutral = true; }
            else if (Is(h, &OpJcc)) { i.Template = M(nameof(JJcc)); i.Control = true; }
            else if (Is(h, &OpJmpRel)) { i.Template = M(nameof(JJmpRel)); i.Control = true; i.FlagNeutral = true; }
            else if (Is(h, &OpCallRel)) { i.Template = M(nameof(JCallRel)); i.FlagNeutral = true; }
            else if (Is(h, &OpRet)) { i.Template = M(nameof(JRet)); i.FlagNeutral = true; }
            return i;
        }

        private static bool Is(nint h, delegate*<Cpu, ref DecodedOp, void> f) => h == (nint)f;

        /// <summary>Where a block can continue inside its page, as backing offsets: the fall-through (a Jcc not taken, a
        /// block cut at its size limit) and the target of a Jcc/JMP/CALL rel (16-bit IP wrap ignored: the compiled
        /// transition compares the real EIP, so a wrong guess only means an exit).</summary>
        internal static int[] Successors(CodeBlock b)
        {
            if (b.EndsInInterpreter || b.Count == 0) return [];
            ref DecodedOp last = ref b.Ops[b.Count - 1];
            nint h = (nint)last.Handler;
            int end = b.Offset + b.Bytes;
            bool jcc = Is(h, &OpJcc), jmp = Is(h, &OpJmpRel), call = Is(h, &OpCallRel);
            int target = end + unchecked((int)last.Imm);
            if (jcc) return [target, end];
            if (jmp || call) return [target];
            return b.Count == CodeBlock.MaxOps ? [end] : [];
        }

        /// <summary>
        /// Compiles a region: region[0] is the entry block, the others blocks of the same page (same code version and
        /// CS.D) that it can reach. Each block keeps its own exits and bookkeeping; at a block's end, where the next EIP
        /// is the start of a region block (<see cref="Successors"/>), the code jumps there directly when nothing is
        /// pending, the run budget covers that whole block, and the code page is still the one fetched at entry
        /// (<see cref="JGo"/>); otherwise it returns to the block loop.
        /// </summary>
        public static (JitBlockFn Fn, int IlSize) Compile(CodeBlock[] region)
        {
            var dm = new DynamicMethod($"jit_{region[0].Offset:X}", typeof(void), ParamTypes, typeof(Cpu), skipVisibility: true);
            var il = dm.GetILGenerator();
            var eip0 = il.DeclareLocal(typeof(uint));
            var fetch0 = il.DeclareLocal(typeof(uint));
            var csBase0 = il.DeclareLocal(typeof(uint));
            var exitOne = il.DefineLabel();
            var body = il.DefineLabel();
            // A negative budget returns at once: the background compiler's first call, which only makes the .NET
            // JIT compile the method (c is null then).
            il.Emit(OpCodes.Ldarg_3);
            il.Emit(OpCodes.Ldc_I4_0);
            il.Emit(OpCodes.Conv_I8);
            il.Emit(OpCodes.Bge, body);
            il.Emit(OpCodes.Ret);
            il.MarkLabel(body);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Call, M(nameof(JGetEip)));
            il.Emit(OpCodes.Stloc, eip0);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Call, M(nameof(JGetFetchPage)));
            il.Emit(OpCodes.Stloc, fetch0);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Call, M(nameof(JGetCsBase)));
            il.Emit(OpCodes.Stloc, csBase0);

            var labels = new Label[region.Length];
            for (int j = 0; j < region.Length; j++) labels[j] = il.DefineLabel();
            for (int j = 0; j < region.Length; j++)
            {
                il.MarkLabel(labels[j]);
                EmitBlock(il, region[j], j, region[j].Offset - region[0].Offset, eip0, exitOne);
                foreach (int succ in Successors(region[j]))
                {
                    int t = Array.FindIndex(region, x => x.Offset == succ);
                    if (t < 0) continue;
                    // if (JGo(c, eip0 + delta, end, count, bytes, fetch0, csBase0, cs32)) goto block t
                    il.Emit(OpCodes.Ldarg_1);
                    EmitEip(il, eip0, region[t].Offset - region[0].Offset);
                    il.Emit(OpCodes.Ldarg_3);
                    il.Emit(OpCodes.Ldc_I4, region[t].Count);
                    il.Emit(OpCodes.Ldc_I4, region[t].Bytes);
                    il.Emit(OpCodes.Ldloc, fetch0);
                    il.Emit(OpCodes.Ldloc, csBase0);
                    il.Emit(region[0].Cs32 ? OpCodes.Ldc_I4_1 : OpCodes.Ldc_I4_0);
                    il.Emit(OpCodes.Call, MGo);
                    il.Emit(OpCodes.Brtrue, labels[t]);
                }
                il.Emit(OpCodes.Ret);
            }

            il.MarkLabel(exitOne);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4_1);
            il.Emit(OpCodes.Call, MRetire);
            il.Emit(OpCodes.Ret);

            int size = il.ILOffset;
            var ops = Array.ConvertAll(region, x => x.Ops);
            return ((JitBlockFn)dm.CreateDelegate(typeof(JitBlockFn), ops), size);
        }

        /// <summary>One block's instructions; <paramref name="delta"/>: its start relative to the region's entry EIP.
        /// Leaves EIP at the next instruction and the block's instructions retired.</summary>
        private static void EmitBlock(ILGenerator il, CodeBlock b, int blockIndex, int delta, LocalBuilder eip0, Label exitOne)
        {
            int n = b.Count;
            var info = new OpInfo[n];
            for (int k = 0; k < n; k++) info[k] = Classify(ref b.Ops[k]);

            // Flag liveness, backwards from the block end (where everything is live).
            var flagsLive = new bool[n];
            bool live = true;
            for (int k = n - 1; k >= 0; k--)
            {
                flagsLive[k] = live || !info[k].Pure;
                if (!info[k].Pure) live = true;
                else if (info[k].WritesAllFlags) live = false;
                else if (!info[k].FlagNeutral) live = true;
            }

            int pending = 0, off = delta;
            bool lastSetEip = false;
            for (int k = 0; k < n; k++)
            {
                ref DecodedOp o = ref b.Ops[k];
                var inf = info[k];
                int len = o.Len;
                if (inf.Skip) { pending++; off += len; lastSetEip = false; continue; }
                if (!inf.Pure)
                {
                    il.Emit(OpCodes.Ldarg_1);
                    EmitEip(il, eip0, off);
                    EmitEip(il, eip0, off + len);
                    il.Emit(OpCodes.Ldc_I4, pending);
                    il.Emit(OpCodes.Call, MEnter);
                    pending = 0;
                }
                if (inf.Template != null)
                {
                    il.Emit(OpCodes.Ldarg_1);
                    il.Emit(OpCodes.Ldc_I4, inf.SubOverride >= 0 ? inf.SubOverride : o.Sub);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Size);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Reg);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Rm);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Mem);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Seg);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Base);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Index);
                    il.Emit(OpCodes.Ldc_I4, (int)o.Scale);
                    il.Emit(OpCodes.Ldc_I4, unchecked((int)o.Disp));
                    il.Emit(OpCodes.Ldc_I4, unchecked((int)o.AMask));
                    il.Emit(OpCodes.Ldc_I4, unchecked((int)o.Imm));
                    il.Emit(OpCodes.Ldc_I4, (int)o.Imm8);
                    il.Emit(OpCodes.Ldc_I4, flagsLive[k] ? 1 : 0);
                    il.Emit(OpCodes.Call, inf.Template);
                }
                else
                {
                    // The decoded-cache handler, handler(c, ref op), with the block's own DecodedOp: the method is
                    // bound to the region's Ops arrays (argument 0).
                    il.Emit(OpCodes.Ldarg_1);
                    il.Emit(OpCodes.Ldarg_0);
                    il.Emit(OpCodes.Ldc_I4, blockIndex);
                    il.Emit(OpCodes.Ldelem_Ref);
                    il.Emit(OpCodes.Ldc_I4, k);
                    il.Emit(OpCodes.Ldelema, typeof(DecodedOp));
                    il.Emit(OpCodes.Ldc_I8, (long)(nint)o.Handler);
                    il.Emit(OpCodes.Conv_I);
                    il.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(void), HandlerParams, null);
                }
                pending++;
                off += len;
                lastSetEip = !inf.Pure;
                if (!inf.Pure && k < n - 1)
                {
                    il.Emit(OpCodes.Ldarg_1);
                    il.Emit(OpCodes.Call, MCheckEvents);
                    il.Emit(OpCodes.Brtrue, exitOne);
                }
            }

            if (!lastSetEip)
            {
                il.Emit(OpCodes.Ldarg_1);
                EmitEip(il, eip0, off);
                il.Emit(OpCodes.Call, MSetEip);
            }
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Ldc_I4, pending);
            il.Emit(OpCodes.Call, MRetire);
        }

        private static void EmitEip(ILGenerator il, LocalBuilder eip0, int off)
        {
            il.Emit(OpCodes.Ldloc, eip0);
            if (off != 0)
            {
                il.Emit(OpCodes.Ldc_I4, off);
                il.Emit(OpCodes.Add);
            }
        }
    }
}

using System.Reflection;
using System.Reflection.Emit;

namespace VmPortal.Emulator.Cpu;

public sealed unsafe partial class Cpu
{
    /// <summary>
    /// Translates a region (one hot <see cref="CodeBlock"/> and blocks of its page it reaches) into a collectible
    /// <see cref="DynamicMethod"/> <c>void (DecodedOp[][] ops, Cpu c, ref DecodedOp entry, long end)</c>; the IL is
    /// written by <see cref="JitEmitter"/> (JitEmitter.cs).
    /// </summary>
    private static class JitCompiler
    {
        // (DecodedOp[][] ops of the region's blocks (the bound target), Cpu c, ref DecodedOp entry ops, long end)
        internal static readonly Type[] ParamTypes = { typeof(DecodedOp[][]), typeof(Cpu), typeof(DecodedOp).MakeByRefType(), typeof(long) };

        internal static bool Is(nint h, delegate*<Cpu, ref DecodedOp, void> f) => h == (nint)f;

        /// <summary>Where a block can continue inside its page, as backing offsets: the targets of the Jccs inside it, the
        /// fall-through (a last Jcc not taken, a block cut at its size limit, the return site of a CALL) and the target of
        /// a last Jcc/JMP/CALL rel (16-bit IP wrap ignored: the compiled transition compares the real EIP, so a wrong guess
        /// only means an exit).</summary>
        internal static int[] Successors(CodeBlock b)
        {
            if (b.EndsInInterpreter || b.Count == 0) return [];
            var list = new List<int>(3);
            int off = b.Offset;
            for (int k = 0; k < b.Count - 1; k++)
            {
                off += b.Ops[k].Len;
                if (Is((nint)b.Ops[k].Handler, &OpJcc)) list.Add(off + unchecked((int)b.Ops[k].Imm));
            }
            ref DecodedOp last = ref b.Ops[b.Count - 1];
            nint h = (nint)last.Handler;
            int end = b.Offset + b.Bytes;
            int target = end + unchecked((int)last.Imm);
            if (Is(h, &OpJcc)) list.AddRange([target, end]);
            else if (Is(h, &OpJmpRel)) list.Add(target);
            else if (Is(h, &OpCallRel)) list.AddRange([target, end]);
            else if (b.Count == CodeBlock.MaxOps) list.Add(end);
            return list.ToArray();
        }

        /// <summary>Compiles a region: region[0] is the entry block, the others blocks of the same page (same code version
        /// and CS.D) that it can reach. <paramref name="flat"/>: the segments (Cpu._flatMask bits) the code may assume flat;
        /// the result says which of them it does assume (the block loop runs it only while they are).</summary>
        public static (JitBlockFn Fn, int IlSize, int Flat) Compile(CodeBlock[] region, int flat)
        {
            var dm = new DynamicMethod($"jit_{region[0].Offset:X}", typeof(void), ParamTypes, typeof(Cpu), skipVisibility: true);
            var il = dm.GetILGenerator();
            int used = JitEmitter.EmitRegion(il, region, flat);
            int size = il.ILOffset;
            var ops = Array.ConvertAll(region, x => x.Ops);
            return ((JitBlockFn)dm.CreateDelegate(typeof(JitBlockFn), ops), size, used);
        }
    }
}

using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

// The JIT tier's IL writer (docs/emulator.md "JIT tier"). One instance emits one region: direct IL for the common
// instructions, with
// - guest registers in IL locals: the registers the region uses are loaded at entry; those it can write are stored back
//   at every exit and before every out-of-line call (a slow memory path, a decoded-cache handler), and reloaded after a
//   handler;
// - arithmetic flags in IL locals (operands and result) with the operation and size known while compiling: a Jcc,
//   SETcc or CMOV tests them directly (a CMP/Jcc pair becomes one compare); the CPU's lazy-flag fields are written
//   only at exits, at region-internal jumps into a block that can observe them, and before out-of-line calls;
// - EIP and the retired-instruction count likewise: the count in a local, both written at exits and before
//   out-of-line calls only;
// - loads and stores with the segment check (none for a segment that was flat when the region was compiled: the
//   block loop runs such code only while it still is, Cpu._flatMask) and the TLB fast path inline, everything else
//   (MMIO, #PF, page crossing,
//   a code page, debug hooks) in an out-of-line stub that first makes the CPU state exact (registers, flags, EIP,
//   _startEip, retired count) and then calls the interpreter's Read/Write: a fault leaves the state exactly as at the
//   faulting instruction, since every instruction changes its registers and flags only after its last access;
// - any other instruction through its decoded-cache handler (calli with the function pointer as a constant) in an
//   out-of-line stub with the same state hand-over.
// Stubs (slow paths, exits, the entry prologue) are emitted after the body, when the region's register sets are known.
public sealed unsafe partial class Cpu
{
    private sealed class JitEmitter
    {
        private static FieldInfo F(string name) =>
            typeof(Cpu).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance) ?? throw new MissingFieldException(nameof(Cpu), name);

        private static MethodInfo M(string name) =>
            typeof(Cpu).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance) ?? throw new MissingMethodException(nameof(Cpu), name);

        private static readonly FieldInfo FR = F(nameof(_r)), FEip = F(nameof(_eip)), FStartEip = F(nameof(_startEip)),
            FCount = F("<InstructionCount>k__BackingField"), FCheck = F(nameof(_checkEvents)), FFetchPage = F(nameof(_fetchPage)),
            FCsBase = F(nameof(_csBase)), FSegLo = F(nameof(_segLo)), FSegBase = F(nameof(_segBase)), FSegMaxR = F(nameof(_segMaxR)),
            FSegMaxW = F(nameof(_segMaxW)), FSegLimit = F(nameof(_segLimit)), FTlbUserBase = F(nameof(_tlbUserBase)),
            FTlbTag = F(nameof(_tlbTag)), FTlbHost = F(nameof(_tlbHost)), FLazy = F(nameof(_lazy)),
            FFlags = F(nameof(_flags)), FLfOp = F(nameof(_lfOp)), FLfA = F(nameof(_lfA)), FLfB = F(nameof(_lfB)),
            FLfRes = F(nameof(_lfRes)), FLfMask = F(nameof(_lfMask)), FLfSign = F(nameof(_lfSign)), FSs32 = F(nameof(_ss32)), FIpMask = F(nameof(_ipMask));

        private static readonly MethodInfo MReadSlow = M(nameof(JReadSlow)), MWriteSlow = M(nameof(JWriteSlow)),
            MCheckNear = M(nameof(JCheckNear)), MGo = M(nameof(JGo)), MCondition = M(nameof(Condition)), MGetCF = M(nameof(GetCF)),
            MParity = M(nameof(JParity)), MIncDecCpuCf = M(nameof(SetLazyIncDec)),
            MSync = M(nameof(JSync)), MFlushArith = M(nameof(JFlushArith)), MFlushIncDec = M(nameof(JFlushIncDec)), MFlushShift = M(nameof(JFlushShift));

        private static readonly MethodInfo MArrayData = typeof(System.Runtime.InteropServices.MemoryMarshal).GetMethods()
            .First(m => m.Name == nameof(System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference) && m.IsGenericMethodDefinition);
        private static readonly Dictionary<Type, MethodInfo> ArrayData = new[] { typeof(uint), typeof(int), typeof(long), typeof(byte) }
            .ToDictionary(t => t, t => MArrayData.MakeGenericMethod(t));

        private static readonly Type[] HandlerParams = { typeof(Cpu), typeof(DecodedOp).MakeByRefType() };

        private enum FK { Cpu, Arith, IncDec, Shift }

        /// <summary>Where the arithmetic flags are: in the CPU's fields (Cpu) or in the locals fa/fb/fr/fcf/fof with
        /// the operation and operand size known here. IncDec: CF in fcf, or still in the CPU (CfCpu).</summary>
        private readonly record struct FlagState(FK Kind, LazyOp Op, int Size, bool CfCpu);

        private readonly ILGenerator _il;
        private readonly CodeBlock[] _region;
        private readonly LocalBuilder[] _reg = new LocalBuilder[8];
        private readonly bool[] _used = new bool[8], _written = new bool[8];
        private readonly LocalBuilder _rref, _eip0, _fetch0, _csBase0, _fa, _fb, _fr, _fcf, _fof, _tEa, _tLin, _tIdx, _tV, _tA, _tB, _tR, _tT, _tW, _tCf, _tN, _tL, _cnt;
        private readonly List<Action> _stubs = new();
        private readonly Label[] _blockLabels;
        private readonly bool[] _liveIn;
        private readonly HashSet<int> _returnSites = new();
        private FlagState _fs;
        private readonly FlagState[] _entry;           // the flag state each block starts with
        private readonly List<FlagState>[] _incoming;  // the states region-internal jumps bring to each block
        private readonly bool _dry;
        private readonly LocalBuilder _slowSeen;       // an out-of-line call ran (or the region may wrap IP): full JGo checks
        private int _pending;   // instructions of the current block retired since the local count (_cnt) was last updated
        private int _block, _k, _start, _next; // current block, instruction index, its EIP and the next (relative to eip0)
        private bool _touchedMem;
        private readonly int _flat;    // segments (Cpu._flatMask bits) this code may assume flat
        private int _flatUsed;         // those it does assume
        private LocalBuilder _lin = null!; // the last access's linear address (tLin, or tEa for a flat segment)

        /// <summary>
        /// Emits a region. Flag states cross region-internal jumps in the IL locals when every jump into a block brings
        /// the same static state (a CMP in one block, its Jcc's target testing the flags): dry runs (IL thrown away)
        /// find a fixed point of the blocks' entry states, starting from "flags in the CPU" everywhere; the entry block
        /// is also entered from the block loop, so it always starts with the flags in the CPU. The last dry run also
        /// gives the registers the region uses and writes.
        /// </summary>
        public static int EmitRegion(ILGenerator il, CodeBlock[] region, int flat)
        {
            var entry = new FlagState[region.Length];
            JitEmitter dry;
            for (int iter = 0; ; iter++)
            {
                dry = new JitEmitter(new DynamicMethod("jit_dry", typeof(void), JitCompiler.ParamTypes, typeof(Cpu), skipVisibility: true).GetILGenerator(),
                    region, entry, flat, dry: true);
                dry.Emit();
                var next = new FlagState[region.Length];
                for (int t = 1; t < region.Length; t++)
                {
                    var inc = dry._incoming[t];
                    if (inc.Count > 0 && inc.TrueForAll(x => x == inc[0]) && inc[0].Kind != FK.Cpu) next[t] = inc[0];
                }
                if (next.AsSpan().SequenceEqual(entry)) break;
                entry = next;
                if (iter == 4) { entry = new FlagState[region.Length]; break; } // no fixed point: flags in the CPU at every block
            }
            var e = new JitEmitter(il, region, entry, flat, dry: false);
            e.SetRegisterSets(dry.Used, dry.Written);
            e.Emit();
            return e._flatUsed;
        }

        private JitEmitter(ILGenerator il, CodeBlock[] region, FlagState[] entry, int flat, bool dry)
        {
            _il = il;
            _flat = flat;
            _region = region;
            _entry = entry;
            _dry = dry;
            _incoming = new List<FlagState>[region.Length];
            for (int j = 0; j < region.Length; j++) _incoming[j] = new();
            _slowSeen = il.DeclareLocal(typeof(int));
            for (int i = 0; i < 8; i++) _reg[i] = il.DeclareLocal(typeof(uint));
            _rref = il.DeclareLocal(typeof(uint).MakeByRefType());
            _eip0 = il.DeclareLocal(typeof(uint));
            _fetch0 = il.DeclareLocal(typeof(uint));
            _csBase0 = il.DeclareLocal(typeof(uint));
            _fa = il.DeclareLocal(typeof(uint)); _fb = il.DeclareLocal(typeof(uint)); _fr = il.DeclareLocal(typeof(uint));
            _fcf = il.DeclareLocal(typeof(int)); _fof = il.DeclareLocal(typeof(int));
            _tEa = il.DeclareLocal(typeof(uint)); _tLin = il.DeclareLocal(typeof(uint)); _tIdx = il.DeclareLocal(typeof(nint)); // native: no sign extension at each use
            _tV = il.DeclareLocal(typeof(uint)); _tA = il.DeclareLocal(typeof(uint)); _tB = il.DeclareLocal(typeof(uint));
            _tR = il.DeclareLocal(typeof(uint)); _tT = il.DeclareLocal(typeof(uint)); _tW = il.DeclareLocal(typeof(uint));
            _tCf = il.DeclareLocal(typeof(int)); _tN = il.DeclareLocal(typeof(int));
            _tL = il.DeclareLocal(typeof(long));
            _cnt = il.DeclareLocal(typeof(long));
            _blockLabels = new Label[region.Length];
            for (int j = 0; j < region.Length; j++) _blockLabels[j] = il.DefineLabel();
            _liveIn = new bool[region.Length];
            for (int j = 0; j < region.Length; j++) _liveIn[j] = FlagsLiveIn(region[j]);
            foreach (var b in region)
            {
                if (b.Count == 0) continue;
                if (Is(ref b.Ops[b.Count - 1], &OpCallRel)) _returnSites.Add(b.Offset + b.Bytes);
            }
        }

        private static bool Is(ref DecodedOp o, delegate*<Cpu, ref DecodedOp, void> f) => (nint)o.Handler == (nint)f;

        // ---------------- the method ----------------

        public void Emit()
        {
            var il = _il;
            var body = il.DefineLabel();
            var prologue = il.DefineLabel();
            // A negative budget returns at once: the background compiler's first call, which only makes the .NET
            // JIT compile the method (c is null then).
            il.Emit(OpCodes.Ldarg_3);
            il.Emit(OpCodes.Ldc_I4_0);
            il.Emit(OpCodes.Conv_I8);
            il.Emit(OpCodes.Bge, body);
            il.Emit(OpCodes.Ret);
            il.MarkLabel(body);
            LdC(); il.Emit(OpCodes.Ldfld, FEip); il.Emit(OpCodes.Stloc, _eip0);
            LdC(); il.Emit(OpCodes.Ldfld, FCount); il.Emit(OpCodes.Stloc, _cnt);
            LdC(); il.Emit(OpCodes.Ldfld, FFetchPage); il.Emit(OpCodes.Stloc, _fetch0);
            LdC(); il.Emit(OpCodes.Ldfld, FCsBase); il.Emit(OpCodes.Stloc, _csBase0);
            // slowSeen starts set when a block of the region could wrap IP (then every jump checks it).
            int maxEnd = 0;
            foreach (var b in _region) maxEnd = Math.Max(maxEnd, b.Offset - _region[0].Offset + b.Bytes);
            il.Emit(OpCodes.Ldloc, _eip0); il.Emit(OpCodes.Conv_U8); il.Emit(OpCodes.Ldc_I8, (long)maxEnd); il.Emit(OpCodes.Add);
            LdC(); il.Emit(OpCodes.Ldfld, FIpMask); il.Emit(OpCodes.Conv_U8); il.Emit(OpCodes.Ldc_I8, 1L); il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Cgt_Un); il.Emit(OpCodes.Stloc, _slowSeen);
            il.Emit(OpCodes.Br, prologue);

            for (int j = 0; j < _region.Length; j++)
            {
                il.MarkLabel(_blockLabels[j]);
                EmitBlock(j);
            }

            // Stubs may add stubs (none do today), so run them by index.
            for (int i = 0; i < _stubs.Count; i++) _stubs[i]();

            il.MarkLabel(prologue);
            LdC(); il.Emit(OpCodes.Ldfld, FR); il.Emit(OpCodes.Call, ArrayData[typeof(uint)]); il.Emit(OpCodes.Stloc, _rref);
            foreach (var (f, local) in _arrayRefs)
            {
                LdC(); il.Emit(OpCodes.Ldfld, f); il.Emit(OpCodes.Call, ArrayData[f.FieldType.GetElementType()!]); il.Emit(OpCodes.Stloc, local);
            }
            ReloadRegs();
            il.Emit(OpCodes.Br, _blockLabels[0]);
        }

        private void EmitBlock(int j)
        {
            var b = _region[j];
            _block = j;
            _pending = 0;
            _fs = _entry[j];
            int delta = b.Offset - _region[0].Offset;
            int off = delta;
            bool handlerLast = false;
            for (int k = 0; k < b.Count; k++)
            {
                ref DecodedOp o = ref b.Ops[k];
                _k = k;
                _start = off;
                _next = off + o.Len;
                _touchedMem = false;
                bool last = k == b.Count - 1;
                if (last && EmitControl(ref o, b)) return;
                handlerLast = false;
                if (!last && Is(ref o, &OpJcc))
                {
                    EmitJccInside(ref o);
                    _pending++;
                    off = _next;
                    continue;
                }
                if (!EmitDirect(ref o))
                {
                    EmitHandler(ref o, last);
                    handlerLast = true;
                }
                _pending++;
                off = _next;
                if (_touchedMem && !last)
                {
                    // A slow path may have raised an event (a write into a code page, an interrupt request).
                    LdC(); _il.Emit(OpCodes.Ldfld, FCheck);
                    _il.Emit(OpCodes.Brtrue, ExitStub(setEip: !handlerLast));
                }
            }
            // The block ends without a direct control transfer: a handler (EIP already set), a block cut at its size
            // limit or at the page end (fall-through).
            AddCount(_pending);
            int nextOffset = b.Offset + b.Bytes;
            int t = handlerLast ? -1 : Array.FindIndex(_region, x => x.Offset == nextOffset);
            if (t >= 0) EmitGo(t, null);
            if (!handlerLast) { LdC(); LdEip(off); _il.Emit(OpCodes.Stfld, FEip); }
            EmitExit();
        }

        // ---------------- direct instructions ----------------

        private bool EmitDirect(ref DecodedOp o)
        {
            nint h = (nint)o.Handler;
            bool reg = o.Mem == 0;
            int size = o.Size;
            if (Is(ref o, &OpNop)) return true;
            if (Is(ref o, &OpAluRR32) || Is(ref o, &OpAluMR32) || Is(ref o, &OpAluRmReg))
            {
                EmitAluRm(ref o, useImm: false);
                return true;
            }
            if (Is(ref o, &OpAluRI32) || Is(ref o, &OpAluMI32) || Is(ref o, &OpAluRmImm))
            {
                EmitAluRm(ref o, useImm: true);
                return true;
            }
            if (Is(ref o, &OpAluRM32) || Is(ref o, &OpAluRegRm))
            {
                // reg = reg op r/m
                EmitCarryIn(o.Sub & 7);
                EmitReadRm(ref o, size); _il.Emit(OpCodes.Stloc, _tB);
                LdReg(size, o.Reg); _il.Emit(OpCodes.Stloc, _tA);
                EmitAluOp(o.Sub & 7, size);
                if ((o.Sub & 7) != 7) { _il.Emit(OpCodes.Ldloc, _tR); StReg(size, o.Reg); }
                SetArithFlags(o.Sub & 7, size);
                return true;
            }
            if (Is(ref o, &OpTestRR32) || Is(ref o, &OpTestRmReg) || Is(ref o, &OpTestRmImm))
            {
                EmitReadRm(ref o, size); _il.Emit(OpCodes.Stloc, _tA);
                if (Is(ref o, &OpTestRmImm)) LdU(o.Imm); else LdReg(size, o.Reg);
                _il.Emit(OpCodes.Stloc, _tB);
                _il.Emit(OpCodes.Ldloc, _tA); _il.Emit(OpCodes.Ldloc, _tB); _il.Emit(OpCodes.And); _il.Emit(OpCodes.Stloc, _tR);
                SetArithFlags(4, size);
                return true;
            }
            if (Is(ref o, &OpIncDecR32) || Is(ref o, &OpIncDecRm))
            {
                EmitIncDec(ref o, size);
                return true;
            }
            if (Is(ref o, &OpShiftRI32))
            {
                if (o.Imm8 == 0) return true;
                EmitShift(ref o, 4, o.Imm8);
                return true;
            }
            if (Is(ref o, &OpShiftImm) && reg && o.Sub >= 4)
            {
                // SHL/SHR/SAR of an 8/16/32-bit register by a constant: a count of 0 changes nothing, counts of the
                // operand size or more stay with the handler.
                int n = o.Imm8 & 0x1F;
                if (n == 0) return true;
                if (n >= size * 8) return false;
                EmitShift(ref o, size, n);
                return true;
            }
            if (Is(ref o, &OpShiftCl) && reg && o.Sub >= 4)
            {
                EmitShiftCl(ref o, size);
                return true;
            }
            if (Is(ref o, &OpGroup3) && EmitGroup3(ref o)) return true;
            if (Is(ref o, &OpMovRR32) || Is(ref o, &OpMovMemReg32) || Is(ref o, &OpMovRmReg))
            {
                LdReg(size, o.Reg); _il.Emit(OpCodes.Stloc, _tV);
                EmitWriteRmNew(ref o, size);
                return true;
            }
            if (Is(ref o, &OpMovRegMem32) || Is(ref o, &OpMovRegRm))
            {
                EmitReadRm(ref o, size);
                StReg(size, o.Reg);
                return true;
            }
            if (Is(ref o, &OpMovRmImm))
            {
                LdU(o.Imm); _il.Emit(OpCodes.Stloc, _tV);
                EmitWriteRmNew(ref o, size);
                return true;
            }
            if (Is(ref o, &OpLea))
            {
                EmitEa(ref o);
                StReg(size, o.Reg);
                return true;
            }
            bool zxb = Is(ref o, &OpMovzxB), zxw = Is(ref o, &OpMovzxW), sxb = Is(ref o, &OpMovsxB), sxw = Is(ref o, &OpMovsxW);
            if (zxb || zxw || sxb || sxw)
            {
                EmitReadRm(ref o, zxb || sxb ? 1 : 2);
                if (sxb) _il.Emit(OpCodes.Conv_I1);
                if (sxw) _il.Emit(OpCodes.Conv_I2);
                StReg(size, o.Reg);
                return true;
            }
            if (size == 4 && (Is(ref o, &OpImulRegRm) || Is(ref o, &OpImulImm)))
            {
                // IMUL r32, r/m32 (, imm): the low half, CF = OF = the product does not fit; SF/ZF/PF from the result,
                // AF clear (IMul2's SetFlagsResult) — the shift flag state.
                EmitReadRm(ref o, 4); _il.Emit(OpCodes.Stloc, _tB);
                if (Is(ref o, &OpImulImm)) LdU(o.Imm); else LdReg(4, o.Reg);
                _il.Emit(OpCodes.Conv_I8);
                _il.Emit(OpCodes.Ldloc, _tB); _il.Emit(OpCodes.Conv_I8);
                _il.Emit(OpCodes.Mul); _il.Emit(OpCodes.Stloc, _tL);
                _il.Emit(OpCodes.Ldloc, _tL); _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Stloc, _tR);
                _il.Emit(OpCodes.Ldloc, _tR); StReg(4, o.Reg);
                _il.Emit(OpCodes.Ldloc, _tL); _il.Emit(OpCodes.Ldloc, _tL); _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8);
                _il.Emit(OpCodes.Ceq); LdI(0); _il.Emit(OpCodes.Ceq); _il.Emit(OpCodes.Dup);
                _il.Emit(OpCodes.Stloc, _fcf); _il.Emit(OpCodes.Stloc, _fof);
                _il.Emit(OpCodes.Ldloc, _tR); _il.Emit(OpCodes.Stloc, _fr);
                _fs = new FlagState(FK.Shift, LazyOp.Result, 4, false);
                return true;
            }
            if (Is(ref o, &OpSetcc))
            {
                EmitCondition(o.Sub);
                _il.Emit(OpCodes.Stloc, _tV);
                EmitWriteRmNew(ref o, 1);
                return true;
            }
            if (Is(ref o, &OpCmov))
            {
                EmitReadRm(ref o, size); _il.Emit(OpCodes.Stloc, _tV);
                var skip = _il.DefineLabel();
                EmitCondition(o.Sub);
                _il.Emit(OpCodes.Brfalse, skip);
                _il.Emit(OpCodes.Ldloc, _tV); StReg(size, o.Reg);
                _il.MarkLabel(skip);
                return true;
            }
            if (size == 4 && (Is(ref o, &OpPushR32) || Is(ref o, &OpPushReg) || Is(ref o, &OpPushImm) || Is(ref o, &OpPushRm)))
            {
                var done = _il.DefineLabel();
                var slow = HandlerStub(ref o, done, flagNeutral: true);
                LdC(); _il.Emit(OpCodes.Ldfld, FSs32); _il.Emit(OpCodes.Brfalse, slow);
                // PUSH r/m32 reads its operand (an ESP-based address with ESP before the push) first
                if (Is(ref o, &OpPushImm)) LdU(o.Imm); else if (Is(ref o, &OpPushRm)) EmitReadRm(ref o, 4); else LdReg(4, o.Reg);
                _il.Emit(OpCodes.Stloc, _tV);
                LdReg(4, ESP); LdI(4); _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Stloc, _tEa);
                EmitStore(SS, 4);
                _il.Emit(OpCodes.Ldloc, _tEa); StReg(4, ESP);
                _il.MarkLabel(done);
                return true;
            }
            if (size == 4 && (Is(ref o, &OpPopR32) || Is(ref o, &OpPopReg)))
            {
                var done = _il.DefineLabel();
                var slow = HandlerStub(ref o, done, flagNeutral: true);
                LdC(); _il.Emit(OpCodes.Ldfld, FSs32); _il.Emit(OpCodes.Brfalse, slow);
                LdReg(4, ESP); _il.Emit(OpCodes.Stloc, _tEa);
                EmitLoad(SS, 4); _il.Emit(OpCodes.Stloc, _tV);
                LdReg(4, ESP); LdI(4); _il.Emit(OpCodes.Add); StReg(4, ESP);
                _il.Emit(OpCodes.Ldloc, _tV); StReg(4, o.Reg);
                _il.MarkLabel(done);
                return true;
            }
            if (Is(ref o, &OpString) && o.Imm8 == 0 && o.AMask == 0xFFFF_FFFF && o.Sub is 0xA4 or 0xA5 or 0xAA or 0xAB or 0xAC or 0xAD)
            {
                // MOVS/STOS/LODS without REP, 32-bit addresses: the access(es), then ESI/EDI step by ±size (EFLAGS.DF);
                // a fault in either access leaves the registers as they were.
                if (o.Sub <= 0xA5)
                {
                    LdReg(4, ESI); _il.Emit(OpCodes.Stloc, _tEa);
                    EmitLoad(o.Seg, size); _il.Emit(OpCodes.Stloc, _tV);
                    LdReg(4, EDI); _il.Emit(OpCodes.Stloc, _tEa);
                    EmitStore(ES, size);
                    EmitStringStep(ESI, size);
                    EmitStringStep(EDI, size);
                }
                else if (o.Sub <= 0xAB)
                {
                    LdReg(size, EAX); _il.Emit(OpCodes.Stloc, _tV);
                    LdReg(4, EDI); _il.Emit(OpCodes.Stloc, _tEa);
                    EmitStore(ES, size);
                    EmitStringStep(EDI, size);
                }
                else
                {
                    LdReg(4, ESI); _il.Emit(OpCodes.Stloc, _tEa);
                    EmitLoad(o.Seg, size);
                    StReg(size, EAX);
                    EmitStringStep(ESI, size);
                }
                return true;
            }
            _ = h; _ = reg;
            return false;
        }

        /// <summary>reg += size, or −size when EFLAGS.DF is set (branch-free: size − DF·2·size).</summary>
        private void EmitStringStep(int reg, int size)
        {
            LdReg(4, reg);
            LdI(size);
            LdC(); _il.Emit(OpCodes.Ldfld, FFlags); LdI(System.Numerics.BitOperations.TrailingZeroCount(DF)); _il.Emit(OpCodes.Shr_Un); LdI(1); _il.Emit(OpCodes.And);
            LdI(2 * size); _il.Emit(OpCodes.Mul);
            _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Add);
            StReg(4, reg);
        }

        /// <summary>ALU op with the r/m operand as destination and reg (or the immediate) as source.</summary>
        private void EmitAluRm(ref DecodedOp o, bool useImm)
        {
            int size = o.Size, sub = o.Sub & 7;
            EmitCarryIn(sub);
            if (o.Mem != 0)
            {
                EmitEa(ref o); _il.Emit(OpCodes.Stloc, _tEa);
                EmitLoad(o.Seg, size); _il.Emit(OpCodes.Stloc, _tA);
            }
            else { LdReg(size, o.Rm); _il.Emit(OpCodes.Stloc, _tA); }
            if (useImm) LdU(o.Imm); else LdReg(size, o.Reg);
            _il.Emit(OpCodes.Stloc, _tB);
            EmitAluOp(sub, size);
            if (sub != 7)
            {
                _il.Emit(OpCodes.Ldloc, _tR);
                if (o.Mem != 0) { _il.Emit(OpCodes.Stloc, _tV); EmitStore(o.Seg, size); }
                else StReg(size, o.Rm);
            }
            SetArithFlags(sub, size);
        }

        /// <summary>tR = tA op tB (masked to the size).</summary>
        private void EmitAluOp(int sub, int size)
        {
            _il.Emit(OpCodes.Ldloc, _tA);
            _il.Emit(OpCodes.Ldloc, _tB);
            switch (sub)
            {
                case 0: _il.Emit(OpCodes.Add); Mask(size); break;
                case 1: _il.Emit(OpCodes.Or); break;
                case 4: _il.Emit(OpCodes.And); break;
                case 6: _il.Emit(OpCodes.Xor); break;
                case 2: _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Ldloc, _tCf); _il.Emit(OpCodes.Add); Mask(size); break;
                case 3: _il.Emit(OpCodes.Sub); _il.Emit(OpCodes.Ldloc, _tCf); _il.Emit(OpCodes.Sub); Mask(size); break;
                default: _il.Emit(OpCodes.Sub); Mask(size); break;
            }
            _il.Emit(OpCodes.Stloc, _tR);
        }

        /// <summary>ADC/SBB (sub 2/3): tCf = CF (0/1) of the flag state before the instruction; nothing for the others.</summary>
        private void EmitCarryIn(int sub)
        {
            if (sub is not (2 or 3)) return;
            if (_fs.Kind == FK.Cpu) { LdC(); _il.Emit(OpCodes.Call, MGetCF); }
            else LdFlag(CF);
            _il.Emit(OpCodes.Stloc, _tCf);
        }

        private void SetArithFlags(int sub, int size)
        {
            _il.Emit(OpCodes.Ldloc, _tA); _il.Emit(OpCodes.Stloc, _fa);
            _il.Emit(OpCodes.Ldloc, _tB); _il.Emit(OpCodes.Stloc, _fb);
            _il.Emit(OpCodes.Ldloc, _tR); _il.Emit(OpCodes.Stloc, _fr);
            // ADC/SBB: the carry-in goes to fcf; the CPU's lazy op is Adc/Sbb when it was set, Add/Sub when not (as
            // the interpreter's AluCalc chooses), so Op Adc/Sbb here means "Add/Sub + fcf".
            if (sub is 2 or 3) { _il.Emit(OpCodes.Ldloc, _tCf); _il.Emit(OpCodes.Stloc, _fcf); }
            var op = sub switch { 0 => LazyOp.Add, 2 => LazyOp.Adc, 3 => LazyOp.Sbb, 5 or 7 => LazyOp.Sub, _ => LazyOp.Logic };
            _fs = new FlagState(FK.Arith, op, size, false);
        }

        private void EmitIncDec(ref DecodedOp o, int size)
        {
            bool inc = o.Sub == 0;
            // CF survives: take it from the current flag state (before anything can fault, into a temporary).
            bool cfCpu = false;
            switch (_fs.Kind)
            {
                case FK.Cpu: cfCpu = true; break;
                case FK.IncDec: cfCpu = _fs.CfCpu; if (!cfCpu) { _il.Emit(OpCodes.Ldloc, _fcf); _il.Emit(OpCodes.Stloc, _tCf); } break;
                default: LdFlag(CF); _il.Emit(OpCodes.Stloc, _tCf); break;
            }
            if (o.Mem != 0)
            {
                EmitEa(ref o); _il.Emit(OpCodes.Stloc, _tEa);
                EmitLoad(o.Seg, size); _il.Emit(OpCodes.Stloc, _tA);
            }
            else { LdReg(size, o.Rm); _il.Emit(OpCodes.Stloc, _tA); }
            _il.Emit(OpCodes.Ldloc, _tA); LdI(1); _il.Emit(inc ? OpCodes.Add : OpCodes.Sub); Mask(size); _il.Emit(OpCodes.Stloc, _tR);
            _il.Emit(OpCodes.Ldloc, _tR);
            if (o.Mem != 0) { _il.Emit(OpCodes.Stloc, _tV); EmitStore(o.Seg, size); }
            else StReg(size, o.Rm);
            if (!cfCpu) { _il.Emit(OpCodes.Ldloc, _tCf); _il.Emit(OpCodes.Stloc, _fcf); }
            _il.Emit(OpCodes.Ldloc, _tA); _il.Emit(OpCodes.Stloc, _fa);
            _il.Emit(OpCodes.Ldloc, _tR); _il.Emit(OpCodes.Stloc, _fr);
            _fs = new FlagState(FK.IncDec, inc ? LazyOp.Inc : LazyOp.Dec, size, cfCpu);
        }

        /// <summary>SHL/SHR/SAR of a register (8/16/32-bit) by a constant 1 to size*8-1 (OpShiftRI32, OpShiftImm): the
        /// interpreter's ShlCalc/ShrCalc/SarCalc; flags SF/ZF/PF from the result, CF/OF as computed, AF clear.</summary>
        private void EmitShift(ref DecodedOp o, int size, int n)
        {
            int sub = o.Sub, bits = size * 8;
            var il = _il;
            LdReg(size, o.Rm); il.Emit(OpCodes.Stloc, _tA);
            if (sub == 5)
            {
                il.Emit(OpCodes.Ldloc, _tA); LdI(n); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tA); LdI(n - 1); il.Emit(OpCodes.Shr_Un); LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                if (n == 1) { il.Emit(OpCodes.Ldloc, _tA); LdI(bits - 1); il.Emit(OpCodes.Shr_Un); } else LdI(0);
                il.Emit(OpCodes.Stloc, _fof);
            }
            else if (sub == 7)
            {
                // the operand sign-extended to 32 bits, shifted arithmetically
                il.Emit(OpCodes.Ldloc, _tA); SignExtend(size, true); il.Emit(OpCodes.Stloc, _tB);
                il.Emit(OpCodes.Ldloc, _tB); LdI(n); il.Emit(OpCodes.Shr); Mask(size); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tB); LdI(n - 1); il.Emit(OpCodes.Shr); LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                LdI(0); il.Emit(OpCodes.Stloc, _fof);
            }
            else
            {
                il.Emit(OpCodes.Ldloc, _tA); LdI(n); il.Emit(OpCodes.Shl); Mask(size); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tA); LdI(bits - n); il.Emit(OpCodes.Shr_Un); LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                il.Emit(OpCodes.Ldloc, _tR); LdI(bits - 1); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Xor); il.Emit(OpCodes.Stloc, _fof);
            }
            il.Emit(OpCodes.Ldloc, _tR); StReg(size, o.Rm);
            il.Emit(OpCodes.Ldloc, _tR); il.Emit(OpCodes.Stloc, _fr);
            _fs = new FlagState(FK.Shift, LazyOp.Result, size, false);
        }

        /// <summary>SHL/SHR/SAR of an 8/16/32-bit register by CL (OpShiftCl): the count is CL &amp; 31, known only at run
        /// time, so the flags end in the CPU on every path — a count of 0 leaves the flags of the state before (handed to
        /// the CPU), counts 1 to size*8-1 hand the shift's flags over (ShlCalc/ShrCalc/SarCalc, AF clear), and for an
        /// 8/16-bit operand a count of its size or more goes to the handler stub.</summary>
        private void EmitShiftCl(ref DecodedOp o, int size)
        {
            int sub = o.Sub, bits = size * 8;
            var il = _il;
            var zero = il.DefineLabel();
            var join = il.DefineLabel();
            var before = _fs;
            LdReg(1, ECX); LdI(0x1F); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _tN);
            il.Emit(OpCodes.Ldloc, _tN); il.Emit(OpCodes.Brfalse, zero);
            if (size < 4)
            {
                var slow = HandlerStub(ref o, join, flagNeutral: false);
                il.Emit(OpCodes.Ldloc, _tN); LdI(bits); il.Emit(OpCodes.Bge, slow);
            }
            LdReg(size, o.Rm); il.Emit(OpCodes.Stloc, _tA);
            if (sub == 5)
            {
                il.Emit(OpCodes.Ldloc, _tA); il.Emit(OpCodes.Ldloc, _tN); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tA); il.Emit(OpCodes.Ldloc, _tN); LdI(1); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Shr_Un);
                LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                // OF: the operand's sign for a count of 1, else 0
                il.Emit(OpCodes.Ldloc, _tN); LdI(1); il.Emit(OpCodes.Ceq);
                il.Emit(OpCodes.Ldloc, _tA); LdI(bits - 1); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fof);
            }
            else if (sub == 7)
            {
                il.Emit(OpCodes.Ldloc, _tA); SignExtend(size, true); il.Emit(OpCodes.Stloc, _tB);
                il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Ldloc, _tN); il.Emit(OpCodes.Shr); Mask(size); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Ldloc, _tN); LdI(1); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Shr);
                LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                LdI(0); il.Emit(OpCodes.Stloc, _fof);
            }
            else
            {
                il.Emit(OpCodes.Ldloc, _tA); il.Emit(OpCodes.Ldloc, _tN); il.Emit(OpCodes.Shl); Mask(size); il.Emit(OpCodes.Stloc, _tR);
                il.Emit(OpCodes.Ldloc, _tA); LdI(bits); il.Emit(OpCodes.Ldloc, _tN); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Shr_Un);
                LdI(1); il.Emit(OpCodes.And); il.Emit(OpCodes.Stloc, _fcf);
                il.Emit(OpCodes.Ldloc, _tR); LdI(bits - 1); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Xor); il.Emit(OpCodes.Stloc, _fof);
            }
            il.Emit(OpCodes.Ldloc, _tR); StReg(size, o.Rm);
            il.Emit(OpCodes.Ldloc, _tR); il.Emit(OpCodes.Stloc, _fr);
            FlushFlags(new FlagState(FK.Shift, LazyOp.Result, size, false));
            il.Emit(OpCodes.Br, join);
            il.MarkLabel(zero);
            FlushFlags(before);
            il.MarkLabel(join);
            _fs = new FlagState(FK.Cpu, 0, 0, false);
        }

        /// <summary>Group 3 (F6/F7 /2-/7, the operation in Reg): NOT and NEG of any size and operand, MUL/IMUL of a
        /// 32-bit operand, DIV of a 32-bit register (a zero divisor or a quotient that does not fit goes to the
        /// handler, which raises #DE with the state exact); false for the rest (IDIV, 8/16-bit MUL/DIV).</summary>
        private bool EmitGroup3(ref DecodedOp o)
        {
            var il = _il;
            int size = o.Size, op = o.Reg;
            switch (op)
            {
                case 2: // NOT: no flags
                case 3: // NEG: flags of 0 - a
                    if (o.Mem != 0)
                    {
                        EmitEa(ref o); il.Emit(OpCodes.Stloc, _tEa);
                        EmitLoad(o.Seg, size);
                    }
                    else LdReg(size, o.Rm);
                    il.Emit(OpCodes.Stloc, _tB);
                    if (op == 2) { il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Not); Mask(size); il.Emit(OpCodes.Stloc, _tR); }
                    else { LdI(0); il.Emit(OpCodes.Stloc, _tA); EmitAluOp(5, size); }
                    il.Emit(OpCodes.Ldloc, _tR);
                    if (o.Mem != 0) { il.Emit(OpCodes.Stloc, _tV); EmitStore(o.Seg, size); }
                    else StReg(size, o.Rm);
                    if (op == 3) SetArithFlags(5, size);
                    return true;
                case 4: // MUL r/m32: EDX:EAX = EAX * src, CF = OF = high half non-zero
                case 5: // IMUL r/m32 (one operand): signed, CF = OF = the product does not fit in 32 bits
                    if (size != 4) return false;
                    EmitReadRm(ref o, 4); il.Emit(OpCodes.Stloc, _tB);
                    LdReg(4, EAX); il.Emit(op == 4 ? OpCodes.Conv_U8 : OpCodes.Conv_I8);
                    il.Emit(OpCodes.Ldloc, _tB); il.Emit(op == 4 ? OpCodes.Conv_U8 : OpCodes.Conv_I8);
                    il.Emit(OpCodes.Mul); il.Emit(OpCodes.Stloc, _tL);
                    il.Emit(OpCodes.Ldloc, _tL); il.Emit(OpCodes.Conv_U4); il.Emit(OpCodes.Stloc, _tR);
                    il.Emit(OpCodes.Ldloc, _tR); StReg(4, EAX);
                    il.Emit(OpCodes.Ldloc, _tL); LdI(32); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Conv_U4); StReg(4, EDX);
                    if (op == 4)
                    {
                        il.Emit(OpCodes.Ldloc, _tL); LdI(32); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Ldc_I8, 0L); il.Emit(OpCodes.Cgt_Un);
                    }
                    else
                    {
                        il.Emit(OpCodes.Ldloc, _tL); il.Emit(OpCodes.Ldloc, _tL); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Conv_I8);
                        il.Emit(OpCodes.Ceq); LdI(0); il.Emit(OpCodes.Ceq);
                    }
                    il.Emit(OpCodes.Dup); il.Emit(OpCodes.Stloc, _fcf); il.Emit(OpCodes.Stloc, _fof);
                    il.Emit(OpCodes.Ldloc, _tR); il.Emit(OpCodes.Stloc, _fr);
                    _fs = new FlagState(FK.Shift, LazyOp.Result, 4, false);
                    return true;
                case 6: // DIV r32: EAX = EDX:EAX / src, EDX = the remainder; flags unchanged
                {
                    if (size != 4 || o.Mem != 0) return false;
                    var done = il.DefineLabel();
                    var slow = HandlerStub(ref o, done, flagNeutral: true);
                    LdReg(4, o.Rm); il.Emit(OpCodes.Stloc, _tB);
                    il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Brfalse, slow);
                    LdReg(4, EDX); il.Emit(OpCodes.Conv_U8); LdI(32); il.Emit(OpCodes.Shl);
                    LdReg(4, EAX); il.Emit(OpCodes.Conv_U8); il.Emit(OpCodes.Or); il.Emit(OpCodes.Stloc, _tL);
                    // the quotient fits in 32 bits exactly when EDX < src
                    LdReg(4, EDX); il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Bge_Un, slow);
                    il.Emit(OpCodes.Ldloc, _tL); il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Conv_U8); il.Emit(OpCodes.Div_Un);
                    il.Emit(OpCodes.Conv_U4); StReg(4, EAX);
                    il.Emit(OpCodes.Ldloc, _tL); il.Emit(OpCodes.Ldloc, _tB); il.Emit(OpCodes.Conv_U8); il.Emit(OpCodes.Rem_Un);
                    il.Emit(OpCodes.Conv_U4); StReg(4, EDX);
                    il.MarkLabel(done);
                    return true;
                }
                default: return false;
            }
        }

        // ---------------- control transfers (the last instruction of a block) ----------------

        /// <summary>Jcc/JMP rel, CALL rel and RET (32-bit) as the block's last instruction; false: not one of them.</summary>
        private bool EmitControl(ref DecodedOp o, CodeBlock b)
        {
            var il = _il;
            bool jcc = Is(ref o, &OpJcc), jmp = Is(ref o, &OpJmpRel), call = Is(ref o, &OpCallRel) && o.Size == 4, ret = Is(ref o, &OpRet) && o.Size == 4;
            if (Is(ref o, &OpJmpRm) && o.Size == 4)
            {
                // JMP r/m32 (jump tables, function pointers): tT = the operand, checked against the CS limit; out of the method.
                EmitReadRm(ref o, 4); il.Emit(OpCodes.Stloc, _tT);
                EmitNearCheck();
                AddCount(_pending + 1);
                LdC(); il.Emit(OpCodes.Ldloc, _tT); il.Emit(OpCodes.Stfld, FEip);
                EmitExit();
                return true;
            }
            if (!jcc && !jmp && !call && !ret) return false;
            int nextOffset = b.Offset + b.Bytes;
            int targetOffset = nextOffset + unchecked((int)o.Imm);
            if (jcc)
            {
                var taken = il.DefineLabel();
                EmitCondition(o.Sub);
                il.Emit(OpCodes.Brtrue, taken);
                // not taken
                AddCount(_pending + 1);
                int t = Array.FindIndex(_region, x => x.Offset == nextOffset);
                if (t >= 0) EmitGo(t, null);
                LdC(); LdEip(_next); il.Emit(OpCodes.Stfld, FEip);
                EmitExit();
                il.MarkLabel(taken);
            }
            if (jcc || jmp || call)
            {
                // tT = the target, checked against the CS limit (before the push of a CALL, as the interpreter does)
                EmitRelTarget(ref o);
                if (call)
                {
                    var done = il.DefineLabel();
                    var slow = HandlerStub(ref o, done, flagNeutral: true, setsEip: true);
                    LdC(); il.Emit(OpCodes.Ldfld, FSs32); il.Emit(OpCodes.Brfalse, slow);
                    LdEip(_next); il.Emit(OpCodes.Stloc, _tV);
                    LdReg(4, ESP); LdI(4); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Stloc, _tEa);
                    EmitStore(SS, 4);
                    il.Emit(OpCodes.Ldloc, _tEa); StReg(4, ESP);
                    il.MarkLabel(done);
                }
                EmitBranchTo(targetOffset);
                return true;
            }
            // RET (32-bit operand): tT = [SS:ESP], checked against the CS limit, then ESP += 4.
            {
                var done = il.DefineLabel();
                var slow = HandlerStub(ref o, done, flagNeutral: true, setsEip: true);
                LdC(); il.Emit(OpCodes.Ldfld, FSs32); il.Emit(OpCodes.Brfalse, slow);
                LdReg(4, ESP); il.Emit(OpCodes.Stloc, _tEa);
                EmitLoad(SS, 4); il.Emit(OpCodes.Stloc, _tT);
                EmitNearCheck();
                LdReg(4, ESP); LdI(4); il.Emit(OpCodes.Add); StReg(4, ESP);
                il.MarkLabel(done);
                AddCount(_pending + 1);
                for (int t = 0; t < _region.Length; t++)
                    if (_returnSites.Contains(_region[t].Offset)) EmitGo(t, _tT);
                LdC(); il.Emit(OpCodes.Ldloc, _tT); il.Emit(OpCodes.Stfld, FEip);
                EmitExit();
                return true;
            }
        }

        /// <summary>A Jcc inside a block: when taken, to the target (a block of the region, else an exit); when not, on
        /// with the block's next instruction.</summary>
        private void EmitJccInside(ref DecodedOp o)
        {
            var il = _il;
            var notTaken = il.DefineLabel();
            EmitCondition(o.Sub);
            il.Emit(OpCodes.Brfalse, notTaken);
            EmitRelTarget(ref o);
            EmitBranchTo(_region[0].Offset + _next + unchecked((int)o.Imm));
            il.MarkLabel(notTaken);
        }

        /// <summary>tT = the target of a relative Jcc/JMP/CALL (IP wrapped for a 16-bit operand), checked against the CS limit.</summary>
        private void EmitRelTarget(ref DecodedOp o)
        {
            LdEip(_next); LdU(o.Imm); _il.Emit(OpCodes.Add);
            if (o.Size == 2) { LdI(0xFFFF); _il.Emit(OpCodes.And); }
            _il.Emit(OpCodes.Stloc, _tT);
            EmitNearCheck();
        }

        /// <summary>Retires the instruction and goes to EIP = tT: to the region's block at <paramref name="targetOffset"/>
        /// when there is one and the block loop would run it now, else out of the method.</summary>
        private void EmitBranchTo(int targetOffset)
        {
            AddCount(_pending + 1);
            int t = Array.FindIndex(_region, x => x.Offset == targetOffset);
            if (t >= 0) EmitGo(t, _tT);
            LdC(); _il.Emit(OpCodes.Ldloc, _tT); _il.Emit(OpCodes.Stfld, FEip);
            EmitExit();
        }

        /// <summary>#GP when tT is past the CS limit in protected mode (the interpreter's CheckNearTarget), out of line;
        /// nothing for a region compiled while CS's limit was 4 GiB.</summary>
        private void EmitNearCheck()
        {
            if ((_flat & FlatCsLimit) != 0)
            {
                _flatUsed |= FlatCsLimit; // a 4 GiB CS: every target is inside the limit
                return;
            }
            var ok = _il.DefineLabel();
            var slow = _il.DefineLabel();
            _il.Emit(OpCodes.Ldloc, _tT);
            LdElem(FSegLimit, CS);
            _il.Emit(OpCodes.Bgt_Un, slow);
            _il.MarkLabel(ok);
            var st = Capture();
            _stubs.Add(() =>
            {
                _il.MarkLabel(slow);
                EmitSync(st);
                LdC(); _il.Emit(OpCodes.Ldloc, _tT); _il.Emit(OpCodes.Call, MCheckNear);
                _il.Emit(OpCodes.Br, ok);
            });
        }

        /// <summary>Jumps to region block t when EIP (tT, or known to be its start when null) is there and the block loop
        /// would run it now (<see cref="JGo"/>); falls through otherwise. The flags go to the CPU first when block t can
        /// observe them.</summary>
        private void EmitGo(int t, LocalBuilder? target)
        {
            var il = _il;
            var b = _region[t];
            var no = il.DefineLabel();
            int delta = b.Offset - _region[0].Offset;
            if (target != null)
            {
                il.Emit(OpCodes.Ldloc, target); LdEip(delta); il.Emit(OpCodes.Bne_Un, no);
            }
            // Nothing pending and the budget covers block t; after an out-of-line call (which may have flushed the TLB,
            // changed CS or the mode) also the rest of the block loop's checks.
            var ok = il.DefineLabel();
            LdC(); il.Emit(OpCodes.Ldfld, FCheck); il.Emit(OpCodes.Brtrue, no);
            il.Emit(OpCodes.Ldarg_3); il.Emit(OpCodes.Ldloc, _cnt); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Ldc_I8, (long)b.Count); il.Emit(OpCodes.Blt, no);
            il.Emit(OpCodes.Ldloc, _slowSeen); il.Emit(OpCodes.Brfalse, ok);
            LdC(); LdEip(delta); LdI(b.Bytes);
            il.Emit(OpCodes.Ldloc, _fetch0); il.Emit(OpCodes.Ldloc, _csBase0); LdI(_region[0].Cs32 ? 1 : 0);
            il.Emit(OpCodes.Call, MGo);
            il.Emit(OpCodes.Brfalse, no);
            il.MarkLabel(ok);
            var want = _entry[t];
            _incoming[t].Add(_fs);
            if (want.Kind == FK.Cpu) { if (_liveIn[t]) FlushFlags(_fs); }
            else if (want != _fs && !_dry) throw new InvalidOperationException("JIT: inconsistent flag state at a region jump");
            il.Emit(OpCodes.Br, _blockLabels[t]);
            il.MarkLabel(no);
        }

        /// <summary>Leaves the method at a block end (EIP already set): a jump to the region's shared exit for the
        /// current flag state, which writes the registers and the retired count back, hands the flags to the CPU and
        /// returns (one copy per flag state instead of one per exit: less IL for the .NET JIT to compile).</summary>
        private void EmitExit()
        {
            if (!_exits.TryGetValue(_fs, out var l))
            {
                l = _il.DefineLabel();
                _exits[_fs] = l;
                var f = _fs;
                _stubs.Add(() =>
                {
                    _il.MarkLabel(l);
                    WriteBackRegs();
                    FlushFlags(f);
                    LdC(); _il.Emit(OpCodes.Ldloc, _cnt); _il.Emit(OpCodes.Stfld, FCount);
                    _il.Emit(OpCodes.Ret);
                });
            }
            _il.Emit(OpCodes.Br, l);
        }

        private readonly Dictionary<FlagState, Label> _exits = new();

        // ---------------- out-of-line stubs ----------------

        private readonly record struct Sync(FlagState Flags, int Start, int Next, int Pending);

        private Sync Capture() => new(_fs, _start, _next, _pending);

        /// <summary>Makes the CPU state exact for the current instruction before an out-of-line call: registers, flags,
        /// _startEip, EIP at the next instruction, the instructions retired before it.</summary>
        private void EmitSync(Sync s, bool eipFromCpu = false)
        {
            // Out of line and rare: small IL (calls of helpers) rather than inline stores, so regions compile faster.
            LdI(1); _il.Emit(OpCodes.Stloc, _slowSeen);
            int mask = 0;
            for (int r = 0; r < 8; r++) if (_writtenFinal[r]) mask |= 1 << r;
            LdC(); LdEip(s.Start);
            if (eipFromCpu) { LdC(); _il.Emit(OpCodes.Ldfld, FEip); } else LdEip(s.Next);
            _il.Emit(OpCodes.Ldloc, _cnt); _il.Emit(OpCodes.Ldc_I8, (long)s.Pending); _il.Emit(OpCodes.Add); LdI(mask);
            for (int r = 0; r < 8; r++) _il.Emit(OpCodes.Ldloc, _reg[r]);
            _il.Emit(OpCodes.Call, MSync);
            var f = s.Flags;
            switch (f.Kind)
            {
                case FK.Arith:
                    LdC(); LdLazyOp(f.Op); _il.Emit(OpCodes.Ldloc, _fa); _il.Emit(OpCodes.Ldloc, _fb); _il.Emit(OpCodes.Ldloc, _fr); LdI(f.Size);
                    _il.Emit(OpCodes.Call, MFlushArith);
                    break;
                case FK.IncDec:
                    LdC(); LdI((int)f.Op); _il.Emit(OpCodes.Ldloc, _fa); _il.Emit(OpCodes.Ldloc, _fr); LdI(f.Size);
                    if (f.CfCpu) LdI(-1); else _il.Emit(OpCodes.Ldloc, _fcf);
                    _il.Emit(OpCodes.Call, MFlushIncDec);
                    break;
                case FK.Shift:
                    LdC(); _il.Emit(OpCodes.Ldloc, _fr); _il.Emit(OpCodes.Ldloc, _fcf); _il.Emit(OpCodes.Ldloc, _fof); LdI(f.Size);
                    _il.Emit(OpCodes.Call, MFlushShift);
                    break;
            }
        }

        /// <summary>An exit after the current instruction (an event is pending).</summary>
        private Label ExitStub(bool setEip)
        {
            var l = _il.DefineLabel();
            var s = Capture(); // Pending: the current instruction already counted
            _stubs.Add(() =>
            {
                _il.MarkLabel(l);
                EmitSync(s, eipFromCpu: !setEip);
                _il.Emit(OpCodes.Ret);
            });
            return l;
        }

        /// <summary>The current instruction through its decoded-cache handler, out of line; continues at
        /// <paramref name="back"/> (with tT = the new EIP when <paramref name="setsEip"/>).</summary>
        private Label HandlerStub(ref DecodedOp o, Label back, bool flagNeutral, bool setsEip = false)
        {
            var l = _il.DefineLabel();
            var s = Capture();
            int block = _block, k = _k;
            nint handler = (nint)o.Handler;
            _touchedMem = true;
            _stubs.Add(() =>
            {
                _il.MarkLabel(l);
                EmitSync(s);
                EmitCalli(block, k, handler);
                ReloadRegs();
                ReloadCount();
                AddCount(-s.Pending);
                if (setsEip) { LdC(); _il.Emit(OpCodes.Ldfld, FEip); _il.Emit(OpCodes.Stloc, _tT); }
                _il.Emit(OpCodes.Br, back);
            });
            // flagNeutral handlers leave the flags where they were; the flag locals stay valid.
            _ = flagNeutral;
            return l;
        }

        private void EmitCalli(int block, int k, nint handler)
        {
            LdC();
            _il.Emit(OpCodes.Ldarg_0);
            LdI(block);
            _il.Emit(OpCodes.Ldelem_Ref);
            LdI(k);
            _il.Emit(OpCodes.Ldelema, typeof(DecodedOp));
            _il.Emit(OpCodes.Ldc_I8, (long)handler);
            _il.Emit(OpCodes.Conv_I);
            _il.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(void), HandlerParams, null);
        }

        /// <summary>Any other instruction: its decoded-cache handler (inline: only the jump to the stub and back).</summary>
        private void EmitHandler(ref DecodedOp o, bool last)
        {
            var back = _il.DefineLabel();
            var s = Capture();
            int block = _block, k = _k;
            nint handler = (nint)o.Handler;
            string fbKey = $" sub {o.Sub} size {o.Size}{(o.Mem != 0 ? " mem" : "")}";
            var l = _il.DefineLabel();
            _il.Emit(OpCodes.Br, l);
            _stubs.Add(() =>
            {
                _il.MarkLabel(l);
                if (JitFallbackCounts != null && !_dry)
                {
                    _il.Emit(OpCodes.Ldsfld, typeof(Cpu).GetField(nameof(JitFallbackCounts), BindingFlags.NonPublic | BindingFlags.Static)!);
                    LdI(FallbackId(handler, fbKey));
                    _il.Emit(OpCodes.Ldelema, typeof(long));
                    _il.Emit(OpCodes.Call, typeof(Interlocked).GetMethod(nameof(Interlocked.Increment), new[] { typeof(long).MakeByRefType() })!);
                    _il.Emit(OpCodes.Pop);
                }
                EmitSync(s);
                EmitCalli(block, k, handler);
                ReloadRegs();
                ReloadCount();
                _il.Emit(OpCodes.Br, back);
            });
            _il.MarkLabel(back);
            // The handler counted nothing; the retired instructions before it are in InstructionCount (and the local) now.
            _pending = 0;
            _fs = new FlagState(FK.Cpu, 0, 0, false);
            _touchedMem = true;
            _ = last;
        }

        // ---------------- memory ----------------

        /// <summary>Loads [seg:tEa] (size 1/2/4, zero-extended) onto the stack: segment check and TLB fast path inline.</summary>
        private void EmitLoad(int seg, int size)
        {
            var il = _il;
            var slow = il.DefineLabel();
            var join = il.DefineLabel();
            _touchedMem = true;
            EmitLinAndTlb(seg, size, write: false, slow);
            LdRamRef();
            il.Emit(OpCodes.Unaligned, (byte)1);
            il.Emit(size == 1 ? OpCodes.Ldind_U1 : size == 2 ? OpCodes.Ldind_U2 : OpCodes.Ldind_U4);
            il.Emit(OpCodes.Stloc, _tW);
            il.MarkLabel(join);
            il.Emit(OpCodes.Ldloc, _tW);
            var s = Capture();
            _stubs.Add(() =>
            {
                il.MarkLabel(slow);
                EmitSync(s);
                LdC(); LdI(seg); il.Emit(OpCodes.Ldloc, _tEa); LdI(size); il.Emit(OpCodes.Call, MReadSlow);
                il.Emit(OpCodes.Stloc, _tW);
                il.Emit(OpCodes.Br, join);
            });
        }

        /// <summary>Stores tV to [seg:tEa] (size 1/2/4).</summary>
        private void EmitStore(int seg, int size)
        {
            var il = _il;
            var slow = il.DefineLabel();
            var join = il.DefineLabel();
            _touchedMem = true;
            EmitLinAndTlb(seg, size, write: true, slow);
            LdRamRef();
            il.Emit(OpCodes.Ldloc, _tV);
            il.Emit(OpCodes.Unaligned, (byte)1);
            il.Emit(size == 1 ? OpCodes.Stind_I1 : size == 2 ? OpCodes.Stind_I2 : OpCodes.Stind_I4);
            il.MarkLabel(join);
            var s = Capture();
            _stubs.Add(() =>
            {
                il.MarkLabel(slow);
                EmitSync(s);
                LdC(); LdI(seg); il.Emit(OpCodes.Ldloc, _tEa); il.Emit(OpCodes.Ldloc, _tV); LdI(size); il.Emit(OpCodes.Call, MWriteSlow);
                il.Emit(OpCodes.Br, join);
            });
        }

        /// <summary>tLin = segment base + tEa after the limit/rights check, tIdx = its TLB slot; to <paramref name="slow"/>
        /// on a failed check, a TLB miss or a page-crossing access.</summary>
        private void EmitLinAndTlb(int seg, int size, bool write, Label slow)
        {
            var il = _il;
            int sizeIdx = size == 1 ? 0 : size == 2 ? 1 : 2;
            int flatBit = 1 << (seg + (write ? 8 : 0));
            if ((_flat & flatBit) != 0)
            {
                // A flat segment (base 0, every offset valid): the linear address is the offset. An access running
                // past 4 GiB (which faults) wraps to page 0 in the compare below, so it takes the slow path.
                _flatUsed |= flatBit;
                _lin = _tEa;
            }
            else
            {
                // if ((long)(uint)(off - segLo[seg]) > segMax[seg*3+sizeIdx]) slow
                il.Emit(OpCodes.Ldloc, _tEa);
                LdElem(FSegLo, seg);
                il.Emit(OpCodes.Sub); il.Emit(OpCodes.Conv_U8);
                LdElem(write ? FSegMaxW : FSegMaxR, seg * 3 + sizeIdx);
                il.Emit(OpCodes.Bgt, slow);
                LdElem(FSegBase, seg);
                il.Emit(OpCodes.Ldloc, _tEa); il.Emit(OpCodes.Add); il.Emit(OpCodes.Stloc, _tLin);
                _lin = _tLin;
            }
            // tIdx = tlbUserBase (+ TlbEntries for writes) + ((lin >> 12) & mask)
            LdC(); il.Emit(OpCodes.Ldfld, FTlbUserBase);
            if (write) { LdI(TlbEntries); il.Emit(OpCodes.Add); }
            il.Emit(OpCodes.Ldloc, _lin); LdI(12); il.Emit(OpCodes.Shr_Un); LdI((int)TlbIndexMask); il.Emit(OpCodes.And);
            il.Emit(OpCodes.Add); il.Emit(OpCodes.Conv_I); il.Emit(OpCodes.Stloc, _tIdx);
            // The tag is compared with the page of the access's last byte: an access crossing into the next page
            // cannot match (that page's entry has another index), so one compare checks the hit and the crossing.
            LdElem(FTlbTag, _tIdx);
            il.Emit(OpCodes.Ldloc, _lin);
            if (size > 1) { LdI(size - 1); il.Emit(OpCodes.Add); }
            LdU(0xFFFF_F000); il.Emit(OpCodes.And);
            il.Emit(OpCodes.Bne_Un, slow);
        }

        /// <summary>Pushes the host address of the access: _tlbHost[tIdx] + its linear address.</summary>
        private void LdRamRef()
        {
            var il = _il;
            LdElem(FTlbHost, _tIdx); il.Emit(OpCodes.Conv_I);
            il.Emit(OpCodes.Ldloc, _lin); il.Emit(OpCodes.Conv_U);
            il.Emit(OpCodes.Add);
        }

        /// <summary>Pushes the r/m operand (memory: its EA into tEa, then the load).</summary>
        private void EmitReadRm(ref DecodedOp o, int size)
        {
            if (o.Mem != 0)
            {
                EmitEa(ref o); _il.Emit(OpCodes.Stloc, _tEa);
                EmitLoad(o.Seg, size);
            }
            else LdReg(size, o.Rm);
        }

        /// <summary>Writes tV to the r/m operand (memory: computes the EA first).</summary>
        private void EmitWriteRmNew(ref DecodedOp o, int size)
        {
            if (o.Mem != 0)
            {
                EmitEa(ref o); _il.Emit(OpCodes.Stloc, _tEa);
                EmitStore(o.Seg, size);
            }
            else { _il.Emit(OpCodes.Ldloc, _tV); StReg(size, o.Rm); }
        }

        private void EmitEa(ref DecodedOp o)
        {
            LdU(o.Disp);
            if (o.Base != 8) { LdReg(4, o.Base); _il.Emit(OpCodes.Add); }
            if (o.Index != 8)
            {
                LdReg(4, o.Index);
                if (o.Scale != 0) { LdI(o.Scale); _il.Emit(OpCodes.Shl); }
                _il.Emit(OpCodes.Add);
            }
            if (o.AMask != 0xFFFF_FFFF) { LdU(o.AMask); _il.Emit(OpCodes.And); }
        }

        // ---------------- flags ----------------

        /// <summary>Pushes 1 when condition cc (Jcc encoding) holds, else 0.</summary>
        private void EmitCondition(int cc)
        {
            var il = _il;
            var f = _fs;
            if (f.Kind == FK.Cpu)
            {
                LdC(); LdI(cc); il.Emit(OpCodes.Call, MCondition);
                return;
            }
            int kind = cc >> 1;
            bool neg = (cc & 1) != 0;
            if (f.Kind == FK.Arith && f.Op == LazyOp.Sub && kind is 1 or 2 or 3 or 6 or 7)
            {
                // CMP/SUB: compare the operands directly.
                il.Emit(OpCodes.Ldloc, _fa); SignExtend(f.Size, kind >= 6);
                il.Emit(OpCodes.Ldloc, _fb); SignExtend(f.Size, kind >= 6);
                switch (kind)
                {
                    case 1: il.Emit(OpCodes.Clt_Un); break;                       // B: a < b
                    case 2: il.Emit(OpCodes.Ceq); break;                          // Z: a == b
                    case 3: il.Emit(OpCodes.Cgt_Un); neg = !neg; break;           // BE: !(a > b)
                    case 6: il.Emit(OpCodes.Clt); break;                          // L: a < b signed
                    default: il.Emit(OpCodes.Cgt); neg = !neg; break;             // LE: !(a > b) signed
                }
            }
            else
            {
                switch (kind)
                {
                    case 0: LdFlag(OF); break;
                    case 1: LdFlag(CF); break;
                    case 2: LdFlag(ZF); break;
                    case 3: LdFlag(CF); LdFlag(ZF); il.Emit(OpCodes.Or); break;
                    case 4: LdFlag(SF); break;
                    case 5: LdFlag(PF); break;
                    case 6: LdFlag(SF); LdFlag(OF); il.Emit(OpCodes.Xor); break;
                    default: LdFlag(SF); LdFlag(OF); il.Emit(OpCodes.Xor); LdFlag(ZF); il.Emit(OpCodes.Or); break;
                }
            }
            if (neg) { LdI(0); il.Emit(OpCodes.Ceq); }
        }

        private void SignExtend(int size, bool signed)
        {
            if (!signed) return;
            if (size == 1) _il.Emit(OpCodes.Conv_I1);
            else if (size == 2) _il.Emit(OpCodes.Conv_I2);
        }

        /// <summary>Pushes one flag (0/1) of the current local flag state.</summary>
        private void LdFlag(uint flag)
        {
            var il = _il;
            var f = _fs;
            uint sign = SignBit(f.Size);
            if (f.Kind == FK.Cpu) throw new InvalidOperationException("flags are in the CPU");
            switch (flag)
            {
                case ZF:
                    il.Emit(OpCodes.Ldloc, _fr); LdI(0); il.Emit(OpCodes.Ceq); return;
                case SF:
                    il.Emit(OpCodes.Ldloc, _fr); LdU(sign); il.Emit(OpCodes.And); LdI(0); il.Emit(OpCodes.Cgt_Un); return;
                case PF:
                    il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Call, MParity); return;
                case CF:
                    if (f.Kind == FK.Shift || (f.Kind == FK.IncDec && !f.CfCpu)) { il.Emit(OpCodes.Ldloc, _fcf); return; }
                    if (f.Kind == FK.IncDec) { LdC(); il.Emit(OpCodes.Call, MGetCF); return; }
                    if (f.Op == LazyOp.Add) { il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Clt_Un); return; }
                    if (f.Op == LazyOp.Sub) { il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fb); il.Emit(OpCodes.Clt_Un); return; }
                    if (f.Op == LazyOp.Adc)
                    {
                        // r < a, or r == a with a carry in
                        il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Clt_Un);
                        il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ceq);
                        il.Emit(OpCodes.And); il.Emit(OpCodes.Or);
                        return;
                    }
                    if (f.Op == LazyOp.Sbb)
                    {
                        // a < b, or a == b with a borrow in
                        il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fb); il.Emit(OpCodes.Clt_Un);
                        il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fb); il.Emit(OpCodes.Ceq);
                        il.Emit(OpCodes.And); il.Emit(OpCodes.Or);
                        return;
                    }
                    LdI(0); return;
                case OF:
                    if (f.Kind == FK.Shift) { il.Emit(OpCodes.Ldloc, _fof); return; }
                    switch (f.Op)
                    {
                        case LazyOp.Add or LazyOp.Adc: // (a ^ r) & (b ^ r) & sign
                            il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor);
                            il.Emit(OpCodes.Ldloc, _fb); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor); il.Emit(OpCodes.And);
                            break;
                        case LazyOp.Sub or LazyOp.Sbb: // (a ^ b) & (a ^ r) & sign
                            il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fb); il.Emit(OpCodes.Xor);
                            il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor); il.Emit(OpCodes.And);
                            break;
                        case LazyOp.Inc: // b = 1
                            il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor);
                            LdI(1); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor); il.Emit(OpCodes.And);
                            break;
                        case LazyOp.Dec:
                            il.Emit(OpCodes.Ldloc, _fa); LdI(1); il.Emit(OpCodes.Xor);
                            il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Xor); il.Emit(OpCodes.And);
                            break;
                        default: LdI(0); return;
                    }
                    LdU(sign); il.Emit(OpCodes.And); LdI(0); il.Emit(OpCodes.Cgt_Un);
                    return;
                default: throw new ArgumentOutOfRangeException(nameof(flag));
            }
        }

        /// <summary>Hands a local flag state to the CPU's lazy-flag fields (as SetLazy/SetLazyIncDec/SetFlagsResult would).</summary>
        private void FlushFlags(FlagState f)
        {
            var il = _il;
            switch (f.Kind)
            {
                case FK.Cpu: return;
                case FK.Arith:
                    StoreLazy(f.Op, _fa, _fb, f.Size, ArithFlags);
                    return;
                case FK.IncDec when f.CfCpu:
                    LdC(); LdI((int)f.Op); il.Emit(OpCodes.Ldloc, _fa); il.Emit(OpCodes.Ldloc, _fr); LdI(f.Size);
                    il.Emit(OpCodes.Call, MIncDecCpuCf);
                    return;
                case FK.IncDec:
                    // _flags = (_flags & ~CF) | fcf
                    LdC(); LdC(); il.Emit(OpCodes.Ldfld, FFlags); LdU(~CF); il.Emit(OpCodes.And);
                    il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Or); il.Emit(OpCodes.Stfld, FFlags);
                    StoreLazy(f.Op, _fa, null, f.Size, ArithFlags & ~CF);
                    return;
                case FK.Shift:
                    // _flags = (_flags & ~(CF|OF|AF)) | fcf | fof << 11
                    LdC(); LdC(); il.Emit(OpCodes.Ldfld, FFlags); LdU(~(CF | OF | AF)); il.Emit(OpCodes.And);
                    il.Emit(OpCodes.Ldloc, _fcf); il.Emit(OpCodes.Or);
                    il.Emit(OpCodes.Ldloc, _fof); LdI(11); il.Emit(OpCodes.Shl); il.Emit(OpCodes.Or);
                    il.Emit(OpCodes.Stfld, FFlags);
                    StoreLazy(LazyOp.Result, null, null, f.Size, SF | ZF | PF);
                    return;
            }
        }

        private void StoreLazy(LazyOp op, LocalBuilder? a, LocalBuilder? b, int size, uint lazy)
        {
            var il = _il;
            LdC(); LdLazyOp(op); il.Emit(OpCodes.Stfld, FLfOp);
            LdC(); if (a != null) il.Emit(OpCodes.Ldloc, a); else LdI(0); il.Emit(OpCodes.Stfld, FLfA);
            LdC(); if (b != null) il.Emit(OpCodes.Ldloc, b); else LdI(op is LazyOp.Inc or LazyOp.Dec ? 1 : 0); il.Emit(OpCodes.Stfld, FLfB);
            LdC(); il.Emit(OpCodes.Ldloc, _fr); il.Emit(OpCodes.Stfld, FLfRes);
            LdC(); LdU(SizeMask(size)); il.Emit(OpCodes.Stfld, FLfMask);
            LdC(); LdU(SignBit(size)); il.Emit(OpCodes.Stfld, FLfSign);
            LdC(); LdU(lazy); il.Emit(OpCodes.Stfld, FLazy);
        }

        /// <summary>Pushes the CPU's LazyOp for a local flag operation: Adc/Sbb become Add/Sub + the carry-in (fcf).</summary>
        private void LdLazyOp(LazyOp op)
        {
            if (op is LazyOp.Adc or LazyOp.Sbb)
            {
                LdI((int)(op == LazyOp.Adc ? LazyOp.Add : LazyOp.Sub)); _il.Emit(OpCodes.Ldloc, _fcf); _il.Emit(OpCodes.Add);
            }
            else LdI((int)op);
        }

        /// <summary>Whether a block can observe the flags it is entered with before it overwrites them all: a flag
        /// reader, anything that can fault or call out (a memory access, a handler), INC/DEC (CF), or the block end.</summary>
        private static bool FlagsLiveIn(CodeBlock b)
        {
            for (int k = 0; k < b.Count; k++)
            {
                ref DecodedOp o = ref b.Ops[k];
                bool reg = o.Mem == 0;
                if (Is(ref o, &OpNop) || (Is(ref o, &OpShiftRI32) && o.Imm8 == 0)) continue;
                bool aluReg = (Is(ref o, &OpAluRR32) || Is(ref o, &OpAluRI32) || Is(ref o, &OpAluRmReg) || Is(ref o, &OpAluRmImm) || Is(ref o, &OpAluRegRm)) && reg;
                if (aluReg) return (o.Sub & 7) is 2 or 3;
                if ((Is(ref o, &OpTestRR32) || Is(ref o, &OpTestRmReg) || Is(ref o, &OpTestRmImm)) && reg) return false;
                if (Is(ref o, &OpShiftRI32)) return false;
                bool neutralReg = reg && (Is(ref o, &OpMovRR32) || Is(ref o, &OpMovRmReg) || Is(ref o, &OpMovRegRm) || Is(ref o, &OpMovRmImm)
                    || Is(ref o, &OpMovzxB) || Is(ref o, &OpMovzxW) || Is(ref o, &OpMovsxB) || Is(ref o, &OpMovsxW));
                if (neutralReg || Is(ref o, &OpLea)) continue;
                return true;
            }
            return true;
        }

        // ---------------- registers ----------------

        private void LdReg(int size, int r)
        {
            var il = _il;
            if (size == 4) { Use(r); il.Emit(OpCodes.Ldloc, _reg[r]); return; }
            if (size == 2) { Use(r); il.Emit(OpCodes.Ldloc, _reg[r]); il.Emit(OpCodes.Conv_U2); return; }
            if (r < 4) { Use(r); il.Emit(OpCodes.Ldloc, _reg[r]); il.Emit(OpCodes.Conv_U1); return; }
            Use(r - 4); il.Emit(OpCodes.Ldloc, _reg[r - 4]); LdI(8); il.Emit(OpCodes.Shr_Un); il.Emit(OpCodes.Conv_U1);
        }

        /// <summary>Stores the value on the stack into a register (8/16-bit: its part).</summary>
        private void StReg(int size, int r)
        {
            var il = _il;
            if (size == 4) { Use(r); _written[r] = true; il.Emit(OpCodes.Stloc, _reg[r]); return; }
            il.Emit(OpCodes.Stloc, _tW);
            if (size == 2)
            {
                Use(r); _written[r] = true;
                il.Emit(OpCodes.Ldloc, _reg[r]); LdU(0xFFFF_0000); il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldloc, _tW); il.Emit(OpCodes.Conv_U2); il.Emit(OpCodes.Or); il.Emit(OpCodes.Stloc, _reg[r]);
                return;
            }
            int x = r & 3;
            Use(x); _written[x] = true;
            il.Emit(OpCodes.Ldloc, _reg[x]);
            if (r < 4)
            {
                LdU(0xFFFF_FF00); il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldloc, _tW); il.Emit(OpCodes.Conv_U1);
            }
            else
            {
                LdU(0xFFFF_00FF); il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldloc, _tW); il.Emit(OpCodes.Conv_U1); LdI(8); il.Emit(OpCodes.Shl);
            }
            il.Emit(OpCodes.Or); il.Emit(OpCodes.Stloc, _reg[x]);
        }

        private void Use(int r) => _used[r & 7] = true;

        /// <summary>Stores the registers the region can write into _r (emitted with the final sets, in stubs and at exits
        /// too: exits in the body are emitted before later blocks are known, so they store every register written
        /// anywhere — see <see cref="WriteBackRegs"/>).</summary>
        private void WriteBackRegs()
        {
            // The set is only final after the body; emit a placeholder per register that is patched... IL cannot be
            // patched, so write back every register the region may write: computed up front by a dry run.
            for (int r = 0; r < 8; r++)
            {
                if (!_writtenFinal[r]) continue;
                _il.Emit(OpCodes.Ldloc, _rref); if (r != 0) { LdI(4 * r); _il.Emit(OpCodes.Add); }
                _il.Emit(OpCodes.Ldloc, _reg[r]); _il.Emit(OpCodes.Stind_I4);
            }
        }

        private void ReloadRegs()
        {
            for (int r = 0; r < 8; r++)
            {
                if (!_usedFinal[r]) continue;
                _il.Emit(OpCodes.Ldloc, _rref); if (r != 0) { LdI(4 * r); _il.Emit(OpCodes.Add); }
                _il.Emit(OpCodes.Ldind_U4); _il.Emit(OpCodes.Stloc, _reg[r]);
            }
        }

        private bool[] _writtenFinal = Enumerable.Repeat(true, 8).ToArray(), _usedFinal = Enumerable.Repeat(true, 8).ToArray();

        /// <summary>The register sets of a dry run (the region emitted into a throw-away method), so the real emission
        /// writes back and reloads only what the region touches.</summary>
        public void SetRegisterSets(bool[] used, bool[] written)
        {
            _usedFinal = used.Zip(written, (u, w) => u || w).ToArray();
            _writtenFinal = (bool[])written.Clone();
        }

        public bool[] Used => _used;
        public bool[] Written => _written;

        // ---------------- small IL helpers ----------------

        private void LdC() => _il.Emit(OpCodes.Ldarg_1);

        /// <summary>Pushes element <paramref name="index"/> (a constant) of the CPU's array field, without a bounds check
        /// (the arrays have fixed sizes; the interpreter's At() does the same).</summary>
        private void LdElem(FieldInfo f, int index)
        {
            var t = f.FieldType.GetElementType()!;
            LdArrayRef(f);
            int scaled = index * System.Runtime.InteropServices.Marshal.SizeOf(t);
            if (scaled != 0) { LdI(scaled); _il.Emit(OpCodes.Add); }
            LdInd(t);
        }

        /// <summary>Pushes element [local] of the CPU's array field, without a bounds check.</summary>
        private void LdElem(FieldInfo f, LocalBuilder index)
        {
            var t = f.FieldType.GetElementType()!;
            LdArrayRef(f);
            _il.Emit(OpCodes.Ldloc, index); _il.Emit(OpCodes.Conv_I);
            int size = System.Runtime.InteropServices.Marshal.SizeOf(t);
            if (size != 1) { LdI(size); _il.Emit(OpCodes.Mul); }
            _il.Emit(OpCodes.Add);
            LdInd(t);
        }

        /// <summary>Pushes a ref to element 0 of one of the CPU's fixed (readonly) arrays: a byref local set once in the
        /// prologue, so each access is a local load rather than a field load and an inlined GetArrayDataReference call
        /// (less work for the .NET JIT: the memory fast path uses five such arrays).</summary>
        private void LdArrayRef(FieldInfo f)
        {
            if (!f.IsInitOnly) { LdC(); _il.Emit(OpCodes.Ldfld, f); _il.Emit(OpCodes.Call, ArrayData[f.FieldType.GetElementType()!]); return; }
            if (!_arrayRefs.TryGetValue(f, out var local))
            {
                local = _il.DeclareLocal(f.FieldType.GetElementType()!.MakeByRefType());
                _arrayRefs[f] = local;
            }
            _il.Emit(OpCodes.Ldloc, local);
        }

        private readonly Dictionary<FieldInfo, LocalBuilder> _arrayRefs = new();

        private void LdInd(Type t) => _il.Emit(t == typeof(uint) ? OpCodes.Ldind_U4 : t == typeof(int) ? OpCodes.Ldind_I4 : t == typeof(long) ? OpCodes.Ldind_I8 : OpCodes.Ldind_U1);
        private void LdI(int v) => _il.Emit(OpCodes.Ldc_I4, v);
        private void LdU(uint v) => _il.Emit(OpCodes.Ldc_I4, unchecked((int)v));

        private void Mask(int size)
        {
            if (size == 4) return;
            LdU(SizeMask(size)); _il.Emit(OpCodes.And);
        }

        /// <summary>Pushes eip0 + off.</summary>
        private void LdEip(int off)
        {
            _il.Emit(OpCodes.Ldloc, _eip0);
            if (off != 0) { LdI(off); _il.Emit(OpCodes.Add); }
        }

        /// <summary>Counts n more retired instructions in the local count (InstructionCount is written at exits and
        /// before out-of-line calls).</summary>
        private void AddCount(int n)
        {
            if (n == 0) return;
            _il.Emit(OpCodes.Ldloc, _cnt); _il.Emit(OpCodes.Ldc_I8, (long)n); _il.Emit(OpCodes.Add); _il.Emit(OpCodes.Stloc, _cnt);
        }

        /// <summary>After a decoded-cache handler: the local count from InstructionCount (a handler may retire more).</summary>
        private void ReloadCount()
        {
            LdC(); _il.Emit(OpCodes.Ldfld, FCount); _il.Emit(OpCodes.Stloc, _cnt);
        }
    }

    // ---- diagnostics: VMPORTAL_JIT_FALLBACKS=1 counts the instructions compiled code runs through decoded-cache
    // handlers (by handler, sub-operation, operand size and memory operand) and prints the counts to stderr at exit ----

    private static readonly long[]? JitFallbackCounts = Environment.GetEnvironmentVariable("VMPORTAL_JIT_FALLBACKS") == "1" ? InitFallbackCounts() : null;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(nint, string), int> FallbackIds = new();
    private static readonly string[] FallbackNames = new string[256];

    // Why the block loop ran instructions in the decoded cache instead of compiled code (same switch): retired
    // instructions by reason, and the REP iterations among them (counted as instructions, run in bulk by one handler).
    private static readonly string[] InterpretedReasons =
        { "block below the threshold", "waiting for the background compiler", "compiled, but budget short or event pending",
          "block ends in the interpreter", "compile failed", "JIT off", "of these: REP iterations beyond the first" };
    private static readonly long[] InterpretedCounts = new long[7];

    private void CountInterpreted(CodeBlock b, int ops, long retired)
    {
        int why = !_jitEnabled ? 5 : b.Jit != null ? 2 : b.EndsInInterpreter ? 3 : b.CompileFailed ? 4 : b.JitQueued ? 1 : 0;
        InterpretedCounts[why] += retired;
        if (retired > ops) InterpretedCounts[6] += retired - ops;
    }

    // What the block loop ran right after compiled code returned to it (the case for chaining): a compiled block of the
    // same or another page, or a block not compiled.
    private static readonly string[] AfterJitReasons = { "compiled block, same page", "compiled block, other page", "block not compiled" };
    private static readonly long[] AfterJitCounts = new long[3];

    private void CountAfterJit(CodeBlock b, long budget, int page)
    {
        bool runs = b.Jit != null && budget >= b.Count && !_checkEvents;
        AfterJitCounts[!runs ? 2 : b.Offset >> 12 == page ? 0 : 1]++;
    }

    private static long[] InitFallbackCounts()
    {
        var counts = new long[256];
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            for (int i = 0; i < AfterJitReasons.Length; i++)
                Console.Error.WriteLine($"after a compiled exit: {AfterJitReasons[i]}: {AfterJitCounts[i]:N0}");
            for (int i = 0; i < InterpretedReasons.Length; i++)
                if (InterpretedCounts[i] > 0) Console.Error.WriteLine($"decoded cache: {InterpretedReasons[i]}: {InterpretedCounts[i]:N0} instructions");
            foreach (var (i, n) in counts.Select((n, i) => (i, n)).Where(x => x.n > 0).OrderByDescending(x => x.n).Take(30))
                Console.Error.WriteLine($"JIT fallback {FallbackNames[i]}: {n:N0}");
        };
        return counts;
    }

    private static int FallbackId(nint handler, string key) => FallbackIds.GetOrAdd((handler, key), hk =>
    {
        nint h = hk.Item1;
        int id = Math.Min(FallbackIds.Count, 255);
        var m = typeof(Cpu).GetMethods(BindingFlags.NonPublic | BindingFlags.Static)
            .FirstOrDefault(x => x.Name.StartsWith("Op", StringComparison.Ordinal) && x.GetParameters().Length == 2 && x.MethodHandle.GetFunctionPointer() == h);
        FallbackNames[id] = (m?.Name ?? $"0x{h:X}") + hk.Item2;
        return id;
    });

    // ---- helpers called from compiled code (out of line) ----

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static uint JReadSlow(Cpu c, int seg, uint off, int size) => c.ReadSized(seg, off, size);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JWriteSlow(Cpu c, int seg, uint off, uint v, int size) => c.WriteSized(seg, off, size, v);

    /// <summary>Before an out-of-line call: the registers the region writes (mask), _startEip, EIP, retired count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JSync(Cpu c, uint startEip, uint eip, long count, int mask, uint r0, uint r1, uint r2, uint r3, uint r4, uint r5, uint r6, uint r7)
    {
        var r = c._r;
        if ((mask & 1) != 0) r[0] = r0;
        if ((mask & 2) != 0) r[1] = r1;
        if ((mask & 4) != 0) r[2] = r2;
        if ((mask & 8) != 0) r[3] = r3;
        if ((mask & 16) != 0) r[4] = r4;
        if ((mask & 32) != 0) r[5] = r5;
        if ((mask & 64) != 0) r[6] = r6;
        if ((mask & 128) != 0) r[7] = r7;
        c._startEip = startEip;
        c._eip = eip;
        c.InstructionCount = count;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JFlushArith(Cpu c, int op, uint a, uint b, uint r, int size) => c.SetLazy((LazyOp)op, a, b, r, size);

    /// <summary>INC/DEC flags with CF given (0/1), or still in the CPU's flags (-1).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JFlushIncDec(Cpu c, int op, uint a, uint r, int size, int cf)
    {
        if (cf >= 0) { c._lazy &= ~CF; c._flags = (c._flags & ~CF) | (uint)cf; }
        c.SetLazyIncDec((LazyOp)op, a, r, size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JFlushShift(Cpu c, uint r, int cf, int of, int size) => c.SetFlagsResult(r, size, cf != 0, of != 0, false);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void JCheckNear(Cpu c, uint target) => c.CheckNearTarget(target);

    private static int JParity(uint r) => s_parity[r & 0xFF];

    /// <summary>A region's transition to one of its blocks (EIP <paramref name="target"/>, <paramref name="count"/>
    /// instructions, <paramref name="bytes"/> long): taken when nothing is pending, the budget covers the whole block,
    /// the code is still fetched from the same page (no TLB flush, same CS base and CS.D as at entry), and the block
    /// does not wrap IP — the checks the block loop (RunBlock) makes before running a block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool JGo(Cpu c, uint target, int bytes, uint fetchPage, uint csBase, bool cs32) =>
        !c._checkEvents
        && c._fetchPage == fetchPage && c._csBase == csBase && c._cs32 == cs32
        && (ulong)target + (uint)bytes <= (ulong)c._ipMask + 1;
}

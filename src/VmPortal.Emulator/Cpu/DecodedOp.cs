using System.Runtime.InteropServices;

namespace VmPortal.Emulator.Cpu;

/// <summary>
/// One guest instruction decoded once (Cpu.BlockCache.cs): its handler, length, operand size and its operands
/// with prefixes resolved and the ModRM/SIB effective address split into base + (index &lt;&lt; scale) + disp.
/// Register numbers 8 mean "none" (the CPU keeps a ninth register that is always zero), so an effective address
/// is computed without branches. A later JIT tier can emit IL calling the same handlers with these operands.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct DecodedOp
{
    /// <summary>Executes the instruction; EIP already points at the next instruction when it is called.</summary>
    public delegate*<Cpu, ref DecodedOp, void> Handler;
    public uint Disp;     // address displacement (or moffs)
    public uint Imm;      // immediate, sign-extended and masked to the operand size; relative branch displacement
    public uint AMask;    // 0xFFFF for 16-bit addressing, 0xFFFFFFFF for 32-bit
    public byte Len;      // instruction length in bytes (0 for an interpreter fallback)
    public byte Size;     // operand size: 1, 2 or 4
    public byte Reg;      // ModRM reg field (or the register of a +r opcode)
    public byte Rm;       // ModRM rm register (register forms)
    public byte Base;     // base register of the memory operand, 8 = none
    public byte Index;    // index register, 8 = none
    public byte Scale;    // index shift 0-3
    public byte Seg;      // segment register of the memory operand (override resolved)
    public byte Sub;      // ALU operation, condition code, shift kind, group sub-opcode or string opcode
    public byte Mem;      // 1 when the ModRM operand is in memory
    public byte Imm8;     // second immediate (shift count); a string instruction's REP prefix (0, F2h, F3h)
}

/// <summary>
/// A run of decoded instructions inside one 4 KiB page of <see cref="Memory.PhysicalMemory.Backing"/>, ending at a
/// control transfer other than a forward Jcc (one inside the block leaves it when taken), an instruction left to the
/// interpreter, the page end or a length cap.
/// Keyed by the backing offset of its first byte and the code size (CS.D); valid while the page's code version
/// is unchanged.
/// </summary>
internal sealed class CodeBlock
{
    public const int MaxOps = 48;
    public int Offset = -1;
    public bool Cs32;
    public int Version;
    public int Count;
    public int Bytes;
    public bool EndsInInterpreter;
    public readonly DecodedOp[] Ops;
    public int Hits;              // executions counted toward the JIT threshold (Cpu.Jit.cs)
    public JitBlockFn? Jit;       // the block compiled to IL, or null
    public int JitIlSize;
    public int JitFlat;           // the flat segments (Cpu._flatMask bits) the compiled code assumes
    public bool JitNoFlat;        // compiled code assuming flat segments met others: compile without the assumption
    public bool JitRan;           // the compiled code has run once (the .NET JIT compiled it then)
    public bool JitQueued;        // handed to the background compiler (Jit/JitBackgroundCompiler.cs)
    public volatile JitCompiled? Pending;  // the background compiler's result, installed by the machine thread
    public volatile bool CompileFailed;    // the background compiler gave up on this block
    public CodeBlock? Next0, Next1;       // the last two blocks run right after this one (RunBlock's links, Cpu.BlockCache.cs)
    public uint Next0Key = Cpu.NoBlockKey, Next1Key = Cpu.NoBlockKey; // their block-table keys (offset | CS.D << 31)
    public bool Displaced;                // no longer in the block table (its slot went to another block)

    public CodeBlock(int count)
    {
        Ops = new DecodedOp[count];
    }
}

namespace VmPortal.Emulator.Cpu.Fpu;

// The contract between the integer CPU (Cpu/) and the x87 FPU (Cpu/Fpu/). The CPU decodes an ESC
// instruction (D8–DF), checks CR0.EM/TS (#NM) and pending FPU exceptions (#MF / IRQ13 per CR0.NE) itself,
// asks X87.Classify what memory the instruction touches, reads the operand bytes (through segmentation and
// paging, so faults are raised before the FPU state changes), calls X87.Execute, then writes back what the
// FPU produced. The FPU never touches guest memory or CPU registers directly.

/// <summary>What memory an x87 instruction needs from the CPU.</summary>
public enum FpuMemoryAccess : byte
{
    /// <summary>Register form, or a memory form that only computes an address (none exist; kept for completeness).</summary>
    None,
    /// <summary>The CPU reads <see cref="FpuMemoryOperand.Size"/> bytes and passes them in.</summary>
    Read,
    /// <summary>The FPU fills <see cref="FpuMemoryOperand.Size"/> bytes that the CPU writes out.</summary>
    Write,
}

public readonly record struct FpuMemoryOperand(FpuMemoryAccess Access, int Size);

/// <summary>The CPU state the FPU needs for one instruction.</summary>
public struct FpuContext
{
    /// <summary>True in protected mode (not V86): decides the FSTENV/FSAVE image layout.</summary>
    public bool ProtectedMode;
    /// <summary>32-bit operand size (after 66h): FSTENV/FSAVE/FLDENV/FRSTOR image size 28/108 vs 14/94.</summary>
    public bool Operand32;
    /// <summary>Selector and offset of this instruction, and of its memory operand (for FIP/FDP bookkeeping).</summary>
    public ushort CodeSelector;
    public uint InstructionOffset;
    public ushort DataSelector;
    public uint DataOffset;
    /// <summary>EFLAGS in (FCMOVcc reads CF/ZF/PF) and out (FCOMI/FUCOMI write ZF/PF/CF, clear OF/SF/AF).</summary>
    public uint Eflags;
}

/// <summary>Outcome of executing one x87 instruction.</summary>
public enum FpuResult : byte
{
    /// <summary>Done. Memory-write instructions have filled the output buffer.</summary>
    Ok,
    /// <summary>The encoding is not a valid x87 instruction: the CPU raises #UD.</summary>
    InvalidOpcode,
    /// <summary>
    /// A memory-write instruction raised an unmasked exception that cancels the store (e.g. FST m32 with unmasked
    /// overflow, FIST with unmasked invalid, FSTP on an empty stack with IE unmasked): the CPU must NOT write the
    /// output buffer. The FPU state (flags, ES) is updated; the #MF comes at the next waiting instruction.
    /// </summary>
    StoreSuppressed,
}

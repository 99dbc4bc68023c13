using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Cpu;

/// <summary>
/// PLACEHOLDER CONTRACT — replaced by the real i686-class CPU (issue 3). Kept so the machine can be wired
/// against the agreed API while the CPU is written. Do not add logic here.
/// </summary>
public sealed partial class Cpu
{
    public Cpu(PhysicalMemory memory, IoBus io)
    {
        Memory = memory;
        Io = io;
    }

    public PhysicalMemory Memory { get; }
    public IoBus Io { get; }

    /// <summary>Interrupt controller polled at instruction boundaries when IF=1 and no interrupt shadow.</summary>
    public IInterruptController? InterruptController { get; set; }

    /// <summary>True while the CPU sits in HLT waiting for an interrupt.</summary>
    public bool Halted { get; private set; }

    /// <summary>Set after a triple fault (or shutdown cycle); the machine then resets or stops.</summary>
    public bool ShutdownPending { get; private set; }

    /// <summary>Reason recorded with the shutdown (e.g. "triple fault: #GP while delivering #DF at 0008:C0101234").</summary>
    public string? ShutdownReason { get; private set; }

    /// <summary>Instructions retired since power-on.</summary>
    public long InstructionCount { get; private set; }

    /// <summary>FERR# output (x87 error with CR0.NE=0): the machine routes it to IRQ13.</summary>
    public Action<bool>? FerrChanged { get; set; }

    /// <summary>Power-on / RESET state: real mode, CS=F000 (base FFFF0000), EIP=FFF0.</summary>
    public void Reset() => throw new NotImplementedException("CPU not yet implemented");

    /// <summary>Requests a non-maskable interrupt.</summary>
    public void RaiseNmi() => throw new NotImplementedException("CPU not yet implemented");

    /// <summary>
    /// Runs up to <paramref name="maxInstructions"/> instructions. Returns early when the CPU halts with nothing
    /// to wake it or a shutdown happens. Returns the number executed. Never throws for guest behaviour.
    /// </summary>
    public int Run(int maxInstructions) => throw new NotImplementedException("CPU not yet implemented");
}

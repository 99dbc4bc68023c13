namespace VmPortal.Emulator.Cpu;

/// <summary>
/// A guest exception (#GP, #PF…) raised in the middle of an instruction. One instance per CPU is reused, so
/// raising a guest fault allocates nothing; <see cref="Cpu.Run"/> catches it, restores EIP to the faulting
/// instruction and delivers the exception through the IDT/IVT. Never escapes the CPU.
/// </summary>
internal sealed class CpuFault : Exception
{
    public int Vector;
    public uint ErrorCode;
    public bool HasErrorCode;

    public CpuFault() : base("guest CPU exception") { }
}

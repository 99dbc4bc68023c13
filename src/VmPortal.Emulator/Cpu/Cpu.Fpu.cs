namespace VmPortal.Emulator.Cpu;

// x87 escape opcodes (D8–DF), WAIT, FXSAVE/FXRSTOR. Until the X87 class (Cpu/Fpu) is wired in, the CPU behaves
// like a 386 without a coprocessor: CPUID reports no FPU, CR0.EM/TS give #NM, and ESC instructions only decode
// their operand (guests probe for the FPU with FNINIT/FNSTSW and find none).
public sealed partial class Cpu
{
    private bool HasFpu => false;
    private bool FxsrSupported => false;

    private void FpuReset() { }

    private void EscapeFpu(byte op)
    {
        if ((_cr0 & (CR0_EM | CR0_TS)) != 0) throw Fault(7);
        DecodeModRM();
        // No coprocessor: the bus still reads the operand's first word (limit/page faults as on hardware).
        if (_mod != 3) Read16(_eaSeg, _ea);
    }

    private void FpuWait()
    {
        if ((_cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) throw Fault(7);
    }

    private void FxSaveRestore(bool save)
    {
        throw Fault(6);
    }
}

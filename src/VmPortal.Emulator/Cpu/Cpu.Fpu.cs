using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Cpu;

// The CPU side of the x87 (Cpu/Fpu/X87): ESC opcodes D8–DF, WAIT/FWAIT, FNSTSW AX, FXSAVE/FXRSTOR.
// The CPU raises #NM (CR0.EM/TS), delivers pending FPU errors as #MF (CR0.NE=1) or FERR#/IRQ13 (CR0.NE=0, with
// IGNNE# from the machine's FpuErrorLatch), moves the memory operand bytes through segmentation and paging
// (faults happen before the FPU changes state; stores are probed first), and copies FCOMI/FCMOV flags.
public sealed partial class Cpu
{
    private readonly X87 _fpu = new();
    private readonly byte[] _fpuIn = new byte[512];
    private readonly byte[] _fpuOut = new byte[512];
    private bool _ferr;

    /// <summary>The x87 unit (debuggers, tests).</summary>
    public X87 Fpu => _fpu;

    /// <summary>IGNNE# input (the machine's FpuErrorLatch.IgnoreNumericError): with CR0.NE=0 and IGNNE# asserted,
    /// pending x87 errors are ignored instead of stalling at the next waiting instruction.</summary>
    public Func<bool>? IgnoreNumericError { get; set; }

    private bool HasFpu => true;
    private bool FxsrSupported => true;

    private void FpuReset()
    {
        _fpu.PowerOnReset();
        SetFerr(false);
    }

    private void SetFerr(bool asserted)
    {
        if (_ferr == asserted) return;
        _ferr = asserted;
        FerrChanged?.Invoke(asserted);
    }

    /// <summary>A waiting x87 instruction found an unmasked exception pending. Returns true if the instruction
    /// must not execute (it restarts after the error is serviced).</summary>
    private bool PendingFpuError()
    {
        if (!_fpu.ExceptionPending) return false;
        if ((_cr0 & CR0_NE) != 0) throw Fault(16);
        // CR0.NE=0: FERR# goes to IRQ 13 through the machine's latch. Until the handler asserts IGNNE# (port F0h)
        // the instruction waits: restart it at the next boundary so the interrupt can be taken.
        SetFerr(true);
        if (IgnoreNumericError?.Invoke() == true) return false;
        _eip = _startEip;
        _checkEvents = true;
        return true;
    }

    private void EscapeFpu(byte op)
    {
        if ((_cr0 & (CR0_EM | CR0_TS)) != 0) throw Fault(7);
        DecodeModRM();
        byte modrm = (byte)((_mod << 6) | (_regField << 3) | _rm);
        if (op == 0xDF && modrm == 0xE0)
        {
            SetReg(2, EAX, _fpu.StatusWord); // FNSTSW AX
            return;
        }
        if (!X87.IsNoWait(op, modrm) && PendingFpuError()) return;
        bool o32 = _opSize == 4;
        var mem = _mod == 3 ? new FpuMemoryOperand(FpuMemoryAccess.None, 0) : X87.Classify(op, modrm, o32);
        int size = mem.Size;
        if (mem.Access == FpuMemoryAccess.Read)
        {
            LinRead(_eaSeg, _ea + (uint)size - 1, 0); // the whole operand must be inside the segment limit
            for (int i = 0; i < size; i++) _fpuIn[i] = Read8(_eaSeg, (_ea + (uint)i) & AddrMask);
        }
        else if (mem.Access == FpuMemoryAccess.Write)
        {
            // Check the destination before the FPU changes state (FSTP pops, FSAVE re-initialises).
            LinWrite(_eaSeg, _ea, 0);
            LinWrite(_eaSeg, _ea + (uint)size - 1, 0);
            ProbeWrite(_segBase[_eaSeg] + _ea, size);
        }
        var ctx = new FpuContext
        {
            ProtectedMode = _pe && !_v86,
            Operand32 = o32,
            CodeSelector = _sel[CS],
            InstructionOffset = _startEip,
            DataSelector = _mod == 3 ? (ushort)0 : _sel[_eaSeg],
            DataOffset = _mod == 3 ? 0 : _ea,
            Eflags = GetFlags(),
        };
        var result = _fpu.Execute(op, modrm, _fpuIn.AsSpan(0, size), _fpuOut.AsSpan(0, size), ref ctx);
        if (result == FpuResult.InvalidOpcode) throw Fault(6);
        if (result == FpuResult.Ok && mem.Access == FpuMemoryAccess.Write)
        {
            for (int i = 0; i < size; i++) Write8(_eaSeg, (_ea + (uint)i) & AddrMask, _fpuOut[i]);
        }
        const uint fpuFlags = CF | PF | AF | ZF | SF | OF;
        if (((ctx.Eflags ^ _flags) & fpuFlags) != 0)
            _flags = (_flags & ~fpuFlags) | (ctx.Eflags & fpuFlags);
        if (_fpu.ExceptionPending) { if ((_cr0 & CR0_NE) == 0) SetFerr(true); }
        else SetFerr(false);
    }

    private void FpuWait()
    {
        if ((_cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) throw Fault(7);
        PendingFpuError();
    }

    /// <summary>FXSAVE / FXRSTOR m512 (16-byte aligned). The XMM part (bytes 160–511) is left as it is in memory.</summary>
    private void FxSaveRestore(bool save)
    {
        if ((_cr0 & CR0_EM) != 0) throw Fault(6);
        if ((_cr0 & CR0_TS) != 0) throw Fault(7);
        uint lin = _segBase[_eaSeg] + _ea;
        if ((lin & 15) != 0) throw Fault(13, 0);
        LinRead(_eaSeg, _ea, 0);
        LinRead(_eaSeg, _ea + 511, 0);
        for (int i = 0; i < 512; i++) _fpuIn[i] = Read8(_eaSeg, _ea + (uint)i);
        if (save)
        {
            LinWrite(_eaSeg, _ea, 0);
            LinWrite(_eaSeg, _ea + 511, 0);
            ProbeWrite(lin, 512);
            _fpuIn.AsSpan().CopyTo(_fpuOut);
            var ctx = new FpuContext
            {
                ProtectedMode = _pe && !_v86,
                Operand32 = _opSize == 4,
                CodeSelector = _sel[CS],
                InstructionOffset = _startEip,
                DataSelector = _sel[_eaSeg],
                DataOffset = _ea,
                Eflags = GetFlags(),
            };
            _fpu.FxSave(_fpuOut, ctx);
            for (int i = 0; i < 512; i++) Write8(_eaSeg, _ea + (uint)i, _fpuOut[i]);
        }
        else
        {
            _fpu.FxRestore(_fpuIn);
            if (!_fpu.ExceptionPending) SetFerr(false);
        }
    }
}

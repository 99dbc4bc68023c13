using VmPortal.Emulator.Cpu.Fpu;

namespace VmPortal.Emulator.Cpu;

// Machine state (docs/emulator.md "Machine state"): the CPU's architectural state plus the internal state that
// matters at an instruction boundary (lazy flags exactly as kept, interrupt/debug shadows, pending NMI, HLT), by name.
// Derived state (TLB, decoded blocks, segment limit caches, breakpoint masks) is rebuilt on load.
public sealed partial class Cpu
{
    /// <summary>A segment register and its descriptor cache.</summary>
    public sealed record SegmentState(ushort Selector, uint Base, uint Limit, uint Attributes);

    /// <summary>The x87 registers and environment (80-bit registers as sign/exponent + significand, physical order R0-R7).</summary>
    public sealed record FpuState(ushort[] SignExponents, ulong[] Significands, int EmptyMask, int Top, int ControlWord, int StatusWord,
        ushort Fcs, ushort Fds, ushort Fop, uint Fip, uint Fdp, bool Ferr);

    /// <summary>Named, versioned CPU state (taken between instructions).</summary>
    public sealed record State(int Version,
        uint Eax, uint Ecx, uint Edx, uint Ebx, uint Esp, uint Ebp, uint Esi, uint Edi, uint Eip,
        uint Flags, uint LazyFlags, byte LazyOp, uint LazyA, uint LazyB, uint LazyResult, uint LazyMask, uint LazySign,
        SegmentState Es, SegmentState Cs, SegmentState Ss, SegmentState Ds, SegmentState Fs, SegmentState Gs,
        uint GdtBase, uint GdtLimit, uint IdtBase, uint IdtLimit,
        ushort LdtSelector, uint LdtBase, uint LdtLimit, ushort TrSelector, uint TrBase, uint TrLimit, uint TrAttributes,
        uint Cr0, uint Cr2, uint Cr3, uint Cr4, uint[] Dr, int Cpl, bool Cs32, bool Ss32, uint IpMask,
        uint SysenterCs, uint SysenterEsp, uint SysenterEip, long TscOffset, long TscAdjust, ulong ApicBase, ulong[] Mtrr, ulong Pat,
        bool InterruptShadow, bool SsShadow, bool NmiPending, bool NmiBlocked, bool TraceArmed, bool RfSkip, uint DebugTrapHits,
        bool CodeBreakpointFault, bool Halted, bool ShutdownPending, string? ShutdownReason, long InstructionCount, FpuState Fpu)
    {
        public const int CurrentVersion = 1;
    }

    private SegmentState SaveSegment(int s) => new(_sel[s], _segBase[s], _segLimit[s], _segAttr[s]);

    private void LoadSegment(int s, SegmentState x)
    {
        _sel[s] = x.Selector;
        _segBase[s] = x.Base;
        _segLimit[s] = x.Limit;
        _segAttr[s] = x.Attributes;
    }

    /// <summary>The CPU's state between instructions (call from the machine thread, between <see cref="Run"/> calls).</summary>
    public State SaveState()
    {
        var f = _fpu.Capture();
        var se = new ushort[8];
        var sig = new ulong[8];
        for (int i = 0; i < 8; i++) { se[i] = f.Registers[i].SignExponent; sig[i] = f.Registers[i].Significand; }
        var fpu = new FpuState(se, sig, f.EmptyMask, f.Top, f.ControlWord, f.StatusWord, f.Fcs, f.Fds, f.Fop, f.Fip, f.Fdp, _ferr);
        return new State(State.CurrentVersion,
            _r[EAX], _r[ECX], _r[EDX], _r[EBX], _r[ESP], _r[EBP], _r[ESI], _r[EDI], _eip,
            _flags, _lazy, (byte)_lfOp, _lfA, _lfB, _lfRes, _lfMask, _lfSign,
            SaveSegment(ES), SaveSegment(CS), SaveSegment(SS), SaveSegment(DS), SaveSegment(FS), SaveSegment(GS),
            _gdtBase, _gdtLimit, _idtBase, _idtLimit, _ldtSel, _ldtBase, _ldtLimit, _trSel, _trBase, _trLimit, _trAttr,
            _cr0, _cr2, _cr3, _cr4, (uint[])_dr.Clone(), _cpl, _cs32, _ss32, _ipMask,
            _sysenterCs, _sysenterEsp, _sysenterEip, _tscOffset, _tscAdjust, _apicBase, (ulong[])_mtrr.Clone(), _pat,
            _shadow, _ssShadow, _nmiPending, _nmiBlocked, _traceArmed, _rfSkip, _dbTrapHits,
            _codeBreakpointFault, Halted, ShutdownPending, ShutdownReason, InstructionCount, fpu);
    }

    /// <summary>Restores a state from <see cref="SaveState"/>; the TLB and decoded blocks start empty.</summary>
    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"CPU state version {s.Version} is not supported.");
        if (s.Dr.Length != 8 || s.Mtrr.Length != _mtrr.Length || s.Fpu.SignExponents.Length != 8 || s.Fpu.Significands.Length != 8)
            throw new InvalidDataException("CPU state has wrongly sized register arrays (Dr, Mtrr or FPU registers).");
        if (s.LazyOp > (byte)LazyOp.Result) throw new InvalidDataException($"CPU state has an unknown lazy-flags operation {s.LazyOp}.");
        (_r[EAX], _r[ECX], _r[EDX], _r[EBX], _r[ESP], _r[EBP], _r[ESI], _r[EDI]) = (s.Eax, s.Ecx, s.Edx, s.Ebx, s.Esp, s.Ebp, s.Esi, s.Edi);
        _r[8] = 0;
        _eip = s.Eip;
        (_flags, _lazy, _lfOp, _lfA, _lfB, _lfRes, _lfMask, _lfSign) = (s.Flags, s.LazyFlags, (LazyOp)s.LazyOp, s.LazyA, s.LazyB, s.LazyResult, s.LazyMask, s.LazySign);
        LoadSegment(ES, s.Es); LoadSegment(CS, s.Cs); LoadSegment(SS, s.Ss);
        LoadSegment(DS, s.Ds); LoadSegment(FS, s.Fs); LoadSegment(GS, s.Gs);
        (_gdtBase, _gdtLimit, _idtBase, _idtLimit) = (s.GdtBase, s.GdtLimit, s.IdtBase, s.IdtLimit);
        (_ldtSel, _ldtBase, _ldtLimit, _trSel, _trBase, _trLimit, _trAttr) = (s.LdtSelector, s.LdtBase, s.LdtLimit, s.TrSelector, s.TrBase, s.TrLimit, s.TrAttributes);
        (_cr0, _cr2, _cr3, _cr4) = (s.Cr0, s.Cr2, s.Cr3, s.Cr4);
        s.Dr.CopyTo(_dr, 0);
        (_cs32, _ss32) = (s.Cs32, s.Ss32);
        (_sysenterCs, _sysenterEsp, _sysenterEip, _tscOffset, _tscAdjust, _apicBase, _pat) =
            (s.SysenterCs, s.SysenterEsp, s.SysenterEip, s.TscOffset, s.TscAdjust, s.ApicBase, s.Pat);
        s.Mtrr.CopyTo(_mtrr, 0);
        (_shadow, _ssShadow, _nmiPending, _nmiBlocked, _traceArmed, _rfSkip, _dbTrapHits) =
            (s.InterruptShadow, s.SsShadow, s.NmiPending, s.NmiBlocked, s.TraceArmed, s.RfSkip, s.DebugTrapHits);
        _codeBreakpointFault = s.CodeBreakpointFault;
        Halted = s.Halted;
        ShutdownPending = s.ShutdownPending;
        ShutdownReason = s.ShutdownReason;
        InstructionCount = s.InstructionCount;
        _deliveringVector = -1;
        _stopLoop = false;

        var f = new X87Snapshot
        {
            EmptyMask = s.Fpu.EmptyMask, Top = s.Fpu.Top & 7, ControlWord = s.Fpu.ControlWord, StatusWord = s.Fpu.StatusWord,
            Fcs = s.Fpu.Fcs, Fds = s.Fpu.Fds, Fop = s.Fpu.Fop, Fip = s.Fpu.Fip, Fdp = s.Fpu.Fdp,
        };
        for (int i = 0; i < 8; i++) f.Registers[i] = new Float80(s.Fpu.SignExponents[i], s.Fpu.Significands[i]);
        _fpu.Restore(f);
        _ferr = s.Fpu.Ferr;

        // Derived state: mode bits, segment limit caches, CPL-dependent TLB base, breakpoint masks, TLB.
        _pe = (_cr0 & CR0_PE) != 0;
        _v86 = _pe && (_flags & VM) != 0;
        _paging = (_cr0 & CR0_PG) != 0;
        _cpl = s.Cpl;
        _ipMask = s.IpMask;
        for (int i = 0; i < 6; i++) UpdateSegCache(i);
        UpdateDebugState();
        FlushTlb(true);
        _checkEvents = true;
    }
}

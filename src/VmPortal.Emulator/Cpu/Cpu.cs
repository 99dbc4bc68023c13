using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Cpu;

/// <summary>Segment register numbers, in the x86 encoding order (ModRM reg field of MOV Sreg).</summary>
public enum SegmentRegister { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5 }

/// <summary>
/// An i686-class (Pentium Pro) x86 CPU interpreter: real mode, 16/32-bit protected mode, V86 mode, paging
/// (4 KiB and 4 MiB pages), the exceptions with their error codes, hardware task switches, and the complete
/// integer instruction set of the 386/486/Pentium/P6. The x87 is a separate class (Cpu/Fpu) reached through
/// the contract in FpuContract.cs.
///
/// Design for speed (docs: ARCHITECTURE.md "Emulator speed"):
/// <list type="bullet">
/// <item>registers are fields (general registers in a small array indexed by the ModRM fields);</item>
/// <item>arithmetic flags are lazy: the last operation, its operands and result are kept and a flag is computed when read;</item>
/// <item>a software TLB per access kind (read/write × supervisor/user) maps a linear page to an offset in
///   <see cref="PhysicalMemory.Backing"/>, so a normal memory access is a tag compare and an array index;</item>
/// <item>instruction bytes are fetched through a cached pointer to the current code page;</item>
/// <item>guest exceptions unwind the current instruction with one preallocated <see cref="CpuFault"/> (no allocation);</item>
/// <item>the interrupt controller is polled only when something may have changed (I/O instruction, IF set, new Run slice).</item>
/// </list>
/// The decoder lives in one place (Cpu.Execute.cs for one-byte opcodes, Cpu.Execute0F.cs for 0F xx).
/// </summary>
public sealed partial class Cpu
{
    // EFLAGS bits.
    internal const uint CF = 1u << 0, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6, SF = 1u << 7, TF = 1u << 8,
        IF = 1u << 9, DF = 1u << 10, OF = 1u << 11, IOPL = 3u << 12, NT = 1u << 14, RF = 1u << 16, VM = 1u << 17,
        AC = 1u << 18, VIF = 1u << 19, VIP = 1u << 20, ID = 1u << 21;
    internal const uint ArithFlags = CF | PF | AF | ZF | SF | OF;

    // CR0 bits.
    internal const uint CR0_PE = 1u << 0, CR0_MP = 1u << 1, CR0_EM = 1u << 2, CR0_TS = 1u << 3, CR0_ET = 1u << 4,
        CR0_NE = 1u << 5, CR0_WP = 1u << 16, CR0_AM = 1u << 18, CR0_NW = 1u << 29, CR0_CD = 1u << 30, CR0_PG = 1u << 31;
    // CR4 bits.
    internal const uint CR4_VME = 1u << 0, CR4_PVI = 1u << 1, CR4_TSD = 1u << 2, CR4_DE = 1u << 3, CR4_PSE = 1u << 4,
        CR4_PGE = 1u << 7, CR4_PCE = 1u << 8, CR4_OSFXSR = 1u << 9, CR4_OSXMMEXCPT = 1u << 10;

    internal const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;
    internal const int EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

    private readonly uint[] _r = new uint[9]; // [8] is always 0: "no register" in decoded effective addresses
    private uint _eip;
    private uint _flags = 2; // materialised EFLAGS bits (the lazy ones are computed, see Cpu.Flags.cs)

    // Segment registers and their descriptor caches.
    private readonly ushort[] _sel = new ushort[6];
    private readonly uint[] _segBase = new uint[6];
    private readonly uint[] _segLimit = new uint[6];
    /// <summary>Descriptor access byte (bits 0-7) and flags nibble (bits 12-15 → D/B at bit 14, G at 15) as in the descriptor's second dword >> 8.</summary>
    private readonly uint[] _segAttr = new uint[6];
    // Effective valid offset range of each segment (handles expand-down), and write permission.
    private readonly uint[] _segLo = new uint[6];
    private readonly uint[] _segHi = new uint[6];
    private readonly bool[] _segWritable = new bool[6];
    private readonly bool[] _segReadable = new bool[6];

    private uint _gdtBase, _gdtLimit, _idtBase, _idtLimit;
    private ushort _ldtSel, _trSel;
    private uint _ldtBase, _ldtLimit, _trBase, _trLimit, _trAttr;

    private uint _cr0, _cr2, _cr3, _cr4;
    private readonly uint[] _dr = new uint[8];
    private int _cpl;
    private bool _pe, _v86, _paging;
    private bool _cs32;   // CS.D: default operand/address size 32
    private bool _ss32;   // SS.B: stack pointer is ESP
    private uint _ipMask = 0xFFFF; // EIP wraps at 64 KiB in 16-bit code

    // MSRs.
    private uint _sysenterCs, _sysenterEsp, _sysenterEip;
    private long _tscOffset;
    private long _tscAdjust; // IA32_TSC_ADJUST (MSR 3Bh)
    private ulong _apicBase = 0xFEE00900;
    private readonly ulong[] _mtrr = new ulong[32];
    private ulong _pat = 0x0007040600070406;

    private IInterruptController? _pic;
    private bool _checkEvents = true;  // poll interrupts / NMI / TF at the next instruction boundary
    private bool _shadow;              // interrupt shadow (after STI, MOV SS, POP SS)
    private bool _nmiPending, _nmiBlocked;
    private byte[] _ram;

    public Cpu(PhysicalMemory memory, IoBus io)
    {
        Memory = memory;
        Io = io;
        _ram = memory.Backing;
        _fault = new CpuFault();
        memory.CodePageWritten += OnCodePageWritten;
        InitTlb();
        Reset();
    }

    public PhysicalMemory Memory { get; }
    public IoBus Io { get; }

    /// <summary>Interrupt controller polled at instruction boundaries when IF=1 and no interrupt shadow.</summary>
    public IInterruptController? InterruptController
    {
        get => _pic;
        set { _pic = value; _checkEvents = true; }
    }

    /// <summary>True while the CPU sits in HLT waiting for an interrupt.</summary>
    public bool Halted { get; private set; }

    /// <summary>Set after a triple fault (or a host error in the CPU loop); the machine then resets or stops.</summary>
    public bool ShutdownPending { get; private set; }

    /// <summary>Reason recorded with the shutdown (e.g. "triple fault: #GP while delivering #DF at 0008:C0101234").</summary>
    public string? ShutdownReason { get; private set; }

    /// <summary>Instructions retired since power-on.</summary>
    public long InstructionCount { get; private set; }

    /// <summary>FERR# output (x87 error with CR0.NE=0): the machine routes it to IRQ13.</summary>
    public Action<bool>? FerrChanged { get; set; }

    /// <summary>
    /// Guest time source for the time-stamp counter, in nanoseconds. When set (the machine passes its
    /// MachineClock.NowNs), RDTSC returns <see cref="TscFrequencyHz"/> ticks per guest second; when null the
    /// TSC counts retired instructions (deterministic, used by tests).
    /// </summary>
    public Func<long>? TimeSourceNs { get; set; }

    /// <summary>TSC frequency reported through RDTSC when <see cref="TimeSourceNs"/> is set.</summary>
    public long TscFrequencyHz { get; set; } = 1_000_000_000;

    /// <summary>Called when the guest writes a byte to the Bochs/QEMU debug port 0xE9 is NOT handled here; this hook
    /// reports every host error caught by <see cref="Run"/> (the message is also in <see cref="ShutdownReason"/>).</summary>
    public Action<Exception>? HostError { get; set; }

    /// <summary>Debug hook: every guest exception (vector, error code, CS, EIP of the faulting instruction).</summary>
    public Action<int, uint, ushort, uint>? ExceptionRaised { get; set; }

    // ---- Public register view (tests, debugger, machine) ----
    public uint Eax { get => _r[EAX]; set => _r[EAX] = value; }
    public uint Ecx { get => _r[ECX]; set => _r[ECX] = value; }
    public uint Edx { get => _r[EDX]; set => _r[EDX] = value; }
    public uint Ebx { get => _r[EBX]; set => _r[EBX] = value; }
    public uint Esp { get => _r[ESP]; set => _r[ESP] = value; }
    public uint Ebp { get => _r[EBP]; set => _r[EBP] = value; }
    public uint Esi { get => _r[ESI]; set => _r[ESI] = value; }
    public uint Edi { get => _r[EDI]; set => _r[EDI] = value; }
    public uint Eip { get => _eip; set { _eip = value; InvalidateFetch(); } }
    /// <summary>EFLAGS. The getter computes the lazy flags without storing them, so diagnostics may read it from
    /// another thread while the CPU runs (Machine.DescribeCpu) without disturbing the guest.</summary>
    public uint Eflags { get => PeekFlags(); set => SetFlagsRaw(value); }
    public uint Cr0 => _cr0;
    public uint Cr2 => _cr2;
    public uint Cr3 => _cr3;
    public uint Cr4 => _cr4;
    public int Cpl => _cpl;
    public bool ProtectedMode => _pe;
    public bool V86Mode => _v86;
    public ushort GetSelector(SegmentRegister s) => _sel[(int)s];
    public uint GetSegmentBase(SegmentRegister s) => _segBase[(int)s];
    public uint GetSegmentLimit(SegmentRegister s) => _segLimit[(int)s];
    public uint GdtBase => _gdtBase;
    public uint IdtBase => _idtBase;
    public ushort TaskRegister => _trSel;

    /// <summary>Sets a segment register the way real mode does (base = selector × 16, limit 64 KiB). For tests and loaders.</summary>
    public void SetSegmentReal(SegmentRegister s, ushort selector)
    {
        int i = (int)s;
        _sel[i] = selector;
        _segBase[i] = (uint)selector << 4;
        _segLimit[i] = 0xFFFF;
        _segAttr[i] = 0x93 | (i == CS ? 0x8u : 0u);
        UpdateSegCache(i);
        if (i == CS) { _cs32 = false; _ipMask = 0xFFFF; InvalidateFetch(); }
        if (i == SS) _ss32 = false;
    }

    /// <summary>Power-on / RESET state: real mode, CS=F000 (base FFFF0000), EIP=FFF0.</summary>
    public void Reset()
    {
        Array.Clear(_r);
        _r[EDX] = 0x0000_0633; // family 6, model 3, stepping 3 (matches CPUID)
        _flags = 2;
        _lazy = 0;
        _cr0 = CR0_ET | CR0_CD | CR0_NW;
        _cr2 = _cr3 = _cr4 = 0;
        Array.Clear(_dr);
        _dr[6] = 0xFFFF0FF0;
        _dr[7] = 0x400;
        _dbTrapHits = 0;
        _traceArmed = _rfSkip = _codeBreakpointFault = _ssShadow = false;
        _pe = _v86 = _paging = false;
        _cpl = 0;
        for (int i = 0; i < 6; i++)
        {
            _sel[i] = 0;
            _segBase[i] = 0;
            _segLimit[i] = 0xFFFF;
            _segAttr[i] = 0x93;
            UpdateSegCache(i);
        }
        _sel[CS] = 0xF000;
        _segBase[CS] = 0xFFFF_0000;
        _segAttr[CS] = 0x9B;
        UpdateSegCache(CS);
        _cs32 = _ss32 = false;
        _ipMask = 0xFFFF;
        _eip = 0xFFF0;
        _gdtBase = _idtBase = 0;
        _gdtLimit = _idtLimit = 0xFFFF;
        _ldtSel = _trSel = 0;
        _ldtBase = _trBase = 0;
        _ldtLimit = _trLimit = 0xFFFF;
        _trAttr = 0x8B;
        _sysenterCs = _sysenterEsp = _sysenterEip = 0;
        _tscOffset = 0;
        _tscAdjust = 0;
        Array.Clear(_mtrr);
        Halted = false;
        ShutdownPending = false;
        ShutdownReason = null;
        _nmiPending = _nmiBlocked = false;
        _shadow = false;
        _checkEvents = true;
        FpuReset();
        FlushTlb(true);
        UpdateDebugState();
    }

    /// <summary>Requests a non-maskable interrupt.</summary>
    public void RaiseNmi()
    {
        _nmiPending = true;
        _checkEvents = true;
    }

    /// <summary>Tells the CPU that an interrupt request may have appeared (for devices raising IRQs mid-slice).</summary>
    public void NotifyInterrupt() => _checkEvents = true;

    /// <summary>Set by <see cref="RequestStop"/>: <see cref="Run"/> returns at the next instruction boundary, and at once from then on.</summary>
    public bool StopRequested { get; private set; }

    /// <summary>
    /// The machine is about to be reset or switched off by the guest (a write to port 0xCF9, 0x92, the i8042, ACPI
    /// S5): nothing after the instruction that asked may run. Firmware relies on it: SeaBIOS's reboot tries those
    /// ports in turn and only then triple-faults on purpose, which must not happen after a reset that worked.
    /// </summary>
    public void RequestStop()
    {
        StopRequested = true;
        _checkEvents = true;
    }

    /// <summary>
    /// Runs up to <paramref name="maxInstructions"/> instructions. Returns early when the CPU halts with nothing
    /// to wake it or a shutdown happens. Returns the number executed. Never throws for guest behaviour.
    /// </summary>
    public int Run(int maxInstructions)
    {
        if (ShutdownPending || StopRequested) return 0;
        if (!ReferenceEquals(_ram, Memory.Backing) || _mapVersion != Memory.MappingVersion)
        {
            _ram = Memory.Backing;
            FlushTlb(true);
        }
        _checkEvents = true;
        long start = InstructionCount;
        long end = start + maxInstructions;
        while (InstructionCount < end && !ShutdownPending && !StopRequested)
        {
            try
            {
                if (Halted)
                {
                    if (!WakeFromHalt()) break;
                }
                RunLoop(end);
                if (Halted && !WakeFromHalt()) break;
            }
            catch (CpuFault f)
            {
                HandleFault(f);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                ShutdownPending = true;
                ShutdownReason = $"emulator error at {_sel[CS]:X4}:{_startEip:X8}: {e.GetType().Name}: {e.Message}";
                HostError?.Invoke(e);
            }
        }
        return (int)(InstructionCount - start);
    }

    private bool WakeFromHalt()
    {
        if (_nmiPending && !_nmiBlocked) { Halted = false; _checkEvents = true; return true; }
        if ((_flags & IF) != 0 && _pic != null && _pic.HasPendingInterrupt) { Halted = false; _checkEvents = true; return true; }
        return false;
    }

    private void RunLoop(long end)
    {
        while (InstructionCount < end)
        {
            if (_checkEvents)
            {
                if (StopRequested) return;
                if (CheckEvents()) { if (Halted) return; continue; }
                if (Halted || ShutdownPending) return;
            }
            _startEip = _eip;
            if (!_useBlocks || !RunBlock(end))
            {
                if (_execBpMask != 0 && !_rfSkip) CheckExecBreakpoints();
                Step();
                InstructionCount++;
            }
            if (_stopLoop) { _stopLoop = false; if (Halted) return; }
        }
    }

    /// <summary>Set by instructions that must end the run loop at the boundary (HLT).</summary>
    private bool _stopLoop;

    /// <summary>Handles what may happen at an instruction boundary: the debug trap of the instruction just done
    /// (single-step, data/I-O breakpoints), NMI, maskable interrupts; then arms single-step and consumes RF for the
    /// next instruction. Returns true when an interrupt was delivered (the loop re-checks).</summary>
    private bool CheckEvents()
    {
        _checkEvents = false;
        _rfSkip = false;
        if ((_traceArmed || _dbTrapHits != 0) && !_ssShadow)
        {
            DeliverDebugTrap();
            _checkEvents = true;
            return true;
        }
        if (_shadow)
        {
            // Interrupt shadow (STI, MOV SS, POP SS): no interrupt before the next instruction; after MOV SS/POP SS
            // the debug traps (single-step, data breakpoints) wait for the end of the next instruction too.
            _shadow = _ssShadow = false;
            _checkEvents = true;
        }
        else
        {
            if (_nmiPending && !_nmiBlocked)
            {
                _nmiPending = false;
                _nmiBlocked = true;
                Halted = false;
                _startEip = _eip;
                DeliverInterrupt(2, InterruptKind.External, false, 0);
                _checkEvents = true;
                return true;
            }
            if ((_flags & IF) != 0 && _pic != null && _pic.HasPendingInterrupt)
            {
                byte vector = _pic.AcknowledgeInterrupt();
                Halted = false;
                _startEip = _eip;
                DeliverInterrupt(vector, InterruptKind.External, false, 0);
                _checkEvents = true;
                return true;
            }
        }
        if ((_flags & TF) != 0) { _traceArmed = true; _checkEvents = true; }
        if ((_flags & RF) != 0)
        {
            // RF suppresses instruction breakpoints for the next instruction and is cleared as it starts.
            _flags &= ~RF;
            _rfSkip = true;
            _checkEvents = true;
        }
        return false;
    }
}

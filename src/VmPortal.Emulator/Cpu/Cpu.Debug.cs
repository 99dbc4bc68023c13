namespace VmPortal.Emulator.Cpu;

// Debug registers (DR0-DR3 breakpoint addresses, DR6 status, DR7 control), single-step (EFLAGS.TF), the resume flag
// (EFLAGS.RF) and alignment checking (#AC). Intel SDM vol. 3 ch. 17 "Debug, branch profile..." and 6.15 (#AC).
//
// Cost when nothing is enabled: the run loop tests one field per instruction only on the interpreter path (the
// decoded-block cache is used only while no instruction breakpoint is enabled), and memory accesses pay nothing:
// while a data breakpoint or alignment checking is active, _tlbUserBase points at a TLB region that never holds an
// entry, so every data access takes the slow path, which checks them (MemoryHooks).
public sealed partial class Cpu
{
    // DR6 / DR7 bits.
    private const uint DR6_BD = 1u << 13, DR6_BS = 1u << 14, DR6_BT = 1u << 15, DR6_B0_B3 = 0xF;
    private const uint DR7_GD = 1u << 13, DR7_LocalEnables = 0x55;

    /// <summary>First TLB index of the region that is never filled (2 × TlbEntries long: read and write kinds).</summary>
    private const int NoFastTlbBase = 4 * TlbEntries;

    private bool _blockCacheEnabled = Environment.GetEnvironmentVariable("VMPORTAL_CPU_CACHE") != "0";
    private bool _useBlocks = true;      // block cache on and no instruction breakpoint enabled

    // Bit i set: breakpoint i is enabled (DR7 Li or Gi) with that kind (DR7 R/Wi: 00 execute, 01 write, 11 read or
    // write, 10 I/O when CR4.DE=1).
    private uint _execBpMask, _dataWriteBpMask, _dataReadBpMask, _ioBpMask;
    private readonly uint[] _bpLen = new uint[4];   // 1, 2, 4 or 8 bytes (DR7 LENi 00, 01, 11, 10)

    private uint _dbTrapHits;   // B0-B3 of data / I/O breakpoints hit by the current instruction, BT after a task
                                // switch to a TSS with its T bit set: a #DB trap after the instruction
    private bool _traceArmed;   // the current instruction started with TF=1: single-step trap after it
    private bool _ssShadow;     // MOV SS/POP SS just executed: debug traps wait one more instruction
    private bool _rfSkip;       // RF was set at this instruction's start: no instruction breakpoint check
    private bool _acActive;     // CR0.AM && EFLAGS.AC && CPL 3: misaligned data accesses raise #AC(0)
    private bool _memHooks;     // _acActive or a data breakpoint enabled: data accesses take the slow path

    /// <summary>Turns the decoded-instruction cache off (every instruction interpreted): for differential tests.
    /// Defaults to on; the environment variable VMPORTAL_CPU_CACHE=0 turns it off (A/B measurements). While an
    /// instruction breakpoint is enabled in DR7 the cache is bypassed anyway.</summary>
    public bool BlockCacheEnabled
    {
        get => _blockCacheEnabled;
        set { _blockCacheEnabled = value; UpdateDebugState(); }
    }

    /// <summary>Debug register DR0-DR7 (DR4/DR5 read as DR6/DR7), for debuggers and tests.</summary>
    public uint GetDebugRegister(int index) => _dr[index is 4 ? 6 : index is 5 ? 7 : index & 7];

    /// <summary>Recomputes the breakpoint masks after a DR7 or CR4.DE change.</summary>
    private void UpdateDebugState()
    {
        uint dr7 = _dr[7];
        uint exec = 0, w = 0, r = 0, io = 0;
        for (int i = 0; i < 4; i++)
        {
            uint len = (dr7 >> (18 + 4 * i)) & 3;
            _bpLen[i] = len switch { 0 => 1u, 1 => 2u, 2 => 8u, _ => 4u };
            if (((dr7 >> (2 * i)) & 3) == 0) continue;
            switch ((dr7 >> (16 + 4 * i)) & 3)
            {
                case 0: exec |= 1u << i; break;
                case 1: w |= 1u << i; break;
                case 3: w |= 1u << i; r |= 1u << i; break;
                default: if ((_cr4 & CR4_DE) != 0) io |= 1u << i; break; // 10 without CR4.DE: undefined, ignored
            }
        }
        _execBpMask = exec;
        _dataWriteBpMask = w;
        _dataReadBpMask = r;
        _ioBpMask = io;
        _useBlocks = _blockCacheEnabled && exec == 0;
        UpdateMemHooks();
    }

    /// <summary>Recomputes alignment checking and the TLB base of data accesses (after CR0, EFLAGS.AC, CPL or DR7 changes).</summary>
    private void UpdateMemHooks()
    {
        _acActive = (_cr0 & CR0_AM) != 0 && (_flags & AC) != 0 && _cpl == 3;
        _memHooks = _acActive || (_dataWriteBpMask | _dataReadBpMask) != 0;
        _tlbUserBase = _memHooks ? NoFastTlbBase : _cpl == 3 ? 2 * TlbEntries : 0;
    }

    /// <summary>Slow path of a data access while hooks are active: alignment check, then data breakpoints.</summary>
    private void MemoryHooks(uint lin, int size, bool write)
    {
        if (_acActive && (lin & (uint)(size - 1)) != 0) throw Fault(17, 0);
        uint m = write ? _dataWriteBpMask : _dataReadBpMask;
        if (m != 0) _dbTrapHits |= MatchBreakpoints(m, lin, (uint)size);
        if (_dbTrapHits != 0) _checkEvents = true;
    }

    /// <summary>Breakpoints of <paramref name="mask"/> whose (LEN-aligned) range overlaps [addr, addr+size).</summary>
    private uint MatchBreakpoints(uint mask, uint addr, uint size)
    {
        uint hits = 0;
        for (int i = 0; i < 4; i++)
        {
            if ((mask & (1u << i)) == 0) continue;
            uint len = _bpLen[i];
            ulong a = _dr[i] & ~(len - 1);
            if (addr < a + len && a < (ulong)addr + size) hits |= 1u << i;
        }
        return hits;
    }

    /// <summary>I/O breakpoints (CR4.DE=1, R/W 10): a trap after the IN/OUT/INS/OUTS touching the port.</summary>
    private void IoBreakpoints(ushort port, int size)
    {
        uint hits = MatchBreakpoints(_ioBpMask, port, (uint)size);
        if (hits != 0) { _dbTrapHits |= hits; _checkEvents = true; }
    }

    /// <summary>Instruction breakpoints, checked before the instruction at CS:EIP (fault: EIP stays on it).</summary>
    private void CheckExecBreakpoints()
    {
        uint hits = MatchBreakpoints(_execBpMask, _csBase + _eip, 1);
        if (hits == 0) return;
        _dr[6] = (_dr[6] & ~DR6_B0_B3) | hits;
        _codeBreakpointFault = true;
        throw Fault(1);
    }

    private bool _codeBreakpointFault;

    /// <summary>
    /// At an instruction boundary: the debug trap of the instruction just completed (single-step BS and data/I/O
    /// breakpoint hits B0-B3 in DR6). Returns true when a #DB was delivered.
    /// </summary>
    private bool DeliverDebugTrap()
    {
        uint dr6 = _dr[6];
        if ((_dbTrapHits & DR6_B0_B3) != 0) dr6 = (dr6 & ~DR6_B0_B3) | (_dbTrapHits & DR6_B0_B3);
        dr6 |= _dbTrapHits & DR6_BT;
        if (_traceArmed) dr6 |= DR6_BS;
        _dr[6] = dr6;
        _dbTrapHits = 0;
        _traceArmed = false;
        _startEip = _eip;
        DeliverInterrupt(1, InterruptKind.Trap, false, 0);
        return true;
    }

    /// <summary>MOV to/from DRn: #GP(0) above CPL 0, #UD for DR4/DR5 with CR4.DE, #DB (DR6.BD) when DR7.GD is set.</summary>
    private void MovDr(bool toDr)
    {
        DecodeModRM();
        if (_pe && (_cpl != 0 || _v86)) throw Fault(13, 0);
        int dr = _regField;
        if ((dr == 4 || dr == 5) && (_cr4 & CR4_DE) != 0) throw Fault(6);
        if ((_dr[7] & DR7_GD) != 0)
        {
            _dr[6] |= DR6_BD;
            throw Fault(1);
        }
        if (dr == 4) dr = 6;
        if (dr == 5) dr = 7;
        if (toDr)
        {
            uint v = _r[_rm];
            if (dr == 6) v = (v & 0x0000_E00F) | 0xFFFF_0FF0;
            if (dr == 7) v = (v & 0xFFFF_2BFF) | 0x400;
            _dr[dr] = v;
            if (dr == 7) UpdateDebugState();
        }
        else _r[_rm] = _dr[dr];
    }
}

namespace VmPortal.Emulator.Cpu;

// Control/debug registers, CPUID identity, MSRs, time-stamp counter, SYSENTER/SYSEXIT.
public sealed partial class Cpu
{
    // MSR numbers Linux and SeaBIOS touch.
    private const uint MsrTsc = 0x10, MsrApicBase = 0x1B, MsrBiosSignId = 0x8B, MsrMtrrCap = 0xFE,
        MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176, MsrMcgCap = 0x179,
        MsrMcgStatus = 0x17A, MsrMiscEnable = 0x1A0, MsrMtrrPhysBase0 = 0x200, MsrMtrrFix64K = 0x250,
        MsrMtrrFix16K0 = 0x258, MsrMtrrFix16K1 = 0x259, MsrMtrrFix4K0 = 0x268, MsrMtrrFix4KLast = 0x26F,
        MsrPat = 0x277, MsrMtrrDefType = 0x2FF, MsrPlatformId = 0x17, MsrEbcHardPowerOn = 0x2A, MsrTscAdjust = 0x3B;

    private void MovCr(bool toCr)
    {
        DecodeModRM(); // the mod field is ignored: always a register
        if (_pe && (_cpl != 0 || _v86)) throw Fault(13, 0);
        int cr = _regField;
        if (!toCr)
        {
            uint v = cr switch
            {
                0 => _cr0,
                2 => _cr2,
                3 => _cr3,
                4 => _cr4,
                _ => throw Fault(6),
            };
            _r[_rm] = v;
            return;
        }
        uint nv = _r[_rm];
        switch (cr)
        {
            case 0: WriteCr0(nv); return;
            case 2: _cr2 = nv; return;
            case 3:
                _cr3 = nv & 0xFFFF_F018;
                FlushTlb(false);
                return;
            case 4:
            {
                const uint supported = CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT;
                if ((nv & ~supported) != 0) throw Fault(13, 0);
                uint old = _cr4;
                _cr4 = nv;
                if (((old ^ nv) & (CR4_PSE | CR4_PGE)) != 0) FlushTlb(true);
                if (((old ^ nv) & CR4_DE) != 0) UpdateDebugState();
                return;
            }
            default: throw Fault(6);
        }
    }

    private void WriteCr0(uint v)
    {
        if ((v & CR0_PG) != 0 && (v & CR0_PE) == 0) throw Fault(13, 0);
        if ((v & CR0_NW) != 0 && (v & CR0_CD) == 0) throw Fault(13, 0);
        uint old = _cr0;
        _cr0 = v | CR0_ET;
        _paging = (_cr0 & CR0_PG) != 0;
        if (((old ^ _cr0) & CR0_AM) != 0) UpdateMemHooks();
        if (((old ^ _cr0) & (CR0_PG | CR0_WP | CR0_PE)) != 0) FlushTlb(true);
        if (((old ^ _cr0) & CR0_PE) != 0)
        {
            UpdateMode();
            if (!_pe) SetCpl(0);
        }
    }

    private ulong ReadTsc()
    {
        long ticks;
        var src = TimeSourceNs;
        if (src != null) ticks = (long)((decimal)src() * TscFrequencyHz / 1_000_000_000m);
        else ticks = InstructionCount;
        return (ulong)(ticks + _tscOffset);
    }

    /// <summary>The processor brand string of CPUID leaves 80000002h-80000004h: ASCII, NUL-padded to 48 bytes.</summary>
    public const string BrandString = "VmPortal Virtual CPU (i686)";

    /// <summary>Highest basic and extended CPUID leaves. Leaf 7 (structured features: TSC_ADJUST) needs a basic
    /// maximum of at least 7; the extended maximum stops at 80000007h (invariant TSC) because a guest that sees
    /// 80000008h takes its physical/linear address widths from it.</summary>
    private const uint CpuidMaxBasic = 7, CpuidMaxExtended = 0x8000_0007;

    /// <summary>
    /// CPUID: a "GenuineIntel" family 6 model 3 stepping 3 (Pentium Pro/II class) identity reporting only what is
    /// implemented (leaf 1 EDX: FPU VME DE PSE TSC MSR CX8 SEP PGE CMOV, FXSR with the x87 — no PAE, APIC, MTRR, PAT,
    /// MMX, SSE), plus: leaf 7.0 EBX bit 1 TSC_ADJUST (MSR 3Bh), the brand string, and the invariant TSC
    /// (80000007h EDX bit 8: our TSC is derived from guest time, which runs at one constant rate).
    /// Leaf 4 describes the caches of the leaf 2 descriptors. Leaves 3, 5, 6, 7 with a subleaf other than 0, and
    /// 80000001h/80000005h/80000006h are present but all zero; leaves above the maxima return zeros (not the data
    /// of the highest basic leaf as some Intel parts do).
    /// </summary>
    private void Cpuid()
    {
        uint leaf = _r[EAX], sub = _r[ECX];
        uint a = 0, b = 0, c = 0, d = 0;
        switch (leaf)
        {
            case 0:
                a = CpuidMaxBasic;
                b = 0x756E_6547; d = 0x4965_6E69; c = 0x6C65_746E; // "GenuineIntel"
                break;
            case 1:
                a = 0x0000_0633; // family 6, model 3, stepping 3
                d = CpuidFeatures;
                break;
            case 2:
                a = 0x0302_0101; d = 0x0C04_0843; // P6-style cache/TLB descriptors
                break;
            case 4:
                // Deterministic cache parameters, the same caches as the leaf 2 descriptors (a guest with a basic
                // maximum >= 4 reads these instead): L1 data and L1 instruction 16 KiB, L2 512 KiB, 4-way, 32-byte
                // lines, one logical processor per cache and one core per package.
                switch (sub)
                {
                    case 0: a = 0x121; b = 0x00C0_001F; c = 127; break;  // type 1 (data), level 1, self-initialising
                    case 1: a = 0x122; b = 0x00C0_001F; c = 127; break;  // type 2 (instruction), level 1
                    case 2: a = 0x143; b = 0x00C0_001F; c = 4095; break; // type 3 (unified), level 2
                }
                break;
            case 7:
                if (sub == 0) b = 1u << 1; // EAX = 0: no further subleaves; EBX bit 1: IA32_TSC_ADJUST
                break;
            case 0x8000_0000:
                a = CpuidMaxExtended;
                break;
            case 0x8000_0002: case 0x8000_0003: case 0x8000_0004:
            {
                int o = (int)(leaf - 0x8000_0002) * 16;
                a = BrandDword(o); b = BrandDword(o + 4); c = BrandDword(o + 8); d = BrandDword(o + 12);
                break;
            }
            case 0x8000_0007:
                d = 1u << 8; // invariant TSC
                break;
        }
        _r[EAX] = a; _r[EBX] = b; _r[ECX] = c; _r[EDX] = d;
    }

    private static uint BrandDword(int offset)
    {
        uint v = 0;
        for (int k = 0; k < 4; k++)
        {
            int i = offset + k;
            uint ch = i < BrandString.Length && i < 47 ? BrandString[i] : 0u; // byte 47 is always the terminating NUL
            v |= (ch & 0xFF) << (8 * k);
        }
        return v;
    }

    private uint CpuidFeatures
    {
        get
        {
            uint d = 0;
            if (HasFpu) d |= 1u << 0;      // FPU
            d |= 1u << 1;                  // VME (and PVI): Cpu.Vme.cs
            d |= 1u << 2;                  // DE
            d |= 1u << 3;                  // PSE
            d |= 1u << 4;                  // TSC
            d |= 1u << 5;                  // MSR
            d |= 1u << 8;                  // CX8
            d |= 1u << 11;                 // SEP
            d |= 1u << 13;                 // PGE
            d |= 1u << 15;                 // CMOV
            if (HasFpu && FxsrSupported) d |= 1u << 24; // FXSR
            return d;
        }
    }

    private void Rdmsr()
    {
        if (_pe && _cpl != 0) throw Fault(13, 0);
        uint idx = _r[ECX];
        ulong v;
        switch (idx)
        {
            case MsrTsc: v = ReadTsc(); break;
            case MsrTscAdjust: v = (ulong)_tscAdjust; break;
            case MsrApicBase: v = _apicBase; break;
            case MsrPlatformId: v = 0; break;
            case MsrEbcHardPowerOn: v = 0; break;
            case MsrBiosSignId: v = 0; break;
            case MsrMtrrCap: v = 0x508; break; // 8 variable ranges, fixed ranges, WC
            case MsrSysenterCs: v = _sysenterCs; break;
            case MsrSysenterEsp: v = _sysenterEsp; break;
            case MsrSysenterEip: v = _sysenterEip; break;
            case MsrMcgCap: v = 0; break;
            case MsrMcgStatus: v = 0; break;
            case MsrMiscEnable: v = 1; break;
            case MsrPat: v = _pat; break;
            case MsrMtrrDefType: v = _mtrr[31]; break;
            default:
                if (idx >= MsrMtrrPhysBase0 && idx < MsrMtrrPhysBase0 + 16) { v = _mtrr[idx - MsrMtrrPhysBase0]; break; }
                if (idx == MsrMtrrFix64K) { v = _mtrr[16]; break; }
                if (idx == MsrMtrrFix16K0 || idx == MsrMtrrFix16K1) { v = _mtrr[17 + idx - MsrMtrrFix16K0]; break; }
                if (idx >= MsrMtrrFix4K0 && idx <= MsrMtrrFix4KLast) { v = _mtrr[19 + idx - MsrMtrrFix4K0]; break; }
                throw Fault(13, 0);
        }
        _r[EAX] = (uint)v;
        _r[EDX] = (uint)(v >> 32);
    }

    private void Wrmsr()
    {
        if (_pe && _cpl != 0) throw Fault(13, 0);
        uint idx = _r[ECX];
        ulong v = ((ulong)_r[EDX] << 32) | _r[EAX];
        switch (idx)
        {
            case MsrTsc:
            {
                // SDM 17.17.3: a write to the TSC adds the same change to IA32_TSC_ADJUST.
                long delta = (long)v - (long)ReadTsc();
                _tscOffset += delta;
                _tscAdjust += delta;
                return;
            }
            case MsrTscAdjust:
            {
                // Writing IA32_TSC_ADJUST moves the TSC by the difference to the old adjustment.
                _tscOffset += (long)v - _tscAdjust;
                _tscAdjust = (long)v;
                return;
            }
            case MsrApicBase: _apicBase = v; return;
            case MsrBiosSignId: return;
            case MsrSysenterCs: _sysenterCs = (uint)v & 0xFFFF; return;
            case MsrSysenterEsp: _sysenterEsp = (uint)v; return;
            case MsrSysenterEip: _sysenterEip = (uint)v; return;
            case MsrMcgStatus: return;
            case MsrMiscEnable: return;
            case MsrPat: _pat = v; return;
            case MsrMtrrDefType: _mtrr[31] = v; return;
            default:
                if (idx >= MsrMtrrPhysBase0 && idx < MsrMtrrPhysBase0 + 16) { _mtrr[idx - MsrMtrrPhysBase0] = v; return; }
                if (idx == MsrMtrrFix64K) { _mtrr[16] = v; return; }
                if (idx == MsrMtrrFix16K0 || idx == MsrMtrrFix16K1) { _mtrr[17 + idx - MsrMtrrFix16K0] = v; return; }
                if (idx >= MsrMtrrFix4K0 && idx <= MsrMtrrFix4KLast) { _mtrr[19 + idx - MsrMtrrFix4K0] = v; return; }
                throw Fault(13, 0);
        }
    }

    private void Sysenter()
    {
        if (!_pe || (_sysenterCs & 0xFFFC) == 0) throw Fault(13, 0);
        MaterializeFlags();
        _flags &= ~(VM | IF | RF);
        ushort cs = (ushort)(_sysenterCs & 0xFFFC);
        SetSegmentFromDescriptor(CS, cs, 0, 0xFFFF_FFFF, 0xC09B);
        SetSegmentFromDescriptor(SS, (ushort)(cs + 8), 0, 0xFFFF_FFFF, 0xC093);
        SetCpl(0);
        UpdateMode();
        _r[ESP] = _sysenterEsp;
        _eip = _sysenterEip;
    }

    private void Sysexit()
    {
        if (!_pe || _v86 || _cpl != 0 || (_sysenterCs & 0xFFFC) == 0) throw Fault(13, 0);
        ushort cs = (ushort)((_sysenterCs + 16) | 3);
        SetCpl(3);
        SetSegmentFromDescriptor(CS, cs, 0, 0xFFFF_FFFF, 0xC0FB);
        SetSegmentFromDescriptor(SS, (ushort)((_sysenterCs + 24) | 3), 0, 0xFFFF_FFFF, 0xC0F3);
        _r[ESP] = _r[ECX];
        _eip = _r[EDX];
    }
}

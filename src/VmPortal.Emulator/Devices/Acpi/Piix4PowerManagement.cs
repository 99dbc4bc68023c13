using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Devices.Acpi;

/// <summary>
/// Intel 82371AB PIIX4 power-management function (8086:7113, class 06 80 00, rev 3) at PCI 00:01.3: the ACPI
/// fixed hardware of QEMU's i440FX "pc" machine, as SeaBIOS 1.16 and Linux expect it.
/// <para>
/// PCI config: 0x40 PMBA (I/O base, 64 bytes, bit 0 reads 1), 0x80 PMREGMISC bit 0 enables the PM I/O space,
/// 0x58 DEVACTB (bit 25 APMC_EN reads 1 from reset: "SMM already set up", so SeaBIOS skips its SMM relocation —
/// this PC has no SMM), 0x5F/0x67 device-resource enables read by the DSDT (0x67 bit 3 = COM1 present),
/// 0x90 SMBus base and 0xD2 SMBus host config (stored; no SMBus controller behind them). Interrupt line 9.
/// </para>
/// <para>
/// PM I/O at PMBA (SeaBIOS puts it at 0xB000): +0 PM1_STS (write 1 to clear: TMR_STS bit 0, GBL_STS 5,
/// PWRBTN_STS 8, RTC_STS 10, WAK_STS 15), +2 PM1_EN (same bits), +4 PM1_CNT (SCI_EN bit 0, SLP_TYP bits 12–10,
/// SLP_EN bit 13, write-only), +8 PM_TMR (<see cref="AcpiPmTimer"/>), other bytes (GPSTS/GPEN, PCNTRL, GLBCTL…)
/// are stored. GPE0 block at 0xAFE0 (+0 GPE0_STS, write 1 to clear; +2 GPE0_EN), where SeaBIOS's FADT puts it.
/// APM control 0xB2 (the FADT's SMI_CMD: 0xF1 sets SCI_EN, 0xF0 clears it, as QEMU does without SMM) and APM
/// status 0xB3. QEMU's ACPI hotplug registers that the SeaBIOS DSDT/SSDT read answer "nothing to do":
/// 0xAE00–0xAE0F (PCI hotplug: no slot up/down, no ejectable slot), 0xAF00–0xAF1F (CPU present bitmap: CPU 0).
/// </para>
/// <para>
/// SCI: ISA IRQ 9, level, asserted while SCI_EN and (PM1_STS &amp; PM1_EN or GPE0_STS &amp; GPE0_EN) has a bit
/// set. It is wired to IRQ 9 directly (not through a PIRQ; SeaBIOS routes PIRQs to 10/11 only); the guest makes
/// IRQ 9 level-triggered in the ELCR. <see cref="PressPowerButton"/> latches PWRBTN_STS. A PM1_CNT write with
/// SLP_EN and SLP_TYP 0 (the _S5 package of SeaBIOS's SSDT) raises <see cref="PowerOffRequested"/> (soft off).
/// S3/S4 are not offered (fw_cfg "etc/system-states", <see cref="SystemStatesFile"/>); other sleep types are ignored.
/// </para>
/// Guests: SeaBIOS (finds 8086:7113, programs PMBA, uses PM_TMR as its clock, builds RSDP/RSDT/FADT/FACS/DSDT/SSDT/
/// MADT for it), Linux ACPI (SCI, fixed power button, acpi_pm clocksource, S5 power off), memtest86+ (PM timer).
/// </summary>
public sealed class Piix4PowerManagement : PciFunction
{
    public const ushort IntelVendorId = 0x8086, Piix4PmDeviceId = 0x7113;
    public const int PmbaOffset = 0x40, DevactbOffset = 0x58, PmRegMiscOffset = 0x80;
    public const int SmbusBaseOffset = 0x90, SmbusHostConfigOffset = 0xD2;
    public const int PmIoSize = 64;
    public const int SciIrq = 9;

    public const int Pm1StsOffset = 0x00, Pm1EnOffset = 0x02, Pm1CntOffset = 0x04, PmTmrOffset = 0x08;
    public const ushort TmrSts = 1 << 0, BmSts = 1 << 4, GblSts = 1 << 5, PwrBtnSts = 1 << 8, RtcSts = 1 << 10, WakSts = 1 << 15;
    public const ushort SciEn = 1 << 0, SlpEn = 1 << 13;
    public const int SlpTypShift = 10, SlpTypMask = 7;
    /// <summary>SLP_TYP of the soft-off state: SeaBIOS's SSDT has Name(_S5, Package { 0, 0, 0, 0 }).</summary>
    public const int SlpTypSoftOff = 0;

    public const ushort Gpe0BlockPort = 0xAFE0, Gpe0BlockLength = 4;
    public const ushort ApmControlPort = 0xB2, ApmStatusPort = 0xB3;
    public const byte AcpiEnableCommand = 0xF1, AcpiDisableCommand = 0xF0;
    public const ushort PciHotplugPort = 0xAE00, PciHotplugLength = 16, CpuHotplugPort = 0xAF00, CpuHotplugLength = 32;

    /// <summary>
    /// fw_cfg "etc/system-states" for SeaBIOS: one byte per S0–S5, bit 7 = offered (low bits: SLP_TYP).
    /// Only S0 and S5: no suspend-to-RAM or -disk (this PC cannot keep RAM through a sleep or wake up from one).
    /// </summary>
    public const string SystemStatesFile = "etc/system-states";
    public static byte[] SystemStates => [0x80, 0, 0, 0, 0, 0x80];

    /// <summary>PM1 events that can raise an SCI.</summary>
    private const ushort Pm1EventMask = TmrSts | GblSts | PwrBtnSts | RtcSts;

    private readonly IoBus _io;
    private readonly IIrqSink _irq;
    private readonly MachineClock _clock;
    private readonly GuestTimer _tmrTimer;
    private readonly byte[] _pmIo = new byte[PmIoSize]; // stored bytes of the registers without behaviour
    private ushort _mappedBase;
    private ushort _pm1Sts, _pm1En, _pm1Cnt, _gpeSts, _gpeEn;
    private byte _apmControl, _apmStatus;
    private long _tmrStsEpochTicks; // TMR_STS is set once bit 23 of the counter differs from its value at this tick
    private bool _sci;

    public Piix4PowerManagement(IoBus io, IIrqSink irq, TimerScheduler scheduler, bool com1Present)
        : base(IntelVendorId, Piix4PmDeviceId, 0x06, 0x80, 0x00, revision: 0x03)
    {
        _io = io;
        _irq = irq;
        _clock = scheduler.Clock;
        _tmrTimer = scheduler.CreateTimer("acpi-pm-timer", _ => OnTimerBit23());
        SetInterruptPin(1);
        Config[InterruptLineOffset] = SciIrq;
        Config[PmbaOffset] = 0x01;                    // I/O space indicator
        Config[DevactbOffset + 3] = 0x02;            // APMC_EN: SMM set-up already done (there is no SMM)
        Config[0x67] = (byte)(com1Present ? 0x08 : 0); // COM1 decode enable, read by the DSDT's COM1._STA
        io.Register(Gpe0BlockPort, Gpe0BlockLength, ReadGpe, WriteGpe, wideAccess: true);
        io.Register(ApmControlPort, 2, ReadApm, WriteApm);
        io.Register(PciHotplugPort, PciHotplugLength, (p, s) => 0, (p, s, v) => { }, wideAccess: true);
        io.Register(CpuHotplugPort, CpuHotplugLength, (p, s) => p == CpuHotplugPort ? 1u : 0u, (p, s, v) => { });
    }

    /// <summary>The guest wrote SLP_EN with the soft-off sleep type (S5): the machine powers off.</summary>
    public event Action? PowerOffRequested;

    /// <summary>PM I/O base while decoded, else 0.</summary>
    public ushort PmIoBase => _mappedBase;
    public bool SciEnabled => (_pm1Cnt & SciEn) != 0;
    /// <summary>The guest's OS listens for the power button (ACPI mode and PWRBTN_EN set).</summary>
    public bool PowerButtonEnabled => SciEnabled && (_pm1En & PwrBtnSts) != 0;
    /// <summary>The SCI line (IRQ 9) as driven now.</summary>
    public bool SciLevel => _sci;
    public ushort Pm1Status => (ushort)(_pm1Sts | (TimerStatusDue() ? TmrSts : 0));

    /// <summary>Presses the power button: latches PWRBTN_STS, raising an SCI if the guest enabled the event.</summary>
    public void PressPowerButton()
    {
        _pm1Sts |= PwrBtnSts;
        UpdateSci();
    }

    /// <summary>Named, versioned snapshot (the PCI configuration space is saved by <see cref="PciFunction.SaveConfigState"/>).</summary>
    public sealed record State(int Version, ushort Pm1Sts, ushort Pm1En, ushort Pm1Cnt, ushort Gpe0Sts, ushort Gpe0En,
        byte ApmControl, byte ApmStatus, long TmrStsEpochTicks, byte[] OtherPmRegisters)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _pm1Sts, _pm1En, _pm1Cnt, _gpeSts, _gpeEn,
        _apmControl, _apmStatus, _tmrStsEpochTicks, (byte[])_pmIo.Clone());

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"PIIX4 PM state version {s.Version} is not supported.");
        (_pm1Sts, _pm1En, _pm1Cnt, _gpeSts, _gpeEn) = (s.Pm1Sts, s.Pm1En, s.Pm1Cnt, s.Gpe0Sts, s.Gpe0En);
        (_apmControl, _apmStatus, _tmrStsEpochTicks) = (s.ApmControl, s.ApmStatus, s.TmrStsEpochTicks);
        s.OtherPmRegisters.AsSpan(0, PmIoSize).CopyTo(_pmIo);
        ArmTimer();
        UpdateSci();
    }

    protected override void OnConfigLoaded() => Remap();

    public override void WriteConfig(int offset, int size, uint value)
    {
        base.WriteConfig(offset, size, value);
        if (Touches(offset, size, PmbaOffset, 4) || Touches(offset, size, PmRegMiscOffset, 1)) Remap();
    }

    protected override void WriteDeviceRegister(int offset, byte value)
    {
        switch (offset)
        {
            case PmbaOffset: Config[offset] = (byte)(value & 0xC0 | 0x01); return; // 64-byte aligned, I/O
            case PmbaOffset + 2: case PmbaOffset + 3: Config[offset] = 0; return;   // 16-bit I/O address
        }
        base.WriteDeviceRegister(offset, value);
    }

    private static bool Touches(int offset, int size, int reg, int regSize) => offset < reg + regSize && offset + size > reg;

    private void Remap()
    {
        if (_mappedBase != 0) { _io.Unregister(_mappedBase, PmIoSize); _mappedBase = 0; }
        uint pmba = ReadConfigRaw(PmbaOffset) & 0xFFC0;
        if ((Config[PmRegMiscOffset] & 1) == 0 || pmba == 0) return;
        _mappedBase = (ushort)pmba;
        _io.Register(_mappedBase, PmIoSize, ReadPm, WritePm, wideAccess: true);
    }

    // ---- PM I/O ----

    private uint ReadPm(ushort port, int size)
    {
        int off = port - _mappedBase;
        uint timer = AcpiPmTimer.ValueAt(_clock.NowNs);
        uint v = 0;
        for (int i = 0; i < size && off + i < PmIoSize; i++) v |= (uint)ReadPmByte(off + i, timer) << (8 * i);
        return v;
    }

    private byte ReadPmByte(int off, uint timer) => off switch
    {
        Pm1StsOffset => (byte)Pm1Status,
        Pm1StsOffset + 1 => (byte)(Pm1Status >> 8),
        Pm1EnOffset => (byte)_pm1En,
        Pm1EnOffset + 1 => (byte)(_pm1En >> 8),
        Pm1CntOffset => (byte)_pm1Cnt,
        Pm1CntOffset + 1 => (byte)((_pm1Cnt >> 8) & ~(SlpEn >> 8)), // SLP_EN is write-only
        >= PmTmrOffset and < PmTmrOffset + 4 => (byte)(timer >> (8 * (off - PmTmrOffset))),
        _ => _pmIo[off],
    };

    private void WritePm(ushort port, int size, uint value)
    {
        int off = port - _mappedBase;
        if (off == Pm1StsOffset && size >= 2) { ClearPm1Status((ushort)value); if (size == 4) WritePm1En((ushort)(value >> 16)); UpdateSci(); return; }
        if (off == Pm1EnOffset && size >= 2) { WritePm1En((ushort)value); UpdateSci(); return; }
        if (off == Pm1CntOffset && size >= 2) { WritePm1Cnt((ushort)value); UpdateSci(); return; }
        for (int i = 0; i < size && off + i < PmIoSize; i++) WritePmByte(off + i, (byte)(value >> (8 * i)));
        UpdateSci();
    }

    private void WritePmByte(int off, byte b)
    {
        switch (off)
        {
            case Pm1StsOffset: ClearPm1Status(b); return;
            case Pm1StsOffset + 1: ClearPm1Status((ushort)(b << 8)); return;
            case Pm1EnOffset: WritePm1En((ushort)(_pm1En & 0xFF00 | b)); return;
            case Pm1EnOffset + 1: WritePm1En((ushort)(_pm1En & 0x00FF | b << 8)); return;
            case Pm1CntOffset: WritePm1Cnt((ushort)(_pm1Cnt & 0xFF00 | b)); return;
            case Pm1CntOffset + 1: WritePm1Cnt((ushort)(_pm1Cnt & 0x00FF | b << 8)); return;
            case >= PmTmrOffset and < PmTmrOffset + 4: return; // read-only
            default: _pmIo[off] = b; return;
        }
    }

    private void ClearPm1Status(ushort w1c)
    {
        if ((w1c & TmrSts) != 0) _tmrStsEpochTicks = AcpiPmTimer.TicksAt(_clock.NowNs);
        _pm1Sts &= (ushort)~w1c;
    }

    private void WritePm1En(ushort value)
    {
        _pm1En = (ushort)(value & Pm1EventMask);
        ArmTimer();
    }

    private void WritePm1Cnt(ushort value)
    {
        _pm1Cnt = (ushort)(value & ~SlpEn);
        if ((value & SlpEn) == 0) return;
        int type = (value >> SlpTypShift) & SlpTypMask;
        if (type == SlpTypSoftOff) PowerOffRequested?.Invoke();
        // Other sleep types are not offered to the guest (etc/system-states): ignored, as on a board without them.
    }

    // ---- PM timer status ----

    private bool TimerStatusDue() =>
        (AcpiPmTimer.TicksAt(_clock.NowNs) >> 23) != (_tmrStsEpochTicks >> 23);

    private void ArmTimer()
    {
        if ((_pm1En & TmrSts) == 0) { _tmrTimer.Cancel(); return; }
        long next = ((AcpiPmTimer.TicksAt(_clock.NowNs) >> 23) + 1) << 23;
        _tmrTimer.Schedule(AcpiPmTimer.NsForTicks(next));
    }

    private void OnTimerBit23()
    {
        UpdateSci();
        ArmTimer();
    }

    // ---- GPE0, APM ----

    private uint ReadGpe(ushort port, int size)
    {
        int off = port - Gpe0BlockPort;
        uint regs = (uint)_gpeSts | (uint)_gpeEn << 16;
        return regs >> (8 * off);
    }

    private void WriteGpe(ushort port, int size, uint value)
    {
        int off = port - Gpe0BlockPort;
        for (int i = 0; i < size && off + i < Gpe0BlockLength; i++)
        {
            byte b = (byte)(value >> (8 * i));
            switch (off + i)
            {
                case 0: _gpeSts &= (ushort)~b; break;
                case 1: _gpeSts &= (ushort)~(b << 8); break;
                case 2: _gpeEn = (ushort)(_gpeEn & 0xFF00 | b); break;
                case 3: _gpeEn = (ushort)(_gpeEn & 0x00FF | b << 8); break;
            }
        }
        UpdateSci();
    }

    private uint ReadApm(ushort port, int size) => port == ApmControlPort ? _apmControl : _apmStatus;

    private void WriteApm(ushort port, int size, uint value)
    {
        if (port == ApmStatusPort) { _apmStatus = (byte)value; return; }
        _apmControl = (byte)value;
        if (_apmControl == AcpiEnableCommand) _pm1Cnt |= SciEn;
        else if (_apmControl == AcpiDisableCommand) _pm1Cnt &= unchecked((ushort)~SciEn);
        UpdateSci();
    }

    private void UpdateSci()
    {
        bool level = SciEnabled && ((Pm1Status & _pm1En & Pm1EventMask) != 0 || (_gpeSts & _gpeEn) != 0);
        if (level == _sci) return;
        _sci = level;
        _irq.SetIrq(SciIrq, level);
    }
}

using VmPortal.Emulator.Devices.Acpi;
using VmPortal.Emulator.Devices.Pci;

namespace VmPortal.Emulator.Tests.Devices.Acpi;

/// <summary>
/// The PIIX4 power-management function as SeaBIOS programs it (PMBA 0xB000 through config space 0x40/0x80) and as
/// Linux's ACPI core uses it (SMI_CMD 0xB2 ACPI enable, PM1 status/enable/control, PM timer, GPE0, S5).
/// </summary>
public class Piix4PowerManagementTests
{
    private const ushort PmBase = 0xB000;
    private readonly DeviceTestRig _rig = new();
    private readonly PciBus _bus;
    private readonly Piix4PowerManagement _pm;
    private int _powerOffs;

    public Piix4PowerManagementTests()
    {
        _bus = new PciBus(_rig.Io);
        _pm = new Piix4PowerManagement(_rig.Io, _rig.Pic, _rig.Scheduler, com1Present: true);
        _bus.Add(1, 3, _pm);
        _pm.PowerOffRequested += () => _powerOffs++;
    }

    private void CfgWrite(int reg, int size, uint value)
    {
        _rig.Io.Out32(0xCF8, 0x8000_0000u | (uint)(1 << 11 | 3 << 8 | reg & 0xFC));
        _rig.Io.Write((ushort)(0xCFC + (reg & 3)), size, value);
    }

    private uint Cfg(int reg, int size = 4)
    {
        _rig.Io.Out32(0xCF8, 0x8000_0000u | (uint)(1 << 11 | 3 << 8 | reg & 0xFC));
        return _rig.Io.Read((ushort)(0xCFC + (reg & 3)), size);
    }

    /// <summary>What SeaBIOS's piix4_pm_config_setup does, then Linux's acpi_enable().</summary>
    private void ProgramLikeSeaBiosAndEnableAcpi()
    {
        CfgWrite(0x40, 4, PmBase | 1u);
        CfgWrite(0x80, 1, 0x01);
        _rig.Io.Out8(0xB2, 0xF1);
    }

    [Fact]
    public void IdentifiesAsPiix4PmWithSmmAlreadySetUp()
    {
        Assert.Equal(0x7113_8086u, Cfg(0x00));
        Assert.Equal(0x06_80_00u, Cfg(0x08) >> 8);
        Assert.Equal(1u, Cfg(0x40) & 1);                         // PMBA is an I/O address
        Assert.NotEqual(0u, Cfg(0x58) & (1u << 25));               // APMC_EN: SeaBIOS skips SMM relocation
        Assert.Equal(0x08u, Cfg(0x67, 1) & 0x08);                  // COM1 present for the DSDT
    }

    [Fact]
    public void PmIoIsDecodedOnlyAtPmbaAfterPmRegMiscEnable()
    {
        CfgWrite(0x40, 4, PmBase | 1u);
        Assert.False(_rig.Io.IsClaimed(PmBase));
        CfgWrite(0x80, 1, 0x01);
        Assert.True(_rig.Io.IsClaimed(PmBase));
        Assert.Equal(PmBase, _pm.PmIoBase);
        CfgWrite(0x40, 4, 0x600 | 1u);
        Assert.False(_rig.Io.IsClaimed(PmBase));
        Assert.True(_rig.Io.IsClaimed(0x600 + 8));
    }

    [Fact]
    public void PmTimerCountsAt3579545HzOfGuestTimeAndWrapsAt24Bits()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        uint t0 = _rig.Io.In32(PmBase + 8);
        _rig.Advance(1_000_000_000);
        uint t1 = _rig.Io.In32(PmBase + 8);
        Assert.Equal(3_579_545u, (t1 - t0) & 0xFF_FFFF);
        _rig.Advance(10_000_000_000); // 35.8 M ticks: more than 2^24
        uint t2 = _rig.Io.In32(PmBase + 8);
        Assert.True(t2 <= 0xFF_FFFF);
        Assert.Equal((uint)(35_795_450 % (1 << 24)), (t2 - t1) & 0xFF_FFFF);
        Assert.Equal((byte)t2, _rig.Io.In8(PmBase + 8));          // byte reads see the same counter
    }

    [Fact]
    public void Pm1StatusIsWriteOneToClearAndSciFollowsStatusAndEnableAsALevel()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        Assert.True(_pm.SciEnabled);
        Assert.Equal(1, _rig.Io.In16(PmBase + 4) & 1);           // SCI_EN reads back
        _rig.Io.Out16(PmBase + 2, Piix4PowerManagement.PwrBtnSts); // PWRBTN_EN
        Assert.False(_pm.SciLevel);

        _pm.PressPowerButton();
        Assert.Equal(Piix4PowerManagement.PwrBtnSts, _rig.Io.In16(PmBase) & Piix4PowerManagement.PwrBtnSts);
        Assert.True(_pm.SciLevel);
        Assert.Equal(0x71, _rig.TakeInterrupt());                  // IRQ 9 = slave IR1 (vector base 0x70)

        // Level: still asserted after the interrupt was taken, until the guest clears the status bit.
        Assert.True(_pm.SciLevel);
        _rig.Io.Out16(PmBase, 0x0001);                            // writing another bit leaves PWRBTN_STS alone
        Assert.True(_pm.SciLevel);
        _rig.Io.Out16(PmBase, 0x0000);
        Assert.True(_pm.SciLevel);
        _rig.Io.Out16(PmBase, Piix4PowerManagement.PwrBtnSts);
        Assert.Equal(0, _rig.Io.In16(PmBase) & Piix4PowerManagement.PwrBtnSts);
        Assert.False(_pm.SciLevel);
    }

    [Fact]
    public void NoSciWhileTheEventIsDisabledOrAcpiModeIsOff()
    {
        CfgWrite(0x40, 4, PmBase | 1u);
        CfgWrite(0x80, 1, 0x01);
        _rig.Io.Out16(PmBase + 2, Piix4PowerManagement.PwrBtnSts);
        _pm.PressPowerButton();                                   // ACPI mode off: status latches, no SCI
        Assert.False(_pm.SciLevel);
        Assert.False(_pm.PowerButtonEnabled);
        _rig.Io.Out8(0xB2, 0xF1);                                 // ACPI enable through SMI_CMD
        Assert.True(_pm.SciLevel);
        _rig.Io.Out8(0xB2, 0xF0);                                 // ACPI disable
        Assert.False(_pm.SciLevel);
        _rig.Io.Out8(0xB2, 0xF1);
        _rig.Io.Out16(PmBase + 2, 0);                             // event disabled
        Assert.False(_pm.SciLevel);
    }

    [Fact]
    public void TimerStatusSetsEvery2Pow23TicksAndRaisesSciWhenEnabled()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        _rig.Io.Out16(PmBase + 2, Piix4PowerManagement.TmrSts);
        Assert.False(_pm.SciLevel);
        _rig.AdvanceInSteps(2_400_000_000, 10_000_000);           // 2^23 ticks = 2.3436 s
        Assert.True(_pm.SciLevel);
        Assert.Equal(1, _rig.Io.In16(PmBase) & 1);
        _rig.Io.Out16(PmBase, Piix4PowerManagement.TmrSts);
        Assert.False(_pm.SciLevel);
    }

    [Fact]
    public void Gpe0StatusIsWriteOneToClearAndEnableIsStored()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        _rig.Io.Out16(0xAFE2, 0x00FF);
        Assert.Equal(0x00FFu, _rig.Io.In16(0xAFE2));
        Assert.Equal(0u, _rig.Io.In16(0xAFE0));
        _rig.Io.Out16(0xAFE0, 0xFFFF);                            // nothing latched: stays zero, no SCI
        Assert.False(_pm.SciLevel);
    }

    [Fact]
    public void SlpEnWithSoftOffTypeRequestsPowerOffAndOtherTypesDoNot()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        _rig.Io.Out16(PmBase + 4, 1 << 10 | 1);                   // SLP_TYP 1 without SLP_EN: nothing
        _rig.Io.Out16(PmBase + 4, 1 << 13 | 1 << 10 | 1);          // S3 (not offered): ignored
        Assert.Equal(0, _powerOffs);
        Assert.Equal(0, _rig.Io.In16(PmBase + 4) & (1 << 13));     // SLP_EN is write-only
        _rig.Io.Out16(PmBase + 4, 1 << 13 | 0 << 10 | 1);          // _S5: SLP_TYP 0
        Assert.Equal(1, _powerOffs);
    }

    [Fact]
    public void SystemStatesOfferOnlyS0AndS5()
    {
        var states = Piix4PowerManagement.SystemStates;
        Assert.Equal(6, states.Length);
        Assert.Equal(0x80, states[0] & 0x80);
        Assert.Equal(0x80, states[5] & 0x80);
        Assert.All(states[1..5], b => Assert.Equal(0, b & 0x80));
    }

    [Fact]
    public void StateRoundTripsThroughItsNamedRecord()
    {
        ProgramLikeSeaBiosAndEnableAcpi();
        _rig.Io.Out16(PmBase + 2, Piix4PowerManagement.PwrBtnSts);
        _pm.PressPowerButton();
        var saved = _pm.SaveState();
        var config = _pm.SaveConfigState();

        var rig2 = new DeviceTestRig();
        var pm2 = new Piix4PowerManagement(rig2.Io, rig2.Pic, rig2.Scheduler, com1Present: true);
        new PciBus(rig2.Io).Add(1, 3, pm2);
        pm2.LoadConfigState(config);
        pm2.LoadState(saved);
        Assert.Equal(PmBase, pm2.PmIoBase);
        Assert.True(pm2.SciLevel);
        Assert.True(pm2.PowerButtonEnabled);
        Assert.Throws<InvalidDataException>(() => pm2.LoadState(saved with { Version = 99 }));
    }
}

using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Tests.Devices.Pic;

public class DualPicTests
{
    private readonly IoBus _io = new();
    private readonly DualPic _pic;

    public DualPicTests() => _pic = new DualPic(_io);

    private void Init(byte masterBase = 0x20, byte slaveBase = 0x28, byte icw4 = 0x01)
    {
        _io.Out8(0x20, 0x11); _io.Out8(0x21, masterBase); _io.Out8(0x21, 0x04); _io.Out8(0x21, icw4);
        _io.Out8(0xA0, 0x11); _io.Out8(0xA1, slaveBase); _io.Out8(0xA1, 0x02); _io.Out8(0xA1, icw4);
        _io.Out8(0x21, 0x00); _io.Out8(0xA1, 0x00);
    }

    private void Pulse(int irq) { _pic.SetIrq(irq, true); _pic.SetIrq(irq, false); }

    [Fact]
    public void InitialisationProgramsVectorsAndMasks()
    {
        Init();
        _io.Out8(0x21, 0xFB);
        Assert.Equal(0xFB, _io.In8(0x21));
        Assert.Equal(0x00, _io.In8(0xA1));
        Pulse(0);
        Assert.False(_pic.HasPendingInterrupt); // masked
        _io.Out8(0x21, 0xFA);
        Assert.True(_pic.HasPendingInterrupt);  // edge latched in IRR while masked
        Assert.Equal(0x20, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void EdgeTriggeredRequestIsLatchedAndMovesToIsrOnAck()
    {
        Init();
        Pulse(1);
        _io.Out8(0x20, 0x0A); // OCW3: read IRR
        Assert.Equal(0x02, _io.In8(0x20));
        Assert.Equal(0x21, _pic.AcknowledgeInterrupt());
        Assert.Equal(0x00, _io.In8(0x20));
        _io.Out8(0x20, 0x0B); // OCW3: read ISR
        Assert.Equal(0x02, _io.In8(0x20));
        _io.Out8(0x20, 0x20); // non-specific EOI
        Assert.Equal(0x00, _io.In8(0x20));
    }

    [Fact]
    public void HigherPriorityInServiceBlocksLowerUntilEoi()
    {
        Init();
        Pulse(0);
        Assert.Equal(0x20, _pic.AcknowledgeInterrupt());
        Pulse(4);
        Assert.False(_pic.HasPendingInterrupt);
        Pulse(0);
        Assert.False(_pic.HasPendingInterrupt); // IRQ0 itself in service
        _io.Out8(0x20, 0x60); // specific EOI for IRQ0
        Assert.True(_pic.HasPendingInterrupt);
        Assert.Equal(0x20, _pic.AcknowledgeInterrupt()); // IRQ0 beats IRQ4
        _io.Out8(0x20, 0x20);
        Assert.Equal(0x24, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void SlaveInterruptCascadesThroughIrq2AndNeedsBothEois()
    {
        Init(0x08, 0x70);
        Pulse(12);
        Assert.True(_pic.HasPendingInterrupt);
        Assert.Equal(0x74, _pic.AcknowledgeInterrupt());
        _io.Out8(0x20, 0x0B);
        Assert.Equal(0x04, _io.In8(0x20)); // master ISR: IR2
        _io.Out8(0xA0, 0x0B);
        Assert.Equal(0x10, _io.In8(0xA0)); // slave ISR: IR4
        Pulse(14);
        Assert.False(_pic.HasPendingInterrupt);
        _io.Out8(0xA0, 0x20);
        _io.Out8(0x20, 0x20);
        Assert.True(_pic.HasPendingInterrupt);
        Assert.Equal(0x76, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void SpuriousInterruptGivesIr7WithoutSettingIsr()
    {
        Init(0x08, 0x70);
        _pic.SetIrq(5, true);
        Assert.True(_pic.HasPendingInterrupt);
        _io.Out8(0x21, 0x20); // mask it before the CPU acknowledges
        Assert.Equal(0x0F, _pic.AcknowledgeInterrupt());
        _io.Out8(0x20, 0x0B);
        Assert.Equal(0x00, _io.In8(0x20));
    }

    [Fact]
    public void WithdrawnSlaveRequestGivesMasterSpuriousVector()
    {
        Init(0x08, 0x70);
        _pic.SetIrq(11, true);
        Assert.True(_pic.HasPendingInterrupt);
        // The slave line drops (level device): master still acknowledged IR2 in this model only if pending; drop it first.
        _io.Out8(0xA1, 0x08); // mask IRQ11 at the slave
        Assert.False(_pic.HasPendingInterrupt);
        Assert.Equal(0x0F, _pic.AcknowledgeInterrupt()); // nothing at all: master spurious
    }

    [Fact]
    public void AutoEoiLeavesIsrClear()
    {
        Init(0x08, 0x70, icw4: 0x03);
        Pulse(3);
        Assert.Equal(0x0B, _pic.AcknowledgeInterrupt());
        _io.Out8(0x20, 0x0B);
        Assert.Equal(0x00, _io.In8(0x20));
        Pulse(3);
        Assert.True(_pic.HasPendingInterrupt);
    }

    [Fact]
    public void LevelTriggeredViaElcrFollowsTheLine()
    {
        Init(0x08, 0x70);
        _io.Out8(0x4D1, 0xFF);
        Assert.Equal(0xDE, _io.In8(0x4D1)); // IRQ8 and IRQ13 stay edge
        _io.Out8(0x4D0, 0xFF);
        Assert.Equal(0xF8, _io.In8(0x4D0));
        _pic.SetIrq(11, true);
        Assert.Equal(0x73, _pic.AcknowledgeInterrupt());
        _io.Out8(0xA0, 0x20); _io.Out8(0x20, 0x20);
        Assert.True(_pic.HasPendingInterrupt); // still asserted: requests again after EOI
        _pic.SetIrq(11, false);
        Assert.False(_pic.HasPendingInterrupt); // level dropped: request withdrawn
    }

    [Fact]
    public void EdgeNeedsANewRisingEdge()
    {
        Init();
        _pic.SetIrq(6, true);
        Assert.Equal(0x26, _pic.AcknowledgeInterrupt());
        _io.Out8(0x20, 0x20);
        _pic.SetIrq(6, true); // still high: no new edge
        Assert.False(_pic.HasPendingInterrupt);
        _pic.SetIrq(6, false);
        _pic.SetIrq(6, true);
        Assert.True(_pic.HasPendingInterrupt);
    }

    [Fact]
    public void PollModeReturnsAndAcknowledgesHighestRequest()
    {
        Init();
        Pulse(5);
        _io.Out8(0x20, 0x0C); // OCW3 poll
        Assert.Equal(0x85, _io.In8(0x20));
        _io.Out8(0x20, 0x0B);
        Assert.Equal(0x20, _io.In8(0x20)); // IR5 in service
        _io.Out8(0x20, 0x0C);
        Assert.Equal(0x00, _io.In8(0x20)); // nothing more
    }

    [Fact]
    public void RotateOnNonSpecificEoiMakesServicedLineLowest()
    {
        Init();
        Pulse(1);
        Assert.Equal(0x21, _pic.AcknowledgeInterrupt());
        _io.Out8(0x20, 0xA0); // rotate on non-specific EOI: IR1 becomes lowest
        Pulse(1); Pulse(3);
        Assert.Equal(0x23, _pic.AcknowledgeInterrupt()); // IR3 now outranks IR1
        _io.Out8(0x20, 0xC4); // set priority: IR4 lowest => IR5 highest
        Pulse(7);
        _io.Out8(0x20, 0x63); // specific EOI IR3
        Assert.Equal(0x27, _pic.AcknowledgeInterrupt()); // 5,6,7,0,1 order: IR7 before IR1
    }

    [Fact]
    public void SpecialMaskModeAllowsLowerPriorityWhileMaskedLineInService()
    {
        Init();
        Pulse(0);
        Assert.Equal(0x20, _pic.AcknowledgeInterrupt());
        Pulse(5);
        Assert.False(_pic.HasPendingInterrupt);
        _io.Out8(0x21, 0x01);  // mask IR0 (in service)
        _io.Out8(0x20, 0x68);  // OCW3: set special mask
        Assert.True(_pic.HasPendingInterrupt);
        Assert.Equal(0x25, _pic.AcknowledgeInterrupt());
    }

    [Fact]
    public void InterruptRequestedEventFiresOnRisingOutput()
    {
        Init();
        int raised = 0;
        _pic.InterruptRequested += () => raised++;
        Pulse(4);
        Pulse(3);
        Assert.Equal(1, raised);
    }

    [Fact]
    public void StateRoundTrips()
    {
        Init(0x08, 0x70);
        Pulse(12);
        var state = _pic.SaveState();
        var other = new DualPic(new IoBus());
        other.LoadState(state);
        Assert.True(other.HasPendingInterrupt);
        Assert.Equal(0x74, other.AcknowledgeInterrupt());
    }

    [Fact]
    public void ResetRestoresPowerOnVectorsAndClearsState()
    {
        Init(0x20, 0x28);
        _io.Out8(0x21, 0xF0);
        Pulse(1);
        Assert.Equal(0x21, _pic.AcknowledgeInterrupt());
        _pic.Reset();
        Assert.Equal(0x00, _io.In8(0x21));
        _io.Out8(0x20, 0x0B);
        Assert.Equal(0x00, _io.In8(0x20));
        Pulse(1);
        Assert.Equal(0x09, _pic.AcknowledgeInterrupt()); // BIOS default base 08h again
    }
}

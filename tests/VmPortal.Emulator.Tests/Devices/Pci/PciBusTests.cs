using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Pci;

public class PciBusTests
{
    private sealed class TestNic : PciFunction
    {
        public TestNic() : base(0x10EC, 0x8029, 0x02, 0x00, 0x00) => SetInterruptPin(1);
        public void Interrupt(bool level) => SetIntx(level);
    }

    private readonly DeviceTestRig _rig = new();
    private readonly PhysicalMemory _memory = new(32 * 1024 * 1024);
    private readonly PciBus _bus;
    private readonly I440FxHostBridge _host;
    private readonly Piix3IsaBridge _isa;

    public PciBusTests()
    {
        _bus = new PciBus(_rig.Io);
        _host = new I440FxHostBridge(_memory);
        _isa = new Piix3IsaBridge(_rig.Pic);
        _bus.Add(0, 0, _host);
        _bus.Add(1, 0, _isa);
        _bus.InterruptRouter = _isa;
    }

    private uint Cfg(int dev, int fn, int reg, int size = 4)
    {
        _rig.Io.Out32(0xCF8, 0x8000_0000u | (uint)(dev << 11 | fn << 8 | reg & 0xFC));
        return _rig.Io.Read((ushort)(0xCFC + (reg & 3)), size);
    }

    private void CfgWrite(int dev, int fn, int reg, int size, uint value)
    {
        _rig.Io.Out32(0xCF8, 0x8000_0000u | (uint)(dev << 11 | fn << 8 | reg & 0xFC));
        _rig.Io.Write((ushort)(0xCFC + (reg & 3)), size, value);
    }

    [Fact]
    public void ConfigMechanism1FindsHostBridgeAndIsaBridge()
    {
        Assert.Equal(0x1237_8086u, Cfg(0, 0, 0));
        Assert.Equal(0x7000_8086u, Cfg(1, 0, 0));
        Assert.Equal(0x1100_1AF4u, Cfg(0, 0, 0x2C)); // what SeaBIOS checks to detect QEMU's i440FX
        Assert.Equal(0x0600u, Cfg(0, 0, 0x0A, 2));
        Assert.Equal(0x0601u, Cfg(1, 0, 0x0A, 2));
        Assert.Equal(0x80u, Cfg(1, 0, 0x0E, 1)); // multi-function
        Assert.Equal(0xFFFFu, Cfg(5, 0, 0, 2));  // empty slot
        Assert.Equal(0x86u, Cfg(0, 0, 0, 1));
        Assert.Equal(0x12u, Cfg(0, 0, 3, 1));
        _rig.Io.Out32(0xCF8, 0x0000_0000); // enable bit clear
        Assert.Equal(0xFFFF_FFFFu, _rig.Io.In32(0xCFC));
        _rig.Io.Out32(0xCF8, 0x8001_0000); // bus 1
        Assert.Equal(0xFFFF_FFFFu, _rig.Io.In32(0xCFC));
        _rig.Io.Out32(0xCF8, 0x8000_0803);
        Assert.Equal(0x8000_0800u, _rig.Io.In32(0xCF8));
    }

    [Fact]
    public void PamRegistersSwitchBiosSegmentBetweenRomAndShadowRam()
    {
        var rom = new byte[0x20000];
        rom[0x1_0000] = 0xEA; // 0xF0000
        rom[0x1_FFF0] = 0xEA; // reset vector
        int offset = _memory.LoadRom(0xE0000, rom);
        _host.SetRomBacking(0xE0000, 0x20000, offset);
        Assert.Equal(0xEA, _memory.Read8(0xF0000));
        _memory.Write8(0xF0000, 0x11);
        Assert.Equal(0xEA, _memory.Read8(0xF0000)); // ROM: writes dropped

        CfgWrite(0, 0, 0x59, 1, 0x20); // write to RAM, read ROM (SeaBIOS copies itself down)
        _memory.Write8(0xF0000, 0x11);
        Assert.Equal(0xEA, _memory.Read8(0xF0000));
        CfgWrite(0, 0, 0x59, 1, 0x30); // RAM read/write
        Assert.Equal(0x11, _memory.Read8(0xF0000));
        CfgWrite(0, 0, 0x59, 1, 0x10); // read-only shadow
        _memory.Write8(0xF0000, 0x22);
        Assert.Equal(0x11, _memory.Read8(0xF0000));
        Assert.Equal(0x10u, Cfg(0, 0, 0x59, 1));
        Assert.Equal(0x00, _memory.Read8(0xE0000)); // E segment still ROM (its byte is 0)
        Assert.Equal(0, _host.PamAttribute(0xE0000));
    }

    [Fact]
    public void PamCoversOptionRomSegmentsIn16KiBSteps()
    {
        _host.SetRomBacking(0xE0000, 0x20000, -1);
        CfgWrite(0, 0, 0x5A, 1, 0x33); // C0000 and C4000 RAM
        _memory.Write8(0xC0000, 0x55);
        _memory.Write8(0xC4000, 0xAA);
        _memory.Write8(0xC8000, 0x77); // PAM 0: not RAM
        Assert.Equal(0x55, _memory.Read8(0xC0000));
        Assert.Equal(0xAA, _memory.Read8(0xC4000));
        Assert.Equal(0xFF, _memory.Read8(0xC8000));
        CfgWrite(0, 0, 0x5A, 1, 0x31); // C0000 read-only shadow, C4000 still RAM
        _memory.Write8(0xC0000, 0x66);
        Assert.Equal(0x55, _memory.Read8(0xC0000));
        Assert.Equal(3, _host.PamAttribute(0xC4000));
        Assert.Equal(1, _host.PamAttribute(0xC0000));
        Assert.Equal(0x31u, Cfg(0, 0, 0x5A, 1));
        CfgWrite(0, 0, 0x59, 1, 0xFF);
        Assert.Equal(0x30u, Cfg(0, 0, 0x59, 1)); // reserved bits stay zero
    }

    [Fact]
    public void PciIntxIsRoutedThroughPirqRegistersToALevelTriggeredIsaIrq()
    {
        var nic = new TestNic();
        _bus.Add(3, 0, nic);
        Assert.Equal(2, Piix3IsaBridge.PirqFor(3, 1)); // slot 3 INTA# -> PIRQC#
        _rig.Io.Out8(0x4D1, 0x08);                     // ELCR: IRQ 11 level
        CfgWrite(1, 0, 0x62, 1, 11);
        Assert.Equal(11, _isa.PirqRoute(2));
        nic.Interrupt(true);
        Assert.Equal(0x08u, Cfg(3, 0, 0x06, 1) & 0x08);  // status: interrupt pending
        Assert.Equal(0x73, _rig.TakeInterrupt());
        Assert.Equal(0x73, _rig.TakeInterrupt());        // still asserted after EOI: level
        nic.Interrupt(false);
        Assert.Equal(-1, _rig.TakeInterrupt());
        // Interrupt disable in the command register masks INTx#.
        CfgWrite(3, 0, 0x04, 2, 0x0400);
        nic.Interrupt(true);
        Assert.Equal(-1, _rig.TakeInterrupt());
        CfgWrite(3, 0, 0x04, 2, 0x0000);
        Assert.Equal(0x73, _rig.TakeInterrupt());
        // Rerouting moves the asserted line.
        _rig.Io.Out8(0x4D1, 0x0C);
        CfgWrite(1, 0, 0x62, 1, 10);
        Assert.Equal(0x72, _rig.TakeInterrupt());
        CfgWrite(1, 0, 0x62, 1, 0x80);
        Assert.Equal(-1, _rig.TakeInterrupt());
    }

    [Fact]
    public void ResetControlRegisterRequestsReset()
    {
        int resets = 0;
        _bus.ResetRequested += () => resets++;
        _rig.Io.Out8(0xCF9, 0x02);
        Assert.Equal(0, resets);
        _rig.Io.Out8(0xCF9, 0x06);
        Assert.Equal(1, resets);
    }

    [Fact]
    public void SlotsAreExclusive()
    {
        Assert.Throws<InvalidOperationException>(() => _bus.Add(1, 0, new TestNic()));
        Assert.Equal(1, _isa.DeviceNumber);
        Assert.Equal(0, _isa.FunctionNumber);
    }

    [Fact]
    public void ResetPutsTheBiosBackInRomAndDisablesPirqs()
    {
        var rom = new byte[0x20000];
        rom[0x1_0000] = 0xEA;
        _host.SetRomBacking(0xE0000, 0x20000, _memory.LoadRom(0xE0000, rom));
        CfgWrite(0, 0, 0x59, 1, 0x30);
        _memory.Write8(0xF0000, 0x11);
        CfgWrite(1, 0, 0x60, 1, 10);
        _host.Reset();
        _isa.Reset();
        Assert.Equal(0xEA, _memory.Read8(0xF0000));
        Assert.Equal(0u, Cfg(0, 0, 0x59, 1));
        Assert.Equal(-1, _isa.PirqRoute(0));
    }

    [Fact]
    public void ConfigStateRoundTripReappliesPamAndPirqRouting()
    {
        var nic = new TestNic();
        _bus.Add(3, 0, nic);
        _rig.Io.Out8(0x4D1, 0x08);
        CfgWrite(1, 0, 0x62, 1, 11);
        CfgWrite(0, 0, 0x5A, 1, 0x33);
        nic.Interrupt(true);
        Assert.Equal(0x73, _rig.TakeInterrupt());
        _memory.Write8(0xC0000, 0x5A);

        var rig = new DeviceTestRig();
        var bus = new PciBus(rig.Io);
        var memory = new PhysicalMemory(32 * 1024 * 1024);
        var host = new I440FxHostBridge(memory);
        var isa = new Piix3IsaBridge(rig.Pic);
        var nic2 = new TestNic();
        bus.Add(0, 0, host); bus.Add(1, 0, isa); bus.Add(3, 0, nic2);
        bus.InterruptRouter = isa;
        rig.Io.Out8(0x4D1, 0x08);
        host.LoadConfigState(_host.SaveConfigState());
        isa.LoadConfigState(_isa.SaveConfigState());
        nic2.LoadConfigState(nic.SaveConfigState());
        bus.LoadState(_bus.SaveState());
        Assert.Equal(3, host.PamAttribute(0xC0000));
        memory.Write8(0xC0000, 0x11);
        Assert.Equal(0x11, memory.Read8(0xC0000)); // RAM read/write there
        Assert.Equal(0x73, rig.TakeInterrupt());    // the asserted INTA# routed to IRQ 11 again
        Assert.Equal(_bus.ConfigAddress, bus.ConfigAddress);
    }
}

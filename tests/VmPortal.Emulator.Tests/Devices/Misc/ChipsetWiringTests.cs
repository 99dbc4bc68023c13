using VmPortal.Emulator.Devices.Dma;
using VmPortal.Emulator.Devices.Floppy;
using VmPortal.Emulator.Devices.FwCfg;
using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Devices.Ps2;
using VmPortal.Emulator.Devices.Rtc;
using VmPortal.Emulator.Devices.Serial;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Devices.Misc;

/// <summary>
/// Builds the whole chipset on one I/O bus, the way the machine wires it, and checks that no device's ports
/// shadow another's: every device still answers on its own ports afterwards.
/// </summary>
public class ChipsetWiringTests
{
    [Fact]
    public void AllDevicesCoexistOnOneBus()
    {
        var io = new IoBus();
        var clock = new MachineClock(manual: true);
        var timers = new TimerScheduler(clock);
        var memory = new PhysicalMemory(32 * 1024 * 1024);
        var pic = new DualPic(io);
        var pit = new Pit8254(io, pic, timers);
        var portB = new SystemControlPortB(io, pit, clock);
        var portA = new SystemControlPortA(io, memory);
        var rtc = new Mc146818Rtc(io, pic, timers);
        var kbc = new I8042Controller(io, pic, memory, new Ps2Keyboard(), new Ps2Mouse());
        var com1 = new Uart16550(io, pic, Uart16550.Com1Port, Uart16550.Com1Irq);
        var com2 = new Uart16550(io, pic, Uart16550.Com2Port, Uart16550.Com2Irq);
        var debugcon = new DebugConsole(io);
        var pci = new PciBus(io);
        var host = new I440FxHostBridge(memory);
        var isa = new Piix3IsaBridge(pic);
        pci.Add(0, 0, host);
        pci.Add(1, 0, isa);
        pci.InterruptRouter = isa;
        var dma = new IsaDma(io, memory);
        var fdc = new FloppyController(io, pic, timers, dma);
        var fwcfg = new FwCfgDevice(io, memory);
        var ferr = new FpuErrorLatch(io, pic);

        io.Out8(0x21, 0xA5); Assert.Equal(0xA5, io.In8(0x21));               // PIC master IMR
        io.Out8(0xA1, 0x5A); Assert.Equal(0x5A, io.In8(0xA1));               // PIC slave IMR
        io.Out8(0x4D1, 0x0C); Assert.Equal(0x0C, io.In8(0x4D1));             // ELCR
        io.Out8(0x43, 0xB0); io.Out8(0x42, 0x34); io.Out8(0x42, 0x12);
        io.Out8(0x43, 0x80); Assert.Equal(0x34, io.In8(0x42));                // PIT counter 2 latch
        io.Out8(0x61, 0x01); Assert.Equal(0x01, io.In8(0x61) & 0x0F);        // port B
        io.Out8(0x92, 0x02); Assert.Equal(0x02, io.In8(0x92));               // port A
        io.Out8(0x70, 0x0B); Assert.Equal(0x02, io.In8(0x71));               // RTC register B
        io.Out8(0x64, 0xAA); Assert.Equal(0x55, io.In8(0x60));               // i8042 self-test
        io.Out8(0x3FF, 0x11); Assert.Equal(0x11, io.In8(0x3FF));             // COM1 scratch
        io.Out8(0x2FF, 0x22); Assert.Equal(0x22, io.In8(0x2FF));             // COM2 scratch
        Assert.Equal(0x11, io.In8(0x3FF));
        Assert.Equal(0xE9, io.In8(0xE9));                                   // debugcon
        io.Out32(0xCF8, 0x8000_0000); Assert.Equal(0x1237_8086u, io.In32(0xCFC)); // PCI host bridge
        io.Out8(0x0C, 0); io.Out8(0x04, 0x78); io.Out8(0x04, 0x56);
        Assert.Equal(0x5678, dma.Channel(2).BaseAddress);                   // DMA 1
        io.Out8(0xC4, 0x01); Assert.Equal(1, dma.Channel(5).BaseAddress & 0xFF); // DMA 2
        io.Out8(0x80, 0x42); Assert.Equal(0x42, dma.LastPostCode);           // POST code
        Assert.Equal(0x80, io.In8(0x3F4));                                   // FDC MSR
        Assert.Equal(0x0C, io.In8(0x3F2));                                   // FDC DOR
        Assert.False(io.IsClaimed(0x3F6));                                   // left for the IDE controller
        Assert.False(io.IsClaimed(0x1F0));
        io.Out16(0x510, 0); Assert.Equal((byte)'Q', io.In8(0x511));          // fw_cfg
        Assert.True(io.IsClaimed(0xF0));                                     // FPU error latch
    }
}

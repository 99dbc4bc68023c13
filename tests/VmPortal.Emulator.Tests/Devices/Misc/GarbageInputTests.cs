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
using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Devices.Misc;

/// <summary>A guest that writes random bytes to every chipset port must not make any device throw.</summary>
public class GarbageInputTests
{
    private static readonly (ushort Base, int Count)[] Ranges =
    {
        (0x00, 0x10), (0x20, 2), (0x40, 4), (0x60, 1), (0x61, 1), (0x64, 1), (0x70, 2), (0x80, 0x10), (0x92, 1),
        (0xA0, 2), (0xC0, 0x20), (0xE9, 1), (0xF0, 1), (0x2F8, 8), (0x3F0, 6), (0x3F7, 1), (0x3F8, 8),
        (0x4D0, 2), (0x510, 2), (0x514, 8), (0xCF8, 8),
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomPortTrafficNeverThrows(int seed)
    {
        var io = new IoBus();
        var clock = new MachineClock(manual: true);
        var timers = new TimerScheduler(clock);
        var memory = new PhysicalMemory(8 * 1024 * 1024);
        var pic = new DualPic(io);
        var pit = new Pit8254(io, pic, timers);
        _ = new SystemControlPortB(io, pit, clock);
        _ = new SystemControlPortA(io, memory);
        _ = new Mc146818Rtc(io, pic, timers);
        var kbd = new Ps2Keyboard();
        var mouse = new Ps2Mouse();
        var kbc = new I8042Controller(io, pic, memory, kbd, mouse);
        var com1 = new Uart16550(io, pic);
        _ = new Uart16550(io, pic, Uart16550.Com2Port, Uart16550.Com2Irq);
        _ = new DebugConsole(io);
        var pci = new PciBus(io);
        var isa = new Piix3IsaBridge(pic);
        pci.Add(0, 0, new I440FxHostBridge(memory));
        pci.Add(1, 0, isa);
        pci.InterruptRouter = isa;
        var dma = new IsaDma(io, memory);
        var fdc = new FloppyController(io, pic, timers, dma);
        fdc.Drive(0).Insert(new MemoryDiskImage(1440 * 1024));
        fdc.Drive(1).Insert(new MemoryDiskImage(new byte[720 * 1024], readOnly: true));
        var cfg = new FwCfgDevice(io, memory);
        cfg.AddFile("bootorder", [1, 2, 3]);
        _ = new FpuErrorLatch(io, pic);

        var rng = new Random(seed);
        int[] sizes = { 1, 1, 1, 2, 4 };
        for (int i = 0; i < 200_000; i++)
        {
            var (b, n) = Ranges[rng.Next(Ranges.Length)];
            ushort port = (ushort)(b + rng.Next(n));
            int size = sizes[rng.Next(sizes.Length)];
            if ((port == 0x92 || port == 0x64) && rng.Next(4) != 0) continue; // fewer resets
            if (rng.Next(2) == 0) io.Write(port, size, (uint)rng.NextInt64());
            else io.Read(port, size);
            if (rng.Next(64) == 0) { clock.Advance(rng.Next(2_000_000)); timers.RunDue(clock.NowNs); }
            if (rng.Next(512) == 0) { kbd.KeySet1((ushort)rng.Next(0x100), rng.Next(2) == 0); mouse.MouseMove(rng.Next(-999, 999), rng.Next(-999, 999), rng.Next(8)); }
            if (rng.Next(512) == 0) { com1.Receive([(byte)rng.Next(256)]); com1.PumpHostInput(); kbc.PumpHostInput(); }
            if (rng.Next(256) == 0 && pic.HasPendingInterrupt) pic.AcknowledgeInterrupt();
        }
    }
}

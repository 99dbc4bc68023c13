using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Devices.Rtc;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator;

/// <summary>
/// One power-on's worth of hardware, wired from a <see cref="MachineConfig"/>: RAM and firmware, the I/O bus, the CPU
/// and the chipset devices. A reset builds a fresh board (every device back to its power-on state, RAM cleared),
/// keeping the machine's clock and its open disk images. Everything here runs on the machine thread.
/// </summary>
/// <remarks>
/// Map (PC/AT + i440FX/PIIX3 like QEMU's "pc" machine): PIC pair 0x20/0xA0 + ELCR 0x4D0, PIT 0x40 (IRQ 0),
/// port 0x61, port 0x92, RTC/CMOS 0x70 (IRQ 8), debug consoles (0xE9, optional 0x402), direct-kernel-boot trigger
/// 0x520 (<see cref="LinuxBoot"/>); BIOS ROM at the top of 4 GiB and 0xE0000.
/// </remarks>
internal sealed class PcBoard
{
    public PcBoard(MachineConfig config, MachineClock clock, MachineMedia media, byte[] biosImage, LinuxKernelImage? kernel, byte[]? initrd)
    {
        Config = config;
        Clock = clock;
        Scheduler = new TimerScheduler(clock);
        Memory = new PhysicalMemory((uint)config.MemoryMiB * 1024 * 1024);
        Io = new IoBus();
        Bios = SystemBios.Map(Memory, biosImage);

        Pic = new DualPic(Io);
        Cpu = new Cpu.Cpu(Memory, Io) { InterruptController = Pic };
        Pit = new Pit8254(Io, Pic, Scheduler);
        PortB = new SystemControlPortB(Io, Pit, clock);
        PortA = new SystemControlPortA(Io, Memory);
        PortA.ResetRequested += () => RequestReset("reset through port 0x92");
        Rtc = new Mc146818Rtc(Io, Pic, Scheduler);
        foreach (ushort port in config.DebugConsolePorts)
        {
            var dc = new DebugConsole(Io, port);
            dc.Output += b => DebugByte?.Invoke(b);
        }

        if (kernel != null)
            LinuxBoot = new LinuxBoot(Memory, Io, kernel, initrd, config.KernelCommandLine ?? "");

        FillCmos(config, media);
    }

    public MachineConfig Config { get; }
    public MachineClock Clock { get; }
    public TimerScheduler Scheduler { get; }
    public PhysicalMemory Memory { get; }
    public IoBus Io { get; }
    public SystemBios Bios { get; }
    public Cpu.Cpu Cpu { get; }
    public DualPic Pic { get; }
    public Pit8254 Pit { get; }
    public SystemControlPortA PortA { get; }
    public SystemControlPortB PortB { get; }
    public Mc146818Rtc Rtc { get; }
    public LinuxBoot? LinuxBoot { get; }

    /// <summary>A byte written to one of the debug console ports.</summary>
    public event Action<byte>? DebugByte;

    /// <summary>Set when the guest asked for a reset (port 0x92, i8042 pulse, 0xCF9); the machine rebuilds the board.</summary>
    public string? ResetReason { get; private set; }

    public void RequestReset(string reason) => ResetReason ??= reason;

    private void FillCmos(MachineConfig config, MachineMedia media)
    {
        CmosLayout.SetMemory(Rtc, Memory.RamSize);
        CmosLayout.SetFpuPresent(Rtc, true);
        CmosLayout.SetFloppies(Rtc, media.Floppy != null ? CmosFloppyType.Mb1_44 : CmosFloppyType.None);
        CmosLayout.SetHardDisks(Rtc, media.HardDisks.Count > 0, media.HardDisks.Count > 1);
        Span<CmosBootDevice> order = stackalloc CmosBootDevice[config.BootOrder.Count];
        for (int i = 0; i < order.Length; i++)
            order[i] = config.BootOrder[i] switch
            {
                BootDevice.CdRom => CmosBootDevice.CdRom,
                BootDevice.HardDisk => CmosBootDevice.HardDisk,
                _ => CmosBootDevice.Floppy,
            };
        CmosLayout.SetBootOrder(Rtc, order, checkFloppySignature: true);
        CmosLayout.SetCpuCount(Rtc, 1);
    }
}

/// <summary>The disk images a machine keeps open across resets.</summary>
internal sealed class MachineMedia : IDisposable
{
    public List<IDiskImage> HardDisks { get; } = new();
    public IDiskImage? CdRom { get; set; }
    public IDiskImage? Floppy { get; set; }

    public static MachineMedia Open(MachineConfig config)
    {
        var media = new MachineMedia();
        try
        {
            foreach (var d in config.HardDisks) media.HardDisks.Add(new RawDiskImage(d.Path, d.ReadOnly));
            if (config.CdRomImage != null) media.CdRom = new RawDiskImage(config.CdRomImage, readOnly: true);
            if (config.FloppyImage != null) media.Floppy = new RawDiskImage(config.FloppyImage, readOnly: false);
            return media;
        }
        catch
        {
            media.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var d in HardDisks) d.Dispose();
        HardDisks.Clear();
        CdRom?.Dispose();
        Floppy?.Dispose();
        CdRom = null;
        Floppy = null;
    }
}

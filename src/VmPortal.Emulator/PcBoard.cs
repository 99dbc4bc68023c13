using VmPortal.Emulator.Devices.Acpi;
using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Devices.Dma;
using VmPortal.Emulator.Devices.E1000;
using VmPortal.Emulator.Devices.Floppy;
using VmPortal.Emulator.Devices.FwCfg;
using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Devices.Ps2;
using VmPortal.Emulator.Devices.Rtc;
using VmPortal.Emulator.Devices.Serial;
using VmPortal.Emulator.Devices.Vga;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator;

/// <summary>
/// One power-on's worth of hardware, wired from a <see cref="MachineConfig"/> like QEMU's i440FX "pc" machine:
/// RAM and firmware, the I/O bus, the CPU and the chipset. A reset builds a fresh board (every device back to its
/// power-on state, RAM cleared), keeping the machine's clock and its open disk images. Machine thread only.
/// </summary>
/// <remarks>
/// PCI: 00:00.0 i440FX host bridge (PAM shadowing of 0xC0000–0xFFFFF), 00:01.0 PIIX3 ISA bridge (PIRQ routing),
/// 00:01.1 PIIX3 IDE (primary: hard disks, secondary master: ATAPI CD-ROM), 00:01.3 PIIX4 power management
/// (ACPI PM I/O, SCI on IRQ 9, power button, S5; SeaBIOS builds the ACPI tables for it), 00:02.0 Bochs std VGA (LFB BAR0,
/// VGA BIOS in its ROM BAR). ISA: PIC pair 0x20/0xA0 + ELCR 0x4D0, PIT 0x40 (IRQ 0), port 0x61, port 0x92,
/// RTC/CMOS 0x70 (IRQ 8), i8042 0x60/0x64 (IRQ 1/12), COM1 0x3F8 (IRQ 4), DMA 0x00/0xC0/0x80, floppy 0x3F0
/// (IRQ 6, DMA 2), FERR# latch 0xF0 (IRQ 13), fw_cfg 0x510, debug consoles (0xE9, optional 0x402),
/// direct-kernel-boot trigger 0x520. BIOS ROM at the top of 4 GiB and 0xE0000.
/// </remarks>
internal sealed partial class PcBoard
{
    public const int IsaBridgeDevice = 1, IdeFunction = 1, PmFunction = 3, VgaDevice = 2, NicDevice = 3;

    /// <param name="replaces">A board this one replaces before it runs again (a state load into a running machine):
    /// its RAM and VRAM arrays are reused as they are, without clearing — the state load overwrites every byte
    /// (<see cref="CompleteStateLoad"/>) — instead of allocating and first-touching ~150 MiB. That board must not run
    /// afterwards unless <see cref="CompleteStateLoad"/> was never called.</param>
    public PcBoard(MachineConfig config, MachineClock clock, MachineMedia media, byte[] biosImage, byte[]? vgaBios,
        LinuxKernelImage? kernel, byte[]? initrd, PcBoard? replaces = null)
    {
        Config = config;
        Clock = clock;
        Scheduler = new TimerScheduler(clock);
        Memory = new PhysicalMemory((uint)config.MemoryMiB * 1024 * 1024, replaces?.Memory.Backing);
        _freshRam = !ReferenceEquals(Memory.Backing, replaces?.Memory.Backing);
        Io = new IoBus();
        Bios = SystemBios.Map(Memory, biosImage);

        Pic = new DualPic(Io);
        Cpu = new Cpu.Cpu(Memory, Io) { InterruptController = Pic };
        Pic.InterruptRequested += Cpu.NotifyInterrupt;
        Cpu.TimeSourceNs = () => clock.NowNs;
        Cpu.TscFrequencyHz = config.TscFrequencyHz;
        Pit = new Pit8254(Io, Pic, Scheduler);
        PortB = new SystemControlPortB(Io, Pit, clock);
        PortA = new SystemControlPortA(Io, Memory);
        PortA.ResetRequested += () => RequestReset("reset through port 0x92");
        Rtc = new Mc146818Rtc(Io, Pic, Scheduler);
        Keyboard = new I8042Controller(Io, Pic, Memory, new Ps2Keyboard(), new Ps2Mouse());
        Keyboard.ResetRequested += () => RequestReset("reset through the keyboard controller");
        if (config.SerialEnabled)
        {
            Com1 = new Uart16550(Io, Pic, Uart16550.Com1Port, Uart16550.Com1Irq);
            Com1.Transmit += b => SerialByte?.Invoke(b);
        }
        foreach (ushort port in config.DebugConsolePorts)
        {
            var dc = new DebugConsole(Io, port);
            dc.Output += b => DebugByte?.Invoke(b);
        }
        Dma = new IsaDma(Io, Memory);
        Floppy = new FloppyController(Io, Pic, Scheduler, Dma);
        if (media.Floppy != null) Floppy.Drive(0).Insert(media.Floppy);
        FpuError = new FpuErrorLatch(Io, Pic);
        Cpu.FerrChanged = FpuError.SetFerr;
        Cpu.IgnoreNumericError = () => FpuError.IgnoreNumericError;

        Pci = new PciBus(Io);
        Pci.ResetRequested += () => RequestReset("reset through port 0xCF9");
        HostBridge = new I440FxHostBridge(Memory);
        HostBridge.SetRomBacking(Bios.IsaBase, SystemBios.IsaWindowEnd - Bios.IsaBase, Bios.IsaBackingOffset);
        IsaBridge = new Piix3IsaBridge(Pic);
        Pci.Add(0, 0, HostBridge);
        Pci.Add(IsaBridgeDevice, 0, IsaBridge);
        Pci.InterruptRouter = IsaBridge;
        Ide = new PiixIde(Io, Memory, Pic);
        Pci.Add(IsaBridgeDevice, IdeFunction, Ide);
        foreach (var (slot, image) in media.HardDisks)
            (slot == IdeSlot.SecondarySlave ? Ide.Secondary : Ide.Primary).Attach(slot == IdeSlot.PrimaryMaster ? 0 : 1, new AtaHardDisk(image));
        Ide.Secondary.Attach(0, new AtapiCdrom(media.CdRom));
        if (media.SecondCdRom != null) Ide.Secondary.Attach(1, new AtapiCdrom(media.SecondCdRom));
        Pm = new Piix4PowerManagement(Io, Pic, Scheduler, com1Present: Com1 != null);
        Pm.PowerOffRequested += () =>
        {
            PowerOffReason ??= "the guest powered off (ACPI S5)";
            Cpu.RequestStop();
        };
        Pci.Add(IsaBridgeDevice, PmFunction, Pm);

        Vga = new Vga(Io, Memory, reuseVram: replaces?.Vga.Vram);
        _freshVram = !ReferenceEquals(Vga.Vram, replaces?.Vga.Vram);
        VgaPci = new StdVgaPci(Vga, Memory, vgaBios ?? ReadOnlySpan<byte>.Empty);
        Pci.Add(VgaDevice, 0, VgaPci);

        if (config.Nic is { } nic)
        {
            Nic = new E1000(Io, Memory, Scheduler, NicConfig.ParseMac(nic.MacAddress)!, nic.Port, nic.LoadOptionRom());
            Nic.LinkUp = nic.Port != null && nic.LinkUp;
            Nic.CpuIdle = () => Cpu.Halted;
            Pci.Add(NicDevice, 0, Nic);
            if (nic.Port != null) nic.Port.FrameQueued = () => WakeRequested?.Invoke();
        }

        FwCfg = new FwCfgDevice(Io, Memory);
        FwCfg.SetRamSize(Memory.RamSize);
        FwCfg.SetE820(new (ulong, ulong, uint)[] { (0, Memory.RamSize, FwCfgDevice.E820Ram) });
        FwCfg.AddFile(Piix4PowerManagement.SystemStatesFile, Piix4PowerManagement.SystemStates);
        var bootOrder = new List<string>();
        if (kernel != null)
        {
            LinuxBoot = new LinuxBoot(Memory, Io, kernel, initrd, config.KernelCommandLine ?? "");
            FwCfg.AddFile(LinuxBoot.FwCfgFileName, LinuxBoot.OptionRom);
            bootOrder.Add(LinuxBoot.BootOrderEntry);
        }
        foreach (var d in config.BootOrder)
            bootOrder.Add(d switch
            {
                BootDevice.CdRom => FwCfgBootPaths.Ide(1, 0),
                BootDevice.HardDisk => media.HardDisks.Count > 0 && media.HardDisks[0].Slot == IdeSlot.SecondarySlave ? FwCfgBootPaths.Ide(1, 1)
                    : FwCfgBootPaths.Ide(0, media.HardDisks.Count > 0 && media.HardDisks[0].Slot == IdeSlot.PrimarySlave ? 1 : 0),
                BootDevice.Network => FwCfgBootPaths.Pci("ethernet", NicDevice),
                _ => FwCfgBootPaths.Floppy(0),
            });
        if (config.StrictBootOrder) bootOrder.Add(FwCfgBootPaths.Halt);
        FwCfg.SetBootOrder(bootOrder.ToArray());

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
    public I8042Controller Keyboard { get; }
    public Uart16550? Com1 { get; }
    public IsaDma Dma { get; }
    public FloppyController Floppy { get; }
    public FpuErrorLatch FpuError { get; }
    public PciBus Pci { get; }
    public I440FxHostBridge HostBridge { get; }
    public Piix3IsaBridge IsaBridge { get; }
    public PiixIde Ide { get; }
    public Piix4PowerManagement Pm { get; }
    public Vga Vga { get; }
    public StdVgaPci VgaPci { get; }
    public FwCfgDevice FwCfg { get; }
    public LinuxBoot? LinuxBoot { get; }
    /// <summary>The network card (00:03.0), when the config has one.</summary>
    public E1000? Nic { get; }

    /// <summary>Something outside the machine thread has work for it (a frame arrived for the NIC): wake a halted guest.</summary>
    public event Action? WakeRequested;

    /// <summary>A byte written to one of the debug console ports.</summary>
    public event Action<byte>? DebugByte;
    /// <summary>A byte the guest sent out of COM1.</summary>
    public event Action<byte>? SerialByte;

    /// <summary>Set when the guest asked for a reset (port 0x92, i8042 pulse, 0xCF9); the machine rebuilds the board.</summary>
    public string? ResetReason { get; private set; }

    public void RequestReset(string reason)
    {
        ResetReason ??= reason;
        Cpu.RequestStop(); // the reset happens after this instruction: the guest runs nothing more on this board
    }

    /// <summary>Set when the guest switched the machine off (ACPI soft-off, S5); the machine stops.</summary>
    public string? PowerOffReason { get; private set; }

    /// <summary>Moves host input (keys, serial bytes) into the devices. Machine thread, between CPU slices.</summary>
    public void PumpInput()
    {
        if (Keyboard.HostInputPending) Keyboard.PumpHostInput();
        Com1?.PumpHostInput();
        Nic?.PumpReceive();
    }

    private void FillCmos(MachineConfig config, MachineMedia media)
    {
        CmosLayout.SetMemory(Rtc, Memory.RamSize);
        CmosLayout.SetFpuPresent(Rtc, true);
        CmosLayout.SetFloppies(Rtc, media.Floppy != null ? CmosFloppyType.Mb1_44 : CmosFloppyType.None);
        CmosLayout.SetHardDisks(Rtc, media.HardDisks.Any(d => d.Slot == IdeSlot.PrimaryMaster), media.HardDisks.Any(d => d.Slot == IdeSlot.PrimarySlave));
        Span<CmosBootDevice> order = stackalloc CmosBootDevice[config.BootOrder.Count];
        for (int i = 0; i < order.Length; i++)
            order[i] = config.BootOrder[i] switch
            {
                BootDevice.CdRom => CmosBootDevice.CdRom,
                BootDevice.HardDisk => CmosBootDevice.HardDisk,
                BootDevice.Network => CmosBootDevice.Network,
                _ => CmosBootDevice.Floppy,
            };
        CmosLayout.SetBootOrder(Rtc, order, checkFloppySignature: true);
        CmosLayout.SetCpuCount(Rtc, 1);
    }
}

/// <summary>
/// The disk images a machine keeps open across resets. Hard disks open in any format through
/// <see cref="DiskImageFile.Open"/>; a <see cref="DiskConfig.Snapshot"/> disk gets a temporary qcow2 overlay in
/// the temp directory whose name is unlinked as soon as it is open (nothing is left behind, even after a kill).
/// </summary>
internal sealed class MachineMedia : IDisposable
{
    public List<(IdeSlot Slot, IDiskImage Image)> HardDisks { get; } = new();
    public IDiskImage? CdRom { get; set; }
    public IDiskImage? SecondCdRom { get; set; }
    public IDiskImage? Floppy { get; set; }

    public static MachineMedia Open(MachineConfig config)
    {
        var media = new MachineMedia();
        try
        {
            foreach (var (slot, d) in config.DiskSlots().OrderBy(s => s.Slot)) media.HardDisks.Add((slot, OpenDisk(d)));
            if (config.CdRomImage != null) media.CdRom = new RawDiskImage(config.CdRomImage, readOnly: true);
            if (config.SecondCdRomImage != null) media.SecondCdRom = new RawDiskImage(config.SecondCdRomImage, readOnly: true);
            if (config.FloppyImage != null) media.Floppy = new RawDiskImage(config.FloppyImage, readOnly: false);
            return media;
        }
        catch
        {
            media.Dispose();
            throw;
        }
    }

    internal static IDiskImage OpenDisk(DiskConfig d)
    {
        if (!d.Snapshot) return DiskImageFile.Open(d.Path, d.ReadOnly);
        string overlay = Path.Combine(Path.GetTempPath(), $"vmportal-snapshot-{Guid.NewGuid():N}.qcow2");
        try
        {
            DiskImageFile.CreateQcow2(overlay, 0, Path.GetFullPath(d.Path));
            return DiskImageFile.Open(overlay, readOnly: false);
        }
        finally { File.Delete(overlay); } // the open handle keeps the data until the machine closes it
    }

    public void Dispose()
    {
        foreach (var (_, d) in HardDisks) d.Dispose();
        HardDisks.Clear();
        CdRom?.Dispose();
        SecondCdRom?.Dispose();
        Floppy?.Dispose();
        CdRom = null;
        SecondCdRom = null;
        Floppy = null;
    }
}

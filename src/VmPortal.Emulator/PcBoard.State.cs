using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator;

// The board's state components, in load order (docs/emulator.md "Machine state"). Memory and CPU come first (the
// clock needs the CPU's instruction count), then PCI configuration (maps BARs, PAM, PIRQ routes), then the devices,
// then the interrupt controller (so device IRQ lines set while loading are overwritten by the saved PIC state) and
// last the timer deadlines (overwriting whatever a device armed while loading).
internal sealed partial class PcBoard
{
    public sealed record MemoryState(int Version, uint RamBytes, bool A20Enabled)
    {
        public const int CurrentVersion = 1;
    }

    public sealed record TimerState(string Name, bool Armed, long DeadlineNs);

    public sealed record TimersState(int Version, TimerState[] Timers)
    {
        public const int CurrentVersion = 1;
    }

    /// <summary>The IDE function's channels, bus masters and drives (the disk images are reattached from the config).</summary>
    public sealed record IdeState(int Version, AtaChannel.State Primary, AtaChannel.State Secondary, IdeBusMaster.State PrimaryBusMaster,
        IdeBusMaster.State SecondaryBusMaster, AtaHardDisk.State? PrimaryMaster, AtaHardDisk.State? PrimarySlave, AtapiCdrom.State? SecondaryMaster)
    {
        public const int CurrentVersion = 1;
    }

    /// <summary>Components loaded before the clock is restored (the clock follows the CPU's instruction count).</summary>
    public static readonly string[] EarlyComponents = ["memory", "cpu"];

    private StateRegistry? _state;

    public StateRegistry StateComponents => _state ??= BuildRegistry();

    private StateRegistry BuildRegistry()
    {
        var reg = new StateRegistry();
        reg.Add("memory", MemoryState.CurrentVersion, SaveMemory, LoadMemory);
        reg.AddRecord("cpu", VmPortal.Emulator.Cpu.Cpu.State.CurrentVersion, Cpu.SaveState, Cpu.LoadState);
        reg.AddRecord("pci-bus", PciBus.State.CurrentVersion, Pci.SaveState, Pci.LoadState);
        for (int d = 0; d < PciBus.MaxDevices; d++)
            for (int f = 0; f < PciBus.MaxFunctions; f++)
                if (Pci.Get(d, f) is { } fn)
                    reg.AddRecord($"pci-{d:x2}.{f}", PciFunction.ConfigState.CurrentVersion, fn.SaveConfigState, fn.LoadConfigState);
        reg.AddRecord("port-a", Devices.Misc.SystemControlPortA.State.CurrentVersion, PortA.SaveState, PortA.LoadState);
        reg.AddRecord("port-b", Devices.Misc.SystemControlPortB.State.CurrentVersion, PortB.SaveState, PortB.LoadState);
        reg.AddRecord("pit", Devices.Pit.Pit8254.State.CurrentVersion, Pit.SaveState, Pit.LoadState);
        reg.AddRecord("rtc", Devices.Rtc.Mc146818Rtc.State.CurrentVersion, Rtc.SaveState, Rtc.LoadState);
        reg.AddRecord("i8042", Devices.Ps2.I8042Controller.State.CurrentVersion, Keyboard.SaveState, Keyboard.LoadState);
        if (Com1 != null) reg.AddRecord("com1", Devices.Serial.Uart16550.State.CurrentVersion, Com1.SaveState, Com1.LoadState);
        reg.AddRecord("dma", Devices.Dma.IsaDma.State.CurrentVersion, Dma.SaveState, Dma.LoadState);
        reg.AddRecord("floppy", Devices.Floppy.FloppyController.State.CurrentVersion, Floppy.SaveState, Floppy.LoadState);
        reg.AddRecord("fpu-error", Devices.Misc.FpuErrorLatch.State.CurrentVersion, FpuError.SaveState, FpuError.LoadState);
        reg.AddRecord("ide", IdeState.CurrentVersion, SaveIde, LoadIde);
        reg.Add("vga", Devices.Vga.Vga.State.CurrentVersion, SaveVga, LoadVga);
        reg.AddRecord("fw-cfg", Devices.FwCfg.FwCfgDevice.State.CurrentVersion, FwCfg.SaveState, FwCfg.LoadState);
        // Devices added later register here, before the PIC and the timers.
        reg.AddRecord("acpi-pm", Devices.Acpi.Piix4PowerManagement.State.CurrentVersion, Pm.SaveState, Pm.LoadState);
        if (Nic != null) reg.AddRecord("e1000", Devices.E1000.E1000.State.CurrentVersion, Nic.SaveState, Nic.LoadState);
        reg.AddRecord("pic", Devices.Pic.DualPic.State.CurrentVersion, Pic.SaveState, Pic.LoadState);
        reg.AddRecord("timers", TimersState.CurrentVersion, SaveTimers, LoadTimers);
        return reg;
    }

    private void SaveMemory(StateWriter w)
    {
        w.Record(new MemoryState(MemoryState.CurrentVersion, Memory.RamSize, Memory.A20Enabled));
        w.Area("ram", Memory.Backing.AsSpan(0, (int)Memory.RamSize));
    }

    private void LoadMemory(StateReader r)
    {
        var s = r.Record<MemoryState>();
        if (s.RamBytes != Memory.RamSize)
            throw new InvalidDataException($"state component 'memory': the state has {s.RamBytes / (1024 * 1024)} MiB of RAM, this machine {Memory.RamSize / (1024 * 1024)} MiB");
        var ram = r.Area("ram");
        if (ram.Length != Memory.RamSize) throw new InvalidDataException($"state component 'memory': RAM image of {ram.Length} bytes, expected {Memory.RamSize}");
        _loadedRam = ram; // written by CompleteStateLoad, once every component has loaded
        Memory.A20Enabled = s.A20Enabled;
    }

    private PageImage? _loadedRam, _loadedVram;
    /// <summary>RAM / VRAM are arrays of this board's own, still all zero: nothing runs or writes to them before a state load.</summary>
    private readonly bool _freshRam, _freshVram;

    /// <summary>
    /// Writes the loaded RAM and VRAM images into the board's arrays: the last step of a state load, after every
    /// component's record loaded without error. Deferred so that a board built over the arrays of the board it
    /// replaces (<c>replaces</c>) leaves them untouched when a component is refused.
    /// </summary>
    public void CompleteStateLoad()
    {
        _loadedRam?.Expand(Memory.Backing.AsSpan(0, (int)Memory.RamSize), targetIsZero: _freshRam);
        _loadedVram?.Expand(Vga.Vram, targetIsZero: _freshVram);
        _loadedRam = _loadedVram = null;
    }

    private void SaveVga(StateWriter w)
    {
        var s = Vga.SaveState();
        w.Record(s with { Vram = [] });
        w.Area("vram", s.Vram);
    }

    private void LoadVga(StateReader r)
    {
        var s = r.Record<Devices.Vga.Vga.State>();
        var vram = r.Area("vram");
        if (vram.Length != Vga.VramSize) throw new InvalidDataException($"state component 'vga': VRAM image of {vram.Length} bytes, this card has {Vga.VramSize}");
        // straight into the card's VRAM (by CompleteStateLoad): no 16 MiB copy in between
        _loadedVram = vram;
        Vga.LoadState(s with { Vram = Vga.Vram });
    }

    private IdeState SaveIde() => new(IdeState.CurrentVersion, Ide.Primary.SaveState(), Ide.Secondary.SaveState(),
        Ide.PrimaryBusMaster.SaveState(), Ide.SecondaryBusMaster.SaveState(),
        (Ide.Primary.Master as AtaHardDisk)?.SaveState(), (Ide.Primary.Slave as AtaHardDisk)?.SaveState(),
        (Ide.Secondary.Master as AtapiCdrom)?.SaveState());

    private void LoadIde(IdeState s)
    {
        LoadDrive("primary master", Ide.Primary.Master, s.PrimaryMaster);
        LoadDrive("primary slave", Ide.Primary.Slave, s.PrimarySlave);
        LoadDrive("secondary master", Ide.Secondary.Master, s.SecondaryMaster);
        Ide.PrimaryBusMaster.LoadState(s.PrimaryBusMaster);
        Ide.SecondaryBusMaster.LoadState(s.SecondaryBusMaster);
        Ide.Primary.LoadState(s.Primary);
        Ide.Secondary.LoadState(s.Secondary);
    }

    private static void LoadDrive<T>(string where, AtaDevice? device, T? state) where T : class
    {
        switch (device, state)
        {
            case (null, null): return;
            case (AtaHardDisk disk, AtaHardDisk.State ds): disk.LoadState(ds); return;
            case (AtapiCdrom cd, AtapiCdrom.State cs): cd.LoadState(cs); return;
            case (null, _): throw new InvalidDataException($"state component 'ide': the state has a drive at {where}, this machine has none");
            case (_, null): throw new InvalidDataException($"state component 'ide': this machine has a drive at {where}, the state has none");
            default: throw new InvalidDataException($"state component 'ide': the drive at {where} is of another kind");
        }
    }

    private TimersState SaveTimers() => new(TimersState.CurrentVersion,
        Scheduler.Timers.Select(t => new TimerState(t.Name, t.Armed, t.DeadlineNs)).ToArray());

    private void LoadTimers(TimersState s)
    {
        var mine = Scheduler.Timers;
        var unknown = s.Timers.Select(t => t.Name).Except(mine.Select(t => t.Name)).ToList();
        var missing = mine.Select(t => t.Name).Except(s.Timers.Select(t => t.Name)).ToList();
        if (unknown.Count > 0 || missing.Count > 0 || s.Timers.Length != mine.Count)
            throw new InvalidDataException("state component 'timers': the saved timers do not match this machine's" +
                (unknown.Count > 0 ? $"; unknown: {string.Join(", ", unknown)}" : "") +
                (missing.Count > 0 ? $"; missing: {string.Join(", ", missing)}" : ""));
        foreach (var t in s.Timers)
        {
            var timer = mine.First(m => m.Name == t.Name);
            if (t.Armed) timer.Schedule(t.DeadlineNs); else timer.Cancel();
        }
    }
}

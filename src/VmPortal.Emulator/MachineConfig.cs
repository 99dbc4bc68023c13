namespace VmPortal.Emulator;

/// <summary>Devices SeaBIOS may boot from, in the order given by <see cref="MachineConfig.BootOrder"/>.</summary>
public enum BootDevice
{
    CdRom,
    HardDisk,
    Floppy,
    /// <summary>The network card's option ROM (iPXE); needs <see cref="MachineConfig.Nic"/>.</summary>
    Network,
}

/// <summary>What the machine does when the CPU shuts down (triple fault).</summary>
public enum TripleFaultAction
{
    /// <summary>Like a PC (and QEMU): the board resets and the firmware starts again; <see cref="Machine.ResetOccurred"/> names the reason.</summary>
    Reset,
    /// <summary>The machine stops and reports <see cref="Machine.Crashed"/> with the reason (tests, one-shot runs).</summary>
    PowerOff,
}

/// <summary>Where a hard disk sits on the IDE cable (QEMU's names; the CD-ROM keeps the secondary master).</summary>
public enum IdeSlot
{
    /// <summary>hda: primary master.</summary>
    PrimaryMaster,
    /// <summary>hdb: primary slave.</summary>
    PrimarySlave,
    /// <summary>hdc: secondary slave (the CD-ROM stays secondary master).</summary>
    SecondarySlave,
}

/// <summary>A hard disk image (raw, qcow2, VHD or VMDK — recognised by its header) on the IDE bus.</summary>
/// <param name="Path">Disk image file; a qcow2 image's backing chain is opened read-only behind it.</param>
/// <param name="ReadOnly">Open read-only (guest writes fail with an ATA error).</param>
/// <param name="Snapshot">Guest writes go to a temporary qcow2 overlay, deleted when the machine stops (QEMU's -snapshot); the image itself is only read.</param>
public sealed record DiskConfig(string Path, bool ReadOnly = false, bool Snapshot = false)
{
    /// <summary>The IDE position; null = by position in <see cref="MachineConfig.HardDisks"/> (first hda, then hdb, then hdc).</summary>
    public IdeSlot? Slot { get; init; }
}

/// <summary>
/// What PC to build: memory, disks, CD-ROM, floppy, boot order, serial port, firmware and optional direct kernel boot.
/// Immutable once handed to a <see cref="Machine"/>; <see cref="Validate"/> lists every problem at once.
/// </summary>
public sealed class MachineConfig
{
    public const int MinMemoryMiB = 2;
    public const int MaxMemoryMiB = 3072;
    public const int MaxHardDisks = 3;

    /// <summary>Name used in log messages and crash reasons.</summary>
    public string Name { get; init; } = "vm";

    /// <summary>RAM in MiB (2–3072).</summary>
    public int MemoryMiB { get; init; } = 128;

    /// <summary>Up to three hard disks: hda (primary master), hdb (primary slave), hdc (secondary slave); see <see cref="DiskConfig.Slot"/>.</summary>
    public IReadOnlyList<DiskConfig> HardDisks { get; init; } = Array.Empty<DiskConfig>();

    /// <summary>ISO image in the ATAPI CD-ROM drive (IDE secondary master), or null for an empty drive.</summary>
    public string? CdRomImage { get; init; }

    /// <summary>ISO image in a second ATAPI CD-ROM drive at the secondary slave (e.g. a cloud-init seed), or null for none. Needs that slot free of hdc.</summary>
    public string? SecondCdRomImage { get; init; }

    /// <summary>The hard disks with their IDE slots resolved (explicit <see cref="DiskConfig.Slot"/>, else their position in the list).</summary>
    public IReadOnlyList<(IdeSlot Slot, DiskConfig Disk)> DiskSlots() =>
        HardDisks.Select((d, i) => (d.Slot ?? (IdeSlot)Math.Min(i, (int)IdeSlot.SecondarySlave), d)).ToList();

    /// <summary>1.44 MB floppy image in drive A:, or null.</summary>
    public string? FloppyImage { get; init; }

    /// <summary>Boot order SeaBIOS tries (CMOS boot order); direct kernel boot always comes first.</summary>
    public IReadOnlyList<BootDevice> BootOrder { get; init; } = new[] { BootDevice.CdRom, BootDevice.HardDisk, BootDevice.Floppy };

    /// <summary>
    /// Boot only from <see cref="BootOrder"/> (and a direct kernel): the fw_cfg "bootorder" list ends with SeaBIOS's
    /// <c>HALT</c>, so devices not listed are never tried and "No bootable device" follows the last one (QEMU's
    /// <c>-boot strict=on</c>). False: SeaBIOS falls back to every other bootable device after the list.
    /// </summary>
    public bool StrictBootOrder { get; init; }

    /// <summary>COM1 (0x3F8, IRQ 4) present; its output is <see cref="Machine.SerialOutput"/>.</summary>
    public bool SerialEnabled { get; init; } = true;

    /// <summary>Linux bzImage (or ipxe.lkrn, memtest86+ia32.bin) to boot directly, like <c>qemu -kernel</c>.</summary>
    public string? KernelPath { get; init; }
    /// <summary>Initial ramdisk for <see cref="KernelPath"/>.</summary>
    public string? InitrdPath { get; init; }
    /// <summary>Kernel command line for <see cref="KernelPath"/>.</summary>
    public string? KernelCommandLine { get; init; }

    /// <summary>System firmware instead of SeaBIOS's bios.bin (like <c>qemu -bios</c>).</summary>
    public string? BiosPath { get; init; }
    /// <summary>VGA BIOS instead of SeaBIOS's vgabios-stdvga.bin.</summary>
    public string? VgaBiosPath { get; init; }

    /// <summary>Network card (Intel e1000 at PCI 00:03.0), or null for none.</summary>
    public NicConfig? Nic { get; init; }

    public TripleFaultAction OnTripleFault { get; init; } = TripleFaultAction.Reset;

    /// <summary>
    /// I/O ports of debug consoles whose bytes go to <see cref="Machine.DebugOutput"/>: 0xE9 (Bochs/QEMU debugcon)
    /// by default; add 0x402 for SeaBIOS's own debug log (QEMU builds of SeaBIOS write it there).
    /// </summary>
    public IReadOnlyList<ushort> DebugConsolePorts { get; init; } = new ushort[] { 0xE9 };

    /// <summary>
    /// Deterministic guest time: the clock advances by <see cref="NsPerInstruction"/> per executed instruction and
    /// jumps to the next timer deadline while the CPU is halted, instead of following the host clock. Runs repeat
    /// exactly (tests), and never sleep.
    /// </summary>
    public bool DeterministicClock { get; init; }

    /// <summary>
    /// The CPU's JIT tier (hot guest code compiled to .NET IL, Cpu/Jit/): null keeps the CPU's default (on; environment
    /// variable VMPORTAL_JIT=0 turns it off), true/false forces it on or off (A/B measurements, <c>vmportal run --jit on|off</c>).
    /// </summary>
    public bool? Jit { get; init; }

    /// <summary>Block executions before the JIT compiles a block (0: every block at once); null keeps the default
    /// (VMPORTAL_JIT_THRESHOLD or Cpu.DefaultJitThreshold).</summary>
    public int? JitThreshold { get; init; }

    /// <summary>Guest nanoseconds per instruction in <see cref="DeterministicClock"/> mode (10 ns = 100 MIPS).</summary>
    public long NsPerInstruction { get; init; } = 10;

    /// <summary>
    /// Rate of the time-stamp counter in guest time (RDTSC ticks per guest second). The guest measures it against
    /// the PIT (Linux's "tsc: Detected … MHz processor", memtest86+'s CLK); 1 GHz by default.
    /// </summary>
    public long TscFrequencyHz { get; init; } = 1_000_000_000;

    /// <summary>Instructions per CPU slice between timer and input processing.</summary>
    public int SliceInstructions { get; init; } = 20_000;

    /// <summary>Host time source for the guest clock (tests may inject one).</summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>Every problem with this configuration, for the user (empty when it can be built).</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (MemoryMiB < MinMemoryMiB || MemoryMiB > MaxMemoryMiB)
            problems.Add($"memory must be between {MinMemoryMiB} and {MaxMemoryMiB} MiB (got {MemoryMiB})");
        if (HardDisks.Count > MaxHardDisks)
            problems.Add($"at most {MaxHardDisks} hard disks are supported (got {HardDisks.Count})");
        var slots = DiskSlots();
        foreach (var g in slots.GroupBy(s => s.Slot).Where(g => g.Count() > 1))
            problems.Add($"two hard disks want the same IDE slot ({SlotName(g.Key)})");
        foreach (var (slot, d) in slots) CheckDisk(problems, slot, d);
        CheckFile(problems, "CD-ROM image", CdRomImage);
        CheckFile(problems, "second CD-ROM image", SecondCdRomImage);
        if (SecondCdRomImage != null && slots.Any(s => s.Slot == IdeSlot.SecondarySlave))
            problems.Add("the second CD-ROM and hard disk hdc both need the IDE secondary slave: use one of them");
        CheckFile(problems, "floppy image", FloppyImage);
        CheckFile(problems, "kernel", KernelPath);
        CheckFile(problems, "initrd", InitrdPath);
        CheckFile(problems, "BIOS image", BiosPath);
        CheckFile(problems, "VGA BIOS image", VgaBiosPath);
        if (KernelPath == null && (InitrdPath != null || KernelCommandLine != null))
            problems.Add("an initrd or kernel command line needs a kernel");
        if (BootOrder.Count == 0 || BootOrder.Distinct().Count() != BootOrder.Count)
            problems.Add("the boot order must list each device at most once, and at least one");
        if (NsPerInstruction <= 0) problems.Add("NsPerInstruction must be positive");
        if (TscFrequencyHz < 1_000_000 || TscFrequencyHz > 100_000_000_000) problems.Add("TscFrequencyHz must be between 1 MHz and 100 GHz");
        if (SliceInstructions < 1) problems.Add("SliceInstructions must be at least 1");
        Nic?.Validate(problems);
        if (Nic == null && BootOrder.Contains(BootDevice.Network)) problems.Add("booting from the network needs a network card");
        return problems;
    }

    /// <summary>hda, hdb or hdc.</summary>
    public static string SlotName(IdeSlot slot) => slot switch
    {
        IdeSlot.PrimaryMaster => "hda",
        IdeSlot.PrimarySlave => "hdb",
        _ => "hdc",
    };

    /// <summary>The disk exists and its whole chain opens (format recognised, backing files present, no loop).</summary>
    private static void CheckDisk(List<string> problems, IdeSlot slot, DiskConfig d)
    {
        string what = $"hard disk image ({SlotName(slot)})";
        if (!File.Exists(d.Path))
        {
            problems.Add($"{what} not found: {d.Path}");
            return;
        }
        try
        {
            using (Storage.DiskImageFile.Open(d.Path, readOnly: true)) { }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            problems.Add($"{what} {d.Path}: {e.Message}");
        }
    }

    private static void CheckFile(List<string> problems, string what, string? path)
    {
        if (path != null && !File.Exists(path)) problems.Add($"{what} not found: {path}");
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Tests.Devices.Ata;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>
/// Disks of any format reach the machine: SeaBIOS boots the hand-made MBR (SeaBiosBootTests' boot code reads sector
/// 21 through int 13h and prints it) from a qcow2 overlay at hdc (secondary slave) in snapshot mode, and from a VHD at hda.
/// </summary>
public sealed class DiskMachineTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-diskvm-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<string> BootAndRead(MachineConfig config, string? until = null)
    {
        Assert.Empty(config.Validate());
        using var machine = new Machine(config);
        await machine.Start().WaitAsync(Wait);
        var sw = Stopwatch.StartNew();
        string text = "";
        while (sw.Elapsed < Wait)
        {
            text = machine.ReadScreenText() ?? "";
            if (until is not null ? text.Contains(until) : text.Contains("CDBOOT: done") || text.Contains("failed")) break;
            await Task.Delay(50);
        }
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), "vmportal-snapshot-*")); // unlinked once open
        await machine.PowerOff().WaitAsync(Wait);
        return text;
    }

    [CpuFact]
    public async Task SeaBiosBootsASnapshotOfAQcow2OverlayAtHdcAndAVhdAtHda()
    {
        string raw = Path.Combine(_dir, "boot.raw");
        File.WriteAllBytes(raw, SeaBiosBootTests.BuildBootableDisk("HELLO FROM QCOW2"));
        string ov = Path.Combine(_dir, "boot.qcow2");
        DiskImageFile.CreateQcow2(ov, 0, "boot.raw");
        var before = SHA256.HashData(File.ReadAllBytes(ov));
        string text = await BootAndRead(new MachineConfig
        {
            Name = "qcow2-hdc",
            HardDisks = [new DiskConfig(ov, Snapshot: true) { Slot = IdeSlot.SecondarySlave }],
            BootOrder = [BootDevice.HardDisk],
        });
        Assert.Contains("HELLO FROM QCOW2", text);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(ov)));

        string vhd = Path.Combine(_dir, "boot.vhd");
        DiskImageFile.Convert(raw, vhd, DiskFormat.Vhd);
        File.WriteAllBytes(raw, new byte[512]); // the VHD holds its own copy
        text = await BootAndRead(new MachineConfig
        {
            Name = "vhd-hda",
            HardDisks = [new DiskConfig(vhd), new DiskConfig(ov, ReadOnly: true)],
            BootOrder = [BootDevice.HardDisk],
        });
        Assert.Contains("HELLO FROM QCOW2", text);
    }

    [CpuFact]
    public async Task AStrictBootOrderTriesOnlyTheListedDevices()
    {
        string raw = Path.Combine(_dir, "boot.raw");
        File.WriteAllBytes(raw, SeaBiosBootTests.BuildBootableDisk("HELLO FROM THE DISK"));
        MachineConfig Config(bool strict) => new()
        {
            Name = "strict-" + strict,
            HardDisks = [new DiskConfig(raw, ReadOnly: true)],
            BootOrder = [BootDevice.CdRom], // no CD in the drive
            StrictBootOrder = strict,
        };
        // Without HALT SeaBIOS falls back to the disk; with it, the empty CD drive is all it tries.
        Assert.Contains("HELLO FROM THE DISK", await BootAndRead(Config(strict: false), until: "HELLO FROM THE DISK"));
        string text = await BootAndRead(Config(strict: true), until: "No bootable device");
        Assert.Contains("No bootable device", text);
        Assert.DoesNotContain("HELLO FROM THE DISK", text);
    }

    [Fact]
    public void ValidateNamesBrokenDisksAndSlotConflicts()
    {
        string ov = Path.Combine(_dir, "ov.qcow2");
        File.WriteAllBytes(Path.Combine(_dir, "b.raw"), new byte[65536]);
        DiskImageFile.CreateQcow2(ov, 0, "b.raw");
        File.Delete(Path.Combine(_dir, "b.raw"));
        string iso = Path.Combine(_dir, "seed.iso");
        File.WriteAllBytes(iso, new byte[2048 * 16]);
        var problems = new MachineConfig
        {
            HardDisks = [new DiskConfig(ov), new DiskConfig(ov) { Slot = IdeSlot.PrimaryMaster }, new DiskConfig(iso) { Slot = IdeSlot.SecondarySlave }],
            SecondCdRomImage = iso,
        }.Validate();
        Assert.Contains(problems, p => p.Contains("hda") && p.Contains("b.raw") && p.Contains("not found"));
        Assert.Contains(problems, p => p.Contains("same IDE slot (hda)"));
        Assert.Contains(problems, p => p.Contains("second CD-ROM and hard disk hdc"));
        Assert.Empty(new MachineConfig { SecondCdRomImage = iso, CdRomImage = iso }.Validate());
    }
}

using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Tests.Boot;

namespace VmPortal.Emulator.Tests.State;

internal static class LinuxGuest
{
    public const uint Needs = Platform.TestGuests.CpuidFpu | Platform.TestGuests.CpuidCx8 | Platform.TestGuests.CpuidCmov; // GUESTS.md
    public const string Name = "Debian's i386 686 kernel";
}

/// <summary>
/// Determinism with a real guest: the rescue Linux kernel (direct boot) under the deterministic clock. The same boot
/// shows the pages stored as references to the kernel and initrd files (<c>MediaPages</c>): the file is smaller by
/// them, loads to the same hash, and is refused, naming the file, once the kernel file has changed or is gone.
/// </summary>
public class LinuxStateDeterminismTests
{
    [BootFact(LinuxGuest.Needs, LinuxGuest.Name, GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task RunNSaveRunMEqualsLoadRunM()
    {
        const long N = 400_000_000, M = 100_000_000;
        var config = BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd, append: GuestImages.RescueCommandLine);
        // copies of the boot files: the test changes them afterwards
        string dir = Directory.CreateTempSubdirectory("vmportal-state-media-").FullName;
        string kernel = Path.Combine(dir, "vmlinuz"), initrd = Path.Combine(dir, "initrd.gz");
        File.Copy(config.KernelPath!, kernel);
        File.Copy(config.InitrdPath!, initrd);
        config = new MachineConfig
        {
            Name = config.Name, MemoryMiB = config.MemoryMiB, KernelPath = kernel, InitrdPath = initrd,
            KernelCommandLine = config.KernelCommandLine, OnTripleFault = TripleFaultAction.PowerOff, DeterministicClock = true,
        };
        using var a = new Machine(config);
        await a.StartAndPauseAt(N).WaitAsync(BootHarness.StepTimeout);
        using var file = new MemoryStream();
        await a.SaveState(file);
        long saved = a.InstructionCount;
        await a.PauseAtInstruction(saved + M).WaitAsync(BootHarness.StepTimeout);
        string expected = await a.StateHash();

        using var b = new Machine(config);
        file.Position = 0;
        await b.LoadState(file);
        await b.PauseAtInstruction(saved + M).WaitAsync(BootHarness.StepTimeout);
        Assert.Equal(a.InstructionCount, b.InstructionCount);
        Assert.Equal(expected, await b.StateHash());
        // The guest really was in the kernel (protected mode, paging) and moved on after the save.
        Assert.Contains("prot", a.DescribeCpu());
        Assert.NotEqual(saved, a.InstructionCount);

        // the kernel's compressed image lies in RAM: stored as references, the file is MiBs smaller than without them
        file.Position = 0;
        var snapshot = StateFile.Read(file);
        Assert.Equal([kernel, initrd], snapshot.ReferenceMedia);
        using var plain = new MemoryStream();
        StateFile.Write(plain, new MachineSnapshot(snapshot.Components));
        Assert.True(plain.Length - file.Length > 1 << 20, $"with references {file.Length} bytes, without {plain.Length}");

        // the kernel file changed (one byte) or gone: refused naming it, the running machine untouched
        string before = await b.StateHash();
        var bytes = File.ReadAllBytes(kernel);
        bytes[^100] ^= 0xFF;
        File.WriteAllBytes(kernel, bytes);
        file.Position = 0;
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => b.LoadState(file));
        Assert.Contains($"holds pages of {kernel}, which has changed since the state was saved", e.Message);
        File.Delete(kernel);
        file.Position = 0;
        e = await Assert.ThrowsAsync<InvalidDataException>(() => b.LoadState(file));
        Assert.Contains($"holds pages of {kernel}, which cannot be read", e.Message);
        Assert.Equal(before, await b.StateHash());
        Directory.Delete(dir, recursive: true);
    }
}

/// <summary>
/// A running shell: write a file, save, change the file, load the saved state into a fresh machine — the file and
/// the screen are those of the save, and the shell answers on the keyboard/VGA and on the serial line. One boot.
/// </summary>
public class LinuxStateShellTests
{
    [BootFact(LinuxGuest.Needs, LinuxGuest.Name, GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task ALoadedShellHasTheFileAndScreenOfTheSave()
    {
        var config = BootHarness.Config(kernel: GuestImages.RescueKernel, initrd: GuestImages.RescueInitrd, append: GuestImages.RescueCommandLine);
        using var h = new BootHarness(config);
        await h.Start();
        // a loaded 2-core host needs far more than the usual 1–2 min to boot (as LinuxSnapshotRestTests allows)
        var boot = BootHarness.StepTimeout > TimeSpan.FromMinutes(20) ? BootHarness.StepTimeout : TimeSpan.FromMinutes(20);
        await h.WaitFor(GuestImages.ReadyLine, serial: false, timeout: boot);
        await h.WaitFor(@"^/ #$", serial: false); // the screen text has trailing blanks trimmed
        h.Machine.TypeText("echo one > /tmp/f\n");
        await h.WaitFor(@"echo one > /tmp/f\n/ #$", serial: false);

        using var file = new MemoryStream();
        var result = await h.Machine.SaveState(file);
        string screenAtSave = h.Screen;
        Assert.True(result.Bytes == file.Length && result.Bytes > 0);

        h.Machine.TypeText("echo two > /tmp/f; cat /tmp/f\n");
        await h.WaitFor(@"cat /tmp/f\ntwo\n/ #$", serial: false);

        using var b = new BootHarness(config);
        file.Position = 0;
        await b.Machine.LoadState(file);
        Assert.Equal(MachineState.Paused, b.Machine.State);
        Assert.Equal(screenAtSave, b.Screen);
        await b.Machine.Resume();
        b.Machine.TypeText("cat /tmp/f\n");
        string shown = await b.WaitFor(@"cat /tmp/f\n\w+\n/ #$", serial: false);
        Assert.Contains("\none\n", shown);
        string now = b.Screen;

        // The serial console's shell lives on too.
        b.Machine.SendSerial("echo $((6*7))\r"u8);
        await b.WaitFor(@"^42\r?$", screen: false);
        // the loaded machine never saw the second command ("two" alone would match the e1000 driver's "Network")
        Assert.DoesNotContain("echo two", now);
    }
}

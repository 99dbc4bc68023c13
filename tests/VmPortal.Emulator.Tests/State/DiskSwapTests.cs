using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Tests.Storage;

namespace VmPortal.Emulator.Tests.State;

/// <summary>
/// <see cref="Machine.SwapDisks"/> on a machine running SeaBIOS with a qcow2 hard disk: the images are closed, the
/// callback's disks attached, the state captured in the same stop; a failing callback or a wrong size puts the old
/// disks back; the machine runs on.
/// </summary>
public sealed class DiskSwapTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("vmportal-swap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [MachineStateTests.SeaBiosFact]
    public async Task DisksAreSwappedBetweenSlicesAndRestoredWhenTheCallbackFails()
    {
        string a = Path.Combine(_dir, "a.qcow2"), b = Path.Combine(_dir, "b.qcow2"), c = Path.Combine(_dir, "c.qcow2");
        DiskImageFile.CreateQcow2(a, 8 << 20);
        var config = new MachineConfig { Name = "swap", MemoryMiB = 32, DeterministicClock = true, OnTripleFault = TripleFaultAction.PowerOff, HardDisks = [new DiskConfig(a)] };
        using var m = new Machine(config);
        await m.StartAndPauseAt(2_000_000).WaitAsync(Wait);

        var r = await m.SwapDisks(() =>
        {
            // the old image is closed: it can be opened for writing exclusively
            using (File.OpenHandle(a, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) { }
            DiskImageFile.CreateQcow2(b, 0, a);
            return [new DiskConfig(b)];
        }, captureState: true).WaitAsync(Wait);
        Assert.NotNull(r.State);
        Assert.Equal(await m.StateHash(), r.State!.Hash()); // paused: the capture is the machine's state
        Assert.Equal(b, m.CurrentDisks.Single().Path);
        Assert.Throws<IOException>(() => File.OpenHandle(b, FileMode.Open, FileAccess.ReadWrite, FileShare.None).Dispose()); // b is open now

        // a failing callback: b is reopened, the error comes through
        await Assert.ThrowsAsync<InvalidOperationException>(() => m.SwapDisks(() => throw new InvalidOperationException("nope")).WaitAsync(Wait));
        Assert.Equal(b, m.CurrentDisks.Single().Path);
        // a disk of another size is refused and b stays
        DiskImageFile.CreateQcow2(c, 4 << 20);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => m.SwapDisks(() => [new DiskConfig(c)]).WaitAsync(Wait));
        Assert.Contains("sectors", e.Message);
        Assert.Equal(b, m.CurrentDisks.Single().Path);

        await m.PauseAtInstruction(4_000_000).WaitAsync(Wait); // runs on
        Assert.Equal(MachineState.Paused, m.State);
        await m.PowerOff().WaitAsync(Wait);
        QemuImg.AssertCheckClean(b);
        Assert.Equal(2, QemuImg.Img("info", "--backing-chain", b).Split("image:").Length - 1);
    }
}

using System.Diagnostics;
using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator;

// Swapping the hard disk images of a running machine: how the portal freezes a disk for a snapshot and continues on
// a new overlay, or reverts to an older layer (docs/emulator.md "Disk swap").
public sealed partial class Machine
{
    /// <summary>What <see cref="SwapDisks"/> did: the machine state captured in the same stop (or null) and how long the guest stood still.</summary>
    public sealed record DiskSwapResult(MachineSnapshot? State, TimeSpan Paused);

    private IReadOnlyList<DiskConfig>? _currentDisks;

    /// <summary>The hard disks the machine uses now (<see cref="MachineConfig.HardDisks"/> until a <see cref="SwapDisks"/>).</summary>
    public IReadOnlyList<DiskConfig> CurrentDisks => _currentDisks ?? Config.HardDisks;

    /// <summary>
    /// Between two CPU slices, with the guest and its clock stopped: optionally captures the whole machine state
    /// (<paramref name="captureState"/>: a snapshot with memory), flushes and closes the hard disk images, runs
    /// <paramref name="whileClosed"/> (on the machine thread: file work such as freezing an overlay and creating the
    /// next one) and opens the disks it returns — the same number, in the same order, each the same size — behind
    /// the same drives. The guest continues as if nothing happened (transfers in progress keep their position).
    /// If <paramref name="whileClosed"/> throws or a new image cannot be opened, the previous disks are opened again
    /// and the exception is rethrown. Disks with <see cref="DiskConfig.Snapshot"/> cannot be swapped.
    /// </summary>
    public Task<DiskSwapResult> SwapDisks(Func<IReadOnlyList<DiskConfig>> whileClosed, bool captureState = false) => OnMachineThread(() =>
    {
        var sw = Stopwatch.StartNew();
        var board = _board!;
        var media = _media ?? throw new InvalidOperationException($"machine '{Config.Name}' has no media open");
        var old = CurrentDisks;
        if (old.Any(d => d.Snapshot)) throw new InvalidOperationException("disks opened with Snapshot = true cannot be swapped");
        bool running = _state == MachineState.Running;
        if (running) Clock.Pause();
        try
        {
            var state = captureState ? Capture(board) : null;
            var slots = media.HardDisks.Select(d => d.Slot).ToList();
            foreach (var (_, image) in media.HardDisks) { image.Flush(); image.Dispose(); }
            List<IDiskImage> opened;
            IReadOnlyList<DiskConfig> next;
            try
            {
                next = whileClosed();
                if (next.Count != old.Count) throw new ArgumentException($"{next.Count} disks given for {old.Count} drives");
                if (!BySlot(next).Select(d => d.Slot).SequenceEqual(slots)) throw new ArgumentException("the new disks must keep their IDE slots");
                opened = OpenAll(next);
                for (int i = 0; i < opened.Count; i++)
                    if (opened[i].SectorCount != media.HardDisks[i].Image.SectorCount)
                    {
                        foreach (var o in opened) o.Dispose();
                        throw new ArgumentException($"disk {i} ({next[i].Path}) has {opened[i].SectorCount} sectors, the drive {media.HardDisks[i].Image.SectorCount}");
                    }
            }
            catch
            {
                Attach(board, media, slots, OpenAll(old));
                throw;
            }
            Attach(board, media, slots, opened);
            _currentDisks = next;
            return new DiskSwapResult(state, sw.Elapsed);
        }
        finally
        {
            if (running) Clock.Start();
        }
    });

    /// <summary>The disks with their slots, in the order the machine's media keeps them (by slot).</summary>
    private static List<(IdeSlot Slot, DiskConfig Disk)> BySlot(IReadOnlyList<DiskConfig> disks) =>
        disks.Select((d, i) => (d.Slot ?? (IdeSlot)Math.Min(i, (int)IdeSlot.SecondarySlave), d)).OrderBy(x => x.Item1).ToList();

    private static List<IDiskImage> OpenAll(IReadOnlyList<DiskConfig> disks)
    {
        var list = new List<IDiskImage>();
        try
        {
            foreach (var (_, d) in BySlot(disks)) list.Add(MachineMedia.OpenDisk(d));
            return list;
        }
        catch
        {
            foreach (var i in list) i.Dispose();
            throw;
        }
    }

    private static void Attach(PcBoard board, MachineMedia media, List<IdeSlot> slots, List<IDiskImage> images)
    {
        for (int i = 0; i < images.Count; i++)
        {
            media.HardDisks[i] = (slots[i], images[i]);
            var drive = slots[i] switch
            {
                IdeSlot.PrimaryMaster => board.Ide.Primary.Master,
                IdeSlot.PrimarySlave => board.Ide.Primary.Slave,
                _ => board.Ide.Secondary.Slave,
            };
            if (drive is AtaHardDisk disk) disk.ReplaceImage(images[i]);
        }
    }
}

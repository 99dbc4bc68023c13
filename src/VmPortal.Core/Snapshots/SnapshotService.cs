using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Core.Console;
using VmPortal.Core.Disks;
using VmPortal.Core.Runtime;
using VmPortal.Core.Tasks;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Emulator;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Storage;

namespace VmPortal.Core.Snapshots;

/// <summary>A snapshot as the API and the Snapshots tab show it.</summary>
public sealed record SnapshotInfo(Guid Id, Guid VmId, Guid? ParentId, string Name, string Description, DateTimeOffset CreatedAt,
    bool IncludesMemory, long SizeBytes, bool Current);

/// <summary>What a take, revert or delete did and how long it took (the guest's pause separately).</summary>
public sealed record SnapshotOpResult(SnapshotInfo? Snapshot, TimeSpan Total, TimeSpan Paused, long BytesMerged = 0,
    MachineSnapshot? StartWithState = null);

/// <summary>
/// VM snapshots as an external qcow2 overlay chain (docs/portal.md "Snapshots"): taking one freezes each disk's
/// current overlay (it becomes the snapshot's layer, never written again) and continues on a new empty overlay over
/// it; with memory the machine state is captured in the same stop of the guest. Revert throws away the current
/// overlay and starts a new empty one over the snapshot's layer (and loads its machine state). Delete merges the
/// snapshot's layer into whatever reads through it (its child snapshots' layers and, if it is the current position,
/// the VM's running overlay) and then removes it, so no other branch changes. The database row and the files are
/// changed in an order that leaves the previous state usable after a crash at any point; what such a crash leaves
/// behind (an overlay or state file no row names) is removed by <see cref="SweepOrphansAsync"/> at the next start.
/// One operation per VM at a time. Each operation takes an optional <see cref="TaskContext"/> for its progress.
/// </summary>
public sealed partial class SnapshotService(IDbContextFactory<PortalDbContext> dbFactory, VmDiskStore disks, VmHost host, TimeProvider clock,
    ILogger<SnapshotService>? log = null)
{
    private readonly ILogger logger = (ILogger?)log ?? NullLogger.Instance;

    /// <summary>
    /// Tests only: called at the points where a portal crash is most harmful (<c>take:before-commit</c>,
    /// <c>revert:before-commit</c>, <c>delete:before-files</c>); a test throws from it to stop the operation there as a
    /// crash would (no clean-up of files; the database transaction is rolled back as PostgreSQL does when the
    /// connection dies).
    /// </summary>
    internal Action<string>? CrashPoint { get; set; }

    /// <summary>Longest chain of snapshots from the first to the current one (each adds a layer to the disks' backing chain).</summary>
    public const int MaxDepth = 12;
    public const string SuspendFileName = "suspended.vmstate";

    private readonly ConcurrentDictionary<Guid, SemaphoreSlim> locks = new();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex NamePattern();

    public string SuspendFilePath(Guid vmId) => Path.Combine(disks.VmDirectory(vmId), SuspendFileName);

    public async Task<IReadOnlyList<SnapshotInfo>> ListAsync(Guid vmId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var list = await db.Snapshots.AsNoTracking().Where(s => s.VmId == vmId).OrderBy(s => s.CreatedAt).ToListAsync(ct);
        return list.Select(Info).ToList();
    }

    public static SnapshotInfo Info(VmSnapshot s) =>
        new(s.Id, s.VmId, s.ParentId, s.Name, s.Description, s.CreatedAt, s.IncludesMemory, s.SizeBytes, s.IsCurrent);

    /// <summary>Field errors of a new snapshot's name and description (empty when fine).</summary>
    public static Dictionary<string, string[]> Validate(string? name, string? description)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrEmpty(name) || name.Length > VmSnapshot.NameMaxLength || !NamePattern().IsMatch(name))
            errors["name"] = [$"1–{VmSnapshot.NameMaxLength} characters: letters, digits, '.', '_' or '-', starting with a letter or digit."];
        if (description is { Length: > VmSnapshot.DescriptionMaxLength })
            errors["description"] = [$"At most {VmSnapshot.DescriptionMaxLength} characters."];
        return errors;
    }

    // ------------------------------------------------------------------ take

    /// <summary>
    /// Takes a snapshot of the VM's disks (any state but starting, stopping or suspended) and, with
    /// <paramref name="includeMemory"/>, of its running machine (running or paused only).
    /// </summary>
    public async Task<OpResult<SnapshotOpResult>> TakeAsync(Guid vmId, string? name, string? description, bool includeMemory, CancellationToken ct = default,
        TaskContext? task = null)
    {
        var errors = Validate(name, description);
        if (errors.Count > 0) return OpResult<SnapshotOpResult>.Invalid(errors);
        var gate = locks.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var total = Stopwatch.StartNew();
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var vm = await db.VirtualMachines.FirstOrDefaultAsync(v => v.Id == vmId, ct);
            if (vm is null) return OpResult<SnapshotOpResult>.NotFound($"VM {vmId} not found.");
            var snaps = await db.Snapshots.Where(s => s.VmId == vmId).ToListAsync(ct);
            if (snaps.Any(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)))
                return OpResult<SnapshotOpResult>.Conflict($"This VM already has a snapshot named '{name}'.");
            var (running, refusal) = RunState(vm, "take a snapshot of");
            if (refusal is not null) return OpResult<SnapshotOpResult>.Conflict(refusal);
            if (includeMemory && !running)
                return OpResult<SnapshotOpResult>.Conflict("The VM is not running, so there is no memory to save: take the snapshot without memory (includeMemory: false).");
            if (vm.Disks.Count == 0 && !includeMemory)
                return OpResult<SnapshotOpResult>.Conflict("The VM has no disks: a snapshot without memory would hold nothing.");
            var current = snaps.FirstOrDefault(s => s.IsCurrent);
            if (Depth(snaps, current) >= MaxDepth)
                return OpResult<SnapshotOpResult>.Conflict($"The current position is {MaxDepth} snapshots deep (each one adds a layer every disk read passes through): delete an older snapshot first.");

            int steps = includeMemory ? 4 : 3;
            Progress(task, 1, steps, running ? (includeMemory ? "pausing the guest: capturing the machine and freezing the disks" : "freezing the disks (the guest stands still)") : "freezing the disks");
            var snap = new VmSnapshot
            {
                VmId = vmId, ParentId = current?.Id, Name = name!, Description = description ?? "",
                CreatedAt = clock.GetUtcNow(), IncludesMemory = includeMemory,
                Layers = vm.Disks.Select(d => new VmSnapshotLayer { DiskId = d.Id, File = d.File }).ToList(),
            };
            var newFiles = vm.Disks.Select(d => NewOverlayName(d.Id)).ToList();
            var created = new List<string>();
            void Freeze()
            {
                for (int i = 0; i < vm.Disks.Count; i++)
                {
                    string path = Path.Combine(disks.VmDirectory(vmId), newFiles[i]);
                    DiskImageFile.CreateQcow2(path, 0, Path.Combine(disks.VmDirectory(vmId), snap.Layers[i].File));
                    created.Add(path);
                }
            }

            // the database first, in a transaction committed only when the files are in place: a crash before the
            // commit leaves the old overlays as the VM's disks (untouched, only no longer written)
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            if (current is not null) current.IsCurrent = false;
            snap.IsCurrent = true;
            db.Snapshots.Add(snap);
            for (int i = 0; i < vm.Disks.Count; i++) vm.Disks[i].File = newFiles[i];
            TimeSpan paused = TimeSpan.Zero;
            MachineSnapshot? state = null;
            try
            {
                await db.SaveChangesAsync(ct);
                if (running)
                {
                    var r = await host.Get(vmId).WithMachineAsync(m => m.SwapDisks(() => { Freeze(); return Replaced(m, vmId, snap.Layers, newFiles); }, includeMemory));
                    paused = r.Paused;
                    state = r.State;
                }
                else Freeze();
                if (state is not null)
                {
                    Progress(task, 2, steps, $"the guest runs on (paused {paused.TotalMilliseconds:0} ms); writing its memory");
                    snap.StateFile = $"snapshot-{snap.Id:N}.vmstate";
                    WriteStateFile(Path.Combine(disks.VmDirectory(vmId), snap.StateFile), state);
                }
                Progress(task, steps - 1, steps, "recording the snapshot");
                snap.SizeBytes = SizeOf(vmId, snap);
                await db.SaveChangesAsync(ct);
                CrashPoint?.Invoke("take:before-commit");
                await tx.CommitAsync(ct);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DbUpdateException)
            {
                if (!running) VmDiskStore.DeleteFiles(created); // a running machine may already write them
                return OpResult<SnapshotOpResult>.Conflict($"The snapshot could not be taken: {e.Message}");
            }
            catch (VmLifecycleException e)
            {
                return OpResult<SnapshotOpResult>.Conflict(e.Message);
            }
            return OpResult<SnapshotOpResult>.Ok(new SnapshotOpResult(Info(snap), total.Elapsed, paused));
        }
        finally
        {
            gate.Release();
        }
    }

    // ------------------------------------------------------------------ revert

    /// <summary>
    /// Reverts the VM to <paramref name="snapshotId"/>: every disk continues on a new empty overlay over the snapshot's
    /// layer (what was written since is discarded). A running or paused VM needs a snapshot with memory: its machine
    /// is switched to the saved state and runs. A stopped VM reverted to a snapshot with memory gets
    /// <see cref="SnapshotOpResult.StartWithState"/>: the caller starts it from that state (quota and capacity apply).
    /// </summary>
    public async Task<OpResult<SnapshotOpResult>> RevertAsync(Guid vmId, Guid snapshotId, CancellationToken ct = default, TaskContext? task = null)
    {
        var gate = locks.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var total = Stopwatch.StartNew();
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var vm = await db.VirtualMachines.FirstOrDefaultAsync(v => v.Id == vmId, ct);
            if (vm is null) return OpResult<SnapshotOpResult>.NotFound($"VM {vmId} not found.");
            var snaps = await db.Snapshots.Where(s => s.VmId == vmId).ToListAsync(ct);
            var snap = snaps.FirstOrDefault(s => s.Id == snapshotId);
            if (snap is null) return OpResult<SnapshotOpResult>.NotFound($"Snapshot {snapshotId} not found.");
            var (running, refusal) = RunState(vm, "revert");
            if (refusal is not null) return OpResult<SnapshotOpResult>.Conflict(refusal);
            if (running && !snap.IncludesMemory)
                return OpResult<SnapshotOpResult>.Conflict(
                    $"The VM is running and snapshot '{snap.Name}' has no memory: its disks cannot change under the running guest. Stop the VM first, or revert to a snapshot with memory.");
            var missing = vm.Disks.Where(d => snap.Layers.All(l => l.DiskId != d.Id)).ToList();
            if (missing.Count > 0)
                return OpResult<SnapshotOpResult>.Conflict($"Snapshot '{snap.Name}' has no layer for {missing.Count} of the VM's disks (added after it was taken); remove them first.");
            MachineSnapshot? state = null;
            if (snap.IncludesMemory)
            {
                Progress(task, 1, 3, "reading and checking the saved memory");
                try
                {
                    await using var fs = File.OpenRead(Path.Combine(disks.VmDirectory(vmId), snap.StateFile!));
                    state = StateFile.Read(fs);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    return OpResult<SnapshotOpResult>.Conflict($"The memory of snapshot '{snap.Name}' cannot be read: {e.Message}");
                }
            }

            var layers = vm.Disks.Select(d => snap.Layers.First(l => l.DiskId == d.Id)).ToList();
            var oldFiles = vm.Disks.Select(d => disks.PathOf(vmId, d)).ToList();
            var newFiles = vm.Disks.Select(d => NewOverlayName(d.Id)).ToList();
            var created = new List<string>();
            void NewOverlays()
            {
                for (int i = 0; i < vm.Disks.Count; i++)
                {
                    string path = Path.Combine(disks.VmDirectory(vmId), newFiles[i]);
                    DiskImageFile.CreateQcow2(path, vm.Disks[i].SizeMiB * 1024 * 1024, Path.Combine(disks.VmDirectory(vmId), layers[i].File));
                    created.Add(path);
                }
            }

            Progress(task, 2, 3, running ? "pausing the guest: loading the saved machine, new overlays over the snapshot" : "new overlays over the snapshot");
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            foreach (var s in snaps) s.IsCurrent = s.Id == snap.Id;
            for (int i = 0; i < vm.Disks.Count; i++) vm.Disks[i].File = newFiles[i];
            TimeSpan paused = TimeSpan.Zero;
            try
            {
                await db.SaveChangesAsync(ct);
                if (running)
                {
                    var hosted = host.Get(vmId);
                    paused = await hosted.WithMachineAsync(async m =>
                    {
                        var sw = Stopwatch.StartNew();
                        await m.Pause();
                        try
                        {
                            // the state first: a file this machine cannot load is refused before anything changed
                            await m.LoadState(state!);
                            await m.SwapDisks(() => { NewOverlays(); return Replaced(m, vmId, layers, newFiles, byPath: oldFiles); });
                        }
                        finally
                        {
                            await m.Resume();
                        }
                        hosted.Lifecycle.TryApply(VmTransition.Resume); // a paused VM runs the reverted machine
                        return sw.Elapsed;
                    });
                }
                else NewOverlays();
                CrashPoint?.Invoke("revert:before-commit");
                await tx.CommitAsync(ct);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DbUpdateException)
            {
                if (!running) VmDiskStore.DeleteFiles(created);
                return OpResult<SnapshotOpResult>.Conflict($"The revert failed: {e.Message}");
            }
            catch (VmLifecycleException e)
            {
                return OpResult<SnapshotOpResult>.Conflict(e.Message);
            }
            Progress(task, 3, 3, "removing the discarded overlays");
            VmDiskStore.DeleteFiles(oldFiles); // the discarded overlays (never a snapshot's layer)
            return OpResult<SnapshotOpResult>.Ok(new SnapshotOpResult(Info(snap), total.Elapsed, paused,
                StartWithState: running ? null : state));
        }
        finally
        {
            gate.Release();
        }
    }

    // ------------------------------------------------------------------ delete

    /// <summary>
    /// Deletes a snapshot: its layer is merged into every image that reads through it (the layers of its child
    /// snapshots and, when it is the current position, the VM's overlays — with a running VM the guest stands still
    /// while that merge runs), its children move up to its parent, and its files are removed. Other branches are not
    /// touched. Allowed in any state but starting and stopping.
    /// </summary>
    public async Task<OpResult<SnapshotOpResult>> DeleteAsync(Guid vmId, Guid snapshotId, CancellationToken ct = default, TaskContext? task = null)
    {
        var gate = locks.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var total = Stopwatch.StartNew();
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var vm = await db.VirtualMachines.FirstOrDefaultAsync(v => v.Id == vmId, ct);
            if (vm is null) return OpResult<SnapshotOpResult>.NotFound($"VM {vmId} not found.");
            var snaps = await db.Snapshots.Where(s => s.VmId == vmId).ToListAsync(ct);
            var snap = snaps.FirstOrDefault(s => s.Id == snapshotId);
            if (snap is null) return OpResult<SnapshotOpResult>.NotFound($"Snapshot {snapshotId} not found.");
            var hostedState = host.TryFind(vmId, out var h) ? h.State : VmRunState.Stopped;
            if (hostedState is VmRunState.Starting or VmRunState.Stopping)
                return OpResult<SnapshotOpResult>.Conflict($"The VM is {hostedState.ToString().ToLowerInvariant()}: wait until it runs or has stopped.");
            bool running = hostedState is VmRunState.Running or VmRunState.Paused;
            var children = snaps.Where(s => s.ParentId == snap.Id).ToList();
            var current = snaps.FirstOrDefault(s => s.IsCurrent);
            bool inRunningChain = running && Ancestors(snaps, current).Any(s => s.Id == snap.Id);
            string dir = disks.VmDirectory(vmId);
            long merged = 0;
            void Merge()
            {
                foreach (var layer in snap.Layers)
                {
                    foreach (var child in children)
                        if (child.Layers.FirstOrDefault(l => l.DiskId == layer.DiskId) is { } cl)
                            merged += DiskImageFile.MergeBackingLayer(Path.Combine(dir, cl.File));
                    if (snap.IsCurrent && vm.Disks.FirstOrDefault(d => d.Id == layer.DiskId) is { } disk)
                        merged += DiskImageFile.MergeBackingLayer(disks.PathOf(vmId, disk));
                }
            }

            TimeSpan paused = TimeSpan.Zero;
            Progress(task, 1, 3, inRunningChain ? "merging its data into the running disks (the guest stands still)" : "merging its data into what reads through it");
            try
            {
                // merges first: each keeps what its image reads, so a crash here leaves every snapshot usable
                if (inRunningChain)
                {
                    var r = await host.Get(vmId).WithMachineAsync(m => m.SwapDisks(() => { Merge(); return m.CurrentDisks; }));
                    paused = r.Paused;
                }
                else Merge();
                foreach (var c in children) c.ParentId = snap.ParentId;
                if (snap.IsCurrent && snaps.FirstOrDefault(s => s.Id == snap.ParentId) is { } parent) parent.IsCurrent = true;
                await db.SaveChangesAsync(ct); // children re-parented first: the parent link must not dangle
                db.Snapshots.Remove(snap);
                await db.SaveChangesAsync(ct);
                CrashPoint?.Invoke("delete:before-files");
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or DbUpdateException)
            {
                return OpResult<SnapshotOpResult>.Conflict($"The snapshot could not be deleted: {e.Message}");
            }
            catch (VmLifecycleException e)
            {
                return OpResult<SnapshotOpResult>.Conflict(e.Message);
            }
            Progress(task, 2, 3, $"removing its files ({merged >> 20} MiB merged)");
            VmDiskStore.DeleteFiles(snap.Layers.Select(l => Path.Combine(dir, l.File)));
            if (snap.StateFile is not null) VmDiskStore.DeleteFiles([Path.Combine(dir, snap.StateFile)]);
            // sizes of the layers that took the merged data
            foreach (var c in children) c.SizeBytes = SizeOf(vmId, c);
            if (children.Count > 0) await db.SaveChangesAsync(ct);
            return OpResult<SnapshotOpResult>.Ok(new SnapshotOpResult(Info(snap) with { Current = false }, total.Elapsed, paused, merged));
        }
        finally
        {
            gate.Release();
        }
    }

    // ------------------------------------------------------------------ suspend

    /// <summary>
    /// Suspends a running or paused VM to disk: its machine state goes to <see cref="SuspendFilePath"/> (written to a
    /// temporary file, synced and renamed), the machine ends and frees its memory, the VM is Suspended. Starting it
    /// again (resume) continues the machine — also after a portal restart.
    /// </summary>
    public async Task<OpResult<TimeSpan>> SuspendAsync(Guid vmId, CancellationToken ct = default, TaskContext? task = null)
    {
        var gate = locks.GetOrAdd(vmId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var total = Stopwatch.StartNew();
            if (!host.TryFind(vmId, out var hosted) || hosted.State is not (VmRunState.Running or VmRunState.Paused))
            {
                var s = host.TryFind(vmId, out var h2) ? h2.State : VmRunState.Stopped;
                return OpResult<TimeSpan>.Conflict($"Cannot suspend a VM that is {s.ToString().ToLowerInvariant()}; allowed when running or paused.");
            }
            string path = SuspendFilePath(vmId);
            try
            {
                Progress(task, 1, 2, "pausing the guest and capturing the machine");
                await hosted.SuspendAsync(async m =>
                {
                    var (state, _) = await m.CaptureState();
                    Progress(task, 2, 2, "writing its memory to disk");
                    WriteStateFile(path, state);
                });
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return OpResult<TimeSpan>.Conflict($"The VM could not be suspended: {e.Message}");
            }
            catch (VmLifecycleException e)
            {
                return OpResult<TimeSpan>.Conflict(e.Message);
            }
            return OpResult<TimeSpan>.Ok(total.Elapsed);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The saved state of a suspended VM (null when there is none); throws <see cref="InvalidDataException"/> for a bad file.</summary>
    public MachineSnapshot? ReadSuspendState(Guid vmId)
    {
        string path = SuspendFilePath(vmId);
        if (!File.Exists(path)) return null;
        using var fs = File.OpenRead(path);
        return StateFile.Read(fs);
    }

    /// <summary>After a successful resume: the saved state is used up.</summary>
    public void DiscardSuspendState(Guid vmId) => VmDiskStore.DeleteFiles([SuspendFilePath(vmId)]);

    // ------------------------------------------------------------------ orphans

    [GeneratedRegex("^(disk-[0-9a-f]{32}(-[0-9a-f]{8})?\\.qcow2|snapshot-[0-9a-f]{32}\\.vmstate|.*\\.vmstate\\.tmp)$")]
    private static partial Regex SnapshotFilePattern();

    /// <summary>
    /// At portal start, before any VM runs: removes the files a crash in the middle of a snapshot operation left
    /// behind — an overlay created for a take or revert whose transaction never committed, a layer of a deleted
    /// snapshot or a discarded overlay not yet removed, a state file of a snapshot that was never recorded, a
    /// half-written <c>*.vmstate.tmp</c>. Only names this service creates are considered (<c>disk-&lt;disk id&gt;[-…].qcow2</c>,
    /// <c>snapshot-&lt;id&gt;.vmstate</c>, <c>*.vmstate.tmp</c>), and a file is kept when a VM disk, a snapshot row or
    /// anything a kept image reads through (its qcow2 backing chain) names it. Returns the removed paths (each logged).
    /// Not for a running portal: an operation in flight owns files no row names yet.
    /// </summary>
    public async Task<IReadOnlyList<string>> SweepOrphansAsync(CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var vms = await db.VirtualMachines.AsNoTracking().ToListAsync(ct);
        var snaps = (await db.Snapshots.AsNoTracking().ToListAsync(ct)).ToLookup(s => s.VmId);
        var removed = new List<string>();
        foreach (var vm in vms)
        {
            string dir = disks.VmDirectory(vm.Id);
            if (!Directory.Exists(dir)) continue;
            var keep = new HashSet<string>(StringComparer.Ordinal) { Path.GetFullPath(SuspendFilePath(vm.Id)) };
            var images = vm.Disks.Select(d => d.File).Concat(snaps[vm.Id].SelectMany(s => s.Layers.Select(l => l.File)))
                .Select(f => Path.GetFullPath(Path.Combine(dir, f))).ToList();
            foreach (var s in snaps[vm.Id])
                if (s.StateFile is not null) keep.Add(Path.GetFullPath(Path.Combine(dir, s.StateFile)));
            foreach (var image in images)
            {
                // the image and everything it reads through
                string? at = image;
                for (int depth = 0; at is not null && depth <= DiskImageFile.MaxBackingChainDepth && keep.Add(at) && File.Exists(at); depth++)
                {
                    try
                    {
                        var info = DiskImageFile.Probe(at);
                        at = info.BackingFile is { } b ? DiskImageFile.ResolveBacking(at, b) : null;
                    }
                    catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
                    {
                        at = null;
                    }
                }
            }
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                if (!SnapshotFilePattern().IsMatch(Path.GetFileName(file)) || keep.Contains(Path.GetFullPath(file))) continue;
                try
                {
                    File.Delete(file);
                    removed.Add(file);
                    logger.LogWarning("Removed {File} of VM {Id}: no disk or snapshot uses it (left by an interrupted snapshot operation)", Path.GetFileName(file), vm.Id);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    logger.LogWarning("Could not remove the orphaned {File} of VM {Id}: {Message}", file, vm.Id, e.Message);
                }
            }
        }
        return removed;
    }

    // ------------------------------------------------------------------ helpers

    private static void Progress(TaskContext? task, int step, int steps, string message)
    {
        if (task is null) return;
        task.Report(step - 1, steps, message);
        task.Log(message);
    }

    /// <summary>Whether the VM has a machine (running or paused), or why a snapshot operation must wait.</summary>
    private (bool Running, string? Refusal) RunState(VirtualMachine vm, string what)
    {
        var state = host.TryFind(vm.Id, out var h) ? h.State : VmRunState.Stopped;
        if (state == VmRunState.Suspended || vm.State == VmState.Suspended)
            return (false, $"Cannot {what} a suspended VM: resume it first (its saved memory belongs to the current disks).");
        if (state is VmRunState.Starting or VmRunState.Stopping)
            return (false, $"Cannot {what} a VM that is {state.ToString().ToLowerInvariant()}: wait until it runs or has stopped.");
        return (state is VmRunState.Running or VmRunState.Paused, null);
    }

    private static IEnumerable<VmSnapshot> Ancestors(List<VmSnapshot> snaps, VmSnapshot? s)
    {
        for (int guard = 0; s is not null && guard < 1000; guard++)
        {
            yield return s;
            var parentId = s.ParentId;
            s = parentId is null ? null : snaps.FirstOrDefault(x => x.Id == parentId);
        }
    }

    private static int Depth(List<VmSnapshot> snaps, VmSnapshot? current) => Ancestors(snaps, current).Count();

    private static string NewOverlayName(Guid diskId) => $"disk-{diskId:N}-{Guid.NewGuid().ToString("N")[..8]}.qcow2";

    /// <summary>The machine's disk list with each VM disk's path replaced by its new overlay.</summary>
    private IReadOnlyList<DiskConfig> Replaced(Machine m, Guid vmId, List<VmSnapshotLayer> layers, List<string> newFiles, List<string>? byPath = null)
    {
        // the machine's disks are the VM's disks in order (VmMachineConfigFactory); match by path to be sure
        var old = byPath ?? layers.Select(l => Path.Combine(disks.VmDirectory(vmId), l.File)).ToList();
        return m.CurrentDisks.Select(dc =>
        {
            int i = old.FindIndex(p => Path.GetFullPath(p) == Path.GetFullPath(dc.Path));
            if (i < 0) throw new IOException($"the running machine uses a disk the portal does not know: {dc.Path}");
            return dc with { Path = Path.Combine(disks.VmDirectory(vmId), newFiles[i]) };
        }).ToList();
    }

    private long SizeOf(Guid vmId, VmSnapshot s)
    {
        string dir = disks.VmDirectory(vmId);
        long size = 0;
        foreach (var p in s.Layers.Select(l => l.File).Append(s.StateFile))
            if (p is not null && new FileInfo(Path.Combine(dir, p)) is { Exists: true } fi) size += fi.Length;
        return size;
    }

    /// <summary>Writes a state file crash-safely: a temporary file, synced, renamed into place.</summary>
    private static void WriteStateFile(string path, MachineSnapshot state)
    {
        string temp = path + ".tmp";
        Directory.CreateDirectory(Path.GetDirectoryName(path)!); // a VM without disks has no directory yet
        using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            StateFile.Write(fs, state);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}

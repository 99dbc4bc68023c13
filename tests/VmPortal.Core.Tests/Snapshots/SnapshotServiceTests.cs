using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Snapshots;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Tests.Snapshots;

/// <summary>
/// Disk snapshots of stopped VMs against a real PostgreSQL and real qcow2 files, with QEMU as the oracle:
/// <c>qemu-img convert</c> reads what the guest would see, <c>qemu-img check</c> must find every file clean and
/// <c>qemu-img info --backing-chain</c> shows the chain.
/// </summary>
public sealed class SnapshotServiceTests(SnapshotFixture f) : IClassFixture<SnapshotFixture>
{
    private const long At = 1024 * 1024; // the marker's offset (1 MiB: inside the disk, not in the base's first cluster)
    private const long Fixed = 5 * 1024 * 1024; // written once before the first snapshot, must survive everything
    private const long Mid = 3 * 1024 * 1024; // written only between s1 and s2: in s2's layer, seen by s2 and s3 only

    private async Task<Guid> TakeAsync(Guid vmId, string name)
    {
        var r = await f.Snapshots.TakeAsync(vmId, name, $"{name} description", includeMemory: false);
        Assert.True(r.IsOk, $"take {name}: {r.Status} {r.Message}");
        return r.Value!.Snapshot!.Id;
    }

    private async Task RevertAsync(Guid vmId, Guid snapId)
    {
        var r = await f.Snapshots.RevertAsync(vmId, snapId);
        Assert.True(r.IsOk, $"revert: {r.Status} {r.Message}");
        Assert.Null(r.Value!.StartWithState);
    }

    private async Task<string> ContentAsync(Guid vmId) => SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vmId), At, 16);
    private async Task<string> MidAsync(Guid vmId) => SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vmId), Mid, 3);

    [Fact]
    public async Task A_tree_of_depth_three_with_two_branches_reverts_to_each_node_and_survives_deletes()
    {
        var vm = await f.NewVmAsync("tree");
        Assert.Equal("BASE", SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vm.Id), 0, 4));
        await f.WriteAsync(vm.Id, Fixed, "FIXED");
        await f.WriteAsync(vm.Id, At, "one");
        var s1 = await TakeAsync(vm.Id, "s1");
        await f.WriteAsync(vm.Id, At, "two");
        await f.WriteAsync(vm.Id, Mid, "MID");
        var s2 = await TakeAsync(vm.Id, "s2");
        await f.WriteAsync(vm.Id, At, "three");
        var s3 = await TakeAsync(vm.Id, "s3");
        await f.WriteAsync(vm.Id, At, "after-three");
        Assert.Equal("after-three", await ContentAsync(vm.Id));
        // the chain: active → s3's layer → s2's → s1's → base
        Assert.Equal(5, SnapshotFixture.Chain(await f.ActiveDiskAsync(vm.Id)).Count);

        // a second branch from s1
        await RevertAsync(vm.Id, s1);
        Assert.Equal("one", await ContentAsync(vm.Id));
        await f.WriteAsync(vm.Id, At, "four");
        var s4 = await TakeAsync(vm.Id, "s4");
        f.AssertAllClean(vm.Id);

        var list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Equal(4, list.Count);
        Assert.Equal(s1, list.Single(s => s.Id == s4).ParentId);
        Assert.Equal(s2, list.Single(s => s.Id == s3).ParentId);
        Assert.True(list.Single(s => s.Id == s4).Current);
        Assert.Single(list, s => s.Current);
        Assert.All(list, s => Assert.True(s.SizeBytes > 0));

        foreach (var (id, expected) in new[] { (s1, "one"), (s2, "two"), (s3, "three"), (s4, "four"), (s2, "two") })
        {
            await RevertAsync(vm.Id, id);
            Assert.Equal(expected, await ContentAsync(vm.Id));
            Assert.Equal("FIXED", SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vm.Id), Fixed, 5));
            Assert.True((await f.Snapshots.ListAsync(vm.Id)).Single(s => s.Id == id).Current);
            Assert.Equal(id == s2 || id == s3 ? "MID" : "", await MidAsync(vm.Id));
        }
        // writes after a revert are discarded by the next revert
        await f.WriteAsync(vm.Id, At, "scratch");
        await RevertAsync(vm.Id, s3);
        Assert.Equal("three", await ContentAsync(vm.Id));
        f.AssertAllClean(vm.Id);

        // delete s2 (a middle node with child s3, not on the current path... s3 is current): merged into s3's layer
        var del = await f.Snapshots.DeleteAsync(vm.Id, s2);
        Assert.True(del.IsOk, del.Message);
        Assert.Equal(64 * 1024, del.Value!.BytesMerged); // the one cluster s3 did not have: MID
        Assert.Equal("three", await ContentAsync(vm.Id));
        Assert.Equal("MID", await MidAsync(vm.Id));
        Assert.Equal(4, SnapshotFixture.Chain(await f.ActiveDiskAsync(vm.Id)).Count); // active → s3 → s1 → base
        list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Equal(s1, list.Single(s => s.Id == s3).ParentId);
        f.AssertAllClean(vm.Id);

        // delete the root s1 with two children (s3 and s4): merged into both branches
        del = await f.Snapshots.DeleteAsync(vm.Id, s1);
        Assert.True(del.IsOk, del.Message);
        f.AssertAllClean(vm.Id);
        list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Equal(2, list.Count);
        Assert.All(list, s => Assert.Null(s.ParentId));
        foreach (var (id, expected) in new[] { (s4, "four"), (s3, "three"), (s4, "four") })
        {
            await RevertAsync(vm.Id, id);
            Assert.Equal(expected, await ContentAsync(vm.Id));
            Assert.Equal("FIXED", SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vm.Id), Fixed, 5));
            Assert.Equal("BASE", SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vm.Id), 0, 4));
            Assert.Equal(id == s3 ? "MID" : "", await MidAsync(vm.Id)); // the other branch never sees it
        }

        // delete the current one (s4): merged into the VM's overlay, which keeps its content
        await f.WriteAsync(vm.Id, At, "five");
        del = await f.Snapshots.DeleteAsync(vm.Id, s4);
        Assert.True(del.IsOk, del.Message);
        Assert.Equal("five", await ContentAsync(vm.Id));
        Assert.Equal(2, SnapshotFixture.Chain(await f.ActiveDiskAsync(vm.Id)).Count); // active → base
        list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Single(list);
        Assert.False(list[0].Current); // no snapshot on the current path any more
        await RevertAsync(vm.Id, s3);
        Assert.Equal("three", await ContentAsync(vm.Id));
        f.AssertAllClean(vm.Id);

        // nothing leaked: the VM's overlay and s3's layer are the only disk files
        var files = Directory.GetFiles(f.Disks.VmDirectory(vm.Id)).Select(p => Path.GetFileName(p)!).Order().ToList();
        var expectedFiles = new[] { Path.GetFileName(await f.ActiveDiskAsync(vm.Id)) }
            .Concat((await LayersAsync(s3)).Select(l => l.File)).Order().ToList();
        Assert.Equal(expectedFiles, files);
    }

    private async Task<List<VmSnapshotLayer>> LayersAsync(Guid snapId)
    {
        await using var db = f.Db.CreateDbContext();
        return (await db.Snapshots.AsNoTracking().SingleAsync(s => s.Id == snapId)).Layers;
    }

    [Fact]
    public async Task Bad_requests_are_refused_with_the_reason_and_change_nothing()
    {
        var vm = await f.NewVmAsync("refusals");
        var before = await f.ActiveDiskAsync(vm.Id);

        var bad = await f.Snapshots.TakeAsync(vm.Id, "no spaces allowed", "", false);
        Assert.Equal(OpStatus.Invalid, bad.Status);
        Assert.Contains("name", bad.Errors!.Keys);
        Assert.Equal(OpStatus.Invalid, (await f.Snapshots.TakeAsync(vm.Id, "", "", false)).Status);
        Assert.Equal(OpStatus.Invalid, (await f.Snapshots.TakeAsync(vm.Id, new string('a', 41), "", false)).Status);
        Assert.Equal(OpStatus.Invalid, (await f.Snapshots.TakeAsync(vm.Id, "ok", new string('d', 1001), false)).Status);

        var memory = await f.Snapshots.TakeAsync(vm.Id, "mem", "", includeMemory: true);
        Assert.Equal(OpStatus.Conflict, memory.Status);
        Assert.Contains("not running", memory.Message);

        Assert.Equal(OpStatus.NotFound, (await f.Snapshots.TakeAsync(Guid.NewGuid(), "x", "", false)).Status);
        Assert.Equal(OpStatus.NotFound, (await f.Snapshots.RevertAsync(vm.Id, Guid.NewGuid())).Status);
        Assert.Equal(OpStatus.NotFound, (await f.Snapshots.DeleteAsync(vm.Id, Guid.NewGuid())).Status);
        Assert.Equal(before, await f.ActiveDiskAsync(vm.Id));
        Assert.Empty(await f.Snapshots.ListAsync(vm.Id));

        Assert.True((await f.Snapshots.TakeAsync(vm.Id, "First.one_1", "", false)).IsOk);
        var dup = await f.Snapshots.TakeAsync(vm.Id, "first.ONE_1", "", false);
        Assert.Equal(OpStatus.Conflict, dup.Status);
        Assert.Contains("already has a snapshot", dup.Message);

        // a snapshot of another VM is not found through this one
        var other = await f.NewVmAsync("refusals-other");
        var otherSnap = await TakeAsync(other.Id, "theirs");
        Assert.Equal(OpStatus.NotFound, (await f.Snapshots.RevertAsync(vm.Id, otherSnap)).Status);
        Assert.Equal(OpStatus.NotFound, (await f.Snapshots.DeleteAsync(vm.Id, otherSnap)).Status);

        // the depth limit
        var deep = await f.NewVmAsync("deep", sizeMiB: 4);
        for (int i = 0; i < SnapshotService.MaxDepth; i++) await TakeAsync(deep.Id, $"d{i}");
        var tooDeep = await f.Snapshots.TakeAsync(deep.Id, "one-more", "", false);
        Assert.Equal(OpStatus.Conflict, tooDeep.Status);
        Assert.Contains("delete an older snapshot", tooDeep.Message);
        f.AssertAllClean(deep.Id);
    }

    [Fact]
    public async Task Deleting_a_vm_removes_its_snapshot_rows()
    {
        var vm = await f.NewVmAsync("cascade");
        var a = await TakeAsync(vm.Id, "a");
        await TakeAsync(vm.Id, "b");
        await RevertAsync(vm.Id, a);
        await TakeAsync(vm.Id, "c");
        await using (var db = f.Db.CreateDbContext())
        {
            db.VirtualMachines.Remove(await db.VirtualMachines.SingleAsync(v => v.Id == vm.Id));
            await db.SaveChangesAsync(); // the parent links must not block the cascade
        }
        await using (var db = f.Db.CreateDbContext())
            Assert.Equal(0, await db.Snapshots.CountAsync(s => s.VmId == vm.Id));
    }

    private sealed class SimulatedCrash(string point) : Exception($"simulated crash at {point}");

    /// <summary>Runs an operation that "crashes" at <paramref name="point"/>: it stops there without any clean-up.</summary>
    private async Task CrashAtAsync(string point, Func<Task> operation)
    {
        f.Snapshots.CrashPoint = p => { if (p == point) throw new SimulatedCrash(p); };
        try { await Assert.ThrowsAsync<SimulatedCrash>(operation); }
        finally { f.Snapshots.CrashPoint = null; }
    }

    private static SortedSet<string> Files(string dir) => new(Directory.GetFiles(dir).Select(p => Path.GetFileName(p)!), StringComparer.Ordinal);

    [Fact]
    public async Task A_crash_in_the_middle_leaves_the_previous_state_usable_and_the_next_start_removes_the_leftovers()
    {
        var vm = await f.NewVmAsync("crash");
        string dir = f.Disks.VmDirectory(vm.Id);
        await f.WriteAsync(vm.Id, At, "one");
        var s1 = await TakeAsync(vm.Id, "s1");
        await f.WriteAsync(vm.Id, At, "two");
        var clean = Files(dir);
        string active = await f.ActiveDiskAsync(vm.Id);

        // take: the new overlay exists, the transaction never commits → still at s1, the disk as it was
        await CrashAtAsync("take:before-commit", () => f.Snapshots.TakeAsync(vm.Id, "s2", null, includeMemory: false));
        Assert.Equal(active, await f.ActiveDiskAsync(vm.Id));
        Assert.Equal("two", await ContentAsync(vm.Id));
        var list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Equal(s1, Assert.Single(list).Id);
        Assert.True(list[0].Current);
        Assert.Single(Files(dir).Except(clean)); // the overlay the crash left

        // revert: the new overlay exists, not committed → the VM's disk is untouched
        await CrashAtAsync("revert:before-commit", () => f.Snapshots.RevertAsync(vm.Id, s1));
        Assert.Equal(active, await f.ActiveDiskAsync(vm.Id));
        Assert.Equal("two", await ContentAsync(vm.Id));
        Assert.Equal(2, Files(dir).Except(clean).Count());

        // what a crash while writing a snapshot's memory or a suspend leaves: a state file no row names, a half-written one
        File.WriteAllText(Path.Combine(dir, $"snapshot-{Guid.NewGuid():N}.vmstate"), "VMPSTATE (cut short)");
        File.WriteAllText(Path.Combine(dir, "suspended.vmstate.tmp"), "VMPSTATE (cut short)");
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not the snapshot code's: stays");

        // the operations work on after the crashes
        var s2 = await TakeAsync(vm.Id, "s2");
        await f.WriteAsync(vm.Id, At, "three");
        Assert.Equal("three", await ContentAsync(vm.Id));

        // delete s1: merged into s2's layer and the row removed, then the crash before its file is removed
        await CrashAtAsync("delete:before-files", () => f.Snapshots.DeleteAsync(vm.Id, s1));
        list = await f.Snapshots.ListAsync(vm.Id);
        Assert.Equal(s2, Assert.Single(list).Id);
        Assert.Null(list[0].ParentId);
        Assert.Equal("three", await ContentAsync(vm.Id));

        var referenced = new SortedSet<string>(StringComparer.Ordinal) { Path.GetFileName(await f.ActiveDiskAsync(vm.Id)), "notes.txt" };
        foreach (var l in await LayersAsync(s2)) referenced.Add(l.File);
        var leftovers = Files(dir).Except(referenced).ToList();
        Assert.Equal(5, leftovers.Count); // take's and revert's overlays, s1's layer, two state files

        // the next start of the portal: exactly the leftovers go; everything still reads the same
        var removed = await f.Snapshots.SweepOrphansAsync();
        Assert.Equal(leftovers.Order(), removed.Where(p => Path.GetDirectoryName(p) == dir).Select(p => Path.GetFileName(p)!).Order());
        Assert.Equal(referenced, Files(dir));
        Assert.Equal("three", await ContentAsync(vm.Id));
        Assert.Equal("BASE", SnapshotFixture.ReadWithQemu(await f.ActiveDiskAsync(vm.Id), 0, 4));
        f.AssertAllClean(vm.Id);
        await RevertAsync(vm.Id, s2);
        Assert.Equal("two", await ContentAsync(vm.Id));
        Assert.DoesNotContain(await f.Snapshots.SweepOrphansAsync(), p => Path.GetDirectoryName(p) == dir);
    }
}

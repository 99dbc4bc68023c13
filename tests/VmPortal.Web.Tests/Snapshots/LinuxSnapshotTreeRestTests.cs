using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Disks;
using VmPortal.Tests.Infrastructure;
using Xunit.Abstractions;

namespace VmPortal.Web.Tests.Snapshots;

/// <summary>
/// Issue 13's snapshot tree with a running guest, through the REST API on real Kestrel (one boot of the rescue Linux
/// for all assertions). A file in the guest's RAM (tmpfs) and the first line of its disk (written through the guest's
/// IDE driver, read back with the page cache dropped) say <c>one</c> at snapshot A, <c>two</c> at B (child of A),
/// <c>three</c> at C (child of B: depth 3); then the guest reverts to A, writes <c>four</c> and takes D (a second
/// branch under A). Reverting to C, B, A and D in turn — with something unsaved written in between each time — shows
/// each node's content in RAM and on the disk, and the shell answers every time. Deleting the middle node B merges
/// its layer into C; C, A and D then still revert to their own content, and every qcow2 file left passes
/// <c>qemu-img check</c>. Every wait is for a condition on the screen or an answer, never a fixed sleep.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class LinuxSnapshotTreeRestTests(PortalAppFixture app, ITestOutputHelper output) : ApiTestBase(app)
{
    private HttpClient _c = null!;
    private Guid _id;
    private int _mark;

    private Task TypeAsync(string text) => ConsoleTypeAsync(_c, _id, text);
    private Task WaitAsync(string pattern, int seconds = 600) => ConsoleWaitAsync(_c, _id, pattern, seconds);
    private Task<string> ScreenAsync() => ConsoleTextAsync(_c, _id);

    /// <summary>
    /// Runs <paramref name="command"/> in the guest's shell on a cleared screen, followed by a marker computed by the
    /// shell (so the typed line itself never matches), and returns the screen once the marker is printed.
    /// </summary>
    private async Task<string> RunAsync(string command)
    {
        int mark = ++_mark;
        await TypeAsync($"clear; {command}; echo mark-{mark}-$((6*7))\n");
        await WaitAsync($"(?m)^mark-{mark}-42");
        return await ScreenAsync();
    }

    /// <summary>The same text in tmpfs and on the first line of the disk, synced to the disk.</summary>
    private Task WriteAsync(string word) => RunAsync($"echo {word} > /tmp/f; cat /tmp/f > /dev/sda; sync");

    /// <summary>The shell answers and the file says <paramref name="word"/> in RAM and on the disk (page cache dropped).</summary>
    private async Task AssertContentAsync(string word, string where)
    {
        var screen = await RunAsync("echo ram=$(cat /tmp/f); echo 3 > /proc/sys/vm/drop_caches; echo disk=$(head -n 1 /dev/sda)");
        Assert.True(Regex.IsMatch(screen, $"(?m)^ram={word}$") && Regex.IsMatch(screen, $"(?m)^disk={word}$"),
            $"{where}: expected '{word}' in RAM and on the disk; screen:\n{screen}");
    }

    private async Task<Guid> TakeAsync(string name)
    {
        var r = await _c.PostAsJsonAsync($"/api/vms/{_id}/snapshots", new { name, includeMemory = true });
        var body = await JsonAsync(r);
        Assert.True(r.StatusCode == HttpStatusCode.Created, $"take {name}: {r.StatusCode} {body}");
        Assert.Equal("running", body["vmState"]!.GetValue<string>());
        output.WriteLine($"take {name}: {body["totalMs"]} ms, guest paused {body["pausedMs"]} ms, {body["snapshot"]!["sizeBytes"]} bytes");
        return body["snapshot"]!["id"]!.GetValue<Guid>();
    }

    private async Task RevertAsync(Guid snapshot, string name)
    {
        var r = await _c.PostAsync($"/api/vms/{_id}/snapshots/{snapshot}/revert", null);
        var body = await JsonAsync(r);
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"revert to {name}: {r.StatusCode} {body}");
        Assert.Equal("running", body["vmState"]!.GetValue<string>());
        output.WriteLine($"revert to {name}: {body["totalMs"]} ms, guest paused {body["pausedMs"]} ms");
    }

    /// <summary>The tree as the API lists it: name → (parent name, current).</summary>
    private async Task<Dictionary<string, (string? Parent, bool Current)>> TreeAsync()
    {
        var list = JsonNode.Parse(await _c.GetStringAsync($"/api/vms/{_id}/snapshots"))!.AsArray().Select(s => s!.AsObject()).ToList();
        var names = list.ToDictionary(s => s["id"]!.GetValue<Guid>(), s => s["name"]!.GetValue<string>());
        return list.ToDictionary(s => s["name"]!.GetValue<string>(), s => (
            s["parentId"] is JsonNode p ? names[p.GetValue<Guid>()] : null,
            s["current"]!.GetValue<bool>()));
    }

    private async Task AssertTreeAsync(string current, params (string Name, string? Parent)[] nodes)
    {
        var tree = await TreeAsync();
        Assert.Equal(nodes.OrderBy(n => n.Name).Select(n => $"{n.Name}<-{n.Parent}"), tree.OrderBy(t => t.Key).Select(t => $"{t.Key}<-{t.Value.Parent}"));
        Assert.Equal([current], tree.Where(t => t.Value.Current).Select(t => t.Key));
    }

    [Fact]
    public async Task A_running_guest_reverts_to_every_node_of_a_snapshot_tree_of_depth_3_with_two_branches()
    {
        var isoName = await UploadRescueIsoAsync();

        var owner = await App.NewUserAsync(Unique("tree"));
        _c = App.Client(owner.Token);
        _c.Timeout = TimeSpan.FromMinutes(25);
        var created = await _c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("tree"), memoryMiB = 128, cdromImageId = $"upload:{isoName}", bootOrder = new[] { "cdrom" },
            disks = new[] { new { sizeMiB = 16 } },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        _id = (await JsonAsync(created))["id"]!.GetValue<Guid>();
        var dir = App.Services.GetRequiredService<VmDiskStore>().VmDirectory(_id);

        Assert.Equal(HttpStatusCode.OK, (await _c.PostAsync($"/api/vms/{_id}/start", null)).StatusCode);
        try
        {
            await WaitAsync("VMPORTAL-GUEST-READY", 1200); // a loaded 2-core host needs far more than the usual 1–2 min
            await WaitAsync("(?m)^/ #");
            // the IDE driver, its kernel messages off the console
            await RunAsync("vmportal-disks && dmesg -n 1");

            // one branch three deep: A (one) → B (two) → C (three)
            await WriteAsync("one");
            var a = await TakeAsync("A");
            await WriteAsync("two");
            var b = await TakeAsync("B");
            await WriteAsync("three");
            var c = await TakeAsync("C");
            await AssertTreeAsync("C", ("A", null), ("B", "A"), ("C", "B"));

            // a second branch: back to A, four, D under A
            await RevertAsync(a, "A");
            await AssertContentAsync("one", "after the first revert to A");
            await WriteAsync("four");
            var d = await TakeAsync("D");
            await AssertTreeAsync("D", ("A", null), ("B", "A"), ("C", "B"), ("D", "A"));

            // every node in turn, each time after writing something the revert must throw away
            var nodes = new[] { (c, "C", "three"), (b, "B", "two"), (a, "A", "one"), (d, "D", "four") };
            foreach (var (id, name, word) in nodes)
            {
                await WriteAsync("unsaved");
                await RevertAsync(id, name);
                await AssertContentAsync(word, $"revert to {name}");
                Assert.True((await TreeAsync())[name].Current, $"{name} is current after its revert");
            }

            // delete the middle node: its layer goes into C, which moves up to A; the other nodes are untouched
            var del = await _c.DeleteAsync($"/api/vms/{_id}/snapshots/{b}");
            Assert.True(del.StatusCode == HttpStatusCode.OK, $"delete B: {del.StatusCode} {await del.Content.ReadAsStringAsync()}");
            await AssertTreeAsync("D", ("A", null), ("C", "A"), ("D", "A"));
            Assert.False(File.Exists(Path.Combine(dir, $"snapshot-{b:N}.vmstate")));
            foreach (var (id, name, word) in new[] { (c, "C", "three"), (a, "A", "one"), (d, "D", "four") })
            {
                await WriteAsync("unsaved");
                await RevertAsync(id, name);
                await AssertContentAsync(word, $"revert to {name} after B was deleted");
            }
            // the files: A's, C's and D's state, three layers and the running overlay; each clean for qemu-img
            Assert.Equal(3, Directory.GetFiles(dir, "*.vmstate").Length);
            var qcows = Directory.GetFiles(dir, "*.qcow2");
            Assert.Equal(4, qcows.Length);
            Assert.All(qcows, SnapshotQemu.AssertClean);
            Assert.Contains(qcows, q => SnapshotQemu.ChainLength(q) == 3); // running overlay → D's layer → A's layer
        }
        finally
        {
            await _c.PostAsync($"/api/vms/{_id}/stop", null);
            _c.Dispose();
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Disks;
using VmPortal.Tests.Infrastructure;
using Xunit.Abstractions;

namespace VmPortal.Web.Tests.Snapshots;

/// <summary>
/// Snapshots and suspend of a running rescue-Linux guest through the REST API on real Kestrel, one boot for all
/// assertions: a file in the guest's RAM (tmpfs) and the start of its disk (written through the guest's own IDE
/// driver, read back with the page cache dropped) say one thing at the snapshot, another after it; revert brings back
/// the first in both, with the same screen, and the shell answers; suspend frees the machine and resume continues it;
/// deleting the current snapshot merges it into the running disk. The disk files are checked with qemu-img. The
/// client asks to wait for each operation's task (<c>Prefer: wait=300</c>) so the answers are the results.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class LinuxSnapshotRestTests(PortalAppFixture app, ITestOutputHelper output) : ApiTestBase(app)
{
    private HttpClient _c = null!;
    private Guid _id;

    private Task TypeAsync(string text) => ConsoleTypeAsync(_c, _id, text);
    private Task WaitAsync(string pattern, int seconds = 120) => ConsoleWaitAsync(_c, _id, pattern, seconds);
    private Task<string> ScreenAsync() => ConsoleTextAsync(_c, _id);

    private async Task<string> StateAsync() => (await JsonAsync(await _c.GetAsync($"/api/vms/{_id}")))["state"]!.GetValue<string>();

    /// <summary>Guest command: the tmpfs file and the disk's first bytes read from the disk itself (page cache dropped).</summary>
    internal const string ShowBoth = "echo ram=$(cat /tmp/f); echo 3 > /proc/sys/vm/drop_caches; echo disk=$(head -c 11 /dev/sda)";

    [Fact]
    public async Task A_running_guest_reverts_to_a_snapshot_with_memory_and_suspends_and_resumes()
    {
        var isoName = await UploadRescueIsoAsync();

        var owner = await App.NewUserAsync(Unique("snap-a"));
        var stranger = await App.NewUserAsync(Unique("snap-b"));
        _c = App.Client(owner.Token);
        _c.Timeout = TimeSpan.FromMinutes(25);
        _c.DefaultRequestHeaders.Add("Prefer", "wait=300");
        using var other = App.Client(stranger.Token);
        var created = await _c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("snap"), memoryMiB = 128, cdromImageId = $"upload:{isoName}", bootOrder = new[] { "cdrom" },
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
            // the IDE driver (its kernel messages off the console), then a quiet screen
            await TypeAsync("vmportal-disks && dmesg -n 1 && echo disks-$((40+2))\n");
            await WaitAsync("(?m)^disks-42", 300);
            // the same text in tmpfs and at the start of the disk (synced: it is on the disk, not only in the page cache)
            await TypeAsync("clear; echo snap-one-$((40+2)) > /tmp/f; cat /tmp/f > /dev/sda; sync; cat /tmp/f\n");
            await WaitAsync("(?m)^snap-one-42\n/ #"); // the output and the next prompt: the guest is idle at the shell

            // take a snapshot with memory (of the paused guest, so the screen read now is the screen of the snapshot;
            // a running guest may print a kernel message between the snapshot and the read)
            Assert.Equal(HttpStatusCode.OK, (await _c.PostAsync($"/api/vms/{_id}/pause", null)).StatusCode);
            var screenAtSnapshot = await ScreenAsync();
            var take = await _c.PostAsJsonAsync($"/api/vms/{_id}/snapshots", new { name = "before", description = "file says one", includeMemory = true });
            var taken = await JsonAsync(take);
            Assert.True(take.StatusCode == HttpStatusCode.Created, $"take: {take.StatusCode} {taken}");
            Assert.True(taken["snapshot"]!["includesMemory"]!.GetValue<bool>());
            Assert.True(taken["snapshot"]!["current"]!.GetValue<bool>());
            Assert.Equal("paused", taken["vmState"]!.GetValue<string>());
            var before = taken["snapshot"]!["id"]!.GetValue<Guid>();
            output.WriteLine($"take with memory: total {taken["totalMs"]} ms, guest paused {taken["pausedMs"]} ms, size {taken["snapshot"]!["sizeBytes"]} bytes");
            Assert.Equal(screenAtSnapshot, await ScreenAsync());
            Assert.Equal(HttpStatusCode.OK, (await _c.PostAsync($"/api/vms/{_id}/resume", null)).StatusCode);
            // the disk now runs on a new overlay over the frozen one
            var qcows = Directory.GetFiles(dir, "*.qcow2");
            Assert.Equal(2, qcows.Length);
            Assert.Contains(qcows, q => SnapshotQemu.ChainLength(q) == 2);
            Assert.All(qcows, SnapshotQemu.AssertClean);
            Assert.True(File.Exists(Path.Combine(dir, $"snapshot-{before:N}.vmstate")));

            // change the file, take a disk-only snapshot (allowed while running)
            await TypeAsync("echo snap-two-$((40+2)) > /tmp/f; cat /tmp/f > /dev/sda; sync; cat /tmp/f\n");
            await WaitAsync("(?m)^snap-two-42");
            var diskOnly = await _c.PostAsJsonAsync($"/api/vms/{_id}/snapshots", new { name = "disk-only", includeMemory = false });
            Assert.Equal(HttpStatusCode.Created, diskOnly.StatusCode);
            var diskOnlyId = (await JsonAsync(diskOnly))["snapshot"]!["id"]!.GetValue<Guid>();

            // refusals: no memory while running (409), bad name (400), unknown snapshot (404), another user's VM (404)
            await AssertProblemAsync(await _c.PostAsync($"/api/vms/{_id}/snapshots/{diskOnlyId}/revert", null), HttpStatusCode.Conflict);
            await AssertProblemAsync(await _c.PostAsJsonAsync($"/api/vms/{_id}/snapshots", new { name = "bad name", includeMemory = true }), HttpStatusCode.BadRequest);
            await AssertProblemAsync(await _c.PostAsJsonAsync($"/api/vms/{_id}/snapshots", new { name = "before", includeMemory = true }), HttpStatusCode.Conflict);
            await AssertProblemAsync(await _c.PostAsync($"/api/vms/{_id}/snapshots/{Guid.NewGuid()}/revert", null), HttpStatusCode.NotFound);
            await AssertProblemAsync(await _c.DeleteAsync($"/api/vms/{_id}/snapshots/{Guid.NewGuid()}"), HttpStatusCode.NotFound);
            await AssertProblemAsync(await other.GetAsync($"/api/vms/{_id}/snapshots"), HttpStatusCode.NotFound);
            await AssertProblemAsync(await other.PostAsync($"/api/vms/{_id}/snapshots/{before}/revert", null), HttpStatusCode.NotFound);
            await AssertProblemAsync(await other.PostAsync($"/api/vms/{_id}/suspend", null), HttpStatusCode.NotFound);

            // revert: the machine continues from the snapshot — same screen, the file says one, the shell answers
            var sw = Stopwatch.StartNew();
            var revert = await _c.PostAsync($"/api/vms/{_id}/snapshots/{before}/revert", null);
            var reverted = await JsonAsync(revert);
            Assert.True(revert.StatusCode == HttpStatusCode.OK, $"revert: {revert.StatusCode} {reverted}");
            output.WriteLine($"revert with memory: {sw.ElapsedMilliseconds} ms over REST, guest paused {reverted["pausedMs"]} ms");
            Assert.Equal("running", reverted["vmState"]!.GetValue<string>());
            Assert.Equal(screenAtSnapshot, await ScreenAsync());
            await TypeAsync(ShowBoth + "; echo answered-$((6*7))\n");
            await WaitAsync("(?m)^answered-42");
            var screen = await ScreenAsync();
            Assert.Contains("ram=snap-one-42", screen);
            Assert.Contains("disk=snap-one-42", screen); // read from the reverted disk (page cache dropped)
            Assert.DoesNotContain("snap-two", screen);

            var list = (await JsonAsync(await _c.GetAsync($"/api/vms/{_id}/snapshots").ContinueWith(t => WrapArray(t.Result))))["items"]!.AsArray();
            Assert.Equal(2, list.Count);
            Assert.True(list.Single(s => s!["name"]!.GetValue<string>() == "before")!["current"]!.GetValue<bool>());

            // suspend to disk: the machine ends, the VM is suspended (also in the list); resume continues it
            sw.Restart();
            var suspend = await _c.PostAsync($"/api/vms/{_id}/suspend", null);
            Assert.True(suspend.StatusCode == HttpStatusCode.OK, $"suspend: {suspend.StatusCode} {await suspend.Content.ReadAsStringAsync()}");
            output.WriteLine($"suspend: {sw.ElapsedMilliseconds} ms over REST, state file {new FileInfo(Path.Combine(dir, "suspended.vmstate")).Length} bytes");
            Assert.Equal("suspended", await StateAsync());
            var vmList = await JsonAsync(await _c.GetAsync("/api/vms"));
            Assert.Equal("suspended", vmList["items"]!.AsArray().Single(v => v!["id"]!.GetValue<Guid>() == _id)!["state"]!.GetValue<string>());
            await AssertProblemAsync(await _c.PostAsync($"/api/vms/{_id}/suspend", null), HttpStatusCode.Conflict);
            await AssertProblemAsync(await _c.PostAsync($"/api/vms/{_id}/snapshots/{before}/revert", null), HttpStatusCode.Conflict);
            sw.Restart();
            var resume = await _c.PostAsync($"/api/vms/{_id}/resume", null);
            Assert.True(resume.StatusCode == HttpStatusCode.OK, $"resume: {resume.StatusCode} {await resume.Content.ReadAsStringAsync()}");
            output.WriteLine($"resume: {sw.ElapsedMilliseconds} ms over REST");
            Assert.Equal("running", await StateAsync());
            Assert.False(File.Exists(Path.Combine(dir, "suspended.vmstate")));
            await TypeAsync("clear; " + ShowBoth + "; echo resumed-$((6*7))\n");
            await WaitAsync("(?m)^resumed-42");
            screen = await ScreenAsync();
            Assert.Contains("ram=snap-one-42", screen);
            Assert.Contains("disk=snap-one-42", screen);

            // delete the leaf, then the current snapshot (merged into the running disk): the guest runs on
            Assert.Equal(HttpStatusCode.OK, (await _c.DeleteAsync($"/api/vms/{_id}/snapshots/{diskOnlyId}")).StatusCode);
            var del = await _c.DeleteAsync($"/api/vms/{_id}/snapshots/{before}");
            Assert.True(del.StatusCode == HttpStatusCode.OK, $"delete: {del.StatusCode} {await del.Content.ReadAsStringAsync()}");
            Assert.Equal("[]", await _c.GetStringAsync($"/api/vms/{_id}/snapshots"));
            qcows = Directory.GetFiles(dir, "*.qcow2");
            Assert.Single(qcows);
            Assert.Equal(1, SnapshotQemu.ChainLength(qcows[0]));
            SnapshotQemu.AssertClean(qcows[0]);
            Assert.Empty(Directory.GetFiles(dir, "*.vmstate"));
            await TypeAsync("echo still-$((6*7))\n");
            await WaitAsync("(?m)^still-42");
        }
        finally
        {
            await _c.PostAsync($"/api/vms/{_id}/stop", null);
            _c.Dispose();
        }
    }

    private static HttpResponseMessage WrapArray(HttpResponseMessage r)
    {
        var body = r.Content.ReadAsStringAsync().Result;
        r.Content = new StringContent($"{{\"items\":{body}}}");
        return r;
    }
}

/// <summary>qemu-img as the oracle for files a running VM has open (-U: no lock).</summary>
internal static class SnapshotQemu
{
    public static int ChainLength(string image) =>
        System.Text.Json.Nodes.JsonNode.Parse(Run($"info -U --backing-chain --output=json \"{image}\"").Output)!.AsArray().Count;

    public static void AssertClean(string image)
    {
        var (code, text) = Run($"check -U \"{image}\"");
        Assert.True(code == 0 && text.Contains("No errors were found"), $"qemu-img check {image}: {code} {text}");
    }

    private static (int Code, string Output) Run(string args)
    {
        var psi = new ProcessStartInfo("qemu-img", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, text);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Disks;
using VmPortal.Emulator.Storage;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Clones over REST (202 + a task) on the real portal: a linked clone shares the source's base image and carries the
/// source's own writes; a full clone is standalone; both are independent of the source afterwards (checked through
/// the disk files, with <c>qemu-img</c> as the oracle when it is installed). Refusals: a running source, a taken
/// name, another user's VM, a quota.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class CloneTests(PortalAppFixture app) : ApiTestBase(app)
{
    private const long MiB = 1 << 20;

    private string MakeBaseImage()
    {
        var name = Unique("clonebase") + ".img";
        var bytes = new byte[4 * MiB];
        bytes.AsSpan(0, 512).Fill(0xB5); // the base's first sector
        File.WriteAllBytes(Path.Combine(App.ImageStoreDir, name), bytes);
        return "upload:" + name;
    }

    private string DiskPath(JsonObject vm, int index = 0)
    {
        var store = App.Services.GetRequiredService<VmDiskStore>();
        var id = vm["id"]!.GetValue<Guid>();
        var diskId = vm["disks"]![index]!["id"]!.GetValue<Guid>();
        return Path.Combine(store.VmDirectory(id), $"disk-{diskId:N}.qcow2");
    }

    private static byte[] Read(string path, long offset, int length)
    {
        using var image = DiskImageFile.OpenImage(path, readOnly: true);
        var buf = new byte[length];
        image.ReadAt(offset, buf);
        return buf;
    }

    private static void Write(string path, long offset, byte value, int length)
    {
        using var image = DiskImageFile.OpenImage(path, readOnly: false);
        var buf = new byte[length];
        Array.Fill(buf, value);
        image.WriteAt(offset, buf);
        image.Flush();
    }

    private static async Task<JsonObject> CloneAsync(HttpClient c, Guid source, object body)
    {
        // the default answer (the test client asks for held answers; this request overrides its Prefer header)
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/vms/{source}/clone") { Content = JsonContent.Create(body) };
        request.Headers.Add("Prefer", "respond-async");
        var r = await c.SendAsync(request);
        Assert.True(r.StatusCode == HttpStatusCode.Accepted, await r.Content.ReadAsStringAsync());
        var location = r.Headers.Location!.OriginalString;
        Assert.StartsWith("/api/tasks/", location);
        for (var i = 0; i < 20; i++)
        {
            var t = await JsonAsync(await c.GetAsync($"{location}?wait=60"));
            if (t["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled") return t;
        }
        throw new TimeoutException("clone task did not end");
    }

    [Fact]
    public async Task Linked_and_full_clones_copy_the_disks_and_are_independent_of_the_source()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var imageId = MakeBaseImage();
        var template = await JsonAsync(await admin.PostAsJsonAsync("/api/templates", new { name = Unique("clonable"), imageId, memoryMiB = 64, diskSizeMiB = 8 }));
        var (_, token) = await App.NewUserAsync(Unique("cloner"));
        using var c = App.Client(token);
        var r = await c.PostAsJsonAsync("/api/vms", new { name = "src", templateId = template["id"], cloudInit = new { password = "pw-123456" } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var source = await JsonAsync(r);
        var sourceId = source["id"]!.GetValue<Guid>();
        var sourceDisk = DiskPath(source);
        Write(sourceDisk, 1 * MiB, 0x5A, 65536); // the source's own change, in its overlay
        var basePath = Path.Combine(App.ImageStoreDir, imageId["upload:".Length..]);

        // linked: a copy of the overlay over the same base image
        var linkedTask = await CloneAsync(c, sourceId, new { name = "linked" });
        Assert.True(linkedTask["status"]!.GetValue<string>() == "succeeded", linkedTask.ToJsonString());
        Assert.Equal("vm.clone", linkedTask["type"]!.GetValue<string>());
        var linked = linkedTask["result"]!.AsObject();
        Assert.Equal("linked", linked["name"]!.GetValue<string>());
        Assert.Equal(imageId, linked["disks"]![0]!["backingImageId"]!.GetValue<string>());
        Assert.NotEqual(source["nic"]!["macAddress"]!.GetValue<string>(), linked["nic"]!["macAddress"]!.GetValue<string>());
        Assert.Equal("linked", linked["cloudInit"]!["hostname"]!.GetValue<string>());
        Assert.True(linked["cloudInit"]!["hasPassword"]!.GetValue<bool>());
        var linkedDisk = DiskPath(linked);
        Assert.Equal(Path.GetFullPath(basePath), Path.GetFullPath(DiskImageFile.ResolveBacking(linkedDisk, DiskImageFile.Probe(linkedDisk).BackingFile!)));
        Assert.All(Read(linkedDisk, 0, 512), b => Assert.Equal(0xB5, b));         // from the base
        Assert.All(Read(linkedDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b)); // the source's change
        Assert.True(new FileInfo(linkedDisk).Length < 2 * MiB, "a linked clone copies the overlay, not the base");

        // full: standalone, no backing file, same content
        var fullTask = await CloneAsync(c, sourceId, new { name = "full", mode = "full" });
        Assert.True(fullTask["status"]!.GetValue<string>() == "succeeded", fullTask.ToJsonString());
        var full = fullTask["result"]!.AsObject();
        Assert.Null(full["disks"]![0]!["backingImageId"]?.GetValue<string>());
        var fullDisk = DiskPath(full);
        Assert.Null(DiskImageFile.Probe(fullDisk).BackingFile);
        Assert.All(Read(fullDisk, 0, 512), b => Assert.Equal(0xB5, b));
        Assert.All(Read(fullDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        Assert.Equal(source["disks"]![0]!["sizeMiB"]!.GetValue<long>() * MiB, DiskImageFile.Probe(fullDisk).VirtualSize);
        var progress = fullTask["progress"]!;
        Assert.Equal(progress["total"]!.GetValue<long>(), progress["completed"]!.GetValue<long>());
        Assert.True(progress["total"]!.GetValue<long>() >= 8 * MiB);

        // independence: writing the source later changes neither clone; the clones do not touch each other
        Write(sourceDisk, 1 * MiB, 0x11, 65536);
        Write(linkedDisk, 2 * MiB, 0x22, 512);
        Assert.All(Read(linkedDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        Assert.All(Read(fullDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        Assert.All(Read(fullDisk, 2 * MiB, 512), b => Assert.Equal(0, b));
        Assert.All(Read(sourceDisk, 2 * MiB, 512), b => Assert.Equal(0, b));

        // qemu-img agrees: the chain of the linked clone, a clean full copy
        if (File.Exists("/usr/bin/qemu-img"))
        {
            var info = Run("/usr/bin/qemu-img", $"info --output=json \"{linkedDisk}\"");
            Assert.Contains(Path.GetFileName(basePath), info);
            Assert.Contains("\"format\": \"qcow2\"", info);
            Run("/usr/bin/qemu-img", $"check \"{fullDisk}\"");
            Run("/usr/bin/qemu-img", $"check \"{linkedDisk}\"");
        }

        // the clones are ordinary VMs: listed, deletable; deleting the source leaves them intact
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/vms/{sourceId}")).StatusCode);
        Assert.All(Read(linkedDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"/api/vms/{linked["id"]}")).StatusCode);

        // audit names the source and the mode
        var audit = await admin.GetStringAsync("/api/audit?search=vm.clone&take=50");
        Assert.Contains($"source={sourceId}", audit);
        Assert.Contains("mode=full", audit);
    }

    [Fact]
    public async Task Clones_are_refused_for_a_running_source_a_taken_name_another_users_vm_and_beyond_the_quota()
    {
        var (userId, token) = await App.NewUserAsync(Unique("cloner"));
        using var c = App.Client(token);
        var vm = await CreateVmAsync(c, "orig", 64);
        var id = vm["id"]!.GetValue<Guid>();

        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "orig" }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "bad name!" }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "x", mode = "deep" }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{Guid.NewGuid()}/clone", new { name = "x" }), HttpStatusCode.NotFound);
        var (_, otherToken) = await App.NewUserAsync(Unique("stranger"));
        using var other = App.Client(otherToken);
        await AssertProblemAsync(await other.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "mine" }), HttpStatusCode.NotFound);

        // running: 409 naming the state
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        var running = await c.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "while-running" });
        await AssertProblemAsync(running, HttpStatusCode.Conflict);
        Assert.Contains("Stop 'orig'", await running.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);

        // quota: one VM allowed → the clone is refused with the quota's name and numbers
        using var admin = App.Client(await App.AdminTokenAsync());
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/users/{userId}/quota", new { maxVms = 1 })).StatusCode);
        var refused = await c.PostAsJsonAsync($"/api/vms/{id}/clone", new { name = "one-too-many" });
        await AssertProblemAsync(refused, HttpStatusCode.Conflict);
        var problem = await JsonAsync(refused);
        Assert.Equal("Quota exceeded", problem["title"]!.GetValue<string>());
        Assert.Contains("1 of 1 VMs", problem["detail"]!.GetValue<string>());
    }

    private static string Run(string file, string args)
    {
        var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args}: {output}");
        return output;
    }
}

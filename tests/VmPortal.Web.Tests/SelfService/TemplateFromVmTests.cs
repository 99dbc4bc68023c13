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
/// <c>POST /api/vms/{id}/template</c> on the real portal: a stopped VM's disk (base + its own changes) becomes a
/// standalone read-only base image of a new template; VMs provisioned from it read the VM's data through their own
/// overlays; the source VM stays as it was; the image cannot be deleted while the template uses it. Refusals: a
/// running VM, a taken name, a bad name, a non-admin, an unknown VM. <c>qemu-img</c> checks the new base when installed.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class TemplateFromVmTests(PortalAppFixture app) : ApiTestBase(app)
{
    private const long MiB = 1 << 20;

    private string DiskPath(JsonObject vm)
    {
        var store = App.Services.GetRequiredService<VmDiskStore>();
        return Path.Combine(store.VmDirectory(vm["id"]!.GetValue<Guid>()), $"disk-{vm["disks"]![0]!["id"]!.GetValue<Guid>():N}.qcow2");
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

    [Fact]
    public async Task A_stopped_vms_disk_becomes_the_read_only_base_of_a_new_template()
    {
        using var admin = App.Client(await App.AdminTokenAsync(), holdAnswers: false);
        var baseName = Unique("tplbase") + ".img";
        var bytes = new byte[4 * MiB];
        bytes.AsSpan(0, 512).Fill(0xB5);
        File.WriteAllBytes(Path.Combine(App.ImageStoreDir, baseName), bytes);
        var first = await JsonAsync(await admin.PostAsJsonAsync("/api/templates", new { name = Unique("first"), imageId = "upload:" + baseName, memoryMiB = 48, diskSizeMiB = 8, defaultUser = "ops" }));
        using var held = App.Client(await App.AdminTokenAsync());
        var source = await JsonAsync(await held.PostAsJsonAsync("/api/vms", new { name = Unique("golden"), templateId = first["id"], cloudInit = new { password = "pw-123456" } }));
        var sourceDisk = DiskPath(source);
        Write(sourceDisk, 1 * MiB, 0x5A, 65536); // what the admin installed in the VM
        var sourceDiskBefore = File.ReadAllBytes(sourceDisk);

        // 202 + the task; its result is the template
        var name = Unique("golden-tpl");
        var r = await admin.PostAsJsonAsync($"/api/vms/{source["id"]}/template", new { name, description = "made in a test", os = "Debian" });
        Assert.True(r.StatusCode == HttpStatusCode.Accepted, await r.Content.ReadAsStringAsync());
        var task = await JsonAsync(await admin.GetAsync($"{r.Headers.Location!.OriginalString}?wait=120"));
        Assert.True(task["status"]!.GetValue<string>() == "succeeded", task.ToJsonString());
        Assert.Equal("vm.template", task["type"]!.GetValue<string>());
        var template = task["result"]!.AsObject();
        Assert.Equal(name, template["name"]!.GetValue<string>());
        Assert.Equal(48, template["memoryMiB"]!.GetValue<int>());
        Assert.Equal(8, template["diskSizeMiB"]!.GetValue<long>());
        Assert.Equal("ops", template["defaultUser"]!.GetValue<string>());
        var imageId = template["imageId"]!.GetValue<string>();
        Assert.StartsWith($"upload:{name}-", imageId);

        // the new base: standalone qcow2 with the base's and the VM's data, listed as a disk image
        var imagePath = Path.Combine(App.ImageStoreDir, imageId["upload:".Length..]);
        Assert.Null(DiskImageFile.Probe(imagePath).BackingFile);
        Assert.All(Read(imagePath, 0, 512), b => Assert.Equal(0xB5, b));
        Assert.All(Read(imagePath, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        var images = JsonNode.Parse(await admin.GetStringAsync("/api/images?kind=disk"))!.AsArray();
        Assert.Contains(images, i => i!["id"]!.GetValue<string>() == imageId);
        Assert.DoesNotContain(Directory.GetFiles(App.ImageStoreDir), f => f.EndsWith(".tmp"));
        if (File.Exists("/usr/bin/qemu-img")) Run("/usr/bin/qemu-img", $"check \"{imagePath}\"");
        Assert.Equal(sourceDiskBefore, File.ReadAllBytes(sourceDisk)); // the VM is untouched

        // a user provisions from it: an overlay over the new base, reading the VM's data; writes stay in the overlay
        var (_, userToken) = await App.NewUserAsync(Unique("tpluser"));
        using var user = App.Client(userToken);
        var vm = await JsonAsync(await user.PostAsJsonAsync("/api/vms", new { name = "from-golden", templateId = template["id"] }));
        Assert.Equal(imageId, vm["disks"]![0]!["backingImageId"]!.GetValue<string>());
        var vmDisk = DiskPath(vm);
        Assert.All(Read(vmDisk, 1 * MiB, 65536), b => Assert.Equal(0x5A, b));
        Write(vmDisk, 1 * MiB, 0x77, 512);
        Assert.All(Read(imagePath, 1 * MiB, 65536), b => Assert.Equal(0x5A, b)); // the base is read-only

        // the base cannot be deleted while the template (and the VM) use it
        var delete = await admin.DeleteAsync($"/api/images/{Uri.EscapeDataString(imageId)}");
        await AssertProblemAsync(delete, HttpStatusCode.Conflict);
        Assert.Contains($"template {name}", (await JsonAsync(delete))["detail"]!.GetValue<string>());

        // refusals, at once
        await AssertProblemAsync(await admin.PostAsJsonAsync($"/api/vms/{source["id"]}/template", new { name }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await admin.PostAsJsonAsync($"/api/vms/{source["id"]}/template", new { name = "bad name!" }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await admin.PostAsJsonAsync($"/api/vms/{Guid.NewGuid()}/template", new { name = Unique("x") }), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsJsonAsync($"/api/vms/{vm["id"]}/template", new { name = Unique("mine") })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await held.PostAsync($"/api/vms/{source["id"]}/start", null)).StatusCode);
        try
        {
            var running = await admin.PostAsJsonAsync($"/api/vms/{source["id"]}/template", new { name = Unique("hot") });
            await AssertProblemAsync(running, HttpStatusCode.Conflict);
            Assert.Contains("Stop", (await JsonAsync(running))["detail"]!.GetValue<string>());
        }
        finally { await held.PostAsync($"/api/vms/{source["id"]}/stop", null); }
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

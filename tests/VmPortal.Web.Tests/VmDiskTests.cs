using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Disks;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>
/// VM disks through the REST API against the real portal: each disk is a qcow2 file in the disk store (an overlay of
/// its base image or blank), grown and removed through the definition, downloaded flattened, deleted with the VM.
/// <c>qemu-img</c> (apt qemu-utils) is the oracle for what is on disk.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class VmDiskTests(PortalAppFixture app) : ApiTestBase(app)
{
    private const int MiB = 1024 * 1024;

    /// <summary>A raw base image in the upload store: 4 MiB of a seeded pattern. Returns its image id and bytes.</summary>
    private (string Id, byte[] Bytes, string Path) MakeBase()
    {
        var name = Unique("base") + ".img";
        var bytes = new byte[4 * MiB];
        new Random(name.GetHashCode()).NextBytes(bytes);
        var path = System.IO.Path.Combine(App.ImageStoreDir, name);
        File.WriteAllBytes(path, bytes);
        return ("upload:" + name, bytes, path);
    }

    private VmDiskStore Store => App.Services.GetRequiredService<VmDiskStore>();

    private static JsonObject QemuImgInfo(string path)
    {
        var (code, output) = Run("qemu-img", "info", "--output=json", "-U", path);
        Assert.True(code == 0, output);
        return JsonNode.Parse(output)!.AsObject();
    }

    /// <summary>Runs a host tool (qemu-img, kill…): its exit code and output.</summary>
    internal static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr);
    }

    [Fact]
    public async Task A_disk_on_a_base_image_is_a_qcow2_overlay_that_downloads_flattened_and_goes_with_the_vm()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var (baseId, baseBytes, basePath) = MakeBase();
        var baseHash = SHA256.HashData(baseBytes);

        var r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("disk"), memoryMiB = 64,
            disks = new[] { new { sizeMiB = 8, backingImageId = baseId, bus = "ide" } },
            bootOrder = new[] { "disk" },
        });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var vm = await JsonAsync(r);
        var vmId = vm["id"]!.GetValue<Guid>();
        var disk = vm["disks"]![0]!;
        Assert.NotEqual(Guid.Empty, disk["id"]!.GetValue<Guid>());
        Assert.Equal(8, disk["sizeMiB"]!.GetValue<long>());

        // on disk: one qcow2 overlay whose backing file is the base, with the requested virtual size
        var file = Assert.Single(Directory.GetFiles(Store.VmDirectory(vmId), "*.qcow2"));
        var info = QemuImgInfo(file);
        Assert.Equal("qcow2", info["format"]!.GetValue<string>());
        Assert.Equal(8L * MiB, info["virtual-size"]!.GetValue<long>());
        Assert.Equal(basePath, info["full-backing-filename"]?.GetValue<string>() ?? info["backing-filename"]!.GetValue<string>());
        Assert.True(new FileInfo(file).Length < 1 * MiB, "an overlay holds no copy of the base");
        Assert.Equal(0, Run("qemu-img", "check", "-U", file).Code);

        // download flattened: raw = base + zeros; qcow2 compares equal to it and has no backing file
        var raw = await c.GetByteArrayAsync($"/api/vms/{vmId}/disks/0?format=raw");
        Assert.Equal(8 * MiB, raw.Length);
        Assert.True(raw.AsSpan(0, baseBytes.Length).SequenceEqual(baseBytes));
        Assert.True(raw.AsSpan(baseBytes.Length).IndexOfAnyExcept((byte)0) < 0);
        var qcow = await c.GetAsync($"/api/vms/{vmId}/disks/0");
        Assert.Equal(HttpStatusCode.OK, qcow.StatusCode);
        var downloaded = Path.Combine(Path.GetTempPath(), $"{Guid.NewGuid():N}.qcow2");
        var rawFile = downloaded + ".raw";
        try
        {
            await File.WriteAllBytesAsync(downloaded, await qcow.Content.ReadAsByteArrayAsync());
            await File.WriteAllBytesAsync(rawFile, raw);
            var dinfo = QemuImgInfo(downloaded);
            Assert.Equal("qcow2", dinfo["format"]!.GetValue<string>());
            Assert.Null(dinfo["backing-filename"]);
            var cmp = Run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", downloaded, rawFile);
            Assert.True(cmp.Code == 0, cmp.Output);
        }
        finally
        {
            File.Delete(downloaded);
            File.Delete(rawFile);
        }
        Assert.Empty(Directory.GetFiles(Store.VmDirectory(vmId), ".export-*"));
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{vmId}/disks/0?format=vhdx"), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{vmId}/disks/1"), HttpStatusCode.NotFound);

        // the base cannot be deleted while the disk uses it; deleting the VM deletes its disks
        await AssertProblemAsync(await c.DeleteAsync($"/api/images/{Uri.EscapeDataString(baseId)}"), HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/vms/{vmId}")).StatusCode);
        Assert.False(Directory.Exists(Store.VmDirectory(vmId)));
        Assert.Equal(baseHash, SHA256.HashData(await File.ReadAllBytesAsync(basePath)));
    }

    [Fact]
    public async Task Disks_grow_are_added_and_removed_through_the_definition_but_never_shrink_or_change_base()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var (baseId, _, _) = MakeBase();
        var vm = await JsonAsync(await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("grow"), memoryMiB = 64,
            disks = new object[] { new { sizeMiB = 4, backingImageId = baseId }, new { sizeMiB = 16 } },
        }));
        var vmId = vm["id"]!.GetValue<Guid>();
        var d0 = vm["disks"]![0]!["id"]!.GetValue<Guid>();
        var d1 = vm["disks"]![1]!["id"]!.GetValue<Guid>();
        var version = vm["version"]!.GetValue<uint>();
        Assert.Equal(2, Directory.GetFiles(Store.VmDirectory(vmId), "*.qcow2").Length);

        object Body(object[] disks, uint v) => new { name = vm["name"]!.GetValue<string>(), memoryMiB = 64, disks, version = v };

        // shrink, base change, unknown id: 400 naming the field; nothing changes
        var shrink = await c.PutAsJsonAsync($"/api/vms/{vmId}", Body([new { id = d0, sizeMiB = 4, backingImageId = baseId }, new { id = d1, sizeMiB = 8 }], version));
        await AssertProblemAsync(shrink, HttpStatusCode.BadRequest);
        Assert.Contains("disks[1].sizeMiB", await shrink.Content.ReadAsStringAsync());
        var rebase = await c.PutAsJsonAsync($"/api/vms/{vmId}", Body([new { id = d0, sizeMiB = 4 }, new { id = d1, sizeMiB = 16 }], version));
        Assert.Contains("disks[0].backingImageId", await rebase.Content.ReadAsStringAsync());
        var unknown = await c.PutAsJsonAsync($"/api/vms/{vmId}", Body([new { id = Guid.NewGuid(), sizeMiB = 4 }], version));
        Assert.Contains("disks[0].id", await unknown.Content.ReadAsStringAsync());

        // grow disk 1 to 32 MiB, drop disk 0, add a new blank disk
        var r = await c.PutAsJsonAsync($"/api/vms/{vmId}", Body([new { id = d1, sizeMiB = 32 }, new { sizeMiB = 2 }], version));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var updated = await JsonAsync(r);
        Assert.Equal(d1, updated["disks"]![0]!["id"]!.GetValue<Guid>());
        Assert.Equal(32, updated["disks"]![0]!["sizeMiB"]!.GetValue<long>());
        var files = Directory.GetFiles(Store.VmDirectory(vmId), "*.qcow2");
        Assert.Equal(2, files.Length);
        Assert.DoesNotContain(files, f => f.Contains(d0.ToString("N")));
        var grown = files.Single(f => f.Contains(d1.ToString("N")));
        Assert.Equal(32L * MiB, QemuImgInfo(grown)["virtual-size"]!.GetValue<long>());
        Assert.Equal(0, Run("qemu-img", "check", "-U", grown).Code);
    }

    [Fact]
    public async Task Bad_disk_requests_are_refused_with_the_reason_and_leave_no_files()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var (baseId, _, basePath) = MakeBase();
        var before = Directory.Exists(Store.Root) ? Directory.GetDirectories(Store.Root).Length : 0;

        var small = await c.PostAsJsonAsync("/api/vms", new { name = Unique("small"), memoryMiB = 64, disks = new[] { new { sizeMiB = 2, backingImageId = baseId } } });
        await AssertProblemAsync(small, HttpStatusCode.BadRequest);
        Assert.Contains("at least as large as its base image (4 MiB)", await small.Content.ReadAsStringAsync());

        var iso = await c.PostAsJsonAsync("/api/vms", new { name = Unique("iso"), memoryMiB = 64, disks = new[] { new { sizeMiB = 8, backingImageId = "builtin:debian-i386-rescue-iso" } } });
        Assert.Contains("must be a disk image", await iso.Content.ReadAsStringAsync());
        Assert.Equal(before, Directory.Exists(Store.Root) ? Directory.GetDirectories(Store.Root).Length : 0);

        // a base image that vanished from the host: the start fails with a clear message, nothing runs
        var vm = await JsonAsync(await c.PostAsJsonAsync("/api/vms", new { name = Unique("lost"), memoryMiB = 64, disks = new[] { new { sizeMiB = 8, backingImageId = baseId } } }));
        File.Delete(basePath);
        var start = await c.PostAsync($"/api/vms/{vm["id"]}/start", null);
        await AssertProblemAsync(start, HttpStatusCode.Conflict);
        var detail = (await JsonAsync(start))["detail"]!.GetValue<string>();
        Assert.Contains("disk 0", detail);
        Assert.Contains(Path.GetFileName(basePath), detail);
    }

    [Fact]
    public async Task First_boot_settings_keep_only_a_password_hash()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("ci"), memoryMiB = 64,
            cloudInit = new { hostname = "web-1", user = "alice", password = "s3cret-pass", sshAuthorizedKeys = new[] { "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0eXN0ZXN0a2V5c3RyaW5nZm9ydGVzdGluZzAx alice@laptop" } },
        });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var text = await r.Content.ReadAsStringAsync();
        Assert.DoesNotContain("s3cret-pass", text);
        Assert.DoesNotContain("$6$", text);
        var created = await JsonAsync(r);
        var ci = created["cloudInit"]!;
        Assert.Equal("web-1", ci["hostname"]!.GetValue<string>());
        Assert.True(ci["hasPassword"]!.GetValue<bool>());

        // a start writes the NoCloud seed (ISO 9660 labelled cidata) that the machine gets as its second CD-ROM
        var vmId = created["id"]!.GetValue<Guid>();
        var start = await c.PostAsync($"/api/vms/{vmId}/start", null);
        Assert.True(start.StatusCode == HttpStatusCode.OK, await start.Content.ReadAsStringAsync());
        try
        {
            var seed = Store.SeedPath(vmId);
            Assert.True(File.Exists(seed));
            var outDir = Directory.CreateTempSubdirectory("seed").FullName;
            var x = Run("xorriso", "-osirrox", "on", "-indev", seed, "-pvd_info", "-extract", "/", outDir);
            Assert.True(x.Code == 0, x.Output);
            Assert.Contains("Volume Id    : cidata", x.Output);
            var userData = await File.ReadAllTextAsync(Path.Combine(outDir, "user-data"));
            Assert.StartsWith("#cloud-config", userData);
            Assert.Contains("alice", userData);
            Assert.Contains("$6$", userData);
            Assert.Contains("AAAAC3NzaC1lZDI1NTE5AAAAIB0eXN0ZXN0a2V5c3RyaW5nZm9ydGVzdGluZzAx", userData);
            Assert.DoesNotContain("s3cret-pass", userData);
            Assert.Contains("web-1", await File.ReadAllTextAsync(Path.Combine(outDir, "meta-data")));
            Directory.Delete(outDir, true);
        }
        finally
        {
            await c.PostAsync($"/api/vms/{vmId}/stop", null);
        }

        var bad = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("ci"), memoryMiB = 64,
            cloudInit = new { hostname = "-bad-", user = "Root User", sshAuthorizedKeys = new[] { "not a key" } },
        });
        await AssertProblemAsync(bad, HttpStatusCode.BadRequest);
        var errors = await bad.Content.ReadAsStringAsync();
        Assert.Contains("cloudInit.hostname", errors);
        Assert.Contains("cloudInit.user", errors);
        Assert.Contains("cloudInit.sshAuthorizedKeys[0]", errors);
    }

    private async Task<HttpResponseMessage> UploadAsync(HttpClient c, string name, byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return await c.PostAsync($"/api/images?name={name}", content);
    }

    [Fact]
    public async Task Disk_uploads_are_checked_by_content_and_bad_ones_refused_with_the_problem_named()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var dir = Directory.CreateTempSubdirectory("uploads").FullName;
        try
        {
            string Make(string name, params string[] args)
            {
                var path = Path.Combine(dir, name);
                var r = Run("qemu-img", [.. args.Select(a => a.Replace("{}", path))]);
                Assert.True(r.Code == 0, r.Output);
                return path;
            }
            var qcow = await File.ReadAllBytesAsync(Make("ok.qcow2", "create", "-f", "qcow2", "{}", "8M"));
            var vhd = await File.ReadAllBytesAsync(Make("ok.vhd", "create", "-f", "vpc", "-o", "subformat=dynamic", "{}", "8M"));
            var overlay = await File.ReadAllBytesAsync(Make("over.qcow2", "create", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", "{}", "8M"));

            // good qcow2 and VHD: accepted, listed with their format and virtual size
            var ok = await UploadAsync(c, Unique("good") + ".qcow2", qcow);
            Assert.True(ok.StatusCode == HttpStatusCode.Created, await ok.Content.ReadAsStringAsync());
            var okBody = await JsonAsync(ok);
            Assert.Equal("qcow2", okBody["format"]!.GetValue<string>());
            Assert.Equal(8L * MiB, okBody["virtualSizeBytes"]!.GetValue<long>());
            var okVhd = await UploadAsync(c, Unique("good") + ".vhd", vhd);
            Assert.True(okVhd.StatusCode == HttpStatusCode.Created, await okVhd.Content.ReadAsStringAsync());
            Assert.Equal("vhd", (await JsonAsync(okVhd))["format"]!.GetValue<string>());

            // refused, each naming its problem; nothing is left in the store
            var huge = (byte[])qcow.Clone();
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(huge.AsSpan(24), 1UL << 62); // qcow2 header: size
            var garbage = new byte[64 * 1024];
            new Random(7).NextBytes(garbage);
            garbage[0] = (byte)'Q'; garbage[1] = (byte)'F'; garbage[2] = (byte)'I'; garbage[3] = 0xFB;
            var cases = new (string Name, byte[] Bytes, string Expect)[]
            {
                ("trunc.qcow2", qcow[..40], "Not a usable disk image"),
                ("garbage.qcow2", garbage, "Not a usable disk image"),
                ("huge.qcow2", huge, "Not a usable disk image"),
                ("backing.qcow2", overlay, "backing file"),
                ("trunc.vhd", vhd[..700], ""), // cut inside the dynamic header: refused (the reader's words vary)
            };
            var before = Directory.GetFiles(App.ImageStoreDir).Length;
            foreach (var (name, bytes, expect) in cases)
            {
                var r = await UploadAsync(c, Unique("bad") + "-" + name, bytes);
                Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{name}: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
                if (expect.Length > 0) Assert.Contains(expect, await r.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
            }
            Assert.Equal(before, Directory.GetFiles(App.ImageStoreDir).Length);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

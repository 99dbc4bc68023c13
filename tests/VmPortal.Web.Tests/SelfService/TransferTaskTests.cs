using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Data;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// Image uploads and disk downloads/exports as tasks, against the real portal (Kestrel, PostgreSQL): an upload's
/// task runs while the body streams (progress = bytes of the Content-Length), then checks the content; a refused one
/// ends failed with the same problem; <c>Prefer: respond-async</c> answers 202 once the body is in; cancelling an
/// upload in flight stores nothing. A disk download is a <c>vm.disk-export</c> task (conversion, then the bytes
/// sent); <c>POST …/export</c> makes a file the task's download serves (compared with <c>qemu-img</c>). Audited.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class TransferTaskTests(PortalAppFixture app) : ApiTestBase(app)
{
    private const int MiB = 1024 * 1024;

    private static string TaskIdFromLink(HttpResponseMessage r)
    {
        var link = r.Headers.TryGetValues("Link", out var v) ? v.Single() : throw new Xunit.Sdk.XunitException("no Link header");
        var m = System.Text.RegularExpressions.Regex.Match(link, "</api/tasks/([0-9a-f-]+)>; rel=\"monitor\"");
        Assert.True(m.Success, link);
        return m.Groups[1].Value;
    }

    private static async Task<JsonObject> WaitTaskAsync(HttpClient c, string id)
    {
        for (var i = 0; i < 20; i++)
        {
            var t = await JsonAsync(await c.GetAsync($"/api/tasks/{id}?wait=30"));
            if (t["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled") return t;
        }
        throw new Xunit.Sdk.XunitException($"task {id} did not end");
    }

    private static ByteArrayContent Octets(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    private async Task<List<(string Action, string TargetId, string Details, bool Success)>> AuditAsync(string action)
    {
        await using var db = await App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>().CreateDbContextAsync();
        return (await db.AuditEvents.AsNoTracking().Where(e => e.Action == action).ToListAsync())
            .Select(e => (e.Action, e.TargetId ?? "", e.Details, e.Success)).ToList();
    }

    [Fact]
    public async Task An_upload_is_a_task_with_bytes_received_then_checked_and_a_refused_one_fails_with_the_same_problem()
    {
        using var c = App.Client(await App.AdminTokenAsync(), holdAnswers: false);
        var bytes = new byte[3 * MiB + 512];
        new Random(12).NextBytes(bytes);
        var name = Unique("up") + ".img";

        // the answer waits for the task (201 + the image, as before) and names the task
        var r = await c.PostAsync($"/api/images?name={name}", Octets(bytes));
        Assert.True(r.StatusCode == HttpStatusCode.Created, await r.Content.ReadAsStringAsync());
        var taskId = TaskIdFromLink(r);
        var task = await WaitTaskAsync(c, taskId);
        Assert.Equal("image.upload", task["type"]!.GetValue<string>());
        Assert.Equal("succeeded", task["status"]!.GetValue<string>());
        Assert.Equal("upload:" + name, task["targetId"]!.GetValue<string>());
        Assert.Equal(bytes.Length, task["progress"]!["completed"]!.GetValue<long>());
        Assert.Equal(bytes.Length, task["progress"]!["total"]!.GetValue<long>());
        Assert.Equal("upload:" + name, task["result"]!["id"]!.GetValue<string>());
        Assert.Null(task["result"]!["path"]); // no host path leaves the portal
        var log = await c.GetStringAsync($"/api/tasks/{taskId}/log");
        Assert.Contains($"received {bytes.Length} bytes", log);
        Assert.Contains("checking the content", log);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(App.ImageStoreDir, name)));
        Assert.Contains(await AuditAsync("image.upload"), e => e.TargetId == "upload:" + name && e.Success && e.Details.Contains($"task={taskId}"));

        // a refused upload: 400 naming the problem, the task failed with the same status, audited as a failure
        var bad = Unique("bad") + ".qcow2";
        var refused = await c.PostAsync($"/api/images?name={bad}", Octets(bytes[..4096]));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = (await JsonAsync(refused))["errors"]!["file"]![0]!.GetValue<string>();
        Assert.Contains("not a qcow2 image", problem);
        var failed = await WaitTaskAsync(c, TaskIdFromLink(refused));
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Equal(400, failed["error"]!["status"]!.GetValue<int>());
        Assert.Contains(problem, failed["error"]!["detail"]!.GetValue<string>());
        Assert.False(File.Exists(Path.Combine(App.ImageStoreDir, bad)));
        Assert.Contains(await AuditAsync("image.upload"), e => e.TargetId == "upload:" + bad && !e.Success);

        // a bad name or a taken name is answered at once, without a task
        var before = (await c.GetFromJsonAsync<JsonArray>("/api/tasks?take=500"))!.Count;
        Assert.Equal(HttpStatusCode.BadRequest, (await c.PostAsync("/api/images?name=..%2Fx", Octets(bytes[..10]))).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await c.PostAsync($"/api/images?name={name}", Octets(bytes[..10]))).StatusCode);
        Assert.Equal(before, (await c.GetFromJsonAsync<JsonArray>("/api/tasks?take=500"))!.Count);

        // Prefer: respond-async → 202 + Location once the body is in; the task ends with the image as its result
        var later = Unique("async") + ".img";
        var req = new HttpRequestMessage(HttpMethod.Post, $"/api/images?name={later}") { Content = Octets(bytes) };
        req.Headers.Add("Prefer", "respond-async");
        var accepted = await c.SendAsync(req);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var location = accepted.Headers.Location!.ToString();
        Assert.StartsWith("/api/tasks/", location);
        var done = await WaitTaskAsync(c, location["/api/tasks/".Length..]);
        Assert.Equal("succeeded", done["status"]!.GetValue<string>());
        Assert.Equal("upload:" + later, done["result"]!["id"]!.GetValue<string>());
    }

    /// <summary>A request body that sends its first part, then waits for <see cref="Release"/> before the rest.</summary>
    private sealed class PausedContent(byte[] first, byte[] rest) : HttpContent
    {
        private readonly TaskCompletionSource release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public void Release() => release.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(first);
            await stream.FlushAsync();
            await release.Task;
            await stream.WriteAsync(rest);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = first.Length + rest.Length;
            return true;
        }
    }

    [Fact]
    public async Task Cancelling_an_upload_in_flight_stores_nothing()
    {
        using var c = App.Client(await App.AdminTokenAsync(), holdAnswers: false);
        var name = Unique("cancel") + ".img";
        var content = new PausedContent(new byte[2 * MiB], new byte[2 * MiB]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var upload = c.PostAsync($"/api/images?name={name}", content);

        // the task shows the bytes received so far, of the announced length
        JsonObject? task = null;
        for (var i = 0; i < 600 && task is null; i++)
        {
            var list = (await c.GetFromJsonAsync<JsonArray>($"/api/tasks?targetId={Uri.EscapeDataString("upload:" + name)}"))!;
            if (list.FirstOrDefault() is JsonObject t && t["progress"]!["completed"]!.GetValue<long>() >= 2 * MiB) task = t;
            else await Task.Delay(100);
        }
        Assert.NotNull(task);
        Assert.Equal("running", task["status"]!.GetValue<string>());
        Assert.Equal(4L * MiB, task["progress"]!["total"]!.GetValue<long>());
        var id = task["id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.Accepted, (await c.PostAsync($"/api/tasks/{id}/cancel", null)).StatusCode);
        var ended = await WaitTaskAsync(c, id);
        Assert.Equal("cancelled", ended["status"]!.GetValue<string>());
        content.Release();
        try
        {
            var answer = await upload;
            Assert.Equal(HttpStatusCode.Conflict, answer.StatusCode);
        }
        catch (HttpRequestException) { } // the server may close the connection on the unread rest of the body
        Assert.False(File.Exists(Path.Combine(App.ImageStoreDir, name)));
        Assert.Empty(Directory.GetFiles(App.ImageStoreDir, ".upload-*"));
        Assert.DoesNotContain((await c.GetFromJsonAsync<JsonArray>("/api/images"))!, i => i!["fileName"]!.GetValue<string>() == name);
        Assert.Contains(await AuditAsync("image.upload"), e => e.TargetId == "upload:" + name && !e.Success && e.Details.Contains("cancelled"));
    }

    [Fact]
    public async Task A_disk_download_is_a_task_and_an_export_makes_a_file_to_download_later()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var baseName = Unique("xbase") + ".img";
        var baseBytes = new byte[3 * MiB];
        new Random(3).NextBytes(baseBytes);
        await File.WriteAllBytesAsync(Path.Combine(App.ImageStoreDir, baseName), baseBytes);
        var r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("export"), memoryMiB = 64,
            disks = new[] { new { sizeMiB = 6, backingImageId = "upload:" + baseName, bus = "ide" } },
            bootOrder = new[] { "disk" },
        });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var vmId = (await JsonAsync(r))["id"]!.GetValue<Guid>();

        // a download: the same bytes as before, and a task that converted and sent them
        var raw = await c.GetAsync($"/api/vms/{vmId}/disks/0?format=raw");
        Assert.Equal(HttpStatusCode.OK, raw.StatusCode);
        var rawBytes = await raw.Content.ReadAsByteArrayAsync();
        Assert.Equal(6 * MiB, rawBytes.Length);
        Assert.True(rawBytes.AsSpan(0, baseBytes.Length).SequenceEqual(baseBytes));
        var downloadTaskId = raw.Headers.GetValues("X-Task-Id").Single();
        var dt = await WaitTaskAsync(c, downloadTaskId);
        Assert.Equal("vm.disk-export", dt["type"]!.GetValue<string>());
        Assert.Equal("succeeded", dt["status"]!.GetValue<string>());
        Assert.Equal(vmId.ToString(), dt["targetId"]!.GetValue<string>());
        Assert.Equal(6L * MiB, dt["progress"]!["completed"]!.GetValue<long>());
        Assert.Equal(6L * MiB, dt["progress"]!["total"]!.GetValue<long>());
        var log = await c.GetStringAsync($"/api/tasks/{downloadTaskId}/log");
        Assert.Contains("converting disk 0", log);
        // a direct download keeps nothing: no file behind the task, no temporary file in the VM's directory
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync($"/api/tasks/{downloadTaskId}/download")).StatusCode);
        var vmDir = App.Services.GetRequiredService<VmPortal.Core.Disks.VmDiskStore>().VmDirectory(vmId);
        Assert.Empty(Directory.GetFiles(vmDir, ".export-*"));

        // an export: 202 + Location; the task's result names the download, which is a VHD equal to the raw disk
        var export = await App.Client(await App.AdminTokenAsync(), holdAnswers: false)
            .PostAsJsonAsync($"/api/vms/{vmId}/disks/0/export", new { format = "vhd" });
        Assert.Equal(HttpStatusCode.Accepted, export.StatusCode);
        var exportId = export.Headers.Location!.ToString()["/api/tasks/".Length..];
        var et = await WaitTaskAsync(c, exportId);
        Assert.True(et["status"]!.GetValue<string>() == "succeeded", et.ToJsonString());
        var result = et["result"]!;
        Assert.Equal("vhd", result["format"]!.GetValue<string>());
        Assert.Equal($"/api/tasks/{exportId}/download", result["download"]!.GetValue<string>());
        Assert.NotNull(result["expiresAt"]);
        var file = await c.GetAsync(result["download"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, file.StatusCode);
        var vhd = await file.Content.ReadAsByteArrayAsync();
        Assert.Equal(result["sizeBytes"]!.GetValue<long>(), vhd.Length);
        var dir = Directory.CreateTempSubdirectory("export").FullName;
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(dir, "d.vhd"), vhd);
            await File.WriteAllBytesAsync(Path.Combine(dir, "d.raw"), rawBytes);
            var cmp = VmDiskTests.Run("qemu-img", "compare", "-f", "vpc", "-F", "raw", Path.Combine(dir, "d.vhd"), Path.Combine(dir, "d.raw"));
            Assert.True(cmp.Code == 0, cmp.Output);
        }
        finally { Directory.Delete(dir, true); }
        // a range of it (a resumed download)
        var range = new HttpRequestMessage(HttpMethod.Get, result["download"]!.GetValue<string>());
        range.Headers.Range = new RangeHeaderValue(512, 1023);
        var partial = await c.SendAsync(range);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);
        Assert.Equal(vhd[512..1024], await partial.Content.ReadAsByteArrayAsync());

        // refusals at once; another user sees neither the VM nor the export
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{vmId}/disks/0/export", new { format = "vmdk" }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{vmId}/disks/3/export", new { format = "raw" }), HttpStatusCode.NotFound);
        var (_, userToken) = await App.NewUserAsync(Unique("other"));
        using var other = App.Client(userToken);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/tasks/{exportId}/download")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.PostAsJsonAsync($"/api/vms/{vmId}/disks/0/export", new { format = "raw" })).StatusCode);

        var audit = await AuditAsync("vm.disk-export");
        Assert.Contains(audit, e => e.TargetId == vmId.ToString() && e.Success && e.Details.Contains($"task {downloadTaskId}") && e.Details.Contains("downloaded as raw"));
        Assert.Contains(audit, e => e.TargetId == vmId.ToString() && e.Success && e.Details.Contains($"task {exportId}") && e.Details.Contains("exported as vhd"));
    }
}

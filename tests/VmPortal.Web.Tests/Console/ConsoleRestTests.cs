using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// The VM runtime over REST on real Kestrel + PostgreSQL: a VM with no bootable media runs real SeaBIOS in the
/// emulator; power commands, state persistence, the console endpoints and the per-VM rules.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class ConsoleRestTests(PortalAppFixture app) : ApiTestBase(app)
{
    private static async Task<string> StateAsync(HttpClient c, Guid id) =>
        (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>();

    [Fact]
    public async Task Console_boots_SeaBIOS_and_serves_text_screenshot_wait_keys_with_per_vm_rules()
    {
        var a = await App.NewUserAsync(Unique("con-a"));
        var b = await App.NewUserAsync(Unique("con-b"));
        using var ca = App.Client(a.Token);
        using var cb = App.Client(b.Token);
        var id = (await CreateVmAsync(ca, Unique("bios"), memoryMiB: 32))["id"]!.GetValue<Guid>();

        // stopped: nothing to stop, no screen; a foreign user cannot even see it
        await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/stop", null), HttpStatusCode.Conflict);
        await AssertProblemAsync(await ca.GetAsync($"/api/vms/{id}/console/text"), HttpStatusCode.Conflict);
        await AssertProblemAsync(await cb.PostAsync($"/api/vms/{id}/start", null), HttpStatusCode.NotFound);
        Assert.Equal("stopped", await StateAsync(ca, id));

        var started = await ca.PostAsync($"/api/vms/{id}/start", null);
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        Assert.Equal("running", (await JsonAsync(started))["state"]!.GetValue<string>());
        try
        {
            Assert.Equal("running", await StateAsync(ca, id));
            await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/start", null), HttpStatusCode.Conflict);

            // SeaBIOS prints its banner on the VGA text screen
            var wait = await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "SeaBIOS", timeoutSeconds = 45, source = "screen" });
            var waitBody = await JsonAsync(wait);
            Assert.True(wait.StatusCode == HttpStatusCode.OK, $"wait: {wait.StatusCode} {waitBody}");
            Assert.Equal("SeaBIOS", waitBody["match"]!.GetValue<string>());

            var text = await JsonAsync(await ca.GetAsync($"/api/vms/{id}/console/text"));
            Assert.Contains("SeaBIOS", text["text"]!.GetValue<string>());
            Assert.Equal(80, text["columns"]!.GetValue<int>());
            Assert.InRange(text["cursor"]!["row"]!.GetValue<int>(), 0, text["rows"]!.GetValue<int>() - 1);

            var shot = await ca.GetAsync($"/api/vms/{id}/console/screenshot");
            Assert.Equal(HttpStatusCode.OK, shot.StatusCode);
            Assert.Equal("image/png", shot.Content.Headers.ContentType?.MediaType);
            var png = await shot.Content.ReadAsByteArrayAsync();
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
            Assert.Equal(text["width"]!.GetValue<int>(), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
            Assert.Equal(text["height"]!.GetValue<int>(), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
            Assert.True(text["width"]!.GetValue<int>() >= 640);

            // a text that never comes: 408 with the last screen
            var never = await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "no-such-text-ever", timeoutSeconds = 1 });
            await AssertProblemAsync(never, HttpStatusCode.RequestTimeout);
            Assert.Contains("SeaBIOS", (await JsonAsync(never))["lastText"]!.GetValue<string>());

            // bad input → 400
            await AssertProblemAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "(", timeoutSeconds = 1 }), HttpStatusCode.BadRequest);
            await AssertProblemAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "x", source = "disk" }), HttpStatusCode.BadRequest);
            await AssertProblemAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/keys", new { keys = new[] { "ctrl", "nosuchkey" } }), HttpStatusCode.BadRequest);
            await AssertProblemAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "" }), HttpStatusCode.BadRequest);
            await AssertProblemAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "caf\u00e9" }), HttpStatusCode.BadRequest);
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "ok\n" })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsJsonAsync($"/api/vms/{id}/console/keys", new { keys = new[] { "esc" } })).StatusCode);

            // the other user sees nothing of it
            await AssertProblemAsync(await cb.GetAsync($"/api/vms/{id}/console/text"), HttpStatusCode.NotFound);
            await AssertProblemAsync(await cb.GetAsync($"/api/vms/{id}/console/screenshot"), HttpStatusCode.NotFound);
            await AssertProblemAsync(await cb.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "x" }), HttpStatusCode.NotFound);
            await AssertProblemAsync(await cb.PostAsync($"/api/vms/{id}/stop", null), HttpStatusCode.NotFound);

            // pause/resume are persisted; illegal transitions are 409
            var paused = await ca.PostAsync($"/api/vms/{id}/pause", null);
            Assert.Equal("paused", (await JsonAsync(paused))["state"]!.GetValue<string>());
            Assert.Equal("paused", await StateAsync(ca, id));
            await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/pause", null), HttpStatusCode.Conflict);
            await AssertProblemAsync(await ca.PostAsync($"/api/vms/{id}/ctrl-alt-del", null), HttpStatusCode.Conflict);
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/resume", null)).StatusCode);
            Assert.Equal("running", await StateAsync(ca, id));
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/ctrl-alt-del", null)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/reset", null)).StatusCode);

            // a running VM cannot be deleted
            Assert.NotEqual(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}")).StatusCode);
        }
        finally
        {
            var stop = await ca.PostAsync($"/api/vms/{id}/stop", null);
            Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
            Assert.Equal("stopped", (await JsonAsync(stop))["state"]!.GetValue<string>());
        }
        Assert.Equal("stopped", await StateAsync(ca, id));
        await AssertProblemAsync(await ca.GetAsync($"/api/vms/{id}/console/screenshot"), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Start_beyond_host_memory_is_409_with_a_clear_message()
    {
        var a = await App.NewUserAsync(Unique("cap"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("huge"), memoryMiB: 16384))["id"]!.GetValue<Guid>();
        var r = await ca.PostAsync($"/api/vms/{id}/start", null);
        await AssertProblemAsync(r, HttpStatusCode.Conflict);
        var detail = (await JsonAsync(r))["detail"]!.GetValue<string>();
        Assert.Contains("16384 MiB", detail);
        Assert.Contains("free", detail);
        Assert.Equal("stopped", await StateAsync(ca, id));
    }

    [Fact]
    public async Task Portal_start_marks_vms_that_were_running_stopped()
    {
        var a = await App.NewUserAsync(Unique("rec"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("stale"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        var dbFactory = App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>();
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            // as a previous portal process left it: running, but no machine on this host
            var vm = await db.VirtualMachines.SingleAsync(v => v.Id == id);
            VmStateSync.MoveTo(vm, VmState.Running, DateTimeOffset.UtcNow);
            await db.SaveChangesAsync();
        }
        Assert.Equal("running", await StateAsync(ca, id));

        var startup = ActivatorUtilities.CreateInstance<VmRuntimeStartup>(App.Services);
        await startup.StartAsync(CancellationToken.None);
        await startup.StopAsync(CancellationToken.None);
        Assert.Equal("stopped", await StateAsync(ca, id));
    }
}

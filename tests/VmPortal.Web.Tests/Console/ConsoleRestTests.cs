using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Core.Runtime;
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

            // typed text is queued per VM and bounded: a second 64 KiB text does not fit beside the first (SeaBIOS
            // reads some keys while it waits, far fewer than queued), is refused with 429, and can be dropped
            var big = new string('x', 64 * 1024);
            var first = await JsonAsync(await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = big }));
            Assert.Equal(big.Length, first["typed"]!.GetValue<int>());
            Assert.True(first["pending"]!.GetValue<int>() > big.Length / 2, first.ToJsonString());
            var refused = await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = big });
            await AssertProblemAsync(refused, (HttpStatusCode)429);
            Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
            var refusal = await JsonAsync(refused);
            Assert.Equal(64 * 1024, refusal["capacity"]!.GetValue<int>());
            Assert.True(refusal["pending"]!.GetValue<int>() > big.Length / 2, refusal.ToJsonString());
            Assert.True((await JsonAsync(await ca.GetAsync($"/api/vms/{id}/console/type")))["pending"]!.GetValue<int>() > 0);
            await AssertProblemAsync(await cb.DeleteAsync($"/api/vms/{id}/console/type"), HttpStatusCode.NotFound);
            var cancelled = await JsonAsync(await ca.DeleteAsync($"/api/vms/{id}/console/type"));
            Assert.True(cancelled["dropped"]!.GetValue<int>() > big.Length / 2, cancelled.ToJsonString());
            Assert.Equal(0, (await JsonAsync(await ca.GetAsync($"/api/vms/{id}/console/type")))["pending"]!.GetValue<int>());

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
        var atBoot = await startup.ReconcileAsync(); // what StartAsync does before starting the flagged VMs
        Assert.Equal("stopped", await StateAsync(ca, id));
        Assert.DoesNotContain(id, atBoot);
        var vmJson = await JsonAsync(await ca.GetAsync($"/api/vms/{id}"));
        Assert.Equal(VmRuntimeStartup.HostCrashedReason, vmJson["stateReason"]!.GetValue<string>());
        await using (var db = await dbFactory.CreateDbContextAsync())
            Assert.True(await db.AuditEvents.AnyAsync(e => e.Action == AuditActions.VmHostStopped && e.TargetId == id.ToString()));
    }

    [Fact]
    public async Task A_clean_portal_shutdown_and_a_user_power_off_record_why_the_vm_stopped()
    {
        var a = await App.NewUserAsync(Unique("why"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("why"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        Assert.Null((await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["stateReason"]?.GetValue<string>());

        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        await WaitForAsync(async () => (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["stateReason"]?.GetValue<string>() == HostedVm.PortalPoweredOffReason);

        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        var vmJson = await JsonAsync(await ca.GetAsync($"/api/vms/{id}"));
        Assert.Equal("running", vmJson["state"]!.GetValue<string>());
        Assert.Null(vmJson["stateReason"]?.GetValue<string>()); // a new run forgets the old reason

        // what the portal does for every running VM when it is shut down cleanly (SIGTERM)
        var startup = ActivatorUtilities.CreateInstance<VmRuntimeStartup>(App.Services);
        var host = App.Services.GetRequiredService<VmHost>();
        await startup.PowerOffForShutdownAsync([host.Get(id)]);
        vmJson = await JsonAsync(await ca.GetAsync($"/api/vms/{id}"));
        Assert.Equal("stopped", vmJson["state"]!.GetValue<string>());
        Assert.Equal(VmRuntimeStartup.PortalShutDownReason, vmJson["stateReason"]!.GetValue<string>());
        var dbFactory = App.Services.GetRequiredService<IDbContextFactory<PortalDbContext>>();
        await using var db = await dbFactory.CreateDbContextAsync();
        Assert.True(await db.AuditEvents.AnyAsync(e => e.Action == AuditActions.VmHostStopped && e.TargetId == id.ToString()
                                                     && e.Details == VmRuntimeStartup.PortalShutDownReason));
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not reached in 30 s");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Start_at_boot_starts_flagged_vms_only()
    {
        var a = await App.NewUserAsync(Unique("boot"));
        using var ca = App.Client(a.Token);
        var flagged = await ca.PostAsJsonAsync("/api/vms", new { name = Unique("auto"), memoryMiB = 32, startAtBoot = true });
        Assert.Equal(HttpStatusCode.Created, flagged.StatusCode);
        var auto = (await JsonAsync(flagged))["id"]!.GetValue<Guid>();
        var manual = (await CreateVmAsync(ca, Unique("manual"), memoryMiB: 32))["id"]!.GetValue<Guid>();

        var startup = ActivatorUtilities.CreateInstance<VmRuntimeStartup>(App.Services);
        await startup.StartAtBootAsync([auto, manual]);
        try
        {
            Assert.Equal("running", await StateAsync(ca, auto));
            Assert.Equal("stopped", await StateAsync(ca, manual));
        }
        finally
        {
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{auto}/stop", null)).StatusCode);
        }
        Assert.Equal("stopped", await StateAsync(ca, auto));
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Data;
using VmPortal.Data.Entities;
using VmPortal.Data.Hosting;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Snapshots;

/// <summary>
/// Suspend survives a portal restart, with the rescue Linux (one boot): a file in the guest's RAM and at the start of
/// its disk says <c>one</c>; the user suspends the VM, the portal is shut down and a second portal on the same
/// database and data directory shows it Suspended until the user resumes it — the same shell then shows the file in
/// RAM and on the disk and answers the next command. Then a clean shutdown of that portal suspends the running VM by
/// itself (<c>Runtime:OnShutdown=suspend</c>) and a third portal resumes it at its start: the machine continues from
/// its instruction count rather than booting, and the shell answers again.
/// </summary>
public sealed class ShutdownSuspendTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vmportal-shutdown-{Guid.NewGuid():N}");
    private EmbeddedPostgres? _pg;
    private string _connection = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_root, "images"));
        Directory.CreateDirectory(Path.Combine(_root, "cache"));
        _pg = await EmbeddedPostgres.StartAsync(new EmbeddedPostgresOptions { DataDirectory = Path.Combine(_root, "postgres"), Database = "postgres" }, NullLogger.Instance);
        var database = "vmportal_shutdown_" + Guid.NewGuid().ToString("N")[..12];
        await _pg.EnsureDatabaseAsync(database);
        _connection = _pg.ConnectionStringFor(database);
    }

    public async Task DisposeAsync()
    {
        if (_pg is not null) await _pg.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private (Portal Factory, HttpClient Client) Start()
    {
        var f = new Portal(_connection, _root);
        f.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        f.StartServer();
        var address = f.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (f, new HttpClient
        {
            BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1").Replace("localhost", "127.0.0.1")),
            DefaultRequestHeaders = { { "Prefer", PortalAppFixture.HoldAnswers } },
            Timeout = TimeSpan.FromMinutes(25),
        });
    }

    private static async Task<HttpClient> SignInAsync(HttpClient c)
    {
        var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = PortalAppFixture.AdminPassword, name = "t", expiresInDays = 1 });
        r.EnsureSuccessStatusCode();
        var token = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return c;
    }

    private static async Task<string> StateAsync(HttpClient c, Guid id) =>
        JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}"))!["state"]!.GetValue<string>();

    private static async Task TypeAsync(HttpClient c, Guid id, string text) =>
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text })).StatusCode);

    private static async Task WaitAsync(HttpClient c, Guid id, string pattern, int seconds = 120)
    {
        for (int left = seconds; ; left -= 600)
        {
            var r = await c.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern, timeoutSeconds = Math.Min(left, 600), source = "screen" });
            if (r.StatusCode == HttpStatusCode.OK) return;
            Assert.True(r.StatusCode == HttpStatusCode.RequestTimeout && left > 600, $"wait {pattern}: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }
    }

    private static async Task<string> ScreenAsync(HttpClient c, Guid id) =>
        JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}/console/text"))!["text"]!.GetValue<string>();

    /// <summary>The file in RAM and on the disk, and an answer to a new command.</summary>
    private static async Task AssertShellAsync(HttpClient c, Guid id, string tag)
    {
        await TypeAsync(c, id, $"clear; {LinuxSnapshotRestTests.ShowBoth}; echo {tag}-$((6*7))\n");
        await WaitAsync(c, id, $"(?m)^{tag}-42");
        var screen = await ScreenAsync(c, id);
        Assert.Contains("ram=one-42", screen);
        Assert.Contains("disk=one-42", screen);
    }

    [Fact]
    public async Task A_suspended_linux_guest_resumes_after_a_portal_restart_and_a_clean_shutdown_suspends_and_resumes_it()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");
        Guid id;
        string vmDir;
        var (first, c1) = Start();
        try
        {
            await SignInAsync(c1);
            c1.DefaultRequestHeaders.Add("Prefer", "wait=300");
            using (var upload = new StreamContent(File.OpenRead(iso)))
                Assert.True((await c1.PostAsync("/api/images?name=rescue.iso", upload)).IsSuccessStatusCode);
            var created = await c1.PostAsJsonAsync("/api/vms", new
            {
                name = "keeps-running", memoryMiB = 128, cdromImageId = "upload:rescue.iso", bootOrder = new[] { "cdrom" },
                disks = new[] { new { sizeMiB = 16 } },
            });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
            vmDir = first.Services.GetRequiredService<Core.Disks.VmDiskStore>().VmDirectory(id);
            Assert.Equal(HttpStatusCode.OK, (await c1.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
            await WaitAsync(c1, id, "VMPORTAL-GUEST-READY", 1200);
            await WaitAsync(c1, id, "(?m)^/ #");
            await TypeAsync(c1, id, "vmportal-disks && dmesg -n 1 && echo disks-$((40+2))\n");
            await WaitAsync(c1, id, "(?m)^disks-42", 300);
            await TypeAsync(c1, id, "echo one-$((40+2)) > /tmp/f; cat /tmp/f > /dev/sda; sync; echo written-$((40+2))\n");
            await WaitAsync(c1, id, "(?m)^written-42");

            var suspend = await c1.PostAsync($"/api/vms/{id}/suspend", null);
            Assert.True(suspend.StatusCode == HttpStatusCode.OK, $"suspend: {suspend.StatusCode} {await suspend.Content.ReadAsStringAsync()}");
            Assert.Equal("suspended", await StateAsync(c1, id));
        }
        finally
        {
            c1.Dispose();
            await first.DisposeAsync(); // a clean shutdown: the suspended VM stays suspended
        }
        Assert.True(File.Exists(Path.Combine(vmDir, "suspended.vmstate")));
        Assert.False(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)), "a user's suspend is not resumed by the next start");

        long instructionsBefore;
        HostedVm hosted;
        var (second, c2) = Start();
        try
        {
            await SignInAsync(c2);
            Assert.Equal("suspended", await StateAsync(c2, id));
            var resume = await c2.PostAsync($"/api/vms/{id}/resume", null);
            Assert.True(resume.StatusCode == HttpStatusCode.OK, $"resume: {resume.StatusCode} {await resume.Content.ReadAsStringAsync()}");
            Assert.Equal("running", await StateAsync(c2, id));
            Assert.False(File.Exists(Path.Combine(vmDir, "suspended.vmstate")));
            await AssertShellAsync(c2, id, "resumed");
            hosted = second.Services.GetRequiredService<VmHost>().Get(id);
            instructionsBefore = hosted.Machine!.InstructionCount;
        }
        finally
        {
            c2.Dispose();
            await second.DisposeAsync(); // a clean shutdown: the running VM is suspended and marked
        }
        Assert.True(hosted.State == VmRunState.Suspended, $"the shutdown left the VM {hosted.State} ({hosted.Lifecycle.StopReason})");
        Assert.True(File.Exists(Path.Combine(vmDir, "suspended.vmstate")), "the shutdown saved the machine");
        Assert.True(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)));

        var (third, c3) = Start();
        try
        {
            await SignInAsync(c3);
            var deadline = DateTime.UtcNow.AddMinutes(5);
            string state;
            while ((state = await StateAsync(c3, id)) != "running" && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Equal("running", state);
            var machine = third.Services.GetRequiredService<VmHost>().Get(id).Machine!;
            Assert.True(machine.InstructionCount >= instructionsBefore, $"resumed at {machine.InstructionCount}, ran {instructionsBefore} before: a fresh boot would start from 0");
            Assert.False(File.Exists(Path.Combine(vmDir, "suspended.vmstate")));
            Assert.False(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)));
            await AssertShellAsync(c3, id, "again");
            Assert.Equal(HttpStatusCode.OK, (await c3.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        }
        finally
        {
            c3.Dispose();
            await third.DisposeAsync();
        }
    }

    /// <summary>
    /// The clean shutdown of a test host stops it twice at once (WebApplicationFactory's stop, and <c>app.Run()</c>
    /// in Program.cs waking on ApplicationStopping, which disposes the host when its own stop returns). Both must wait
    /// for the one suspend: before, the second went straight on to the shutdown power-off, which either stopped the VM
    /// before the suspend reached it ("Cannot suspend a VM that is stopped", nothing saved) or turned the freshly
    /// suspended VM into a stopped one. Three portal lives, no guest OS needed: each shutdown leaves the VM suspended —
    /// in the host, in the database and on disk — and the next start resumes it.
    /// </summary>
    [Fact]
    public async Task Every_clean_shutdown_suspends_the_running_vm_and_leaves_it_suspended()
    {
        Guid id = Guid.Empty;
        string vmDir = "";
        for (int life = 0; life < 3; life++)
        {
            var (portal, c) = Start();
            HostedVm hosted;
            try
            {
                await SignInAsync(c);
                c.DefaultRequestHeaders.Add("Prefer", "wait=300");
                if (life == 0)
                {
                    var created = await c.PostAsJsonAsync("/api/vms", new { name = "no-os", memoryMiB = 32 });
                    Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                    id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
                    vmDir = portal.Services.GetRequiredService<Core.Disks.VmDiskStore>().VmDirectory(id);
                    Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
                }
                var deadline = DateTime.UtcNow.AddMinutes(2);
                string state;
                while ((state = await StateAsync(c, id)) != "running" && DateTime.UtcNow < deadline) await Task.Delay(100);
                Assert.True(state == "running", $"life {life}: {state}");
                hosted = portal.Services.GetRequiredService<VmHost>().Get(id);
                Assert.NotNull(hosted.Machine);
            }
            finally
            {
                c.Dispose();
                await portal.DisposeAsync();
            }
            Assert.True(hosted.State == VmRunState.Suspended, $"life {life}: the shutdown left the VM {hosted.State} ({hosted.Lifecycle.StopReason})");
            Assert.True(File.Exists(Path.Combine(vmDir, "suspended.vmstate")), $"life {life}: nothing saved");
            Assert.True(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)), $"life {life}: not marked");
            await using var db = new PortalDbContext(new DbContextOptionsBuilder<PortalDbContext>().UseNpgsql(_connection).Options);
            var stored = await db.VirtualMachines.AsNoTracking().SingleAsync(v => v.Id == id);
            Assert.True(stored.State == VmState.Suspended, $"life {life}: stored {stored.State} ({stored.StateReason})");
            Assert.False(await db.AuditEvents.AnyAsync(e => e.TargetId == id.ToString() && e.Details == Runtime.VmRuntimeStartup.PortalShutDownReason),
                $"life {life}: the shutdown powered the VM off");
            if (life == 0)
            {
                // what a crash in the middle of a snapshot operation leaves: the next start removes it and says so
                await File.WriteAllTextAsync(Path.Combine(vmDir, "suspended.vmstate.tmp"), "half-written");
                await File.WriteAllTextAsync(Path.Combine(vmDir, $"snapshot-{Guid.NewGuid():N}.vmstate"), "never recorded");
            }
            else
            {
                Assert.False(File.Exists(Path.Combine(vmDir, "suspended.vmstate.tmp")));
                Assert.Empty(Directory.GetFiles(vmDir, "snapshot-*.vmstate"));
                var sweep = await db.AuditEvents.AsNoTracking().Where(e => e.Action == Core.Audit.AuditActions.SnapshotOrphansRemoved).ToListAsync();
                var e = Assert.Single(sweep); // the first restart only
                Assert.Equal(id.ToString(), e.TargetId);
                Assert.Contains("suspended.vmstate.tmp", e.Details);
                Assert.Contains("snapshot-", e.Details);
            }
        }
    }

    private sealed class Portal(string connectionString, string root) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.UseSetting("ConnectionStrings:Portal", connectionString);
            builder.UseSetting("VMPORTAL_ADMIN_PASSWORD", PortalAppFixture.AdminPassword);
            builder.UseSetting("Portal:DataDirectory", Path.Combine(root, "data"));
            builder.UseSetting("Images:BuiltInPath", Path.Combine(root, "cache"));
            builder.UseSetting("Images:StorePath", Path.Combine(root, "images"));
            foreach (var (k, v) in PortalAppFixture.RelaxedLimits) builder.UseSetting(k, v);
            builder.ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        }
    }
}

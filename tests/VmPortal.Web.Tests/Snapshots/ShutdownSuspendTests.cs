using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Core.Runtime;
using VmPortal.Data.Hosting;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Snapshots;

/// <summary>
/// A clean portal shutdown suspends a running VM (SeaBIOS on an empty disk: a cheap guest that really runs) and the
/// next portal on the same database and data directory resumes it: Suspended in between, the state file consumed,
/// the machine continuing from its instruction count rather than booting.
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
        return (f, new HttpClient { BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1").Replace("localhost", "127.0.0.1")), DefaultRequestHeaders = { { "Prefer", PortalAppFixture.HoldAnswers } } });
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

    [Fact]
    public async Task A_clean_shutdown_suspends_running_vms_and_the_next_start_resumes_them()
    {
        Assert.True(FirmwareFiles.FindBios() is not null, FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName));
        Guid id;
        long instructionsBefore;
        string vmDir;
        var (first, c1) = Start();
        try
        {
            await SignInAsync(c1);
            var created = await c1.PostAsJsonAsync("/api/vms", new { name = "keeps-running", memoryMiB = 32, disks = new[] { new { sizeMiB = 8 } }, bootOrder = new[] { "disk" } });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
            Assert.Equal(HttpStatusCode.OK, (await c1.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
            var wait = await c1.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "No bootable device", timeoutSeconds = 300, source = "screen" });
            Assert.Equal(HttpStatusCode.OK, wait.StatusCode);
            vmDir = first.Services.GetRequiredService<Core.Disks.VmDiskStore>().VmDirectory(id);
            instructionsBefore = first.Services.GetRequiredService<VmHost>().Get(id).Machine!.InstructionCount;
        }
        finally
        {
            c1.Dispose();
            await first.DisposeAsync(); // a clean shutdown
        }
        Assert.True(File.Exists(Path.Combine(vmDir, "suspended.vmstate")), "the shutdown saved the machine");
        Assert.True(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)));

        var (second, c2) = Start();
        try
        {
            await SignInAsync(c2);
            var deadline = DateTime.UtcNow.AddMinutes(3);
            string state;
            while ((state = await StateAsync(c2, id)) != "running" && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Equal("running", state);
            var machine = second.Services.GetRequiredService<VmHost>().Get(id).Machine!;
            Assert.True(machine.InstructionCount >= instructionsBefore, $"resumed at {machine.InstructionCount}, ran {instructionsBefore} before: a fresh boot would start from 0");
            Assert.False(File.Exists(Path.Combine(vmDir, "suspended.vmstate")));
            Assert.False(File.Exists(Path.Combine(vmDir, Runtime.ShutdownSuspender.ResumeMarker)));
            Assert.Contains("No bootable device", JsonNode.Parse(await c2.GetStringAsync($"/api/vms/{id}/console/text"))!["text"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.OK, (await c2.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        }
        finally
        {
            c2.Dispose();
            await second.DisposeAsync();
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

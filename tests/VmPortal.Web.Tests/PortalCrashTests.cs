using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Data.Hosting;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Web.Tests;

/// <summary>
/// Issue 10's crash test, against the portal itself: the portal runs as its own process (the built
/// <c>VmPortal.Web.dll</c>, as <c>./run.sh</c> runs it) on a throwaway PostgreSQL; a VM boots the built-in Linux ISO
/// with a qcow2 disk; the guest writes 4 MiB of random data to the disk and syncs (Linux's ata_piix sends FLUSH
/// CACHE); the portal is killed with SIGKILL. Then: <c>qemu-img check</c> finds the disk clean, the portal starts
/// again, marks the VM stopped with the reason, and the disk it serves for download holds the guest's data.
/// </summary>
[Trait("Category", "Boot")]
public sealed class PortalCrashTests : IAsyncLifetime
{
    private const string AdminPassword = "crash-test-admin-1";
    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"vmp-portal-crash-{Guid.NewGuid():N}")).FullName; // 0755: PostgreSQL runs as postgres
    private EmbeddedPostgres? _pg;
    private readonly StringBuilder _log = new();

    private static readonly TimeSpan Step = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_BOOT_TIMEOUT"), out var s) ? s : 300);

    public async Task InitializeAsync() =>
        _pg = await EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions { DataDirectory = Path.Combine(_root, "postgres"), Database = "portal" }, NullLogger.Instance);

    public async Task DisposeAsync()
    {
        if (_pg is not null) await _pg.StopAsync();
        try { Directory.Delete(_root, true); }
        catch (IOException) { }
    }

    [Fact]
    public async Task Data_the_guest_synced_survives_a_sigkill_of_the_portal()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");

        int port = FreePort();
        var portal = StartPortal(port);
        Guid id;
        string guestMd5;
        using var c = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(15) };
        // actions answer 202 + a task by default; hold the answer until the task has ended
        c.DefaultRequestHeaders.Add("Prefer", VmPortal.Tests.Infrastructure.PortalAppFixture.HoldAnswers);
        try
        {
            await WaitUntilServing(c, portal);
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(c));

            var images = JsonNode.Parse(await c.GetStringAsync("/api/images"))!.AsArray();
            var isoId = "builtin:" + VmPortal.Core.Images.ImageCatalog.Slug(GuestImages.RescueIso);
            Assert.Contains(images, i => i!["id"]!.GetValue<string>() == isoId);
            var created = await c.PostAsJsonAsync("/api/vms", new
            {
                name = "crash",
                memoryMiB = 128,
                cdromImageId = isoId,
                disks = new[] { new { sizeMiB = 64, bus = "ide" } },
                bootOrder = new[] { "cdrom" },
            });
            Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
            id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();

            var start = await c.PostAsync($"/api/vms/{id}/start", null);
            Assert.True(start.IsSuccessStatusCode, await start.Content.ReadAsStringAsync());
            await WaitScreen(c, id, "(?m)^/ #");
            // 4 MiB of random data at 1 MiB into the disk, written with fsync (→ FLUSH CACHE), then its digest
            var typed = await c.PostAsJsonAsync($"/api/vms/{id}/console/type", new
            {
                text = "vmportal-disks && dd if=/dev/urandom of=/tmp/pat bs=65536 count=64 2>/dev/null && " +
                       "dd if=/tmp/pat of=/dev/sda bs=65536 seek=16 conv=fsync 2>/dev/null && " +
                       "echo \"PAT-$(md5sum < /tmp/pat | cut -c1-32)-END\"\n",
            });
            Assert.True(typed.IsSuccessStatusCode, await typed.Content.ReadAsStringAsync());
            guestMd5 = (await WaitScreen(c, id, "PAT-[0-9a-f]{32}-END"))[4..36];

            portal.Kill(); // SIGKILL: nothing of the portal's runs after this
            await portal.WaitForExitAsync().WaitAsync(Step);
            Assert.Equal(137, portal.ExitCode); // 128 + SIGKILL
        }
        finally
        {
            if (!portal.HasExited) portal.Kill();
        }

        var disk = Assert.Single(Directory.GetFiles(Path.Combine(_root, "data", "disks"), "*.qcow2", SearchOption.AllDirectories));
        var check = Run("qemu-img", "check", disk);
        Assert.True(check.Code == 0, $"qemu-img check: exit {check.Code}\n{check.Output}");

        // the portal comes back, says why the VM stopped, and serves the disk with the guest's data in it
        var again = StartPortal(port);
        try
        {
            await WaitUntilServing(c, again);
            var vm = JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}"))!;
            Assert.Equal("stopped", vm["state"]!.GetValue<string>());
            Assert.Equal("the portal host stopped unexpectedly", vm["stateReason"]?.GetValue<string>());
            var raw = await c.GetByteArrayAsync($"/api/vms/{id}/disks/0?format=raw");
            Assert.Equal(64L << 20, raw.LongLength);
            Assert.Equal(guestMd5, Convert.ToHexStringLower(MD5.HashData(raw.AsSpan(1 << 20, 4 << 20))));
        }
        finally
        {
            // a clean stop (SIGTERM), so it does not leave a second "stopped unexpectedly" behind
            Run("kill", "-TERM", again.Id.ToString());
            if (!await Exited(again, TimeSpan.FromSeconds(60))) again.Kill();
        }
    }

    private Process StartPortal(int port)
    {
        var dll = WebDll();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = RepoRoot(), // as ./run.sh runs it: the build output serves the static web assets
        };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add($"http://127.0.0.1:{port}");
        psi.Environment["ConnectionStrings__Portal"] = _pg!.ConnectionString;
        psi.Environment["Portal__DataDirectory"] = Path.Combine(_root, "data");
        psi.Environment["Images__BuiltInPath"] = GuestImages.Directory;
        psi.Environment["VMPORTAL_ADMIN_PASSWORD"] = AdminPassword;
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>The portal's own build output (test.sh builds the solution first).</summary>
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "VmPortal.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return dir.FullName;
    }

    private static string WebDll()
    {
        var config = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        var dll = Path.Combine(RepoRoot(), "src", "VmPortal.Web", "bin", config, "net10.0", "VmPortal.Web.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
        return dll;
    }

    private async Task WaitUntilServing(HttpClient c, Process portal)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (portal.HasExited) Assert.Fail($"the portal exited ({portal.ExitCode}) while starting:\n{Tail()}");
            try
            {
                using var r = await c.GetAsync("/account/login");
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            if (sw.Elapsed > TimeSpan.FromMinutes(3)) Assert.Fail($"the portal did not answer in 3 minutes:\n{Tail()}");
            await Task.Delay(250);
        }
    }

    private static async Task<string> TokenAsync(HttpClient c)
    {
        var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = "admin", password = AdminPassword, name = "crash-test" });
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        return JsonNode.Parse(await r.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
    }

    private async Task<string> WaitScreen(HttpClient c, Guid id, string pattern)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var r = await c.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern, timeoutSeconds = 600, source = "screen" }); // the API's longest wait
            var body = await r.Content.ReadAsStringAsync();
            if (r.StatusCode == HttpStatusCode.OK) return JsonNode.Parse(body)!["match"]!.GetValue<string>();
            if (sw.Elapsed > Step || r.StatusCode != HttpStatusCode.RequestTimeout)
                Assert.Fail($"waiting for '{pattern}': {r.StatusCode} {body}\n{Tail()}");
        }
    }

    private string Tail()
    {
        lock (_log) return _log.Length > 4000 ? _log.ToString()[^4000..] : _log.ToString();
    }

    private static async Task<bool> Exited(Process p, TimeSpan timeout)
    {
        try { await p.WaitForExitAsync().WaitAsync(timeout); return true; }
        catch (TimeoutException) { return false; }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static (int Code, string Output) Run(string file, params string[] args) => VmDiskTests.Run(file, args);
}

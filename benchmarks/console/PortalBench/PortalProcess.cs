using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace VmPortal.Benchmarks.Console.PortalBench;

/// <summary>
/// The real portal (the Release build of src/VmPortal.Web, as ./run.sh starts it) in a child process with its own
/// data directory (and so its own private PostgreSQL cluster), on 127.0.0.1. Its processor time is read from
/// /proc, so the figures are the portal's alone, not the benchmark driver's or Chromium's.
/// </summary>
public sealed class PortalProcess : IAsyncDisposable
{
    public const string AdminPassword = "bench-admin-password";

    private readonly Process _process;
    public string DataDirectory { get; }
    public Uri BaseAddress { get; }
    public int Pid => _process.Id;

    private PortalProcess(Process process, string dataDirectory, Uri baseAddress)
    {
        _process = process;
        DataDirectory = dataDirectory;
        BaseAddress = baseAddress;
    }

    public static async Task<PortalProcess> StartAsync(string repoRoot, int port)
    {
        string dll = Path.Combine(repoRoot, "src", "VmPortal.Web", "bin", "Release", "net10.0", "VmPortal.Web.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} is missing: dotnet build src/VmPortal.Web -c Release");
        string data = Path.Combine(Path.GetTempPath(), "vmportal-portalbench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);
        var psi = new ProcessStartInfo("dotnet", [dll, "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = repoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["Portal__DataDirectory"] = data;
        psi.Environment["VMPORTAL_ADMIN_PASSWORD"] = AdminPassword;
        psi.Environment["Runtime__CapacityMiB"] = "8192";
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        psi.Environment.Remove("ConnectionStrings__Portal");
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start the portal");
        var log = Path.Combine(data, "portal.log");
        _ = PumpAsync(p.StandardOutput, log);
        _ = PumpAsync(p.StandardError, log);
        var portal = new PortalProcess(p, data, new Uri($"http://127.0.0.1:{port}/"));
        using var http = new HttpClient { BaseAddress = portal.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (p.HasExited) throw new InvalidOperationException($"the portal exited ({p.ExitCode}); see {log}");
            try { if ((await http.GetAsync("health/ready")).IsSuccessStatusCode) break; } catch (HttpRequestException) { } catch (TaskCanceledException) { }
            if (sw.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException($"the portal did not get ready; see {log}");
            await Task.Delay(500);
        }
        return portal;
    }

    private static readonly object LogLock = new();
    private static async Task PumpAsync(StreamReader reader, string path)
    {
        while (await reader.ReadLineAsync() is { } line)
            lock (LogLock) File.AppendAllText(path, line + "\n");
    }

    /// <summary>User + system processor time of the portal process (all threads: emulator, encoder, Kestrel).</summary>
    public TimeSpan CpuTime()
    {
        var stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(fields[11]) + long.Parse(fields[12]); // utime, stime (fields 14 and 15 of stat)
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
    }

    /// <summary>Percent of one core the portal used while <paramref name="during"/> ran.</summary>
    public async Task<double> CpuPercentAsync(TimeSpan window)
    {
        var c0 = CpuTime();
        var sw = Stopwatch.StartNew();
        await Task.Delay(window);
        return (CpuTime() - c0).TotalSeconds / sw.Elapsed.TotalSeconds * 100;
    }

    /// <summary>An API token for the seeded admin.</summary>
    public async Task<string> AdminTokenAsync()
    {
        using var http = new HttpClient { BaseAddress = BaseAddress };
        var r = await http.PostAsJsonAsync("api/auth/tokens", new { username = "admin", password = AdminPassword, name = "portalbench", expiresInDays = 1 });
        r.EnsureSuccessStatusCode();
        return JsonNode.Parse(await r.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM: the portal stops its VMs and its private PostgreSQL cluster on a graceful shutdown.
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) kill?.WaitForExit();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { _process.Kill(true); }
        }
        _process.Dispose();
        if (Environment.GetEnvironmentVariable("KEEP_DATA") is null)
        {
            try { Directory.Delete(DataDirectory, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

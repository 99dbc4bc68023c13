using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using VmPortal.Core.Console;

namespace VmPortal.Benchmarks.Console.PortalBench;

/// <summary>
/// Console figures of issue 5 measured on the real portal with the real emulator and the built-in Debian Linux guest:
/// keypress → changed pixels in Chromium (p50/p95), bytes per second on the wire for an idle shell, for
/// <c>ls -lR /</c> scrolling and (if the framebuffer image exists) a graphics mode, the portal's CPU with 1 and with
/// 20 viewers, and the portal's CPU with 10 idle VMs. Prints one "RESULT" line at the end.
///
///   dotnet run -c Release --project benchmarks/console/PortalBench [-- --seconds N] [--skip-browser] [--skip-idle]
/// </summary>
public static class Program
{
    private const string RescueIso = "builtin:debian-i386-rescue-iso";
    private const string FramebufferIso = "builtin:debian-i386-rescue-fb-iso";
    private static readonly Dictionary<string, string> Results = new();

    public static async Task<int> Main(string[] args)
    {
        int seconds = ArgInt(args, "--seconds", 10);
        bool browser = !args.Contains("--skip-browser");
        bool idle = !args.Contains("--skip-idle");
        string root = FindRepoRoot();
        int port = FreePort();
        Log($"starting the portal (Release build) on 127.0.0.1:{port}");
        await using var portal = await PortalProcess.StartAsync(root, port);
        await using var proxy = new CountingProxy(port);
        using var api = new HttpClient { BaseAddress = portal.BaseAddress, Timeout = TimeSpan.FromMinutes(12) };
        string token = await portal.AdminTokenAsync();
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        // actions (create, start, stop) are tasks answered 202 by default: hold the answers until they end
        api.DefaultRequestHeaders.Add("Prefer", "wait=300");
        Log($"portal ready (pid {portal.Pid}, data {portal.DataDirectory}); load average {LoadAverage()}");

        await Task.Delay(TimeSpan.FromSeconds(30)); // start-up work (JIT tiering, first requests) settles first
        Results["portal_idle_cpu_pct"] = $"{await portal.CpuPercentAsync(TimeSpan.FromSeconds(seconds)):F1}";
        Log($"portal with no VM running: {Results["portal_idle_cpu_pct"]} % of one core");

        // ---- the Linux guest at its shell prompt ----
        var images = JsonNode.Parse(await api.GetStringAsync("api/images"))!.AsArray().Select(i => i!["id"]!.GetValue<string>()).ToHashSet();
        if (!images.Contains(RescueIso)) throw new InvalidOperationException("the built-in Linux image is missing: scripts/build-guest-images.sh");
        var sw = Stopwatch.StartNew();
        Guid linux = await CreateAndBootAsync(api, "bench-linux", RescueIso);
        Results["linux_boot_to_prompt_s"] = $"{sw.Elapsed.TotalSeconds:F0}";
        Log($"Linux VM at its prompt after {sw.Elapsed.TotalSeconds:F0} s (start → '/ # ' on the screen)");

        // ---- bytes on the wire and server CPU, 1 viewer ----
        await using (var viewer = await ViewerAsync(proxy.Port, token, linux))
        {
            await Task.Delay(2000);
            await MeasureWireAsync("text_idle", proxy, portal, seconds, null);
            await MeasureWireAsync("text_ls_lR", proxy, portal, seconds, () => TypeAsync(api, linux, "ls -lR /\n"));
            await KeysAsync(api, linux, "ctrl", "c");
            await WaitScreenAsync(api, linux, @"(?m)^/ #\s*\z", 120);

            // ---- 20 viewers ----
            long frames0 = viewer.Frames;
            var more = new List<Viewer>();
            for (int i = 0; i < 19; i++) more.Add(await ViewerAsync(proxy.Port, token, linux));
            await Task.Delay(3000);
            await MeasureWireAsync("text_idle_20viewers", proxy, portal, seconds, null);
            await MeasureWireAsync("text_ls_lR_20viewers", proxy, portal, seconds, () => TypeAsync(api, linux, "ls -lR /\n"));
            await KeysAsync(api, linux, "ctrl", "c");
            await WaitScreenAsync(api, linux, @"(?m)^/ #\s*\z", 120);
            foreach (var v in more) await v.DisposeAsync();
            Log($"frames received by the first viewer meanwhile: {viewer.Frames - frames0}");
        }

        // ---- keypress → changed pixels in Chromium ----
        if (browser) await BrowserLatencyAsync(portal.BaseAddress, linux);

        // ---- a graphics mode: the same Linux on a 1024×768 framebuffer console (vesafb) ----
        if (images.Contains(FramebufferIso))
        {
            await PowerAsync(api, linux, "stop");
            Guid fb = await CreateAndBootAsync(api, "bench-linux-fb", FramebufferIso, source: "serial");
            await using (var viewer = await ViewerAsync(proxy.Port, token, fb))
            {
                await Task.Delay(2000);
                Log($"framebuffer console: {viewer.Width}×{viewer.Height}");
                Results["fb_mode"] = $"{viewer.Width}x{viewer.Height}";
                await MeasureWireAsync("fb_idle", proxy, portal, seconds, null);
                await MeasureWireAsync("fb_ls_lR", proxy, portal, seconds, () => TypeAsync(api, fb, "ls -lR /\n"));
                await KeysAsync(api, fb, "ctrl", "c");
            }
            await PowerAsync(api, fb, "stop");
        }
        else
        {
            Log($"{FramebufferIso} not in the catalog: graphics-mode figures skipped");
            await PowerAsync(api, linux, "stop");
        }

        // ---- 10 idle (halted) VMs ----
        if (idle)
        {
            // No boot media: SeaBIOS says "No bootable device" and halts (HLT with interrupts on) until its retry.
            var ids = new List<Guid>();
            for (int i = 0; i < 10; i++)
            {
                var r = await api.PostAsJsonAsync("api/vms", new { name = $"bench-idle-{i}-{Guid.NewGuid().ToString("N")[..6]}", memoryMiB = 32, bootOrder = new[] { "disk" } });
                if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"create idle VM: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
                var id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
                ids.Add(id);
                await PowerAsync(api, id, "start");
            }
            await Task.Delay(TimeSpan.FromSeconds(15));
            Results["idle_10vms_cpu_pct"] = $"{await portal.CpuPercentAsync(TimeSpan.FromSeconds(seconds)):F1}";
            Log($"portal with 10 idle (halted) VMs and no viewers: {Results["idle_10vms_cpu_pct"]} % of one core");
            foreach (var id in ids) await PowerAsync(api, id, "stop");
        }

        Log($"load average at the end {LoadAverage()}");
        System.Console.WriteLine("RESULT " + string.Join(" ", Results.Select(kv => $"{kv.Key}={kv.Value}")));
        return 0;
    }

    /// <summary>Creates and starts a VM and waits for its shell prompt: on the screen in text mode, on COM1 for the
    /// framebuffer guest (a graphics screen has no text).</summary>
    private static async Task<Guid> CreateAndBootAsync(HttpClient api, string name, string iso, string source = "screen")
    {
        var r = await api.PostAsJsonAsync("api/vms", new { name = $"{name}-{Guid.NewGuid().ToString("N")[..6]}", memoryMiB = 128, cdromImageId = iso, bootOrder = new[] { "cdrom" } });
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"create VM: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        var id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
        await PowerAsync(api, id, "start");
        await WaitScreenAsync(api, id, "VMPORTAL-GUEST-READY", 600, source);
        await WaitScreenAsync(api, id, "(?m)^/ #", 300, source);
        return id;
    }

    private static async Task PowerAsync(HttpClient api, Guid id, string action)
    {
        var r = await api.PostAsync($"api/vms/{id}/{action}", null);
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{action}: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    private static async Task WaitScreenAsync(HttpClient api, Guid id, string pattern, int timeoutSeconds, string source = "screen")
    {
        var r = await api.PostAsJsonAsync($"api/vms/{id}/console/wait", new { pattern, timeoutSeconds, source });
        if (r.StatusCode != HttpStatusCode.OK) throw new TimeoutException($"wait for '{pattern}': {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    private static async Task TypeAsync(HttpClient api, Guid id, string text) =>
        (await api.PostAsJsonAsync($"api/vms/{id}/console/type", new { text })).EnsureSuccessStatusCode();

    private static async Task KeysAsync(HttpClient api, Guid id, params string[] keys) =>
        (await api.PostAsJsonAsync($"api/vms/{id}/console/keys", new { keys })).EnsureSuccessStatusCode();

    private static async Task MeasureWireAsync(string name, CountingProxy proxy, PortalProcess portal, int seconds, Func<Task>? workload)
    {
        if (workload is not null) await workload();
        proxy.Reset();
        var c0 = portal.CpuTime();
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        double bytesPerSecond = proxy.DownstreamBytes / sw.Elapsed.TotalSeconds;
        double cpu = (portal.CpuTime() - c0).TotalSeconds / sw.Elapsed.TotalSeconds * 100;
        Results[$"{name}_Bps"] = $"{bytesPerSecond:F0}";
        Results[$"{name}_cpu_pct"] = $"{cpu:F1}";
        Log($"{name,-22} {bytesPerSecond,10:N0} B/s on the wire (all viewers)   portal CPU {cpu,5:F1} % of one core");
    }

    // ---- SignalR viewers (MessagePack, through the counting proxy) ----

    private sealed class Viewer(HubConnection connection) : IAsyncDisposable
    {
        private long _frames;
        public HubConnection Connection { get; } = connection;
        public long Frames => Interlocked.Read(ref _frames);
        public int Width { get; set; }
        public int Height { get; set; }
        public void Count(ConsoleFrame f) { Interlocked.Increment(ref _frames); if (f.Full) { Width = f.Width; Height = f.Height; } }
        public ValueTask DisposeAsync() => Connection.DisposeAsync();
    }

    private static async Task<Viewer> ViewerAsync(int port, string token, Guid vm)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl($"http://127.0.0.1:{port}/hubs/console", o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .AddMessagePackProtocol()
            .Build();
        var viewer = new Viewer(connection);
        connection.On<ConsoleFrame>(ConsoleMethods.Frame, viewer.Count);
        await connection.StartAsync();
        await connection.InvokeAsync<object?>("JoinConsole", vm.ToString(), null);
        return viewer;
    }

    // ---- Chromium: keypress → changed pixels ----

    private static async Task BrowserLatencyAsync(Uri baseAddress, Guid vm)
    {
        using var pw = await Playwright.CreateAsync();
        await using var browser = await pw.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var ctx = await browser.NewContextAsync(new() { BaseURL = baseAddress.ToString(), ViewportSize = new() { Width = 1100, Height = 800 } });
        var page = await ctx.NewPageAsync();
        await page.GotoAsync("account/login");
        await page.FillAsync("#userName", "admin");
        await page.FillAsync("#password", PortalProcess.AdminPassword);
        await page.ClickAsync("#sign-in");
        await page.WaitForURLAsync("**/vms");
        await page.GotoAsync($"vms/{vm}/console");
        await page.Locator("canvas.vmc-canvas[data-seq]").WaitForAsync(new() { Timeout = 30_000, State = WaitForSelectorState.Attached });
        await page.EvaluateAsync("""
            () => {
              const c = document.querySelector('canvas.vmc-canvas');
              window.__lat = []; window.__t0 = 0;
              window.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
              new MutationObserver(() => { if (window.__t0) { window.__lat.push(performance.now() - window.__t0); window.__t0 = 0; } })
                .observe(c, { attributes: true, attributeFilter: ['data-seq'] });
            }
            """);
        await page.ClickAsync("canvas.vmc-canvas");
        var rnd = new Random(1);
        const int keys = 100;
        for (int i = 0; i < keys; i++)
        {
            await page.Keyboard.PressAsync(i % 2 == 0 ? "KeyX" : "Backspace");
            await Task.Delay(150 + rnd.Next(100));
        }
        var lat = (await page.EvaluateAsync<double[]>("window.__lat")).Order().ToArray();
        if (lat.Length == 0) { Log("no keypress latency samples (no frame followed a key)"); return; }
        Results["key_latency_p50_ms"] = $"{Pct(lat, 50):F1}";
        Results["key_latency_p95_ms"] = $"{Pct(lat, 95):F1}";
        Results["key_latency_samples"] = $"{lat.Length}/{keys}";
        Log($"keypress → changed pixels in Chromium: p50 {Pct(lat, 50):F1} ms, p95 {Pct(lat, 95):F1} ms, max {lat[^1]:F1} ms ({lat.Length} of {keys} keys)");
    }

    private static double Pct(double[] sorted, int p) => sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Length) - 1, 0, sorted.Length - 1)];

    // ---- plumbing ----

    private static int ArgInt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VmPortal.sln"))) return d.FullName;
        throw new InvalidOperationException("run from inside the repository");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int p = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return p;
    }

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[..3] is var a ? string.Join(" ", a) : "";

    private static void Log(string s) => System.Console.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {s}");
}

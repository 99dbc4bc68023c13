using System.Diagnostics;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace VmPortal.Benchmarks.Console.DemoHost;

/// <summary>
/// Server CPU and wire bytes for 1 and 20 viewers of one console: the demo host runs as a child process (so its CPU is
/// measured alone, from /proc), viewers are .NET SignalR clients with MessagePack in this process.
/// Usage: --load-test [--seconds N]
/// </summary>
public static class LoadTest
{
    public sealed class TileDto { public int X { get; set; } public int Y { get; set; } public int W { get; set; } public int H { get; set; } public string Encoding { get; set; } = ""; public byte[] Bytes { get; set; } = []; }
    public sealed class FrameDto { public int Width { get; set; } public int Height { get; set; } public long Seq { get; set; } public bool Full { get; set; } public TileDto[] Tiles { get; set; } = []; }

    public static async Task<int> RunAsync(string[] args)
    {
        int seconds = int.TryParse(args.SkipWhile(a => a != "--seconds").Skip(1).FirstOrDefault(), out var s) ? s : 10;
        System.Console.WriteLine($"{seconds} s per scenario; 30 Hz ticks; {Environment.ProcessorCount} cores; load average at start {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        System.Console.WriteLine("| scenario | viewers | server CPU % of one core | frames/s per viewer | KB/s per viewer (tile payload) |");
        System.Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (scenario, viewers) in new[] { ("idle shell (cursor blink)", 1), ("idle shell (cursor blink)", 20), ("seq scrolling (10 lines/tick)", 1), ("seq scrolling (10 lines/tick)", 20) })
        {
            // A fresh server per scenario: the fake guest's seq keeps scrolling once started.
            int port = BrowserCheck.FreePort();
            string url = $"http://127.0.0.1:{port}";
            var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "DemoHost.dll"), "--urls", url])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var server = Process.Start(psi)!;
            try
            {
                await WaitUp(url);
                var conns = new List<(HubConnection C, long[] Stats)>();
                for (int i = 0; i < viewers; i++)
                {
                    var stats = new long[2];
                    var c = new HubConnectionBuilder().WithUrl(url + "/hubs/console").AddMessagePackProtocol().Build();
                    c.On<FrameDto>("Frame", f => { Interlocked.Increment(ref stats[0]); long b = 0; foreach (var t in f.Tiles) b += t.Bytes.Length; Interlocked.Add(ref stats[1], b); });
                    await c.StartAsync();
                    await c.InvokeAsync<object>("JoinConsole", "demo", null);
                    conns.Add((c, stats));
                }
                if (scenario.StartsWith("seq")) await conns[0].C.InvokeAsync("TypeText", "seq 1000000\n");
                await Task.Delay(2000); // settle: full frames sent, JIT warm, scrolling under way
                foreach (var (_, st) in conns) { Interlocked.Exchange(ref st[0], 0); Interlocked.Exchange(ref st[1], 0); }
                var cpu0 = CpuSeconds(server.Id);
                var sw = Stopwatch.StartNew();
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                double cpu = CpuSeconds(server.Id) - cpu0, el = sw.Elapsed.TotalSeconds;
                double fps = conns.Average(c => Interlocked.Read(ref c.Stats[0])) / el;
                double kbs = conns.Average(c => Interlocked.Read(ref c.Stats[1])) / el / 1024;
                System.Console.WriteLine($"| {scenario} | {viewers} | {cpu / el * 100:F1} | {fps:F1} | {kbs:F1} |");
                foreach (var (c, _) in conns) await c.DisposeAsync();
            }
            finally
            {
                if (!server.HasExited) { server.Kill(); await server.WaitForExitAsync(); }
            }
        }
        System.Console.WriteLine($"load average at end {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        return 0;
    }

    private static double CpuSeconds(int pid)
    {
        // /proc/<pid>/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[11]) + long.Parse(f[12])) / 100.0;
    }

    private static async Task WaitUp(string url)
    {
        using var http = new HttpClient();
        for (int i = 0; i < 100; i++)
        {
            try { if ((await http.GetAsync(url + "/favicon.ico")).IsSuccessStatusCode) return; } catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException("demo host did not start");
    }
}

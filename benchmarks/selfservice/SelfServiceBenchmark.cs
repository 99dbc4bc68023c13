using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Benchmarks.Console.PortalBench;

namespace VmPortal.Benchmarks.SelfService;

/// <summary>
/// Self-service figures through the real portal (the Release build of src/VmPortal.Web in its own process with its
/// private PostgreSQL, Kestrel on 127.0.0.1), driven over REST like a script:
/// <list type="number">
/// <item>request → provisioned VM from a template, on a 50 MiB and on a 2 GiB base image (both fully written raw
/// files): <c>POST /api/vms {name, templateId}</c> with <c>Prefer: wait=30</c> until the 201 (the task ran), and the
/// default 202 + following the task until it succeeded;</item>
/// <item>100 VMs listed with paging (<c>GET /api/vms?page=k&amp;pageSize=20</c>): p50/p95 of single requests;</item>
/// <item>50 concurrent clients reading (<c>GET /api/vms?pageSize=20</c> and <c>GET /api/vms/{id}</c>) for a fixed
/// time: requests/s, p50, p95, and every non-200 answer counted.</item>
/// </list>
/// Usage: <c>dotnet run -c Release --project benchmarks/selfservice -- [provisions] [seconds] [paging rounds]</c> (provisions 0: paging and
/// concurrency only; each paging round reads every page once, default 10)
/// (after <c>dotnet build src/VmPortal.Web -c Release</c>).
/// </summary>
public static class SelfServiceBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int provisions = args.Length > 0 ? int.Parse(args[0]) : 20;
        int seconds = args.Length > 1 ? int.Parse(args[1]) : 20;
        var repo = RepoRoot();
        var port = FreePort();
        System.Console.WriteLine($"starting the portal on 127.0.0.1:{port} (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}, {Environment.ProcessorCount} cores)");
        await using var portal = await PortalProcess.StartAsync(repo, port);
        using var admin = new HttpClient { BaseAddress = portal.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        // one unscoped admin token without a practical rate limit (the default is 600 requests a minute per token)
        var tokenAnswer = await admin.PostAsJsonAsync("api/auth/tokens", new
        {
            username = "admin", password = PortalProcess.AdminPassword, name = "selfservice-bench", expiresInDays = 1, rateLimitPerMinute = 100000,
        });
        tokenAnswer.EnsureSuccessStatusCode();
        var token = JsonNode.Parse(await tokenAnswer.Content.ReadAsStringAsync())!["token"]!.GetValue<string>();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        // base images in the portal's image store: fully written raw files (random data, so nothing is sparse)
        var store = Path.Combine(portal.DataDirectory, "images");
        Directory.CreateDirectory(store);
        var bases = new List<(string Label, string ImageId)>();
        // provisions = 0: only the paging and concurrency parts (no bases written, nothing provisioned)
        foreach (var (label, mib) in provisions == 0 ? [] : new[] { ("50 MiB", 50), ("2 GiB", 2048) })
        {
            var file = $"bench-base-{mib}.img";
            var sw0 = Stopwatch.StartNew();
            WriteRandom(Path.Combine(store, file), mib);
            System.Console.WriteLine($"  base {label}: written in {sw0.Elapsed.TotalSeconds:0.0} s");
            bases.Add((label, "upload:" + file));
        }

        System.Console.WriteLine();
        if (provisions > 0) System.Console.WriteLine($"1. request → provisioned VM from a template ({provisions} VMs per base, one after another)");
        foreach (var (label, imageId) in bases)
        {
            var t = await admin.PostAsJsonAsync("api/templates", new { name = $"bench-{label.Replace(" ", "")}", imageId, memoryMiB = 64 });
            if (t.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"template: {(int)t.StatusCode} {await t.Content.ReadAsStringAsync()}");
            var templateId = JsonNode.Parse(await t.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
            var held = new List<double>();
            var followed = new List<double>();
            for (int i = 0; i < provisions; i++)
            {
                // held answer: one request until the VM exists (201)
                using var req = new HttpRequestMessage(HttpMethod.Post, "api/vms") { Content = JsonContent.Create(new { name = $"p{label.Replace(" ", "")}-h{i}", templateId }) };
                req.Headers.Add("Prefer", "wait=30");
                var sw = Stopwatch.StartNew();
                var r = await admin.SendAsync(req);
                held.Add(sw.Elapsed.TotalMilliseconds);
                if (r.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"provision: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");

                // default answer: 202 + the task, followed until it succeeded
                sw.Restart();
                var a = await admin.PostAsJsonAsync("api/vms", new { name = $"p{label.Replace(" ", "")}-a{i}", templateId });
                if (a.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException($"provision: {(int)a.StatusCode}");
                var task = await admin.GetFromJsonAsync<JsonObject>($"{a.Headers.Location!.OriginalString.TrimStart('/')}?wait=30");
                followed.Add(sw.Elapsed.TotalMilliseconds);
                if (task!["status"]!.GetValue<string>() != "succeeded") throw new InvalidOperationException($"provision task: {task.ToJsonString()}");
            }
            System.Console.WriteLine($"  {label,-7} base, Prefer: wait (201):          {Summary(held)}");
            System.Console.WriteLine($"  {label,-7} base, 202 + GET task?wait:       {Summary(followed)}");
        }

        // 2. paging over 100+ VMs
        var total = JsonNode.Parse(await admin.GetStringAsync("api/vms?pageSize=1"))!["total"]!.GetValue<int>();
        for (int i = total; i < 100; i++)
            (await admin.PostAsJsonAsync("api/vms", new { name = $"list-{i}", memoryMiB = 32 })).EnsureSuccessStatusCode();
        // the 202 creates above finish in the background (slowly on a loaded host): wait for all of them
        for (var waited = 0; waited < 120; waited++)
        {
            total = JsonNode.Parse(await admin.GetStringAsync("api/vms?pageSize=1"))!["total"]!.GetValue<int>();
            if (total >= 100) break;
            await Task.Delay(500);
        }
        var pages = (total + 19) / 20;
        var pageTimes = new List<double>();
        int rounds = args.Length > 2 ? int.Parse(args[2]) : 10;
        for (int round = 0; round < rounds; round++)
            for (int page = 1; page <= pages; page++)
            {
                var sw = Stopwatch.StartNew();
                using var r = await admin.GetAsync($"api/vms?page={page}&pageSize=20&sort=name");
                await r.Content.ReadAsByteArrayAsync();
                pageTimes.Add(sw.Elapsed.TotalMilliseconds);
                r.EnsureSuccessStatusCode();
            }
        System.Console.WriteLine();
        System.Console.WriteLine($"2. {total} VMs listed with paging (pageSize 20, {pageTimes.Count} requests): {Summary(pageTimes)}");

        // 3. 50 concurrent clients
        var ids = JsonNode.Parse(await admin.GetStringAsync("api/vms?pageSize=100"))!["items"]!.AsArray().Select(v => v!["id"]!.GetValue<string>()).ToArray();
        var times = new System.Collections.Concurrent.ConcurrentBag<double>();
        int failures = 0;
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        using var shared = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = portal.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        shared.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var cpu0 = portal.CpuTime();
        var wall = Stopwatch.StartNew();
        var end = DateTime.UtcNow.AddSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, 50).Select(async client =>
        {
            var rnd = new Random(client);
            while (DateTime.UtcNow < end)
            {
                var path = rnd.Next(2) == 0 ? $"api/vms?page={rnd.Next(1, pages + 1)}&pageSize=20" : $"api/vms/{ids[rnd.Next(ids.Length)]}";
                var sw = Stopwatch.StartNew();
                try
                {
                    using var r = await shared.GetAsync(path);
                    await r.Content.ReadAsByteArrayAsync();
                    times.Add(sw.Elapsed.TotalMilliseconds);
                    statuses.AddOrUpdate((int)r.StatusCode, 1, (_, n) => n + 1);
                }
                catch (Exception) { Interlocked.Increment(ref failures); }
            }
        }));
        var elapsed = wall.Elapsed.TotalSeconds;
        var portalCpu = (portal.CpuTime() - cpu0).TotalSeconds / elapsed * 100;
        System.Console.WriteLine();
        System.Console.WriteLine($"3. 50 concurrent clients for {seconds} s (half list pages, half single VMs): {times.Count / elapsed:0} requests/s, {Summary(times.ToList())}");
        System.Console.WriteLine($"   answers: {string.Join(", ", statuses.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}×{kv.Value}"))}; transport failures {failures}; portal CPU {portalCpu:0}% of one core");
        return 0;
    }

    private static string Summary(List<double> ms)
    {
        ms.Sort();
        double P(double q) => ms[Math.Min(ms.Count - 1, (int)Math.Ceiling(q * ms.Count) - 1)];
        return $"p50 {P(0.50):0.0} ms, p95 {P(0.95):0.0} ms, max {ms[^1]:0.0} ms (n={ms.Count})";
    }

    private static void WriteRandom(string path, int mib)
    {
        var buf = new byte[1 << 20];
        var rnd = new Random(mib);
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        for (int i = 0; i < mib; i++)
        {
            rnd.NextBytes(buf);
            f.Write(buf);
        }
    }

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VmPortal.sln"))) return d.FullName;
        throw new InvalidOperationException("run from inside the repository");
    }
}

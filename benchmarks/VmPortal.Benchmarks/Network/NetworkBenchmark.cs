using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Network;

namespace VmPortal.Benchmarks.Network;

/// <summary>
/// Network throughput and latency with the rescue guest (e1000, busybox): two VMs on one switch with the user-mode
/// services (loopback policy). Ping round trip VM→VM and VM→gateway; 64 MiB VM→VM (busybox wget from the other VM's
/// httpd), host→guest (wget from a server on 127.0.0.1 through 10.0.2.2) and guest→host (dd | nc 10.0.2.2), timed
/// on the host. Usage: VmPortal.Benchmarks net [MiB]
/// </summary>
public static class NetworkBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int mib = args.Length > 1 && int.TryParse(args[1], out int m) ? m : 64;
        long bytes = (long)mib << 20;
        var lan = new VirtualSwitch("bench");
        using var services = new UserNetwork(lan);
        using var a = new Guest("a", "52:54:00:00:0c:01", lan.Connect("a"));
        using var b = new Guest("b", "52:54:00:00:0c:02", lan.Connect("b"));
        var boot = Stopwatch.StartNew();
        await Task.WhenAll(a.Boot(), b.Boot());
        Console.WriteLine($"both guests up in {boot.Elapsed.TotalSeconds:F0} s: a={a.Address} b={b.Address}");

        string ping = await b.Run($"ping -c 10 {a.Address}");
        Console.WriteLine($"ping VM→VM: {Regex.Match(ping, @"round-trip.*").Value.Trim()}  {Regex.Match(ping, @"\d+% packet loss").Value}");
        ping = await a.Run("ping -c 10 10.0.2.2");
        Console.WriteLine($"ping VM→gateway: {Regex.Match(ping, @"round-trip.*").Value.Trim()}");

        await a.Run($"dd if=/dev/zero of=/tmp/big bs=1M count={mib} 2>/dev/null; httpd -p 8080 -h /tmp");
        var sw = Stopwatch.StartNew();
        string got = await b.Run($"wget -q -O - http://{a.Address}:8080/big | wc -c");
        double s = sw.Elapsed.TotalSeconds;
        Report("VM→VM (wget from the other VM's httpd)", got.Contains(bytes.ToString()) ? bytes : -1, s);

        // host → guest
        var down = new TcpListener(IPAddress.Loopback, 0);
        down.Start();
        var serve = Task.Run(async () =>
        {
            using var c = await down.AcceptTcpClientAsync();
            var st = c.GetStream();
            var r = new StreamReader(st, Encoding.ASCII);
            while (!string.IsNullOrEmpty(await r.ReadLineAsync())) { }
            await st.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Length: {bytes}\r\n\r\n"));
            var chunk = new byte[65536];
            for (long sent = 0; sent < bytes; sent += chunk.Length) await st.WriteAsync(chunk);
        });
        sw.Restart();
        got = await a.Run($"wget -q -O - http://10.0.2.2:{((IPEndPoint)down.LocalEndpoint).Port}/ | wc -c");
        s = sw.Elapsed.TotalSeconds;
        await serve;
        down.Stop();
        Report("host→guest (NAT, wget from 127.0.0.1)", got.Contains(bytes.ToString()) ? bytes : -1, s);

        // guest → host
        var up = new TcpListener(IPAddress.Loopback, 0);
        up.Start();
        var sink = Task.Run(async () =>
        {
            using var c = await up.AcceptTcpClientAsync();
            var st = c.GetStream();
            var buf = new byte[65536];
            long total = 0;
            var t = Stopwatch.StartNew();
            int n;
            while (total < bytes && (n = await st.ReadAsync(buf)) > 0) total += n;
            return (total, t.Elapsed.TotalSeconds);
        });
        _ = a.Run($"dd if=/dev/zero bs=64k count={mib * 16} 2>/dev/null | nc 10.0.2.2 {((IPEndPoint)up.LocalEndpoint).Port}");
        var (total, secs) = await sink.WaitAsync(TimeSpan.FromMinutes(30));
        up.Stop();
        Report("guest→host (NAT, dd | nc to 127.0.0.1)", total, secs);
        var port = lan.Ports.Single(p => p.Name == "a").Counters;
        Console.WriteLine($"port a: in {port.FramesIn} frames, out {port.FramesOut}, dropped {port.Dropped}, errors {port.Errors}");
        return 0;
    }

    private static void Report(string what, long bytes, double seconds) =>
        Console.WriteLine(bytes < 0 ? $"{what}: FAILED (wrong byte count) after {seconds:F1} s"
            : $"{what}: {bytes >> 20} MiB in {seconds:F1} s = {bytes * 8 / seconds / 1e6:F1} Mbit/s");

    private sealed class Guest : IDisposable
    {
        private readonly Machine _machine;
        private readonly StringBuilder _serial = new();

        public Guest(string name, string mac, Emulator.Io.IFramePort port)
        {
            _machine = new Machine(new MachineConfig
            {
                Name = name,
                MemoryMiB = 256,
                KernelPath = GuestImages.PathOf(GuestImages.RescueKernel),
                InitrdPath = GuestImages.PathOf(GuestImages.RescueInitrd),
                KernelCommandLine = "console=ttyS0,115200",
                Nic = new NicConfig { MacAddress = mac, Port = port },
            });
            _machine.SerialOutput += x => { lock (_serial) _serial.Append(Encoding.Latin1.GetString(x)); };
        }

        public string Address { get; private set; } = "";

        private string Serial { get { lock (_serial) return _serial.ToString(); } }

        private async Task<Match> WaitFor(string pattern, int from)
        {
            var re = new Regex(pattern, RegexOptions.Multiline);
            for (var t = Stopwatch.StartNew(); t.Elapsed < TimeSpan.FromMinutes(30); await Task.Delay(20))
                if (re.Match(Serial, Math.Min(from, Serial.Length)) is { Success: true } m) return m;
            throw new TimeoutException($"/{pattern}/ did not appear");
        }

        public async Task Boot()
        {
            await _machine.Start();
            Address = (await WaitFor(@"VMPORTAL-NET-UP eth0 ([0-9.]+)", 0)).Groups[1].Value;
            await WaitFor(@"/ # ", 0);
        }

        public async Task<string> Run(string command)
        {
            int from = Serial.Length;
            string marker = $"END{Random.Shared.Next(100000, 999999)}";
            _machine.SendSerial(Encoding.ASCII.GetBytes($"{command}; echo {marker[..3]}''{marker[3..]}\r"));
            var m = await WaitFor($"^{marker}", from);
            return Serial[from..m.Index];
        }

        public void Dispose() => _machine.Dispose();
    }
}

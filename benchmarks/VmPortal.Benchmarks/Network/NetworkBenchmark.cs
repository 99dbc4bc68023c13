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
/// httpd), host→guest (wget from a server on 127.0.0.1 through 10.0.2.2) and guest→host twice: dd | nc 10.0.2.2
/// (busybox nc writes 1 KiB per system call) and the host fetching a file from the guest's httpd (sendfile) through a
/// port forward; timed on the host. --profile also names the guest kernel's hottest functions (from its
/// /proc/kallsyms) and prints the e1000's packets, TSO packets, interrupts and register accesses per MiB sent. The same with qemu-system-i386 -accel tcg, the same guest and card model (user-mode network for the
/// NAT figures, two QEMUs joined by -netdev socket on 127.0.0.1 with static addresses for VM↔VM).
/// Usage: VmPortal.Benchmarks net [MiB] [--qemu] [--only=vm|down|up] [--profile]
/// </summary>
public static class NetworkBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int mib = args.Length > 1 && int.TryParse(args[1], out int m) ? m : 64;
        bool qemu = args.Contains("--qemu");
        // --profile: sample guest a's instruction pointer during guest→host and name the kernel functions
        bool profile = args.Contains("--profile");
        // --only=vm|down|up: one transfer (down/up boot only guest a)
        string only = args.FirstOrDefault(x => x.StartsWith("--only="))?["--only=".Length..] ?? "all";
        bool Want(string what) => only == "all" || only == what;
        bool needB = qemu || Want("vm");
        long bytes = (long)mib << 20;
        var lan = new VirtualSwitch("bench");
        using var services = new UserNetwork(lan);
        // QEMU's VM-to-VM link: -netdev dgram, UDP datagrams between two ports on 127.0.0.1 (either side may start first).
        int FreeUdpPort() { using var u = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)); return ((IPEndPoint)u.Client.LocalEndPoint!).Port; }
        int pa = qemu ? FreeUdpPort() : 0, pb = qemu ? FreeUdpPort() : 0;
        // QEMU's port forward for the guest→host sendfile line: slirp's hostfwd to guest a's httpd (port 8081)
        int FreeTcpPort() { var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); int p = ((IPEndPoint)l.LocalEndpoint).Port; l.Stop(); return p; }
        _qemuForwardPort = qemu ? FreeTcpPort() : 0;
        string Dgram(int local, int remote) => $"-netdev dgram,id=s,local.type=inet,local.host=127.0.0.1,local.port={local},remote.type=inet,remote.host=127.0.0.1,remote.port={remote}";
        using IGuest a = qemu ? new QemuGuest("52:54:00:00:0c:01", $"-nic user,model=e1000,mac=52:54:00:00:0c:01,hostfwd=tcp:127.0.0.1:{_qemuForwardPort}-:8081 {Dgram(pa, pb)} -device e1000,netdev=s,mac=52:54:00:00:0d:01", "10.9.0.1")
            : new Guest("a", "52:54:00:00:0c:01", lan.Connect("a"));
        using IGuest? second = !needB ? null : qemu ? new QemuGuest("52:54:00:00:0c:02", $"-nic none {Dgram(pb, pa)} -device e1000,netdev=s,mac=52:54:00:00:0d:02", "10.9.0.2")
            : new Guest("b", "52:54:00:00:0c:02", lan.Connect("b"));
        IGuest b = second ?? a;
        (_ga, _gb, _qemu) = (a, b, qemu);
        var boot = Stopwatch.StartNew();
        await Task.WhenAll(second != null ? new[] { a.Boot(), b.Boot() } : new[] { a.Boot() });
        if (qemu) { a.Address = "10.9.0.1"; }
        Console.WriteLine($"guests up in {boot.Elapsed.TotalSeconds:F0} s: a={a.Address}" + (second != null ? $" b={b.Address}" : ""));

        if (Want("vm")) await VmToVm(a, b, mib, bytes);
        if (Want("down")) await HostToGuest(a, bytes);
        if (Want("up")) await GuestToHost(a, lan, services, mib, bytes, qemu, profile);
        return 0;
    }

    private static async Task VmToVm(IGuest a, IGuest b, int mib, long bytes)
    {
        string ping = await b.Run($"ping -c 10 {a.Address}");
        Console.WriteLine($"ping VM→VM: {Regex.Match(ping, @"round-trip.*").Value.Trim()}  {Regex.Match(ping, @"\d+% packet loss").Value}");
        ping = await a.Run("ping -c 10 10.0.2.2");
        Console.WriteLine($"ping VM→gateway: {Regex.Match(ping, @"round-trip.*").Value.Trim()}");

        await a.Run($"dd if=/dev/zero of=/tmp/big bs=1M count={mib} 2>/dev/null; httpd -p 8080 -h /tmp");
        var sw = Stopwatch.StartNew();
        Mark();
        string got = await b.Run($"wget -q -O /tmp/got http://{a.Address}:8080/big; {Sink}");
        double s = sw.Elapsed.TotalSeconds;
        Report("VM→VM (wget from the other VM's httpd)", got.Contains(bytes.ToString()) ? bytes : -1, s);
        // a's RAM holds the served file; the download below goes to a's RAM too (64 MiB each of 256 MiB: wget was
        // killed for memory with both, and the host saw a reset)
        await a.Run("rm /tmp/big");
    }

    private static async Task HostToGuest(IGuest a, long bytes)
    {

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
        var sw = Stopwatch.StartNew();
        Mark();
        string got = await a.Run($"wget -q -O /tmp/got http://10.0.2.2:{((IPEndPoint)down.LocalEndpoint).Port}/; {Sink}");
        double s = sw.Elapsed.TotalSeconds;
        await serve;
        down.Stop();
        Report("host→guest (NAT, wget from 127.0.0.1)", got.Contains(bytes.ToString()) ? bytes : -1, s);
    }

    private static async Task GuestToHost(IGuest a, VirtualSwitch lan, UserNetwork services, int mib, long bytes, bool qemu, bool profile)
    {
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
        Mark();
        var nat0 = services.Counters;
        string? kallsyms = profile && a is Guest ? await FetchAsync(a, "/proc/kallsyms") : null;
        if (kallsyms != null) Mark();
        using var profiler = profile && a is Guest ga ? new GuestProfiler(ga.Machine, kallsyms) : null;
        string send = $"dd if=/dev/zero bs=64k count={mib * 16} 2>/dev/null | nc 10.0.2.2 {((IPEndPoint)up.LocalEndpoint).Port}";
        Task sending;
        if (profiler != null)
        {
            // in the background, so that the shell can read the sender's syscall counts (/proc/PID/io) half way
            await a.Run($"({send}) >/dev/null 2>&1 & true");
            await Task.Delay(TimeSpan.FromSeconds(4));
            Console.WriteLine("nc half way (/proc/PID/io): " + string.Join(" ", (await a.Run("cat /proc/$(pidof nc)/io")).Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("sysc") || l.EndsWith("char:") || l.Contains("char: "))));
            sending = Task.CompletedTask;
        }
        else sending = a.Run(send);
        var (total, secs) = await sink.WaitAsync(TimeSpan.FromMinutes(30));
        await sending.WaitAsync(TimeSpan.FromMinutes(2)); // nc ends once the host closed: the shell is free again
        profiler?.Stop();
        up.Stop();
        Report("guest→host (NAT, dd | nc to 127.0.0.1)", total, secs);
        if (!qemu)
        {
            var nat = services.Counters;
            Console.WriteLine($"NAT during guest→host: segments from the guest out of order {nat.TcpOutOfOrder - nat0.TcpOutOfOrder}, " +
                $"resent by the guest {nat.TcpDuplicates - nat0.TcpDuplicates}, fast retransmits to guests {nat.TcpFastRetransmits - nat0.TcpFastRetransmits}");
            foreach (var p in lan.Ports)
            {
                var port = p.Counters;
                Console.WriteLine($"port {p.Name}: in {port.FramesIn} frames, out {port.FramesOut}, dropped {port.Dropped}, errors {port.Errors}");
            }
            profiler?.Print(Console.Out);
            await GuestToHostForwarded(a, services, mib, bytes, kallsyms);
        }
        else await GuestToHostForwarded(a, null, mib, bytes, null);
    }

    private static int _qemuForwardPort;

    /// <summary>
    /// Guest→host again, with a sender that writes big chunks: the host fetches a file from the guest's busybox httpd
    /// (which uses sendfile) through a port forward on 127.0.0.1 — the same NAT connection code and direction as
    /// dd | nc, whose busybox nc writes 1 KiB per system call (a poll, a read and a write per KiB, each write sent as
    /// its own packet with its own interrupt: that, not the card, is where its guest instructions per byte go).
    /// </summary>
    private static async Task GuestToHostForwarded(IGuest a, UserNetwork? services, int mib, long bytes, string? kallsyms)
    {
        // ours: a forward added to the NAT now; QEMU (services null): the hostfwd given on its command line
        int hostPort = services?.AddPortForward(new PortForward("127.0.0.1", 0, 8081, GuestAddress: a.Address)) ?? _qemuForwardPort;
        await a.Run($"dd if=/dev/zero of=/tmp/up bs=1M count={mib} 2>/dev/null; httpd -p 8081 -h /tmp");
        Mark();
        using var profiler = kallsyms != null && a is Guest ga ? new GuestProfiler(ga.Machine, kallsyms) : null;
        var sw = Stopwatch.StartNew();
        long total = 0;
        using (var c = new TcpClient())
        {
            await c.ConnectAsync(IPAddress.Loopback, hostPort);
            var st = c.GetStream();
            await st.WriteAsync(Encoding.ASCII.GetBytes("GET /up HTTP/1.0\r\n\r\n"));
            var buf = new byte[65536];
            var head = new List<byte>();
            bool body = false;
            int n;
            while ((n = await st.ReadAsync(buf).AsTask().WaitAsync(TimeSpan.FromMinutes(10))) > 0)
            {
                if (body) { total += n; continue; }
                head.AddRange(buf.AsSpan(0, n).ToArray());
                int end = Encoding.ASCII.GetString(head.ToArray()).IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end < 0) continue;
                body = true;
                total += head.Count - end - 4;
            }
        }
        double secs = sw.Elapsed.TotalSeconds;
        profiler?.Stop();
        Report("guest→host (port forward: host GET from the guest's httpd, sendfile)", total == bytes ? bytes : -1, secs);
        profiler?.Print(Console.Out);
        services?.RemovePortForward("127.0.0.1", hostPort);
        await a.Run("rm /tmp/up");
    }

    /// <summary>A guest file sent to the host through the NAT (<c>nc 10.0.2.2 PORT &lt; file</c>); ends when 20 s pass without data.</summary>
    private static async Task<string> FetchAsync(IGuest g, string path)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var receive = Task.Run(async () =>
        {
            using var c = await l.AcceptTcpClientAsync();
            var st = c.GetStream();
            var all = new MemoryStream();
            var buf = new byte[65536];
            while (true)
            {
                var read = st.ReadAsync(buf).AsTask();
                if (await Task.WhenAny(read, Task.Delay(20_000)) != read) break;
                int n = await read;
                if (n == 0) break;
                all.Write(buf, 0, n);
            }
            return Encoding.ASCII.GetString(all.ToArray());
        });
        var sending = g.Run($"nc 10.0.2.2 {((IPEndPoint)l.LocalEndpoint).Port} < {path}");
        string text = await receive.WaitAsync(TimeSpan.FromMinutes(10));
        l.Stop();
        await sending.WaitAsync(TimeSpan.FromMinutes(2));
        Console.WriteLine($"{path}: {text.Length} bytes from the guest");
        return text;
    }

    private static IGuest? _ga, _gb;
    private static bool _qemu;

    private static void Mark()
    {
        IGuest a = _ga!, b = _gb!;
        _marks = (a.Instructions, b.Instructions, Process.GetCurrentProcess().TotalProcessorTime, Stopwatch.GetTimestamp());
        }
    private static void Report(string what, long bytes, double seconds)
    {
        IGuest a = _ga!, b = _gb!;
        bool qemu = _qemu;
        var (ia, ib, cpu, t0) = _marks;
            double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            // where the time goes: guest instructions per second (a CPU-bound guest runs at the interpreter's full
            // speed; a low figure means it waits: halted in its idle loop for frames, interrupts or ACKs)
            string load = qemu ? "" : $"  [guest a {(a.Instructions - ia) / wall / 1e6:F0} MIPS, b {(b.Instructions - ib) / wall / 1e6:F0} MIPS, " +
                $"process CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / wall * 100:F0} %]";
            Console.WriteLine(bytes < 0 ? $"{what}: FAILED (wrong byte count) after {seconds:F1} s"
                : $"{what}: {bytes >> 20} MiB in {seconds:F1} s = {bytes * 8 / seconds / 1e6:F1} Mbit/s{load}");
        }

    private static (long A, long B, TimeSpan Cpu, long At) _marks;

    /// <summary>
    /// The received bytes go to a file in the guest's RAM (wget writes 4 KiB blocks) whose size is printed. Before,
    /// they went through a pipe into busybox <c>wc -c</c>, which reads one getc() per byte — about 45 guest
    /// instructions per byte, so the receiving guest's CPU, not the network, was the limit.
    /// </summary>
    private const string Sink = "ls -l /tmp/got; rm /tmp/got";

    private interface IGuest : IDisposable
    {
        long Instructions { get; }
        string Address { get; set; }
        Task Boot();
        Task<string> Run(string command);
    }

    /// <summary>The same guest under qemu-system-i386 (TCG), serial on stdin/stdout; a second e1000 (eth1) on the socket link.</summary>
    private sealed class QemuGuest : IGuest
    {
        private readonly Process _p;
        private readonly StringBuilder _serial = new();
        private readonly string _linkAddress;

        public QemuGuest(string mac, string nics, string linkAddress)
        {
            _linkAddress = linkAddress;
            var psi = new ProcessStartInfo("qemu-system-i386",
                $"-accel tcg -m 256 -display none -monitor none -serial stdio -no-reboot -kernel {GuestImages.PathOf(GuestImages.RescueKernel)} " +
                $"-initrd {GuestImages.PathOf(GuestImages.RescueInitrd)} -append console=ttyS0,115200 {nics}")
            { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            _p = Process.Start(psi)!;
            _ = Task.Run(async () =>
            {
                var buf = new char[4096];
                int n;
                while ((n = await _p.StandardOutput.ReadAsync(buf)) > 0) lock (_serial) _serial.Append(buf, 0, n);
            });
        }

        public string Address { get; set; } = "";
        public long Instructions => 0;
        private string Serial { get { lock (_serial) return _serial.ToString(); } }

        public async Task Boot()
        {
            await Wait(@"/ # ", 0);
            // eth1 is the VM-to-VM link (no DHCP there): a static address.
            await Run($"d=eth1; [ -e /sys/class/net/eth1 ] || d=eth0; ip link set $d up; ip addr add {_linkAddress}/24 dev $d");
            Address = _linkAddress;
        }

        private async Task<Match> Wait(string pattern, int from)
        {
            var re = new Regex(pattern, RegexOptions.Multiline);
            for (var t = Stopwatch.StartNew(); t.Elapsed < TimeSpan.FromMinutes(30); await Task.Delay(20))
                if (re.Match(Serial, Math.Min(from, Serial.Length)) is { Success: true } m) return m;
            throw new TimeoutException($"/{pattern}/ did not appear");
        }

        public async Task<string> Run(string command)
        {
            int from = Serial.Length;
            string marker = $"END{Random.Shared.Next(100000, 999999)}";
            await _p.StandardInput.WriteAsync($"{command}; echo {marker[..3]}''{marker[3..]}\r");
            await _p.StandardInput.FlushAsync();
            var m = await Wait($"^{marker}", from);
            return Serial[from..m.Index];
        }

        public void Dispose()
        {
            try { _p.Kill(); } catch (Exception) { }
            _p.Dispose();
        }
    }

    private sealed class Guest : IGuest
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

        public string Address { get; set; } = "";
        public long Instructions => _machine.InstructionCount;
        public Machine Machine => _machine;

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
            Address = (await WaitFor(@"VMPORTAL-NET-UP eth0 ([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)\s", 0)).Groups[1].Value;
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

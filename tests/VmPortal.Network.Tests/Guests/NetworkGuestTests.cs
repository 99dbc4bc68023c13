using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Boot;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Network.Tests;

/// <summary>
/// Two rescue guests (Debian's i386 kernel with its e1000 module, busybox) on one switch with the network services,
/// one boot each, shared by every assertion: DHCP leases, ping between them, NAT to an HTTP server on the host's
/// loopback through 10.0.2.2, DNS from /etc/hosts, UDP through the NAT (busybox nslookup asking a DNS server the test
/// runs on the host's loopback; a closed port answered with ICMP port unreachable), the loopback policy refusing other
/// addresses (TCP and UDP), a port forward to a guest's httpd, the cable pulled and plugged in again while the guest
/// runs (its driver reports the link), and finally the second guest re-plugged into another switch, from where the
/// first is unreachable.
/// </summary>
public class NetworkGuestTests
{
    private const uint Linux = TestGuests.CpuidFpu | TestGuests.CpuidCx8 | TestGuests.CpuidCmov;

    [BootFact(Linux, "Linux", GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task TwoGuestsShareASwitchReachTheHostThroughTheNatAndNothingElse()
    {
        var lan = new VirtualSwitch("lan");
        using var services = new UserNetwork(lan);
        var elsewhere = new VirtualSwitch("elsewhere");
        using var elsewhereServices = new UserNetwork(elsewhere);
        var cableB = new PatchCable(lan.Connect("b"));
        using var a = new GuestVm("net-a", "52:54:00:00:0a:01", lan.Connect("a"));
        using var b = new GuestVm("net-b", "52:54:00:00:0a:02", cableB);
        await Task.WhenAll(a.BootAsync(), b.BootAsync());

        // DHCP: both bound, distinct addresses from 10.0.2.15 on, shown in the lease table.
        Assert.Matches(@"^10\.0\.2\.(1[5-9])$", a.Address);
        Assert.Matches(@"^10\.0\.2\.(1[5-9])$", b.Address);
        Assert.NotEqual(a.Address, b.Address);
        Assert.Contains(services.Leases, l => l.Bound && l.MacAddress == a.Mac && l.Address == a.Address);
        Assert.Contains(services.Leases, l => l.Bound && l.MacAddress == b.Mac && l.Address == b.Address);

        // Guest to guest.
        string ping = await b.RunToEnd($"ping -c 3 {a.Address}");
        Assert.Contains("3 packets transmitted, 3 packets received, 0% packet loss", ping);

        // NAT: the gateway is the host's loopback.
        string content = $"vmportal-nat-{Guid.NewGuid():N}";
        using var http = new TinyHttpServer(content);
        string page = await a.RunToEnd($"wget -q -O - http://10.0.2.2:{http.Port}/page.txt");
        Assert.Contains(content, page);
        Assert.Equal("/page.txt", http.LastPath);
        Assert.Contains("0% packet loss", await a.RunToEnd("ping -c 1 10.0.2.2"));
        // A ping larger than one frame: the guest's kernel fragments it, the NAT reassembles it and answers in fragments.
        long reassembledBefore = services.Counters.IpReassembled;
        string bigPing = await a.RunToEnd("ping -c 2 -s 4000 10.0.2.2");
        Assert.Contains("4008 bytes from 10.0.2.2", bigPing);
        Assert.Contains("0% packet loss", bigPing);
        Assert.True(services.Counters.IpReassembled >= reassembledBefore + 2, bigPing);

        // DNS: a name of the host's /etc/hosts resolves (to the gateway, the guest's way to the host's loopback).
        string name = DnsResponder.LoopbackNames("/etc/hosts").OrderBy(n => n == "localhost" ? 0 : 1).First();
        string lookup = await a.RunToEnd($"nslookup {name} 10.0.2.3");
        Assert.Matches(new Regex($@"Name:\s+{Regex.Escape(name)}\S*\s*\r?\nAddress:\s+10\.0\.2\.2"), lookup);

        // UDP through the NAT: nslookup asks a DNS server on the host's 127.0.0.1:<port> by way of 10.0.2.2:<port>; its
        // answer (an address no other server would give) comes back through the flow's host socket.
        string hosts = Path.GetTempFileName();
        File.WriteAllText(hosts, "127.0.0.1 vmportal-udp-probe\n");
        try
        {
            using var udpDns = new TinyUdpDns(new NetworkOptions { Gateway = 0x0A0B_0C0D, HostsFile = hosts });
            string udp = await a.RunToEnd($"nslookup -port={udpDns.Port} vmportal-udp-probe 10.0.2.2");
            Assert.Matches(new Regex(@"Name:\s+vmportal-udp-probe\S*\s*
?
Address:\s+10\.11\.12\.13"), udp);
            Assert.True(udpDns.Queries > 0);
            Assert.True(services.Counters.UdpFlows > 0);
        }
        finally { File.Delete(hosts); }
        long unreachableBefore = services.Counters.UdpPortUnreachable;
        int closedUdp;
        using (var u = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0))) closedUdp = ((IPEndPoint)u.Client.LocalEndPoint!).Port;
        string noServer = await a.RunToEnd($"nslookup -port={closedUdp} vmportal-udp-probe 10.0.2.2 2>&1");
        Assert.DoesNotContain("10.11.12.13", noServer);
        Assert.True(services.Counters.UdpPortUnreachable > unreachableBefore, noServer);

        // Loopback policy: any other address is refused inside the NAT and counted.
        long refusedBefore = services.Counters.RefusedByPolicy;
        // (not -q: it hides the error; not -T: busybox 1.35's wget segfaults after a refusal with -T 5, under QEMU too)
        string refused = await a.RunToEnd("wget -O /dev/null http://192.0.2.1/ 2>&1; echo rc=$?");
        Assert.True(refused.Contains("Connection refused") && refused.Contains("rc=1"), refused);
        Assert.True(services.Counters.RefusedByPolicy > refusedBefore);
        refusedBefore = services.Counters.RefusedByPolicy;
        long flowsBefore = services.Counters.UdpFlows;
        string udpRefused = await a.RunToEnd("nslookup vmportal-udp-probe 192.0.2.1 2>&1", timeout: TimeSpan.FromSeconds(120));
        Assert.True(services.Counters.RefusedByPolicy > refusedBefore, udpRefused);
        Assert.Equal(flowsBefore, services.Counters.UdpFlows); // no host socket for it

        // Port forward: host 127.0.0.1:<free port> → guest A's busybox httpd on port 8080.
        await a.RunToEnd("mkdir -p /www && echo hello-from-the-guest > /www/index.html && httpd -p 8080 -h /www");
        int port = services.AddPortForward(new PortForward("127.0.0.1", 0, 8080, GuestMac: a.Mac));
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(30));
            var stream = client.GetStream();
            await stream.WriteAsync("GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray());
            string response = await new StreamReader(stream).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.StartsWith("HTTP/1.", response);
            Assert.Contains("hello-from-the-guest", response);
        }

        // The cable pulled while A runs: its e1000 driver sees the link go down, and up again when it is plugged in.
        int serialFrom = a.Harness.Serial.Length;
        a.Harness.Machine.SetNicLink(false);
        await a.Harness.WaitFor(@"e1000: eth0 NIC Link is Down", screen: false, serialFrom: serialFrom);
        Assert.False(a.Harness.Machine.NicLinkUp);
        a.Harness.Machine.SetNicLink(true);
        await a.Harness.WaitFor(@"e1000: eth0 NIC Link is Up", screen: false, serialFrom: serialFrom);
        Assert.Contains("0% packet loss", await a.RunToEnd("ping -c 1 10.0.2.2"));

        // Another network: B's cable moves to a different switch; A is unreachable from there.
        cableB.Plug(elsewhere.Connect("b"));
        string lost = await b.RunToEnd($"ping -c 3 -W 1 {a.Address}", timeout: TimeSpan.FromSeconds(120));
        Assert.Contains("100% packet loss", lost);

        var portA = lan.Ports.Single(p => p.Name == "a");
        Assert.True(portA.Counters.FramesIn > 10 && portA.Counters.FramesOut > 10);
        Assert.Equal(0, portA.Counters.Errors);
    }

    /// <summary>A DNS server on 127.0.0.1 (UDP) answering from a hosts file with <see cref="DnsResponder"/>.</summary>
    private sealed class TinyUdpDns : IDisposable
    {
        private readonly UdpClient _socket = new(new IPEndPoint(IPAddress.Loopback, 0));
        private int _queries;

        public TinyUdpDns(NetworkOptions options)
        {
            var responder = new DnsResponder(options);
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    UdpReceiveResult q;
                    try { q = await _socket.ReceiveAsync(); }
                    catch (Exception) { return; }
                    Interlocked.Increment(ref _queries);
                    if (await responder.AnswerAsync(q.Buffer) is { } answer) await _socket.SendAsync(answer, q.RemoteEndPoint);
                }
            });
        }

        public int Port => ((IPEndPoint)_socket.Client.LocalEndPoint!).Port;
        public int Queries => Volatile.Read(ref _queries);
        public void Dispose() => _socket.Dispose();
    }

    /// <summary>An HTTP/1.0 server on 127.0.0.1 answering every GET with one text.</summary>
    private sealed class TinyHttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public TinyHttpServer(string content)
        {
            _listener.Start();
            _ = ServeAsync(content);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public string? LastPath { get; private set; }

        private async Task ServeAsync(string content)
        {
            while (true)
            {
                TcpClient c;
                try { c = await _listener.AcceptTcpClientAsync(); }
                catch (Exception) { return; }
                using (c)
                {
                    var s = c.GetStream();
                    var reader = new StreamReader(s, Encoding.ASCII);
                    string? request = await reader.ReadLineAsync();
                    LastPath = request?.Split(' ').ElementAtOrDefault(1);
                    while (!string.IsNullOrEmpty(await reader.ReadLineAsync())) { }
                    var body = Encoding.ASCII.GetBytes(content + "\n");
                    await s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\n\r\n"));
                    await s.WriteAsync(body);
                }
            }
        }

        public void Dispose() => _listener.Stop();
    }
}

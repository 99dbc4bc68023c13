using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Networks;
using VmPortal.Network;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>
/// Networks as admin-managed objects through the REST API on the real portal (Kestrel + PostgreSQL): create, read,
/// replace, delete; bad subnets and overlaps (400), names taken and networks in use (409), the built-in
/// <c>default</c> fixed; users may list networks but neither manage them nor see other users' leases and ports;
/// per-VM port forwards validated at save and listening on the host only while the VM runs.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class NetworkAdminTests(PortalAppFixture app) : ApiTestBase(app)
{
    /// <summary>A /24 in 10.128.0.0/9 that no other test of this run picks (tests share one portal).</summary>
    private static string FreeSubnet() => $"10.{128 + Random.Shared.Next(0, 127)}.{Random.Shared.Next(0, 255)}.0/24";

    private async Task<(string Name, string Subnet)> CreateNetworkAsync(HttpClient admin, string mode = "nat")
    {
        for (int attempt = 0; ; attempt++)
        {
            var name = Unique("net");
            var subnet = FreeSubnet();
            var r = await admin.PostAsJsonAsync("/api/networks", new { name, mode, subnet, dhcp = true, outbound = "loopback" });
            if (r.StatusCode == HttpStatusCode.Created) return (name, subnet);
            Assert.True(attempt < 5 && r.StatusCode == HttpStatusCode.BadRequest, await r.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task An_admin_creates_reads_replaces_and_deletes_a_network()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var name = Unique("lab");
        var subnet = FreeSubnet();
        var r = await c.PostAsJsonAsync("/api/networks", new { name, mode = "nat", subnet, dhcp = true, outbound = "loopback" });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        Assert.EndsWith($"/api/networks/{name}", r.Headers.Location!.ToString());
        var n = await JsonAsync(r);
        var prefix = subnet[..subnet.LastIndexOf('.')];
        Assert.Equal(subnet, n["subnet"]!.GetValue<string>());
        Assert.Equal($"{prefix}.2", n["gateway"]!.GetValue<string>());
        Assert.Equal($"{prefix}.3", n["dns"]!.GetValue<string>());
        Assert.Equal($"{prefix}.15", n["dhcpStart"]!.GetValue<string>());
        Assert.Equal($"{prefix}.254", n["dhcpEnd"]!.GetValue<string>());
        Assert.Equal("loopback", n["outbound"]!.GetValue<string>());
        Assert.False(n["builtIn"]!.GetValue<bool>());

        var list = JsonNode.Parse(await c.GetStringAsync("/api/networks"))!.AsArray();
        Assert.Contains(list, x => x!["name"]!.GetValue<string>() == name);
        Assert.Contains(list, x => x!["name"]!.GetValue<string>() == "default" && x["builtIn"]!.GetValue<bool>());

        // the live switch answers DHCP with the new addresses: a client on it gets an offer from .15
        var host = App.Services.GetRequiredService<NetworkHost>();
        var probe = host.Connect(name, "test-probe")!;
        try
        {
            var offer = await DhcpDiscoverAsync(probe, 0x77);
            Assert.Equal($"{prefix}.15", NetworkDefinition.Format(offer));
        }
        finally { host.Disconnect(probe); }

        r = await c.PutAsJsonAsync($"/api/networks/{name}", new { mode = "isolated", subnet, dhcp = false });
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        n = await JsonAsync(r);
        Assert.Equal("isolated", n["mode"]!.GetValue<string>());
        Assert.Equal("deny", n["outbound"]!.GetValue<string>());
        Assert.False(n["dhcp"]!.GetValue<bool>());
        Assert.Equal("isolated", JsonNode.Parse(await c.GetStringAsync($"/api/networks/{name}"))!["mode"]!.GetValue<string>());

        var rename = await c.PutAsJsonAsync($"/api/networks/{name}", new { name = name + "x", subnet });
        await AssertProblemAsync(rename, HttpStatusCode.BadRequest);

        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/networks/{name}")).StatusCode);
        await AssertProblemAsync(await c.GetAsync($"/api/networks/{name}"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await c.DeleteAsync($"/api/networks/{name}"), HttpStatusCode.NotFound);
        Assert.False(host.Exists(name));
    }

    [Theory]
    [InlineData("10.0.3.5/24", "host bits")]
    [InlineData("10.0.3.0", "not an IPv4 subnet")]
    [InlineData("300.0.3.0/24", "not an IPv4 subnet")]
    [InlineData("10.0.0.0/4", "prefix length")]
    [InlineData("10.0.0.0/30", "prefix length")]
    [InlineData("127.0.0.0/24", "loopback")]
    [InlineData("10.0.2.128/25", "overlaps network 'default'")]
    [InlineData("10.0.0.0/8", "overlaps network 'default'")]
    public async Task Bad_and_overlapping_subnets_are_400_with_the_field_named(string subnet, string message)
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var r = await c.PostAsJsonAsync("/api/networks", new { name = Unique("bad"), subnet });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        var errors = (await JsonAsync(r))["errors"]!["subnet"]!.AsArray();
        Assert.Contains(message, errors[0]!.GetValue<string>());
    }

    [Fact]
    public async Task Other_bad_fields_names_taken_and_the_built_in_network_are_refused()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var sub = FreeSubnet();
        var p = sub[..sub.LastIndexOf('.')];
        var r = await c.PostAsJsonAsync("/api/networks", new { name = Unique("bad"), subnet = sub, mode = "bridge", outbound = "everywhere", gateway = $"{p}.20", dns = "1.2.3.4" });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        var errors = (await JsonAsync(r))["errors"]!.AsObject();
        Assert.Contains("mode", errors.Select(e => e.Key));
        Assert.Contains("outbound", errors.Select(e => e.Key));
        Assert.Contains("inside the DHCP range", errors["gateway"]![0]!.GetValue<string>());
        Assert.Contains("not a host address", errors["dns"]![0]!.GetValue<string>());
        r = await c.PostAsJsonAsync("/api/networks", new { name = "bad name!", subnet = sub });
        Assert.Contains("name", (await JsonAsync(r))["errors"]!.AsObject().Select(e => e.Key));
        r = await c.PostAsJsonAsync("/api/networks", new { name = Unique("bad") });
        Assert.Contains("subnet", (await JsonAsync(r))["errors"]!.AsObject().Select(e => e.Key));

        var (name, _) = await CreateNetworkAsync(c);
        await AssertProblemAsync(await c.PostAsJsonAsync("/api/networks", new { name = name.ToUpperInvariant(), subnet = FreeSubnet() }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.PostAsJsonAsync("/api/networks", new { name = "Default", subnet = FreeSubnet() }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.PutAsJsonAsync("/api/networks/default", new { subnet = "10.0.2.0/24", outbound = "allow" }), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.DeleteAsync("/api/networks/default"), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.PutAsJsonAsync("/api/networks/nope", new { subnet = FreeSubnet() }), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/networks/{name}")).StatusCode);
    }

    [Fact]
    public async Task A_network_with_running_vms_changes_kind_policy_and_dhcp_live_but_not_its_addresses()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var (net, subnet) = await CreateNetworkAsync(c);
        var prefix = subnet[..subnet.LastIndexOf('.')];
        uint Ip(int last) => Packets.ToUInt(IPAddress.Parse($"{prefix}.{last}"));
        var vmName = Unique("onnet");
        var r = await c.PostAsJsonAsync("/api/vms", new { name = vmName, memoryMiB = 32, bootOrder = new[] { "cdrom" }, nic = new { network = net } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var id = (await JsonAsync(r))["id"]!.GetValue<string>();

        var del = await c.DeleteAsync($"/api/networks/{net}");
        await AssertProblemAsync(del, HttpStatusCode.Conflict);
        Assert.Contains(vmName, await del.Content.ReadAsStringAsync());

        var host = App.Services.GetRequiredService<NetworkHost>();
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        var probe = host.Connect(net, "test-probe")!; // a DHCP client on the switch, beside the running VM
        try
        {
            var port = Assert.Single(JsonNode.Parse(await c.GetStringAsync($"/api/networks/{net}"))!["ports"]!.AsArray(), p => p!["vmId"] is not null)!;
            Assert.Equal(id, port["vmId"]!.GetValue<string>());
            byte[] client = [0x52, 0x54, 0x00, 0x00, 0x00, 0x51];
            var offer = await DhcpAsync(probe, client, DhcpServer.Discover);
            Assert.Equal((DhcpServer.Offer, Ip(15), Ip(2)), (offer.Type, offer.Address, offer.Router));
            Assert.Equal(DhcpServer.Ack, (await DhcpAsync(probe, client, DhcpServer.Request, requested: Ip(15))).Type);

            // Kind, DHCP range (and outbound policy, DHCP on/off) apply while the VM runs; its port stays.
            var live = await c.PutAsJsonAsync($"/api/networks/{net}", new { subnet, mode = "isolated", dhcpStart = $"{prefix}.100", dhcpEnd = $"{prefix}.120" });
            Assert.True(live.StatusCode == HttpStatusCode.OK, await live.Content.ReadAsStringAsync());
            var changed = await JsonAsync(live);
            Assert.Equal(("isolated", "deny", $"{prefix}.100", $"{prefix}.120"), (changed["mode"]!.GetValue<string>(), changed["outbound"]!.GetValue<string>(),
                changed["dhcpStart"]!.GetValue<string>(), changed["dhcpEnd"]!.GetValue<string>()));
            Assert.Contains(changed["ports"]!.AsArray(), p => p!["vmId"]?.GetValue<string>() == id);
            // the DHCP server answers from the new range at once: the client's renewal of .15 is refused, it starts over
            // and gets .100, without a router now that nothing leaves the network
            var renew = await DhcpAsync(probe, client, DhcpServer.Request, ciaddr: Ip(15));
            Assert.Equal(DhcpServer.Nak, renew.Type);
            offer = await DhcpAsync(probe, client, DhcpServer.Discover);
            Assert.Equal((DhcpServer.Offer, Ip(100), 0u), (offer.Type, offer.Address, offer.Router));
            Assert.Equal(DhcpServer.Ack, (await DhcpAsync(probe, client, DhcpServer.Request, requested: Ip(100))).Type);
            var lease = Assert.Single(JsonNode.Parse(await c.GetStringAsync($"/api/networks/{net}/leases"))!.AsArray(), l => l!["macAddress"]!.GetValue<string>() == "52:54:00:00:00:51")!;
            Assert.Equal($"{prefix}.100", lease["address"]!.GetValue<string>());

            // back to NAT with the deny policy, then DHCP off: live too
            live = await c.PutAsJsonAsync($"/api/networks/{net}", new { subnet, mode = "nat", outbound = "deny", dhcpStart = $"{prefix}.100", dhcpEnd = $"{prefix}.120" });
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            offer = await DhcpAsync(probe, client, DhcpServer.Discover);
            Assert.Equal((Ip(100), Ip(2)), (offer.Address, offer.Router));
            live = await c.PutAsJsonAsync($"/api/networks/{net}", new { subnet, outbound = "deny", dhcp = false, dhcpStart = $"{prefix}.100", dhcpEnd = $"{prefix}.120" });
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.False((await JsonAsync(live))["dhcp"]!.GetValue<bool>());
            await Assert.ThrowsAsync<TimeoutException>(() => DhcpAsync(probe, client, DhcpServer.Discover, wait: TimeSpan.FromSeconds(1)));

            // The subnet, gateway and DNS address would cut the running guest off: 409 naming the VM and the settings.
            foreach (var (body, setting) in new (object, string)[]
                     {
                         (new { subnet = FreeSubnet() }, "subnet"), (new { subnet, gateway = $"{prefix}.5" }, "gateway"), (new { subnet, dns = $"{prefix}.6" }, "DNS address"),
                     })
            {
                var put = await c.PutAsJsonAsync($"/api/networks/{net}", body);
                await AssertProblemAsync(put, HttpStatusCode.Conflict);
                var detail = (await JsonAsync(put))["detail"]!.GetValue<string>();
                Assert.Contains($"running VMs ({vmName})", detail);
                Assert.Matches($"its [^:]*{setting}[^:]* cannot change while they run", detail);
                Assert.Contains("stop them first", detail);
            }
            var now = JsonNode.Parse(await c.GetStringAsync($"/api/networks/{net}"))!;
            Assert.Equal((subnet, $"{prefix}.2", "nat", false), (now["subnet"]!.GetValue<string>(), now["gateway"]!.GetValue<string>(),
                now["mode"]!.GetValue<string>(), now["dhcp"]!.GetValue<bool>()));
        }
        finally
        {
            host.Disconnect(probe);
            await c.PostAsync($"/api/vms/{id}/stop", null);
        }

        // A VM on the network with port forwards (running or not) keeps it from becoming isolated.
        r = await c.PostAsJsonAsync("/api/vms", new { name = Unique("fwdnet"), memoryMiB = 32, nic = new { network = net, portForwards = new[] { new { hostPort = FreePort(), guestPort = 22 } } } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var fwd = await JsonAsync(r);
        var toIsolated = await c.PutAsJsonAsync($"/api/networks/{net}", new { subnet, mode = "isolated" });
        await AssertProblemAsync(toIsolated, HttpStatusCode.Conflict);
        var why = (await JsonAsync(toIsolated))["detail"]!.GetValue<string>();
        Assert.Contains(fwd["name"]!.GetValue<string>(), why);
        Assert.Contains("port forwards", why);
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/vms/{fwd["id"]}")).StatusCode);

        // once the VM is stopped the addresses change too
        var moved = await c.PutAsJsonAsync($"/api/networks/{net}", new { subnet, mode = "isolated", gateway = $"{prefix}.5" });
        Assert.True(moved.StatusCode == HttpStatusCode.OK, await moved.Content.ReadAsStringAsync());
        Assert.Equal($"{prefix}.5", (await JsonAsync(moved))["gateway"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/vms/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/networks/{net}")).StatusCode);
    }

    [Fact]
    public async Task Users_list_networks_but_cannot_manage_them_nor_see_other_users_leases()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var (user, password) = (Unique("netuser"), "user-password-1");
        await App.NewUserAsync(user, password: password);
        using var u = App.Client(await App.TokenAsync(user, password));

        await AssertProblemAsync(await u.PostAsJsonAsync("/api/networks", new { name = Unique("mine"), subnet = FreeSubnet() }), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await u.PutAsJsonAsync("/api/networks/default", new { subnet = "10.0.2.0/24" }), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await u.DeleteAsync("/api/networks/default"), HttpStatusCode.Forbidden);

        var (net, _) = await CreateNetworkAsync(admin);
        var adminsVm = await JsonAsync(await admin.PostAsJsonAsync("/api/vms", new { name = Unique("avm"), memoryMiB = 32, nic = new { network = net } }));
        var usersVm = await JsonAsync(await u.PostAsJsonAsync("/api/vms", new { name = Unique("uvm"), memoryMiB = 32, nic = new { network = net } }));
        var host = App.Services.GetRequiredService<NetworkHost>();
        var probe = host.Connect(net, "test-probe")!;
        try
        {
            // both NICs' MACs ask for an address (as the guests would at boot)
            await DhcpDiscoverAsync(probe, 0, adminsVm["nic"]!["macAddress"]!.GetValue<string>());
            await DhcpDiscoverAsync(probe, 0, usersVm["nic"]!["macAddress"]!.GetValue<string>());
        }
        finally { host.Disconnect(probe); }

        var all = JsonNode.Parse(await admin.GetStringAsync($"/api/networks/{net}/leases"))!.AsArray();
        Assert.Equal(2, all.Count);
        Assert.Contains(all, l => l!["vmName"]!.GetValue<string>() == adminsVm["name"]!.GetValue<string>());
        var mine = JsonNode.Parse(await u.GetStringAsync($"/api/networks/{net}/leases"))!.AsArray();
        var lease = Assert.Single(mine)!;
        Assert.Equal(usersVm["id"]!.GetValue<string>(), lease["vmId"]!.GetValue<string>());
        var listed = JsonNode.Parse(await u.GetStringAsync("/api/networks"))!.AsArray().Single(n => n!["name"]!.GetValue<string>() == net)!;
        Assert.Single(listed["leases"]!.AsArray());

        await admin.DeleteAsync($"/api/vms/{adminsVm["id"]}");
        await u.DeleteAsync($"/api/vms/{usersVm["id"]}");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/networks/{net}")).StatusCode);
    }

    [Fact]
    public async Task Port_forwards_are_validated_when_saved_and_listen_only_while_the_vm_runs()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        // a port some other program holds
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int takenPort = ((IPEndPoint)taken.LocalEndpoint).Port;
        var r = await c.PostAsJsonAsync("/api/vms", new { name = Unique("fwd"), memoryMiB = 32, nic = new { portForwards = new[] { new { hostPort = takenPort, guestPort = 22 } } } });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        Assert.Contains("already in use", (await JsonAsync(r))["errors"]!["nic.portForwards[0].hostPort"]![0]!.GetValue<string>());

        r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("fwd"), memoryMiB = 32,
            nic = new { portForwards = new object[] { new { protocol = "udp", hostPort = 70000, guestPort = 0 }, new { hostAddress = "localhost", hostPort = 1, guestPort = 1 } } },
        });
        var errors = (await JsonAsync(r))["errors"]!.AsObject();
        Assert.Contains("nic.portForwards[0].protocol", errors.Select(e => e.Key));
        Assert.Contains("nic.portForwards[0].hostPort", errors.Select(e => e.Key));
        Assert.Contains("nic.portForwards[1].hostAddress", errors.Select(e => e.Key));

        var (isolated, _) = await CreateNetworkAsync(c, "isolated");
        r = await c.PostAsJsonAsync("/api/vms", new { name = Unique("fwd"), memoryMiB = 32, nic = new { network = isolated, portForwards = new[] { new { hostPort = FreePort(), guestPort = 22 } } } });
        Assert.Contains("isolated", (await JsonAsync(r))["errors"]!["nic.portForwards"]![0]!.GetValue<string>());

        int port = FreePort();
        r = await c.PostAsJsonAsync("/api/vms", new { name = Unique("fwd"), memoryMiB = 32, bootOrder = new[] { "cdrom" }, nic = new { portForwards = new[] { new { hostPort = port, guestPort = 22 } } } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var vm = await JsonAsync(r);
        var f = Assert.Single(vm["nic"]!["portForwards"]!.AsArray())!;
        Assert.Equal("tcp", f["protocol"]!.GetValue<string>());
        Assert.Equal("127.0.0.1", f["hostAddress"]!.GetValue<string>());
        Assert.Equal(port, f["hostPort"]!.GetValue<int>());
        Assert.Equal(22, f["guestPort"]!.GetValue<int>());
        var id = vm["id"]!.GetValue<string>();

        // another VM may not forward the same host port
        r = await c.PostAsJsonAsync("/api/vms", new { name = Unique("fwd"), memoryMiB = 32, nic = new { portForwards = new[] { new { hostAddress = "0.0.0.0", hostPort = port, guestPort = 80 } } } });
        Assert.Contains($"already forwarded to VM '{vm["name"]}'", (await JsonAsync(r))["errors"]!["nic.portForwards[0].hostPort"]![0]!.GetValue<string>());

        Assert.False(Listening(port));
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            Assert.True(Listening(port));
            // saving the running VM again keeps its own forward (no "in use" from its own listener)
            var again = await JsonAsync(await c.GetAsync($"/api/vms/{id}"));
            again["description"] = "saved while running";
            Assert.Equal(HttpStatusCode.OK, (await c.PutAsync($"/api/vms/{id}", RawJson(again.ToJsonString()))).StatusCode);
        }
        finally
        {
            await c.PostAsync($"/api/vms/{id}/stop", null);
        }
        Assert.False(Listening(port));

        // taken by someone else between save and start: the start fails with the reason
        using (var squatter = new TcpListener(IPAddress.Loopback, port))
        {
            squatter.Start();
            var start = await c.PostAsync($"/api/vms/{id}/start", null);
            await AssertProblemAsync(start, HttpStatusCode.Conflict);
            Assert.Contains($"127.0.0.1:{port} is already in use", await start.Content.ReadAsStringAsync());
        }
        Assert.Empty(App.Services.GetRequiredService<NetworkHost>().ConnectedVms("default").Where(v => v.ToString() == id));

        // removing the forwards ([]) works; null keeps them
        var cur = await JsonAsync(await c.GetAsync($"/api/vms/{id}"));
        cur["nic"]!["portForwards"] = null;
        var put = await c.PutAsync($"/api/vms/{id}", RawJson(cur.ToJsonString()));
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var kept = await JsonAsync(put);
        Assert.Single(kept["nic"]!["portForwards"]!.AsArray());
        kept["nic"]!["portForwards"] = new JsonArray();
        var cleared = await JsonAsync(await c.PutAsync($"/api/vms/{id}", RawJson(kept.ToJsonString())));
        Assert.Empty(cleared["nic"]!["portForwards"]!.AsArray());
        await c.DeleteAsync($"/api/vms/{id}");
        await c.DeleteAsync($"/api/networks/{isolated}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static bool Listening(int port)
    {
        try
        {
            using var s = new TcpClient();
            s.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException) { return false; }
    }

    private sealed record DhcpAnswer(byte Type, uint Address, uint Router);

    /// <summary>
    /// Sends a DHCP message of <paramref name="type"/> from <paramref name="hw"/> into the switch (a REQUEST for
    /// <paramref name="requested"/> as after an offer, or a renewal of <paramref name="ciaddr"/>) and returns the answer
    /// with the same transaction id: its type, the address given and the router option (0 when absent).
    /// </summary>
    private static async Task<DhcpAnswer> DhcpAsync(SwitchPort port, byte[] hw, byte type, uint requested = 0, uint ciaddr = 0, TimeSpan? wait = null)
    {
        uint xid = (uint)Random.Shared.Next();
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), xid);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(12), ciaddr);
        hw.CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        int o = 240;
        m[o++] = 53; m[o++] = 1; m[o++] = type;
        if (requested != 0) { m[o++] = 50; m[o++] = 4; BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), requested); o += 4; }
        m[o] = 255;
        port.Send(Packets.Udp([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], hw, ciaddr, 68, 0xFFFF_FFFF, 67, m));
        const int bootp = 14 + 20 + 8;
        for (var t = System.Diagnostics.Stopwatch.StartNew(); t.Elapsed < (wait ?? TimeSpan.FromSeconds(10)); await Task.Delay(20))
            while (port.TryReceive(out var f))
            {
                if (f.Length < bootp + 244 || Packets.EtherType(f) != 0x0800 || f[14 + 9] != 17 || BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 20 + 2)) != 68 ||
                    BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(bootp + 4)) != xid) continue;
                byte answer = 0;
                uint router = 0;
                for (int i = bootp + 240; i + 1 < f.Length && f[i] != 255; i += f[i] == 0 ? 1 : 2 + f[i + 1])
                {
                    if (f[i] == 53) answer = f[i + 2];
                    if (f[i] == 3) router = BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(i + 2));
                }
                return new DhcpAnswer(answer, BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(bootp + 16)), router);
            }
        throw new TimeoutException("no DHCP answer");
    }

    /// <summary>Sends a DHCPDISCOVER from <paramref name="mac"/> (or 52:54:00:00:00:n) into the switch and returns the offered address.</summary>
    private static async Task<uint> DhcpDiscoverAsync(SwitchPort port, int n, string? mac = null)
    {
        byte[] hw = mac is null ? [0x52, 0x54, 0x00, 0x00, 0x00, (byte)n] : mac.Split(':').Select(x => Convert.ToByte(x, 16)).ToArray();
        var m = new byte[300];
        m[0] = 1; m[1] = 1; m[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), 0x4242);
        hw.CopyTo(m, 28);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(236), 0x63825363);
        m[240] = 53; m[241] = 1; m[242] = 1; m[243] = 255;
        port.Send(Packets.Udp([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], hw, 0, 68, 0xFFFF_FFFF, 67, m));
        for (var t = System.Diagnostics.Stopwatch.StartNew(); t.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(20))
            while (port.TryReceive(out var f))
                if (f.Length > 14 + 20 + 8 + 20 && Packets.EtherType(f) == 0x0800 && f[14 + 9] == 17 && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 20 + 2)) == 68)
                    return BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(14 + 20 + 8 + 16));
        throw new TimeoutException("no DHCP offer");
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>
/// A VM's NIC in the portal: an e1000 on the built-in NAT network <c>default</c>; a running VM has a port on its
/// switch (listed with counters by <c>/api/networks</c>), a stopped one does not; unknown networks and models are
/// refused with the field named.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class VmNetworkTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task A_running_vms_nic_sits_on_the_default_networks_switch_until_it_stops()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var networks = JsonNode.Parse(await c.GetStringAsync("/api/networks"))!.AsArray();
        var def = Assert.Single(networks, n => n!["name"]!.GetValue<string>() == "default")!;
        Assert.Equal("nat", def["mode"]!.GetValue<string>());
        Assert.Equal("10.0.2.0/24", def["subnet"]!.GetValue<string>());
        Assert.Equal("10.0.2.2", def["gateway"]!.GetValue<string>());
        Assert.Equal("loopback", def["outbound"]!.GetValue<string>());

        var name = Unique("nic");
        var r = await c.PostAsJsonAsync("/api/vms", new { name, memoryMiB = 32, bootOrder = new[] { "cdrom" }, nic = new { enabled = true, network = "default" } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var vm = await JsonAsync(r);
        Assert.Equal("e1000", vm["nic"]!["model"]!.GetValue<string>());
        var id = vm["id"]!.GetValue<string>();

        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            var ports = JsonNode.Parse(await c.GetStringAsync("/api/networks/default"))!["ports"]!.AsArray();
            Assert.Contains(ports, p => p!["name"]!.GetValue<string>() == $"vm:{name}");

            // The cable of the running VM: pulled and plugged in again live; the card stays on its switch port.
            var nic = JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}/nic"))!;
            Assert.True(nic["linkUp"]!.GetValue<bool>());
            Assert.Equal("default", nic["network"]!.GetValue<string>());
            var down = await c.PostAsJsonAsync($"/api/vms/{id}/nic/link", new { up = false });
            Assert.Equal(HttpStatusCode.OK, down.StatusCode);
            Assert.False((await JsonAsync(down))["linkUp"]!.GetValue<bool>());
            Assert.False(JsonNode.Parse(await c.GetStringAsync($"/api/vms/{id}/nic"))!["linkUp"]!.GetValue<bool>());
            Assert.Contains(JsonNode.Parse(await c.GetStringAsync("/api/networks/default"))!["ports"]!.AsArray(),
                p => p!["name"]!.GetValue<string>() == $"vm:{name}");
            var up = await c.PostAsJsonAsync($"/api/vms/{id}/nic/link", new { up = true });
            Assert.True((await JsonAsync(up))["linkUp"]!.GetValue<bool>());
            await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{id}/nic/link", new { }), HttpStatusCode.BadRequest);
        }
        finally
        {
            await c.PostAsync($"/api/vms/{id}/stop", null);
        }
        var after = JsonNode.Parse(await c.GetStringAsync("/api/networks/default"))!["ports"]!.AsArray();
        Assert.DoesNotContain(after, p => p!["name"]!.GetValue<string>() == $"vm:{name}");
        var stopped = await c.PostAsJsonAsync($"/api/vms/{id}/nic/link", new { up = true });
        await AssertProblemAsync(stopped, HttpStatusCode.Conflict);
        Assert.Contains("not running", await stopped.Content.ReadAsStringAsync());
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{id}/nic"), HttpStatusCode.Conflict);
        await AssertProblemAsync(await c.PostAsJsonAsync($"/api/vms/{Guid.NewGuid()}/nic/link", new { up = true }), HttpStatusCode.NotFound);

        // A NIC stored as disabled ("cable unplugged") starts on its switch with the link down, and can be plugged in live.
        var offName = Unique("nicoff");
        var off = await JsonAsync(await c.PostAsJsonAsync("/api/vms", new { name = offName, memoryMiB = 32, bootOrder = new[] { "cdrom" }, nic = new { enabled = false, network = "default" } }));
        var offId = off["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{offId}/start", null)).StatusCode);
        try
        {
            Assert.False(JsonNode.Parse(await c.GetStringAsync($"/api/vms/{offId}/nic"))!["linkUp"]!.GetValue<bool>());
            Assert.True((await JsonAsync(await c.PostAsJsonAsync($"/api/vms/{offId}/nic/link", new { up = true })))["linkUp"]!.GetValue<bool>());
        }
        finally
        {
            await c.PostAsync($"/api/vms/{offId}/stop", null);
        }
        Assert.NotNull(JsonNode.Parse(await c.GetStringAsync("/api/networks/default/leases")) as JsonArray);
        await AssertProblemAsync(await c.GetAsync("/api/networks/nope"), HttpStatusCode.NotFound);

        var badNet = await c.PostAsJsonAsync("/api/vms", new { name = Unique("nic"), memoryMiB = 32, nic = new { network = "lab" } });
        await AssertProblemAsync(badNet, HttpStatusCode.BadRequest);
        Assert.Contains("nic.network", await badNet.Content.ReadAsStringAsync());
        var badModel = await c.PostAsJsonAsync("/api/vms", new { name = Unique("nic"), memoryMiB = 32, nic = new { model = "ne2k_pci" } });
        Assert.Contains("NIC model must be one of: e1000", await badModel.Content.ReadAsStringAsync());
    }
}

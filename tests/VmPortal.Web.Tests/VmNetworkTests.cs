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
        }
        finally
        {
            await c.PostAsync($"/api/vms/{id}/stop", null);
        }
        var after = JsonNode.Parse(await c.GetStringAsync("/api/networks/default"))!["ports"]!.AsArray();
        Assert.DoesNotContain(after, p => p!["name"]!.GetValue<string>() == $"vm:{name}");
        Assert.NotNull(JsonNode.Parse(await c.GetStringAsync("/api/networks/default/leases")) as JsonArray);
        await AssertProblemAsync(await c.GetAsync("/api/networks/nope"), HttpStatusCode.NotFound);

        var badNet = await c.PostAsJsonAsync("/api/vms", new { name = Unique("nic"), memoryMiB = 32, nic = new { network = "lab" } });
        await AssertProblemAsync(badNet, HttpStatusCode.BadRequest);
        Assert.Contains("nic.network", await badNet.Content.ReadAsStringAsync());
        var badModel = await c.PostAsJsonAsync("/api/vms", new { name = Unique("nic"), memoryMiB = 32, nic = new { model = "ne2k_pci" } });
        Assert.Contains("NIC model must be one of: e1000", await badModel.Content.ReadAsStringAsync());
    }
}

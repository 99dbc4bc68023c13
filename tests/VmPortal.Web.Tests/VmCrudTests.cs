using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

[Collection(PortalCollection.Name)]
public sealed class VmCrudTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Health_endpoints_answer()
    {
        using var c = App.Client();
        var live = await c.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var ready = await c.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Anonymous_api_call_is_401_not_a_redirect()
    {
        using var c = App.Client();
        var r = await c.GetAsync("/api/vms");
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Null(r.Headers.Location);
    }

    [Fact]
    public async Task Create_get_list_update_delete_round_trip()
    {
        var (_, token) = await App.NewUserAsync(Unique("crud"));
        using var c = App.Client(token);
        var name = Unique("web");

        var created = await c.PostAsJsonAsync("/api/vms", new
        {
            name,
            description = "first VM",
            memoryMiB = 256,
            disks = new[] { new { sizeMiB = 4096, bus = "ide" } },
            bootOrder = new[] { "disk", "cdrom" },
            nic = new { model = "ne2k_pci", network = "default" },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var vm = await JsonAsync(created);
        var id = vm["id"]!.GetValue<Guid>();
        Assert.Equal($"/api/vms/{id}", created.Headers.Location!.AbsolutePath);
        Assert.Equal(name, vm["name"]!.GetValue<string>());
        Assert.Equal(256, vm["memoryMiB"]!.GetValue<int>());
        Assert.Equal("stopped", vm["state"]!.GetValue<string>());
        Assert.Equal("disk", vm["bootOrder"]![0]!.GetValue<string>());
        Assert.Equal(4096, vm["disks"]![0]!["sizeMiB"]!.GetValue<long>());
        Assert.Matches("^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$", vm["nic"]!["macAddress"]!.GetValue<string>());
        var version = vm["version"]!.GetValue<uint>();
        Assert.NotEqual(0u, version);

        var get = await c.GetAsync($"/api/vms/{id}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal($"\"{version}\"", get.Headers.ETag!.Tag);

        var list = await JsonAsync(await c.GetAsync($"/api/vms?name={name}"));
        Assert.Equal(1, list["total"]!.GetValue<int>());
        Assert.Equal(id, list["items"]![0]!["id"]!.GetValue<Guid>());

        var update = await c.PutAsJsonAsync($"/api/vms/{id}", new
        {
            name,
            description = "bigger",
            memoryMiB = 512,
            disks = new[] { new { sizeMiB = 4096 } },
            bootOrder = new[] { "cdrom" },
            version,
        });
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        var updated = await JsonAsync(update);
        Assert.Equal(512, updated["memoryMiB"]!.GetValue<int>());
        Assert.NotEqual(version, updated["version"]!.GetValue<uint>());
        // the MAC address survives an update that does not mention the NIC
        Assert.Equal(vm["nic"]!["macAddress"]!.GetValue<string>(), updated["nic"]!["macAddress"]!.GetValue<string>());

        var reread = await JsonAsync(await c.GetAsync($"/api/vms/{id}"));
        Assert.Equal(512, reread["memoryMiB"]!.GetValue<int>());
        Assert.Equal("bigger", reread["description"]!.GetValue<string>());

        var delete = await c.DeleteAsync($"/api/vms/{id}");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{id}"), HttpStatusCode.NotFound);
    }
}

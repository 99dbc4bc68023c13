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
            nic = new { model = "e1000", network = "default" },
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

[Collection(PortalCollection.Name)]
public sealed class VmListTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task List_pages_sorts_and_searches_on_the_server()
    {
        using var c = App.Client((await App.NewUserAsync(Unique("lister"))).Token);
        var tag = Unique("t");
        foreach (var (suffix, mem) in new[] { ("c", 300), ("a", 100), ("b", 200) })
            await CreateVmAsync(c, $"{tag}-{suffix}", mem);
        // a VM whose description (not name) holds the tag
        var other = await c.PostAsJsonAsync("/api/vms", new { name = Unique("zz"), memoryMiB = 64, description = $"see {tag}" });
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);

        var byName = await JsonAsync(await c.GetAsync($"/api/vms?name={tag}&pageSize=2&page=1"));
        Assert.Equal(3, byName["total"]!.GetValue<int>());
        Assert.Equal([$"{tag}-a", $"{tag}-b"], byName["items"]!.AsArray().Select(v => v!["name"]!.GetValue<string>()).ToArray());
        var page2 = await JsonAsync(await c.GetAsync($"/api/vms?name={tag}&pageSize=2&page=2"));
        Assert.Equal($"{tag}-c", Assert.Single(page2["items"]!.AsArray())!["name"]!.GetValue<string>());
        Assert.Equal(3, page2["total"]!.GetValue<int>());
        // a page past the end is empty but still says how many there are; no match at all is 0
        var past = await JsonAsync(await c.GetAsync($"/api/vms?name={tag}&pageSize=2&page=5"));
        Assert.Empty(past["items"]!.AsArray());
        Assert.Equal(3, past["total"]!.GetValue<int>());
        Assert.Equal(0, (await JsonAsync(await c.GetAsync($"/api/vms?name={tag}-none")))["total"]!.GetValue<int>());

        var byMemory = await JsonAsync(await c.GetAsync($"/api/vms?name={tag}&sort=memoryMiB&desc=true"));
        Assert.Equal([300, 200, 100], byMemory["items"]!.AsArray().Select(v => v!["memoryMiB"]!.GetValue<int>()).ToArray());

        var search = await JsonAsync(await c.GetAsync($"/api/vms?search={tag.ToUpperInvariant()}"));
        Assert.Equal(4, search["total"]!.GetValue<int>());
        var byState = await JsonAsync(await c.GetAsync("/api/vms?search=stopp"));
        Assert.Equal(4, byState["total"]!.GetValue<int>());

        Assert.Equal(HttpStatusCode.BadRequest, (await c.GetAsync("/api/vms?sort=password")).StatusCode);
    }
}

using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>Malformed or hostile input gets a clear 4xx problem and writes nothing.</summary>
[Collection(PortalCollection.Name)]
public sealed class BadInputTests(PortalAppFixture app) : ApiTestBase(app)
{
    private async Task<HttpClient> UserClientAsync() => App.Client((await App.NewUserAsync(Unique("bad"))).Token);

    [Theory]
    [InlineData("{\"name\": \"x\", \"memoryMiB\": 128", "truncated")]
    [InlineData("not json at all", "garbage")]
    [InlineData("{\"name\": \"x\", \"memoryMiB\": \"lots\"}", "wrong type")]
    [InlineData("{\"name\": \"x\", \"memoryMiB\": 128, \"bootOrder\": [\"usb\"]}", "unknown enum")]
    [InlineData("{\"name\": \"x\", \"memoryMiB\": 99999999999999}", "overflow")]
    [InlineData("[1,2,3]", "array instead of object")]
    public async Task Malformed_json_is_400_problem_and_nothing_is_written(string body, string why)
    {
        using var c = await UserClientAsync();
        var before = await VmCountAsync();
        var r = await c.PostAsync("/api/vms", RawJson(body));
        Assert.True(r.StatusCode == HttpStatusCode.BadRequest, $"{why}: {r.StatusCode}");
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        Assert.Equal(before, await VmCountAsync());
    }

    [Fact]
    public async Task Empty_body_is_400()
    {
        using var c = await UserClientAsync();
        var r = await c.PostAsync("/api/vms", RawJson(""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
    }

    [Theory]
    [InlineData("", "name")]
    [InlineData("   ", "name")]
    [InlineData("this-name-is-far-too-long-for-a-vm-because-it-has-more-than-63-chars", "name")]
    [InlineData("x'; DROP TABLE virtual_machines; --", "name")]
    [InlineData("Robert\"); DELETE FROM \"AspNetUsers\";--", "name")]
    [InlineData("<script>alert(1)</script>", "name")]
    [InlineData("name with spaces", "name")]
    [InlineData("-leading-dash", "name")]
    [InlineData("ünïcode", "name")]
    public async Task Bad_names_are_rejected_with_a_field_error(string name, string field)
    {
        using var c = await UserClientAsync();
        var before = await VmCountAsync();
        var r = await c.PostAsJsonAsync("/api/vms", VmBody(name));
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        var body = await JsonAsync(r);
        Assert.NotNull(body["errors"]![field]);
        Assert.Equal(before, await VmCountAsync());
    }

    [Fact]
    public async Task A_63_character_name_is_accepted()
    {
        using var c = await UserClientAsync();
        var name = new string('a', 55) + Guid.NewGuid().ToString("N")[..8];
        Assert.Equal(63, name.Length);
        var r = await c.PostAsJsonAsync("/api/vms", VmBody(name));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(15)]
    [InlineData(16385)]
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    public async Task Negative_or_absurd_memory_is_rejected(int memory)
    {
        using var c = await UserClientAsync();
        var before = await VmCountAsync();
        var r = await c.PostAsJsonAsync("/api/vms", VmBody(Unique("mem"), memory));
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        Assert.NotNull((await JsonAsync(r))["errors"]!["memoryMiB"]);
        Assert.Equal(before, await VmCountAsync());
    }

    [Theory]
    [InlineData(16)]
    [InlineData(16384)]
    public async Task Memory_limits_are_inclusive(int memory)
    {
        using var c = await UserClientAsync();
        var r = await c.PostAsJsonAsync("/api/vms", VmBody(Unique("mem"), memory));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }

    [Fact]
    public async Task Hardware_errors_name_their_fields()
    {
        using var c = await UserClientAsync();
        var before = await VmCountAsync();
        var r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("hw"),
            memoryMiB = 128,
            disks = new object[] { new { sizeMiB = 0 }, new { sizeMiB = 1L << 40 }, new { sizeMiB = 10, bus = "scsi" }, new { sizeMiB = 10 } },
            bootOrder = new[] { "disk", "disk" },
            cdromImageId = "builtin:does-not-exist",
            nic = new { model = "rtl8139", macAddress = "01:00:5e:00:00:01", network = "bad net" },
            description = new string('d', 1001),
        });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        var errors = (await JsonAsync(r))["errors"]!.AsObject();
        foreach (var key in new[] { "disks", "disks[0].sizeMiB", "disks[1].sizeMiB", "disks[2].bus", "bootOrder", "cdromImageId", "nic.model", "nic.macAddress", "nic.network", "description" })
            Assert.True(errors.ContainsKey(key), $"missing error for {key}: {errors.ToJsonString()}");
        Assert.Equal(before, await VmCountAsync());
    }

    [Fact]
    public async Task Sql_like_text_in_description_and_filters_is_just_text()
    {
        using var c = await UserClientAsync();
        const string evil = "'; DROP TABLE virtual_machines; -- \" OR 1=1 %_\\";
        var name = Unique("sql");
        var r = await c.PostAsJsonAsync("/api/vms", new { name, memoryMiB = 64, description = evil });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var id = (await JsonAsync(r))["id"]!.GetValue<Guid>();
        Assert.Equal(evil, (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["description"]!.GetValue<string>());

        var filtered = await c.GetAsync("/api/vms?name=" + Uri.EscapeDataString("' OR '1'='1"));
        Assert.Equal(HttpStatusCode.OK, filtered.StatusCode);
        Assert.Equal(0, (await JsonAsync(filtered))["total"]!.GetValue<int>());
        // LIKE wildcards are escaped: "%" matches nothing, not everything
        Assert.Equal(0, (await JsonAsync(await c.GetAsync("/api/vms?name=%25")))["total"]!.GetValue<int>());
        // and the table is still there
        Assert.Equal(1, (await JsonAsync(await c.GetAsync($"/api/vms?name={name}")))["total"]!.GetValue<int>());
    }

    [Fact]
    public async Task Unknown_and_malformed_ids_are_404_problems()
    {
        using var c = await UserClientAsync();
        await AssertProblemAsync(await c.GetAsync($"/api/vms/{Guid.NewGuid()}"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await c.DeleteAsync($"/api/vms/{Guid.NewGuid()}"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await c.PutAsJsonAsync($"/api/vms/{Guid.NewGuid()}", new { name = "x", memoryMiB = 64, version = 1 }), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("/api/vms/not-a-guid")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("/api/vms/1%27%20OR%201=1")).StatusCode);
    }

    [Fact]
    public async Task Bad_paging_parameters_are_400()
    {
        using var c = await UserClientAsync();
        Assert.Equal(HttpStatusCode.BadRequest, (await c.GetAsync("/api/vms?page=0")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await c.GetAsync("/api/vms?pageSize=100000")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await c.GetAsync("/api/vms?page=abc")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await c.GetAsync("/api/vms?ownerId=nope")).StatusCode);
    }
}

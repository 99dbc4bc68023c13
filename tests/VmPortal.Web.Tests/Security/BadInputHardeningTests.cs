using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Security;

/// <summary>Issue 15 findings 4 (paging overflow), 15 (bad JSON names the field), 16 (e-mail addresses).</summary>
[Collection(PortalCollection.Name)]
public sealed class BadInputHardeningTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Theory]
    [InlineData("page=4294969&pageSize=500")]
    [InlineData("page=2147483647&pageSize=2")]
    [InlineData("page=1073741825&pageSize=4")]
    [InlineData("page=99999999999")]
    public async Task Pages_beyond_range_are_400_naming_page(string query)
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var r = await c.GetAsync("/api/vms?" + query);
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        Assert.True((await JsonAsync(r))["errors"]!.AsObject().ContainsKey("page"));
    }

    [Fact]
    public async Task The_last_reachable_page_answers_an_empty_list()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var r = await c.GetAsync("/api/vms?page=4294968&pageSize=500"); // offset 2147483500 fits in 32 bits
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Empty((await JsonAsync(r))["items"]!.AsArray());
    }

    [Fact]
    public async Task Wrong_types_and_unknown_enum_values_name_the_field_and_the_accepted_values()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        var boot = await c.PostAsync("/api/vms", RawJson("""{"name":"x1","memoryMiB":64,"bootOrder":["usb"]}"""));
        await AssertProblemAsync(boot, HttpStatusCode.BadRequest);
        var e1 = (await JsonAsync(boot))["errors"]!.AsObject();
        var msg = Assert.Single(e1["bootOrder[0]"]!.AsArray())!.GetValue<string>();
        foreach (var v in new[] { "cdrom", "disk", "floppy", "network" }) Assert.Contains(v, msg);

        var mem = await c.PostAsync("/api/vms", RawJson("""{"name":"x2","memoryMiB":"lots"}"""));
        await AssertProblemAsync(mem, HttpStatusCode.BadRequest);
        Assert.Contains("whole number", (await JsonAsync(mem))["errors"]!["memoryMiB"]![0]!.GetValue<string>());

        var broken = await c.PostAsync("/api/vms", RawJson("""{"name": "x3", """));
        await AssertProblemAsync(broken, HttpStatusCode.BadRequest);
        Assert.Contains("JSON", (await JsonAsync(broken))["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task E_mail_addresses_are_validated()
    {
        using var c = App.Client(await App.AdminTokenAsync());
        foreach (var bad in new[] { "not-an-address", "a@b", "two@@example.org", "x y@example.org", "<a@example.org>", "a@example..org", "Name <a@example.org>" })
        {
            var r = await c.PostAsJsonAsync("/api/users", new { userName = Unique("mail"), password = "mail-password-1", role = "User", email = bad });
            await AssertProblemAsync(r, HttpStatusCode.BadRequest);
            Assert.True((await JsonAsync(r))["errors"]!.AsObject().ContainsKey("email"), bad);
        }
        var ok = await c.PostAsJsonAsync("/api/users", new { userName = Unique("mail"), password = "mail-password-1", role = "User", email = "ada.lovelace@example.org" });
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        Assert.Equal("ada.lovelace@example.org", (await JsonAsync(ok))["email"]!.GetValue<string>());
    }
}

/// <summary>Issue 15 finding 20: the VM memory capacity follows the machine's memory when not configured.</summary>
[Collection(ShippedLimitsCollection.Name)]
public sealed class HostCapacityTests(ShippedLimitsPortalFixture app) : ApiTestBase(app)
{
    [Fact]
    public void Capacity_defaults_to_three_quarters_of_the_memory_the_portal_may_use()
    {
        var host = (VmPortal.Core.Runtime.VmHost)App.Services.GetService(typeof(VmPortal.Core.Runtime.VmHost))!;
        var memTotalKiB = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        var limit = Math.Min(memTotalKiB << 10, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
        Assert.Equal(Math.Max(256, limit / 4 * 3 >> 20), host.Options.CapacityMiB);
        Assert.InRange(host.Options.CapacityMiB, (memTotalKiB >> 10) / 4, memTotalKiB >> 10);
    }
}

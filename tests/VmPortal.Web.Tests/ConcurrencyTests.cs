using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>Optimistic concurrency (version / If-Match) and name clashes answer 409.</summary>
[Collection(PortalCollection.Name)]
public sealed class ConcurrencyTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Stale_version_is_409_and_changes_nothing()
    {
        using var c = App.Client((await App.NewUserAsync(Unique("cc"))).Token);
        var name = Unique("vm");
        var vm = await CreateVmAsync(c, name);
        var id = vm["id"]!.GetValue<Guid>();
        var v1 = vm["version"]!.GetValue<uint>();

        var first = await c.PutAsJsonAsync($"/api/vms/{id}", new { name, memoryMiB = 300, version = v1 });
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);

        // a second writer still holding v1 loses
        var second = await c.PutAsJsonAsync($"/api/vms/{id}", new { name, memoryMiB = 999, version = v1 });
        await AssertProblemAsync(second, HttpStatusCode.Conflict);
        Assert.Equal(300, (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["memoryMiB"]!.GetValue<int>());
    }

    [Fact]
    public async Task If_match_header_carries_the_version()
    {
        using var c = App.Client((await App.NewUserAsync(Unique("im"))).Token);
        var name = Unique("vm");
        var vm = await CreateVmAsync(c, name);
        var id = vm["id"]!.GetValue<Guid>();
        var get = await c.GetAsync($"/api/vms/{id}");
        var etag = get.Headers.ETag!.Tag;

        var ok = new HttpRequestMessage(HttpMethod.Put, $"/api/vms/{id}") { Content = JsonContent.Create(new { name, memoryMiB = 200 }) };
        ok.Headers.TryAddWithoutValidation("If-Match", etag);
        var r = await c.SendAsync(ok);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.NotEqual(etag, r.Headers.ETag!.Tag);

        var stale = new HttpRequestMessage(HttpMethod.Put, $"/api/vms/{id}") { Content = JsonContent.Create(new { name, memoryMiB = 100 }) };
        stale.Headers.TryAddWithoutValidation("If-Match", etag);
        await AssertProblemAsync(await c.SendAsync(stale), HttpStatusCode.Conflict);

        var staleDelete = new HttpRequestMessage(HttpMethod.Delete, $"/api/vms/{id}");
        staleDelete.Headers.TryAddWithoutValidation("If-Match", etag);
        await AssertProblemAsync(await c.SendAsync(staleDelete), HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync($"/api/vms/{id}")).StatusCode);
    }

    [Fact]
    public async Task Update_without_version_is_400()
    {
        using var c = App.Client((await App.NewUserAsync(Unique("nv"))).Token);
        var name = Unique("vm");
        var vm = await CreateVmAsync(c, name);
        var r = await c.PutAsJsonAsync($"/api/vms/{vm["id"]}", new { name, memoryMiB = 200 });
        await AssertProblemAsync(r, HttpStatusCode.BadRequest);
        Assert.NotNull((await JsonAsync(r))["errors"]!["version"]);
    }

    [Fact]
    public async Task Names_are_unique_per_owner_case_insensitively()
    {
        using var a = App.Client((await App.NewUserAsync(Unique("n1"))).Token);
        using var b = App.Client((await App.NewUserAsync(Unique("n2"))).Token);
        var name = Unique("Dup");
        await CreateVmAsync(a, name);
        var before = await VmCountAsync();
        await AssertProblemAsync(await a.PostAsJsonAsync("/api/vms", VmBody(name.ToLowerInvariant())), HttpStatusCode.Conflict);
        Assert.Equal(before, await VmCountAsync());
        // another owner may use the same name
        await CreateVmAsync(b, name);

        // renaming onto an existing name clashes too
        var other = await CreateVmAsync(a, Unique("other"));
        var r = await a.PutAsJsonAsync($"/api/vms/{other["id"]}", new { name, memoryMiB = 64, version = other["version"]!.GetValue<uint>() });
        await AssertProblemAsync(r, HttpStatusCode.Conflict);
    }
}

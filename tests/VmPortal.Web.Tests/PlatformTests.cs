using System.Net;
using System.Net.Http.Json;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>Images, OpenAPI, audit trail, the UI's sign-in round trip.</summary>
[Collection(PortalCollection.Name)]
public sealed class PlatformTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Images_lists_builtin_and_uploaded_images_that_exist()
    {
        using var c = App.Client((await App.NewUserAsync(Unique("img"))).Token);
        var images = await c.GetFromJsonAsync<List<ImageRow>>("/api/images", Web);
        var debian = Assert.Single(images!, i => i.Id == "builtin:debian-i386-rescue-iso");
        Assert.Equal("Debian Linux (i386) rescue shell", debian.Name);
        Assert.Equal("iso", debian.Kind);
        Assert.Equal(4096, debian.SizeBytes);
        Assert.Contains(images!, i => i.Id == "builtin:memtest86plus-iso" && i.Name == "memtest86+");
        Assert.DoesNotContain(images!, i => i.Id == "builtin:ipxe-iso"); // absent file, not listed
        var upload = Assert.Single(images!, i => i.Id == "upload:base.qcow");
        Assert.Equal("disk", upload.Kind);

        // a VM can name them
        var r = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("boot"), memoryMiB = 128, cdromImageId = "builtin:debian-i386-rescue-iso",
            disks = new[] { new { sizeMiB = 512, backingImageId = "upload:base.qcow" } },
        });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        // but not an ISO as a backing disk
        var bad = await c.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("boot"), memoryMiB = 128, disks = new[] { new { sizeMiB = 512, backingImageId = "builtin:memtest86plus-iso" } },
        });
        await AssertProblemAsync(bad, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Openapi_document_and_reference_are_served()
    {
        using var c = App.Client();
        var doc = await c.GetStringAsync("/openapi/v1.json");
        Assert.Contains("/api/vms", doc);
        Assert.Contains("/api/auth/tokens", doc);
        var docs = await c.GetAsync("/api/docs/");
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Contains("scalar", await docs.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Vm_changes_and_token_creation_are_audited()
    {
        var userName = Unique("aud");
        using var c = App.Client((await App.NewUserAsync(userName)).Token);
        var name = Unique("audited");
        var vm = await CreateVmAsync(c, name);
        var id = vm["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await c.PutAsJsonAsync($"/api/vms/{id}", new { name, memoryMiB = 77, version = vm["version"]!.GetValue<uint>() })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await c.DeleteAsync($"/api/vms/{id}")).StatusCode);

        using var admin = App.Client(await App.AdminTokenAsync());
        var events = await admin.GetFromJsonAsync<List<AuditRow>>($"/api/audit?search={userName}&take=100", Web);
        var mine = events!.Where(e => e.UserName == userName).Select(e => e.Action).ToList();
        Assert.Contains("vm.create", mine);
        Assert.Contains("vm.update", mine);
        Assert.Contains("vm.delete", mine);
        Assert.Contains("token.create", mine);
        Assert.Contains(events!, e => e.Action == "user.create" && e.Details.Contains(userName));
    }

    [Fact]
    public async Task Cookie_sign_in_page_round_trip()
    {
        var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true };
        using var c = new HttpClient(handler) { BaseAddress = App.BaseAddress };

        var protectedPage = await c.GetAsync("/vms");
        Assert.Equal(HttpStatusCode.Redirect, protectedPage.StatusCode);
        Assert.StartsWith("/account/login", protectedPage.Headers.Location!.PathAndQuery);

        var form = await c.GetStringAsync("/account/login?returnUrl=%2Fvms");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(token);

        var wrong = await c.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["userName"] = "admin", ["password"] = "nope", ["returnUrl"] = "/vms",
        }));
        Assert.Contains("error=invalid", wrong.Headers.Location!.OriginalString);

        var ok = await c.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["userName"] = "admin", ["password"] = PortalAppFixture.AdminPassword, ["returnUrl"] = "https://evil.example/",
        }));
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        Assert.Equal("/", ok.Headers.Location!.OriginalString); // open redirects are refused

        var page = await c.GetAsync("/vms");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        // the cookie also works for the API
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/api/vms")).StatusCode);
    }

    [Fact]
    public async Task Login_post_without_antiforgery_token_is_rejected()
    {
        using var c = App.Client();
        var r = await c.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["userName"] = "admin", ["password"] = PortalAppFixture.AdminPassword,
        }));
        // rejected before any sign-in happens (the UI shows its error page): 4xx and no auth cookie
        Assert.InRange((int)r.StatusCode, 400, 499);
        Assert.False(r.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(x => x.StartsWith(".VmPortal.Auth")));
    }

    private sealed record ImageRow(string Id, string Name, string Kind, long SizeBytes, bool BuiltIn);
    private sealed record AuditRow(long Id, string UserName, string Action, string Details, bool Success);
}

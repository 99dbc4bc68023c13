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
        // rejected before any sign-in happens: back to the sign-in page with "the form expired", and no auth cookie
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.StartsWith("/account/login?error=expired", r.Headers.Location!.OriginalString);
        Assert.False(r.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(x => x.StartsWith(".VmPortal.Auth")));
    }

    private sealed record ImageRow(string Id, string Name, string Kind, long SizeBytes, bool BuiltIn);
    private sealed record AuditRow(long Id, string UserName, string Action, string Details, bool Success);
}

[Collection(PortalCollection.Name)]
public sealed class ImageUploadTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Admin_uploads_lists_and_deletes_an_image_users_cannot()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var file = Unique("tools") + ".iso";
        var payload = MinimalIso(150);
        var r = await admin.PostAsync($"/api/images?name={file}", new ByteArrayContent(payload));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var created = await JsonAsync(r);
        Assert.Equal("upload:" + file, created["id"]!.GetValue<string>());
        Assert.Equal("iso", created["kind"]!.GetValue<string>());
        Assert.Equal(payload.Length, created["sizeBytes"]!.GetValue<long>());
        Assert.Equal(payload, await File.ReadAllBytesAsync(Path.Combine(App.ImageStoreDir, file)));

        // same name again, in any case: 409; a built-in's name: 409; hostile names: 400 and nothing written outside the store
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/images?name={file}", new ByteArrayContent(payload))).StatusCode);
        var upper = await admin.PostAsync($"/api/images?name={file.ToUpperInvariant()}", new ByteArrayContent(payload));
        await AssertProblemAsync(upper, HttpStatusCode.Conflict);
        Assert.Contains("without regard to case", (await JsonAsync(upper))["detail"]!.GetValue<string>());
        Assert.False(File.Exists(Path.Combine(App.ImageStoreDir, file.ToUpperInvariant())));
        await AssertProblemAsync(await admin.PostAsync("/api/images?name=MEMTEST86PLUS.iso", new ByteArrayContent(payload)), HttpStatusCode.Conflict);
        foreach (var bad in new[] { "../escape.iso", ".hidden", "a/b.iso", "" })
            await AssertProblemAsync(await admin.PostAsync($"/api/images?name={Uri.EscapeDataString(bad)}", new ByteArrayContent(payload)), HttpStatusCode.BadRequest);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(App.ImageStoreDir)!, "escape.iso")));

        // users may list and use it, but not upload or delete
        var user = App.Client((await App.NewUserAsync(Unique("iu"))).Token);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync($"/api/images?name=x{file}", new ByteArrayContent(payload))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.DeleteAsync($"/api/images/{Uri.EscapeDataString("upload:" + file)}")).StatusCode);
        var vm = await user.PostAsJsonAsync("/api/vms", new { name = Unique("uses"), memoryMiB = 64, cdromImageId = "upload:" + file });
        Assert.Equal(HttpStatusCode.Created, vm.StatusCode);

        // in use: 409; after the VM is gone: 204
        var id = Uri.EscapeDataString("upload:" + file);
        await AssertProblemAsync(await admin.DeleteAsync($"/api/images/{id}"), HttpStatusCode.Conflict);
        Assert.Equal(HttpStatusCode.NoContent, (await user.DeleteAsync($"/api/vms/{(await JsonAsync(vm))["id"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/images/{id}")).StatusCode);
        Assert.False(File.Exists(Path.Combine(App.ImageStoreDir, file)));
        await AssertProblemAsync(await admin.DeleteAsync("/api/images/builtin:debian-i386-rescue-iso"), HttpStatusCode.Conflict);
        await AssertProblemAsync(await admin.DeleteAsync($"/api/images/{id}"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Admin_resets_a_password_which_clears_a_lockout()
    {
        var name = Unique("reset");
        var (id, _) = await App.NewUserAsync(name, password: "first-password-1");
        using var c = App.Client();
        for (var i = 0; i < 5; i++)
            await c.PostAsJsonAsync("/api/auth/tokens", new { username = name, password = "wrong", name = "t", expiresInDays = 1 });
        var users = (VmPortal.Core.Accounts.UserService)App.Services.GetService(typeof(VmPortal.Core.Accounts.UserService))!;
        var list = await users.ListAsync();
        Assert.True(list.Single(u => u.Id == id).IsLockedOut);

        var admin = new VmPortal.Core.Caller(Guid.Empty, "admin", true);
        Assert.Equal(VmPortal.Core.OpStatus.Invalid, (await users.ResetPasswordAsync(admin, id, "short")).Status);
        Assert.True((await users.ResetPasswordAsync(admin, id, "second-password-2")).IsOk);
        Assert.False((await users.ListAsync()).Single(u => u.Id == id).IsLockedOut);
        await AssertProblemAsync(await c.PostAsJsonAsync("/api/auth/tokens", new { username = name, password = "first-password-1", name = "t", expiresInDays = 1 }), HttpStatusCode.Unauthorized);
        Assert.Equal(HttpStatusCode.Created, (await c.PostAsJsonAsync("/api/auth/tokens", new { username = name, password = "second-password-2", name = "t", expiresInDays = 1 })).StatusCode);
    }
}

/// <summary>Uploads are checked against their kind by content (issue 15 #10).</summary>
[Collection(PortalCollection.Name)]
public sealed class ImageContentTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Uploads_whose_content_is_not_their_kind_are_refused_and_nothing_is_kept()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var random = new byte[300_000];
        new Random(2).NextBytes(random);
        var notIso = MinimalIso(20);
        notIso[16 * 2048 + 1] = (byte)'X'; // "CX001"
        var truncated = MinimalIso(20)[..(20 * 2048 - 100)];
        var cases = new (string Name, byte[] Bytes, string Expect)[]
        {
            (Unique("garbage") + ".iso", random, "Not an ISO image"),
            (Unique("tiny") + ".iso", [1, 2, 3], "shorter than an ISO 9660"),
            (Unique("noncd") + ".iso", notIso, "no ISO 9660 volume descriptor"),
            (Unique("cut") + ".iso", truncated, "not a whole number"),
            (Unique("k") + "-vmlinuz", random, "Not a kernel the VM can boot"),
            (Unique("k") + ".lkrn", MinimalIso(20), "Not a kernel the VM can boot"),
            (Unique("r") + "-initrd.img", random, "Not an initrd"),
        };
        foreach (var (name, bytes, expect) in cases)
        {
            var r = await admin.PostAsync($"/api/images?name={name}", new ByteArrayContent(bytes));
            await AssertProblemAsync(r, HttpStatusCode.BadRequest);
            Assert.Contains(expect, (await JsonAsync(r)).ToJsonString());
            Assert.False(File.Exists(Path.Combine(App.ImageStoreDir, name)), name);
        }
        Assert.Empty(Directory.GetFiles(App.ImageStoreDir, ".upload-*"));

        // the real thing of each kind is accepted: an ISO file system, a gzip initrd, and (when the guest images are
        // built) a real kernel
        var gz = new MemoryStream();
        using (var z = new System.IO.Compression.GZipStream(gz, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            z.Write("070701"u8);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync($"/api/images?name={Unique("ok")}-initrd.gz", new ByteArrayContent(gz.ToArray()))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync($"/api/images?name={Unique("ok")}.iso", new ByteArrayContent(MinimalIso(17)))).StatusCode);
        var kernel = VmPortal.Emulator.Firmware.GuestImages.PathOf(VmPortal.Emulator.Firmware.GuestImages.RescueKernel);
        Assert.True(File.Exists(kernel), VmPortal.Emulator.Firmware.GuestImages.BuildHint);
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync($"/api/images?name={Unique("ok")}-vmlinuz", new ByteArrayContent(await File.ReadAllBytesAsync(kernel)))).StatusCode);
    }
}


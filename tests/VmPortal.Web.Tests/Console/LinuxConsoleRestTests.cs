using System.Net;
using System.Net.Http.Json;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// The built-in Debian Linux image through the REST console, as a script would drive it: start, wait for the
/// guest's ready line, type a command through the emulated keyboard, wait for its computed answer, stop.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class LinuxConsoleRestTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task The_builtin_linux_image_boots_and_answers_typed_commands_over_rest()
    {
        // test.sh builds the guest images; on a developer machine without them this says how to get them.
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");

        // The fixture's built-in image folder holds placeholder files, so the admin uploads the real ISO.
        using var admin = App.Client(await App.AdminTokenAsync());
        var isoName = Unique("rescue") + ".iso";
        using (var upload = new StreamContent(File.OpenRead(iso)))
        {
            var up = await admin.PostAsync($"/api/images?name={isoName}", upload);
            Assert.True(up.IsSuccessStatusCode, $"upload: {up.StatusCode} {await up.Content.ReadAsStringAsync()}");
        }
        var list = System.Text.Json.Nodes.JsonNode.Parse(await admin.GetStringAsync("/api/images"))!.AsArray();
        var imageId = list.Single(i => i!["id"]!.GetValue<string>().StartsWith("upload:") && i["id"]!.GetValue<string>().Contains(isoName))!["id"]!.GetValue<string>();

        var a = await App.NewUserAsync(Unique("linux-a"));
        var b = await App.NewUserAsync(Unique("linux-b"));
        using var ca = App.Client(a.Token);
        using var cb = App.Client(b.Token);
        ca.Timeout = TimeSpan.FromMinutes(10);
        var created = await ca.PostAsJsonAsync("/api/vms", new
        {
            name = Unique("linux"),
            memoryMiB = 128,
            cdromImageId = imageId,
            bootOrder = new[] { "cdrom" },
        });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await JsonAsync(created))["id"]!.GetValue<Guid>();

        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            var ready = await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "VMPORTAL-GUEST-READY", timeoutSeconds = 480, source = "screen" });
            Assert.True(ready.StatusCode == HttpStatusCode.OK, $"ready: {ready.StatusCode} {await ready.Content.ReadAsStringAsync()}");
            var prompt = await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "(?m)^/ #", timeoutSeconds = 120, source = "screen" });
            Assert.True(prompt.StatusCode == HttpStatusCode.OK, $"prompt: {prompt.StatusCode} {await prompt.Content.ReadAsStringAsync()}");

            // the foreign user can neither type nor read
            await AssertProblemAsync(await cb.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "reboot\n" }), HttpStatusCode.NotFound);
            await AssertProblemAsync(await cb.GetAsync($"/api/vms/{id}/console/text"), HttpStatusCode.NotFound);

            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "echo $((6*7))-ok\n" })).StatusCode);
            var answer = await ca.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "(?m)^42-ok", timeoutSeconds = 60, source = "screen" });
            var body = await JsonAsync(answer);
            Assert.True(answer.StatusCode == HttpStatusCode.OK, $"answer: {answer.StatusCode} {body}");
            Assert.Equal("42-ok", body["match"]!.GetValue<string>());

            var text = await JsonAsync(await ca.GetAsync($"/api/vms/{id}/console/text"));
            Assert.Contains("echo $((6*7))-ok", text["text"]!.GetValue<string>());
        }
        finally
        {
            await ca.PostAsync($"/api/vms/{id}/stop", null);
        }
        Assert.Equal("stopped", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
    }
}

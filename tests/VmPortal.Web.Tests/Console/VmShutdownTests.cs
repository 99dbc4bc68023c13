using System.Net;
using System.Net.Http.Json;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// <c>POST /api/vms/{id}/shutdown</c> on a real guest (the rescue image, whose /init powers off when the ACPI power
/// button's count rises): bad timeouts are 400, a VM that is not running is 409, another user's VM is 404; a press
/// before the guest has enabled ACPI (early boot) runs out its short timeout with a 504 problem that names
/// <c>stop</c>, the VM runs on; once the guest is up, the power button shuts it down: 200, Stopped, with the reason.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class VmShutdownTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Shutdown_presses_the_power_button_and_waits_for_the_guest_or_says_it_did_not_stop()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");
        using var admin = App.Client(await App.AdminTokenAsync());
        var isoName = Unique("rescue-acpi") + ".iso";
        using (var upload = new StreamContent(File.OpenRead(iso)))
        {
            var up = await admin.PostAsync($"/api/images?name={isoName}", upload);
            Assert.True(up.IsSuccessStatusCode, $"upload: {up.StatusCode} {await up.Content.ReadAsStringAsync()}");
        }
        var list = System.Text.Json.Nodes.JsonNode.Parse(await admin.GetStringAsync("/api/images"))!.AsArray();
        var imageId = list.Single(i => i!["id"]!.GetValue<string>().StartsWith("upload:") && i["id"]!.GetValue<string>().Contains(isoName))!["id"]!.GetValue<string>();

        var owner = await App.NewUserAsync(Unique("acpi-a"));
        var other = await App.NewUserAsync(Unique("acpi-b"));
        using var c = App.Client(owner.Token);
        using var co = App.Client(other.Token);
        c.Timeout = TimeSpan.FromMinutes(20);
        var created = await c.PostAsJsonAsync("/api/vms", new { name = Unique("acpi"), memoryMiB = 128, cdromImageId = imageId, bootOrder = new[] { "cdrom" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await JsonAsync(created))["id"]!.GetValue<Guid>();

        // Not running: 409. Bad timeouts: 400 with the allowed range, before anything else happens.
        await AssertProblemAsync(await c.PostAsync($"/api/vms/{id}/shutdown", null), HttpStatusCode.Conflict);
        foreach (var bad in new[] { "0", "-5", "3601", "abc", "1.5", "" })
        {
            var r = await c.PostAsync($"/api/vms/{id}/shutdown?timeoutSeconds={bad}", null);
            await AssertProblemAsync(r, HttpStatusCode.BadRequest);
            Assert.Contains("timeoutSeconds must be a whole number of seconds from 1 to 3600", (await JsonAsync(r))["detail"]!.GetValue<string>());
        }

        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            await AssertProblemAsync(await co.PostAsync($"/api/vms/{id}/shutdown?timeoutSeconds=1", null), HttpStatusCode.NotFound);

            // Early boot: the firmware (or a kernel that has not enabled ACPI yet) does not listen. 504, still running.
            var early = await c.PostAsync($"/api/vms/{id}/shutdown?timeoutSeconds=1", null);
            await AssertProblemAsync(early, HttpStatusCode.GatewayTimeout);
            var problem = await JsonAsync(early);
            Assert.Equal("The guest did not shut down", problem["title"]!.GetValue<string>());
            Assert.Contains($"/api/vms/{id}/stop", problem["detail"]!.GetValue<string>());
            Assert.Equal(1, problem["timeoutSeconds"]!.GetValue<int>());
            Assert.False(problem["guestHandlesPowerButton"]!.GetValue<bool>());
            Assert.Equal("Running", problem["state"]!.GetValue<string>());
            Assert.Equal("running", (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());

            // (console/wait allows 600 s; a loaded 2-core machine may need longer for a boot: ask again once)
            var prompt = await c.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "(?m)^/ #", timeoutSeconds = 600, source = "screen" });
            if (prompt.StatusCode == HttpStatusCode.RequestTimeout)
                prompt = await c.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern = "(?m)^/ #", timeoutSeconds = 600, source = "screen" });
            Assert.True(prompt.StatusCode == HttpStatusCode.OK, $"prompt: {prompt.StatusCode} {await prompt.Content.ReadAsStringAsync()}");

            // Up: the guest shuts down on the power button.
            var done = await c.PostAsync($"/api/vms/{id}/shutdown?timeoutSeconds=300", null);
            var body = await JsonAsync(done);
            Assert.True(done.StatusCode == HttpStatusCode.OK, $"shutdown: {done.StatusCode} {body}");
            Assert.Equal("stopped", body["state"]!.GetValue<string>(), ignoreCase: true);
            Assert.Equal("the guest powered off", body["stopReason"]!.GetValue<string>());
            Assert.Equal("stopped", (await JsonAsync(await c.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
            await AssertProblemAsync(await c.PostAsync($"/api/vms/{id}/shutdown", null), HttpStatusCode.Conflict);
        }
        finally
        {
            await c.PostAsync($"/api/vms/{id}/stop", null);
        }
    }
}

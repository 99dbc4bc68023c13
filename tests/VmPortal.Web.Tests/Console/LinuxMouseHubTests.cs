using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.SignalR.Client;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// Mouse input from the console hub reaches the guest's PS/2 mouse: the rescue guest (psmouse loaded, mousedev built
/// into Debian's kernel) reads /dev/input/mice while the owner's hub connection sends a move of (+10, −5) and a left
/// click; the guest sees exactly the PS/2 packets for them (mousedev's 3-byte format: 08 0a 05 = no button, right
/// 10, up 5; 09 00 00 = left down; 08 00 00 = left up).
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class LinuxMouseHubTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Mouse_moves_and_clicks_from_the_hub_reach_the_guests_dev_input_mice()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");
        using var admin = App.Client(await App.AdminTokenAsync());
        var isoName = Unique("rescue-mouse") + ".iso";
        using (var upload = new StreamContent(File.OpenRead(iso)))
        {
            var up = await admin.PostAsync($"/api/images?name={isoName}", upload);
            Assert.True(up.IsSuccessStatusCode, $"upload: {up.StatusCode} {await up.Content.ReadAsStringAsync()}");
        }
        var list = System.Text.Json.Nodes.JsonNode.Parse(await admin.GetStringAsync("/api/images"))!.AsArray();
        var imageId = list.Single(i => i!["id"]!.GetValue<string>().StartsWith("upload:") && i["id"]!.GetValue<string>().Contains(isoName))!["id"]!.GetValue<string>();

        var a = await App.NewUserAsync(Unique("mouse"));
        using var ca = App.Client(a.Token);
        ca.Timeout = TimeSpan.FromMinutes(10);
        var created = await ca.PostAsJsonAsync("/api/vms", new { name = Unique("mousevm"), memoryMiB = 128, cdromImageId = imageId, bootOrder = new[] { "cdrom" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await JsonAsync(created))["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            await WaitScreen(ca, id, "VMPORTAL-GUEST-READY", 480);
            await WaitScreen(ca, id, "(?m)^/ #", 120);
            // psmouse found the mouse (the wheel knocks made it an IntelliMouse Explorer).
            await Type(ca, id, "dmesg | grep -c -i 'input: .*PS/2' ; echo PSM-$((3*3))\n");
            await WaitScreen(ca, id, "(?m)^PSM-9", 60);
            Assert.Matches(new Regex(@"(?m)^[1-9]\s*\n\s*PSM-9"), await ScreenText(ca, id));

            await using var hub = Connect(a.Token);
            await hub.StartAsync();
            await hub.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
            var bad = await Assert.ThrowsAsync<Microsoft.AspNetCore.SignalR.HubException>(() => hub.InvokeAsync("Mouse", 0, 0, 64));
            Assert.Contains("bit mask", bad.Message);

            // A reader of /dev/input/mice in the background, then the input through the hub.
            await Type(ca, id, "clear; cat /dev/input/mice > /tmp/m & sleep 1; echo ARMED-$((2+2))\n");
            await WaitScreen(ca, id, "(?m)^ARMED-4", 60);
            await Task.Delay(500);
            await hub.InvokeAsync("Mouse", 10, -5, 0);  // right 10, up 5
            await hub.InvokeAsync("Mouse", 0, 0, 1);    // left button down
            await hub.InvokeAsync("Mouse", 0, 0, 0);    // and up
            await Type(ca, id, "sleep 1; od -An -tx1 /tmp/m; echo DONE-$((5+5))\n");
            await WaitScreen(ca, id, "(?m)^DONE-10", 60);
            var text = await ScreenText(ca, id);
            var dump = Regex.Match(text, @"(?m)^((?: [0-9a-f]{2})+)\s*\n\s*DONE-10");
            Assert.True(dump.Success, $"no od output on the screen:\n{text}");
            Assert.Equal("08 0a 05 09 00 00 08 00 00", dump.Groups[1].Value.Trim());
        }
        finally
        {
            await ca.PostAsync($"/api/vms/{id}/stop", null);
        }
    }

    private static async Task Type(HttpClient c, Guid id, string text) =>
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text })).StatusCode);

    private async Task WaitScreen(HttpClient c, Guid id, string pattern, int seconds)
    {
        var r = await c.PostAsJsonAsync($"/api/vms/{id}/console/wait", new { pattern, timeoutSeconds = seconds, source = "screen" });
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"/{pattern}/: {r.StatusCode} {await r.Content.ReadAsStringAsync()}\n{await ScreenText(c, id)}");
    }

    private async Task<string> ScreenText(HttpClient c, Guid id) =>
        (await JsonAsync(await c.GetAsync($"/api/vms/{id}/console/text")))["text"]?.GetValue<string>() ?? "";
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace VmPortal.E2E.Console;

/// <summary>
/// The live console in chromium: the owner starts a VM with the page's power button, opens /vms/{id}/console and
/// sees SeaBIOS's screen drawn on the canvas; another user gets no console (and no frames) for that VM.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ConsoleBrowserTests(BrowserFixture fx)
{
    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Number of distinct colours on the console canvas (1 = blank).</summary>
    private static Task<int> CanvasColoursAsync(IPage page) => page.EvaluateAsync<int>(@"() => {
        const c = document.querySelector('canvas.vmc-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length && seen.size < 64; i += 4) seen.add((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]);
        return seen.size;
    }");

    [Fact]
    public async Task Owner_starts_a_vm_and_sees_its_screen_on_the_canvas_a_stranger_does_not()
    {
        const string password = "user-password-1";
        var owner = Unique("own");
        var stranger = Unique("str");
        var a = await fx.App.NewUserAsync(owner, password: password);
        await fx.App.NewUserAsync(stranger, password: password);
        using var api = fx.App.Client(a.Token);
        var created = await api.PostAsJsonAsync("/api/vms", new { name = Unique("con-"), memoryMiB = 32, bootOrder = new[] { "cdrom", "disk" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();

        var page = await fx.NewPageAsync();
        await page.SignInAsync(owner, password);
        await page.GotoAsync($"/vms/{id}");
        await page.WaitForCircuitAsync();
        await page.ClickAsync("[data-testid=vm-start]");
        try
        {
            await Assertions.Expect(page.Locator("[data-testid=vm-state]")).ToHaveTextAsync("Running");

            await page.GotoAsync($"/vms/{id}/console");
            var canvas = page.Locator("canvas.vmc-canvas[data-seq]");
            await canvas.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
            // SeaBIOS's banner is drawn: the canvas is no longer one flat colour
            var deadline = DateTime.UtcNow.AddSeconds(30);
            int colours;
            while ((colours = await CanvasColoursAsync(page)) < 2 && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.True(colours >= 2, $"canvas has {colours} colour(s)");
            var text = JsonNode.Parse(await api.GetStringAsync($"/api/vms/{id}/console/text"))!["text"]!.GetValue<string>();
            Assert.Contains("SeaBIOS", text);
            await page.ShotAsync("console-01-seabios");

            // keyboard into the canvas reaches the guest without breaking the console
            await canvas.ClickAsync();
            await page.Keyboard.PressAsync("Escape");
            await Assertions.Expect(page.Locator(".vmc-conn")).ToContainTextAsync("connected");

            // another user: the console page refuses, no canvas, no frames
            var other = await fx.NewPageAsync();
            await other.SignInAsync(stranger, password);
            await other.GotoAsync($"/vms/{id}/console");
            await Assertions.Expect(other.GetByText("does not exist or you cannot see it")).ToBeVisibleAsync();
            Assert.Equal(0, await other.Locator("canvas.vmc-canvas").CountAsync());
            await other.Context.CloseAsync();
        }
        finally
        {
            await api.PostAsync($"/api/vms/{id}/stop", null);
            await page.Context.CloseAsync();
        }
    }
}

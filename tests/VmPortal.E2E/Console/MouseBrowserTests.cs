using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using VmPortal.Web.Runtime;

namespace VmPortal.E2E.Console;

/// <summary>
/// The console's mouse in chromium: a click on the screen captures the pointer (Pointer Lock API), moving and
/// clicking then sends relative motion and buttons through the hub to the VM's machine (its mouse-event counter on
/// the server goes up, with the motion summed per animation frame), Esc releases the pointer, and the toolbar toggle
/// turns capturing off so a click no longer captures.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class MouseBrowserTests(BrowserFixture fx)
{
    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..6]}";

    private static Task<bool> LockedAsync(IPage page) =>
        page.EvaluateAsync<bool>("() => document.pointerLockElement === document.querySelector('canvas.vmc-canvas')");

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return true;
            await Task.Delay(100);
        }
        return await condition();
    }

    [Fact]
    public async Task Clicking_the_screen_captures_the_pointer_and_mouse_input_reaches_the_machine()
    {
        const string password = "user-password-1";
        var owner = Unique("mou");
        var a = await fx.App.NewUserAsync(owner, password: password);
        using var api = fx.App.Client(a.Token);
        var created = await api.PostAsJsonAsync("/api/vms", new { name = Unique("mouse-"), memoryMiB = 32, bootOrder = new[] { "cdrom", "disk" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        var host = fx.App.Services.GetRequiredService<VmRuntime>().Host;

        var page = await fx.NewPageAsync();
        try
        {
            await page.SignInAsync(owner, password);
            await page.GotoAsync($"/vms/{id}/console"); // the console page has its own layout: the canvas shows the circuit is up
            var canvas = page.Locator("canvas.vmc-canvas[data-seq]");
            await canvas.WaitForAsync(new LocatorWaitForOptions { Timeout = 120_000 }); // the first frame; slow on a loaded machine
            await Assertions.Expect(page.Locator(".vmc-state")).ToHaveTextAsync("Running");
            var toggle = page.Locator("button.vmc-mouse-toggle");
            await Assertions.Expect(toggle).ToHaveAttributeAsync("aria-pressed", "true");
            Assert.False(await LockedAsync(page));
            long before = host.Get(id).MouseEvents;

            // A click captures the pointer.
            await canvas.ClickAsync();
            Assert.True(await EventuallyAsync(() => LockedAsync(page)), "the click did not lock the pointer to the canvas");
            await Assertions.Expect(page.Locator(".vmc-msg")).ToContainTextAsync("Esc");

            // Motion and a click while captured reach the machine.
            var box = (await canvas.BoundingBoxAsync())!;
            float x = box.X + box.Width / 2, y = box.Y + box.Height / 2;
            for (int i = 1; i <= 10; i++) await page.Mouse.MoveAsync(x + 3 * i, y - 2 * i);
            await page.Mouse.DownAsync();
            await page.Mouse.UpAsync();
            Assert.True(await EventuallyAsync(() => Task.FromResult(host.Get(id).MouseEvents >= before + 3)),
                $"the machine received {host.Get(id).MouseEvents - before} mouse events");
            long sent = long.Parse(await canvas.GetAttributeAsync("data-mouse-sent") ?? "0");
            Assert.InRange(sent, 3, 12); // moves batched per animation frame, plus the button down and up
            await page.ShotAsync("console-mouse-captured");

            // Esc releases the pointer.
            await page.Keyboard.PressAsync("Escape");
            Assert.True(await EventuallyAsync(async () => !await LockedAsync(page)), "Esc did not release the pointer");

            // The toolbar toggle turns capturing off: a click no longer captures.
            await toggle.ClickAsync();
            await Assertions.Expect(toggle).ToHaveAttributeAsync("aria-pressed", "false");
            await canvas.ClickAsync();
            await Task.Delay(500);
            Assert.False(await LockedAsync(page));
            await toggle.ClickAsync();
            await Assertions.Expect(toggle).ToHaveAttributeAsync("aria-pressed", "true");
        }
        catch
        {
            await page.ShotAsync("console-mouse-failed");
            throw;
        }
        finally
        {
            await api.PostAsync($"/api/vms/{id}/stop", null);
            await page.Context.CloseAsync();
        }
    }
}

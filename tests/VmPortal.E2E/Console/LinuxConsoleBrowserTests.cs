using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Emulator.Firmware;

namespace VmPortal.E2E.Console;

/// <summary>
/// The live console with the real Debian Linux guest, in chromium, on one boot: a user creates a VM from the built-in
/// Linux image in the dialog, starts it, opens the Console tab, waits for the shell prompt and types
/// <c>echo hello-$((20+22))</c> with the real keyboard into the canvas; <c>hello-42</c> appears (screen text through
/// "Copy text" and REST; canvas pixels changed). A second browser context watching the same console sees the same
/// picture; a user without rights gets no frames and cannot type; a view-only link shows the screen but its keys do
/// not reach the guest, and revoking it closes that viewer.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class LinuxConsoleBrowserTests(BrowserFixture fx)
{
    private const string Password = "user-password-1";
    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>FNV-1a over the console canvas's pixels (which picture it shows), and its colour count.</summary>
    private static async Task<CanvasInfo> CanvasAsync(IPage page) => System.Text.Json.JsonSerializer.Deserialize<CanvasInfo>(
        await page.EvaluateAsync<string>(@"() => {
        const c = document.querySelector('canvas.vmc-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let h = 0x811c9dc5;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4) {
            h = Math.imul(h ^ d[i], 16777619); h = Math.imul(h ^ d[i + 1], 16777619); h = Math.imul(h ^ d[i + 2], 16777619);
            if (seen.size < 64) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        return JSON.stringify({ hash: (h >>> 0).toString(16), colours: seen.size, width: c.width, height: c.height });
    }"), new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!;

    public sealed record CanvasInfo(string Hash, int Colours, int Width, int Height);

    /// <summary>Presses the keys of <paramref name="text"/> one by one as physical US-layout keys (with Shift where needed).</summary>
    private static async Task TypeWithKeyboardAsync(IPage page, string text)
    {
        foreach (var ch in text)
        {
            var key = ch switch
            {
                >= 'a' and <= 'z' => "Key" + char.ToUpperInvariant(ch),
                >= '0' and <= '9' => "Digit" + ch,
                ' ' => "Space",
                '-' => "Minus",
                '=' => "Equal",
                '+' => "Shift+Equal",
                '$' => "Shift+Digit4",
                '(' => "Shift+Digit9",
                ')' => "Shift+Digit0",
                '\n' => "Enter",
                _ => throw new ArgumentException($"no key for '{ch}'"),
            };
            await page.Keyboard.PressAsync(key);
        }
    }

    /// <summary>Clicks the console's "Copy text" button and returns what it put on the clipboard.</summary>
    private static async Task<string> CopyScreenTextAsync(IPage page)
    {
        await page.EvaluateAsync("() => { window.__copied = null; }");
        await page.Locator(".vmc-root button", new() { HasText = "Copy text" }).ClickAsync();
        await page.WaitForFunctionAsync("() => typeof window.__copied === 'string'");
        return await page.EvaluateAsync<string>("() => window.__copied");
    }

    private static async Task<string> ScreenTextAsync(HttpClient api, Guid id) =>
        JsonNode.Parse(await api.GetStringAsync($"/api/vms/{id}/console/text"))!["text"]?.GetValue<string>() ?? "";

    private static async Task WaitForCanvasAsync(IPage page)
    {
        await page.Locator("canvas.vmc-canvas[data-seq]").WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
        await page.WaitForFunctionAsync("() => document.querySelector('.vmc-conn')?.dataset.conn === 'connected'");
    }

    /// <summary>Waits until two pages' canvases show the same picture (they get the same frames; a blinking cursor may differ for a moment).</summary>
    private static async Task<(CanvasInfo A, CanvasInfo B)> SamePictureAsync(IPage a, IPage b, double seconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var ca = await CanvasAsync(a);
            var cb = await CanvasAsync(b);
            if (ca.Hash == cb.Hash || DateTime.UtcNow > until) return (ca, cb);
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_user_types_into_the_linux_console_in_the_browser_and_others_see_it_only_as_their_rights_allow()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(fx.App.RealImages && File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");

        var owner = Unique("lin");
        var stranger = Unique("str");
        var a = await fx.App.NewUserAsync(owner, password: Password);
        await fx.App.NewUserAsync(stranger, password: Password);
        using var api = fx.App.Client(a.Token);
        api.Timeout = TimeSpan.FromMinutes(11);
        var vmName = Unique("linux-");

        // the user creates a VM from the built-in Linux image in the dialog and starts it from its page
        var page = await fx.NewPageAsync();
        await page.SignInAsync(owner, Password);
        await page.ClickAsync("[data-testid=vm-create]");
        await page.FillAsync("#vm-name", vmName);
        await page.GetByLabel("CD-ROM image").ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { Name = "Debian Linux (i386) rescue shell", Exact = true }).ClickAsync();
        await page.ShotAsync("linux-01-create-dialog");
        await page.ClickAsync("[data-testid=vm-save]");
        var row = page.Row(vmName);
        await row.WaitForAsync();
        await row.Locator("[data-testid=vm-link]").ClickAsync();
        await page.WaitForURLAsync("**/vms/*");
        var id = Guid.Parse(page.Url.Split('/').Last());
        var vm = JsonNode.Parse(await api.GetStringAsync($"/api/vms/{id}"))!;
        Assert.Equal("builtin:debian-i386-rescue-iso", vm["cdromImageId"]!.GetValue<string>());

        await page.ClickAsync("[data-testid=vm-start]");
        var watcher = await fx.NewPageAsync();
        var viewer = await fx.NewPageAsync();
        var other = await fx.NewPageAsync();
        try
        {
            await Assertions.Expect(page.Locator("[data-testid=vm-state]")).ToHaveTextAsync("Running");
            await page.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
            await WaitForCanvasAsync(page);

            // a second browser context (the same user, signed in separately) watches the console in its own tab
            await watcher.SignInAsync(owner, Password);
            await watcher.GotoAsync($"/vms/{id}/console");
            await WaitForCanvasAsync(watcher);

            // Linux boots to its shell (about two minutes in the emulator)
            var ready = await api.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "VMPORTAL-GUEST-READY", timeoutSeconds = 600, source = "screen" });
            Assert.True(ready.StatusCode == HttpStatusCode.OK, $"ready: {ready.StatusCode} {await ready.Content.ReadAsStringAsync()}");
            var prompt = await api.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "(?m)^/ #", timeoutSeconds = 120, source = "screen" });
            Assert.True(prompt.StatusCode == HttpStatusCode.OK, $"prompt: {prompt.StatusCode} {await prompt.Content.ReadAsStringAsync()}");
            var (before, watcherBefore) = await SamePictureAsync(page, watcher);
            Assert.True(before.Colours >= 2, $"canvas has {before.Colours} colour(s)");
            Assert.Equal(before.Hash, watcherBefore.Hash);
            await page.ShotAsync("linux-02-prompt");

            // the real keyboard, into the canvas
            await page.Locator("canvas.vmc-canvas").ClickAsync(); // focuses the screen and captures the pointer
            await TypeWithKeyboardAsync(page, "echo hello-$((20+22))\n");
            await page.Keyboard.PressAsync("Escape"); // releases the pointer, so the toolbar can be clicked again
            await Assertions.Expect(page.Locator("canvas.vmc-canvas:not([data-pointer-locked='true'])")).ToHaveCountAsync(1);
            var answer = await api.PostAsJsonAsync($"/api/vms/{id}/console/wait",
                new { pattern = "(?m)^hello-42", timeoutSeconds = 60, source = "screen" });
            Assert.True(answer.StatusCode == HttpStatusCode.OK, $"answer: {answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");

            // the typist's page: "Copy text" has the command and its answer; the canvas shows a new picture
            var copied = await CopyScreenTextAsync(page);
            // a late kernel message ("[  150.2] random: crng init done") may land inside the typed line on the screen
            var withoutKernelLines = System.Text.RegularExpressions.Regex.Replace(copied, @"\[\s*\d+\.\d+\][^\n]*\n", "");
            Assert.True(withoutKernelLines.Contains("echo hello-$((20+22))"), $"the command is not on the screen:\n{copied}");
            Assert.True(copied.Contains("\nhello-42"), $"the answer is not on the screen:\n{copied}");
            var (after, watcherAfter) = await SamePictureAsync(page, watcher);
            Assert.NotEqual(before.Hash, after.Hash);
            // the watcher sees the same picture and the same text
            Assert.Equal(after.Hash, watcherAfter.Hash);
            Assert.Contains("\nhello-42", await CopyScreenTextAsync(watcher));
            await page.ShotAsync("linux-03-hello-42");
            await watcher.ShotAsync("linux-04-watcher");

            // a user without rights: the page refuses, and the console client pointed at the VM anyway gets no
            // frames and cannot type
            await other.SignInAsync(stranger, Password);
            await other.GotoAsync($"/vms/{id}/console");
            await Assertions.Expect(other.GetByText("does not exist or you cannot see it")).ToBeVisibleAsync();
            Assert.Equal(0, await other.Locator("canvas.vmc-canvas").CountAsync());
            var forcedJson = await other.EvaluateAsync<string>(@"async (vmId) => {
                const m = await import('/js/vm-console.js');
                const div = document.createElement('div');
                div.style.cssText = 'width: 800px; height: 500px';
                document.body.appendChild(div);
                const h = await m.mount(div, { vmId });
                await new Promise((r) => setTimeout(r, 3000));
                let typed = 'sent';
                try { await h.typeText('echo stranger-was-here\n'); } catch (e) { typed = String(e.message ?? e); }
                return JSON.stringify({ seq: div.querySelector('canvas').dataset.seq ?? null, typed, message: div.querySelector('.vmc-msg').textContent });
            }", id.ToString());
            var forced = JsonNode.Parse(forcedJson)!;
            Assert.True(forced["seq"] is null, forcedJson); // not a single frame drawn
            Assert.Contains("may not use its console", forced["message"]!.GetValue<string>());
            Assert.Contains("Join a console first", forced["typed"]!.GetValue<string>());
            Assert.DoesNotContain("stranger-was-here", await ScreenTextAsync(api, id));

            // a view-only link, made on the VM page's Share tab
            await page.GetByRole(AriaRole.Tab, new() { Name = "Share" }).ClickAsync();
            await page.ClickAsync("[data-testid=share-create]");
            var url = (await page.Locator("[data-testid=share-url]").TextContentAsync())!.Trim();
            Assert.Contains("/console/shared/vms_", url);
            await page.ShotAsync("linux-05-share-link");

            await viewer.GotoAsync(url); // a context that never signed in
            await WaitForCanvasAsync(viewer);
            await Assertions.Expect(viewer.Locator(".vmc-ro")).ToBeVisibleAsync();
            Assert.Equal(0, await viewer.Locator(".vmc-power:visible").CountAsync());
            var shared = await SamePictureAsync(viewer, watcher);
            Assert.Equal(shared.B.Hash, shared.A.Hash); // the link shows the live screen
            Assert.Contains("\nhello-42", await CopyScreenTextAsync(viewer));
            await viewer.Locator("canvas.vmc-canvas").ClickAsync();
            await TypeWithKeyboardAsync(viewer, "echo viewer-typed\n");
            await viewer.Keyboard.PressAsync("Control+Alt+Delete");
            await Task.Delay(2000);
            // The kernel may still log a line meanwhile (the screen scrolls), so look for the keys' effects: the
            // typed command is not on the screen, and the screen was not cleared by a restart.
            var textAfter = await ScreenTextAsync(api, id);
            Assert.DoesNotContain("viewer-typed", textAfter);
            Assert.Contains("\nhello-42", textAfter);
            Assert.Equal("running", JsonNode.Parse(await api.GetStringAsync($"/api/vms/{id}"))!["state"]!.GetValue<string>());
            await viewer.ShotAsync("linux-06-view-only");

            // revoking the link closes that viewer; the owner's watcher stays
            await page.ClickAsync("[data-testid=share-revoke]");
            await Assertions.Expect(page.Locator("[data-testid=share-status]").First).ToHaveTextAsync("revoked");
            await viewer.WaitForFunctionAsync("() => document.querySelector('.vmc-conn')?.dataset.conn === 'closed'");
            await Assertions.Expect(viewer.Locator(".vmc-msg")).ToContainTextAsync("revoked");
            await Assertions.Expect(watcher.Locator(".vmc-conn")).ToHaveTextAsync("connected");
        }
        finally
        {
            await api.PostAsync($"/api/vms/{id}/stop", null);
            foreach (var p in new[] { page, watcher, viewer, other }) await p.Context.CloseAsync();
        }
    }
}

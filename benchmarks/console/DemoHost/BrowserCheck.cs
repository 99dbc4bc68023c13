using System.Net;
using System.Net.Sockets;
using Microsoft.Playwright;

namespace VmPortal.Benchmarks.Console.DemoHost;

/// <summary>
/// Drives the console client in Debian's Chromium (Playwright) against the demo host: typing with the real keyboard,
/// a second viewer, a view-only link, a refused link, the serial tab, and keypress-to-drawn-frame latency.
/// </summary>
public static class BrowserCheck
{
    public static async Task<int> RunAsync(string[] args)
    {
        int port = FreePort();
        string url = $"http://127.0.0.1:{port}";
        await using var app = DemoServer.Build(args, url, cursorBlink: false);
        await app.StartAsync();
        var guest = app.Services.GetRequiredService<FakeGuest>();
        int failures = 0;
        void Check(bool ok, string what)
        {
            System.Console.WriteLine($"{(ok ? "ok  " : "FAIL")} {what}");
            if (!ok) failures++;
        }

        using var pw = await Playwright.CreateAsync();
        await using var browser = await pw.Chromium.LaunchAsync(new()
        {
            ExecutablePath = Environment.GetEnvironmentVariable("CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox"],
        });
        var ctx1 = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1000, Height = 640 } });
        var page = await ctx1.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); if (Environment.GetEnvironmentVariable("DEBUG") is not null) System.Console.WriteLine($"page {m.Type}: {m.Text}"); };
        page.PageError += (_, e) => errors.Add(e);
        await page.GotoAsync(url);
        try { await page.WaitForSelectorAsync("canvas[data-seq]", new() { Timeout = 15000, State = WaitForSelectorState.Attached }); }
        catch (TimeoutException)
        {
            System.Console.WriteLine("FAIL no frame drawn; page errors: " + string.Join(" | ", errors) + "; status: " + await page.InnerTextAsync(".vmc-status"));
            return 1;
        }
        Check(await page.EvaluateAsync<bool>("typeof DecompressionStream === 'function'"), "DecompressionStream available");
        string before = await CanvasHash(page);

        await page.ClickAsync("canvas");
        await page.Keyboard.TypeAsync("echo hello-42");
        await page.Keyboard.PressAsync("Enter");
        bool typed = await Until(() => guest.ScreenText().Contains("\nhello-42"));
        Check(typed, "typed 'echo hello-42' with the keyboard: guest screen shows hello-42");
        await Task.Delay(300);
        string after = await CanvasHash(page);
        Check(before != after, "canvas pixels changed");

        // A second browser context watching the same console sees the same pixels.
        var ctx2 = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1000, Height = 640 } });
        var page2 = await ctx2.NewPageAsync();
        await page2.GotoAsync(url);
        await page2.WaitForSelectorAsync("canvas[data-seq]", new() { Timeout = 15000, State = WaitForSelectorState.Attached });
        await Task.Delay(300);
        Check(await CanvasHash(page2) == await CanvasHash(page), "second viewer's canvas equals the first's");

        // View-only link: frames arrive, keys are ignored.
        var ctx3 = await browser.NewContextAsync();
        var view = await ctx3.NewPageAsync();
        await view.GotoAsync(url + "/?share=view");
        await view.WaitForSelectorAsync("canvas[data-seq]", new() { Timeout = 15000, State = WaitForSelectorState.Attached });
        await view.ClickAsync("canvas");
        await view.Keyboard.TypeAsync("echo nope");
        await view.Keyboard.PressAsync("Enter");
        await Task.Delay(500);
        Check(!guest.ScreenText().Contains("nope"), "view-only viewer gets frames and its keys are ignored");
        Check(await view.EvaluateAsync<bool>("document.querySelector('.vmc-input-tools').hidden"), "view-only viewer has no input tools");

        // A refused link gets no frames and an error message.
        var bad = await (await browser.NewContextAsync()).NewPageAsync();
        await bad.GotoAsync(url + "/?share=forged");
        await Task.Delay(1500);
        Check(await bad.EvaluateAsync<bool>("!document.querySelector('canvas').dataset.seq"), "refused share link gets no frames");
        Check((await bad.InnerTextAsync(".vmc-msg")).Contains("not valid"), "refused share link shows the server's message");

        // Toolbar: Type text dialog.
        await page.ClickAsync("text=Type text…");
        await page.FillAsync(".vmc-type-text", "echo typed-$HOME ok\n");
        await page.ClickAsync(".vmc-type-dialog button:text-is('Type')");
        Check(await Until(() => guest.ScreenText().Contains("\ntyped-$HOME ok")), "Type text dialog types into the guest");
        await page.ClickAsync("text=Type text…");
        await page.FillAsync(".vmc-type-text", "naïve");
        await page.ClickAsync(".vmc-type-dialog button:text-is('Type')");
        Check((await page.InnerTextAsync(".vmc-type-error")).Contains("ï"), "untypable characters are named in the dialog");
        await page.ClickAsync(".vmc-type-dialog >> text=Cancel");

        // Serial tab: input echoed by the guest's COM1 appears in the terminal.
        await page.ClickAsync("button.vmc-tab >> text=Serial");
        await page.ClickAsync(".vmc-serial");
        await page.Keyboard.TypeAsync("serial-ok");
        bool serialOk = false;
        for (int i = 0; i < 50 && !serialOk; i++)
        {
            serialOk = (await page.EvaluateAsync<string>("handle.serial.text()")).Contains("serial-ok");
            if (!serialOk) await Task.Delay(100);
        }
        Check(serialOk, "serial tab: typed text echoed by COM1 shows in xterm.js");
        await page.ClickAsync("button.vmc-tab >> text=Screen");

        // Latency: keydown in the page → frame with the echoed key drawn on the canvas.
        await page.EvaluateAsync("""
            () => {
              const c = document.querySelector('canvas');
              window.__lat = []; window.__t0 = 0;
              window.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
              new MutationObserver(() => { if (window.__t0) { window.__lat.push(performance.now() - window.__t0); window.__t0 = 0; } })
                .observe(c, { attributes: true, attributeFilter: ['data-seq'] });
            }
            """);
        await page.ClickAsync("canvas");
        var rnd = new Random(1);
        for (int i = 0; i < 60; i++)
        {
            await page.Keyboard.PressAsync(i % 2 == 0 ? "KeyX" : "Backspace");
            await Task.Delay(60 + rnd.Next(40));
        }
        var lat = (await page.EvaluateAsync<double[]>("window.__lat")).Order().ToArray();
        Check(lat.Length >= 55, $"latency samples: {lat.Length}");
        if (lat.Length > 0)
            System.Console.WriteLine($"keypress→drawn frame latency over loopback (30 Hz ticks): p50 {Pct(lat, 50):F1} ms, p95 {Pct(lat, 95):F1} ms, max {lat[^1]:F1} ms (n={lat.Length})");

        await page.ScreenshotAsync(new() { Path = "/tmp/vmportal-console-demo.png" });
        System.Console.WriteLine("screenshot: /tmp/vmportal-console-demo.png");
        Check(errors.Count == 0, "no errors in the page console" + (errors.Count > 0 ? ": " + string.Join(" | ", errors) : ""));

        await app.StopAsync();
        System.Console.WriteLine($"{(failures == 0 ? "browser check passed" : $"{failures} check(s) failed")}");
        return failures == 0 ? 0 : 1;
    }

    private static double Pct(double[] sorted, int p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];

    private static Task<string> CanvasHash(IPage page) => page.EvaluateAsync<string>("""
        () => { const c = document.querySelector('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let h = 2166136261; for (let i = 0; i < d.length; i += 4) { h ^= d[i] | d[i+1] << 8 | d[i+2] << 16; h = Math.imul(h, 16777619); }
                return c.width + 'x' + c.height + ':' + (h >>> 0).toString(16); }
        """);

    private static async Task<bool> Until(Func<bool> cond, int ms = 10000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < ms) { if (cond()) return true; await Task.Delay(50); }
        return cond();
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int p = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return p;
    }
}

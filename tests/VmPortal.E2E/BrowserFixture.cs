using Microsoft.Playwright;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E;

/// <summary>
/// A real portal (see <see cref="PortalAppFixture"/>) plus Debian's chromium driven by Playwright. The portal's
/// built-in images are the real guest images of the image cache (scripts/build-guest-images.sh) when they are there,
/// so a VM made from "Debian Linux" in the dialog boots Linux; without them the Linux tests fail with the hint.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public PortalAppFixture App { get; } =
        new(File.Exists(GuestImages.PathOf(GuestImages.RescueIso)) ? GuestImages.Directory : null);
    public IPlaywright Playwright { get; private set; } = default!;
    public IBrowser Browser { get; private set; } = default!;

    /// <summary>Where screenshots go: ./.data/test-logs in the repository.</summary>
    public static string ShotDir { get; } = FindShotDir();

    public async Task InitializeAsync()
    {
        await App.InitializeAsync();
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args =
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
        await App.DisposeAsync();
    }

    /// <summary>A page in a fresh browser context (its own cookies: signed out).</summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = App.BaseAddress.ToString().TrimEnd('/'),
            ViewportSize = new ViewportSize { Width = 1366, Height = 900 },
        });
        context.SetDefaultTimeout(30_000); // the portal shares 2 cores with the guests earlier tests left running
        // The console's "Copy text" writes to the clipboard; record it in window.__copied (headless chromium's
        // clipboard needs focus and permissions, which makes reading it back flaky).
        await context.AddInitScriptAsync(@"(() => {
            const record = { writeText: async (t) => { window.__copied = t; }, readText: async () => window.__copied ?? '' };
            Object.defineProperty(navigator, 'clipboard', { configurable: true, get: () => record });
        })();");
        return await context.NewPageAsync();
    }

    private static string FindShotDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "VmPortal.sln"))) dir = dir.Parent;
        var path = Path.Combine(dir?.FullName ?? Path.GetTempPath(), ".data", "test-logs", "e2e");
        Directory.CreateDirectory(path);
        return path;
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}

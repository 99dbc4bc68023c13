using Microsoft.Playwright;

namespace VmPortal.E2E;

/// <summary>Steps a person takes in the portal, shared by the scenarios.</summary>
public static class PortalPage
{
    /// <summary>Waits until the Blazor circuit is interactive (the layout sets data-circuit-ready after its first interactive render).</summary>
    public static Task WaitForCircuitAsync(this IPage page) =>
        page.Locator("#app-root[data-circuit-ready='true']").WaitForAsync();

    public static async Task SignInAsync(this IPage page, string userName, string password)
    {
        await page.GotoAsync("/account/login");
        await page.FillAsync("#userName", userName);
        await page.FillAsync("#password", password);
        await page.ClickAsync("#sign-in");
        await page.WaitForURLAsync("**/vms");
        await page.WaitForCircuitAsync();
    }

    public static async Task SignOutAsync(this IPage page)
    {
        await page.ClickAsync("[data-testid=sign-out]");
        await page.WaitForURLAsync("**/account/login");
    }

    public static async Task ShotAsync(this IPage page, string name) =>
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(BrowserFixture.ShotDir, name + ".png"), FullPage = true });

    /// <summary>The grid row that shows <paramref name="text"/>.</summary>
    public static ILocator Row(this IPage page, string text) =>
        page.Locator("tr.mud-table-row").Filter(new LocatorFilterOptions { HasText = text });
}

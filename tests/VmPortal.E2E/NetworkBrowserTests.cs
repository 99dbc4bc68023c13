using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E;

/// <summary>
/// Administration → Networks in chromium: the built-in <c>default</c> is listed, an admin creates a network through
/// the dialog (a bad subnet shows the server's message first), the REST API sees it, and deletes it again.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class NetworkBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task Admin_creates_and_deletes_a_network_on_the_networks_page()
    {
        var page = await fx.NewPageAsync();
        var name = $"lab{Guid.NewGuid().ToString("N")[..6]}";
        var subnet = $"10.{200 + Random.Shared.Next(0, 50)}.{Random.Shared.Next(0, 255)}.0/24";
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.ClickAsync("[data-testid=nav-networks]");
        await page.WaitForURLAsync("**/admin/networks");
        await Assertions.Expect(page.Locator("[data-testid=network-default]")).ToContainTextAsync("10.0.2.0/24");

        await page.ClickAsync("[data-testid=network-create]");
        await page.FillAsync("#net-name", name);
        await page.FillAsync("#net-subnet", "10.0.2.0/25");
        await page.ClickAsync("[data-testid=network-save]");
        await Assertions.Expect(page.Locator("[data-testid=network-dialog-error]")).ToContainTextAsync("overlaps network 'default'");
        await page.FillAsync("#net-subnet", subnet);
        await page.ClickAsync("[data-testid=network-save]");
        var card = page.Locator($"[data-testid=network-{name}]");
        await Assertions.Expect(card).ToContainTextAsync(subnet);
        await Assertions.Expect(card).ToContainTextAsync("outbound loopback");
        await page.ShotAsync("net-01-networks");

        using (var admin = fx.App.Client(await fx.App.AdminTokenAsync()))
        {
            var n = JsonNode.Parse(await admin.GetStringAsync($"/api/networks/{name}"))!;
            Assert.Equal("nat", n["mode"]!.GetValue<string>());
        }

        await page.ClickAsync($"[data-testid=network-delete-{name}]");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
        await Assertions.Expect(card).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }
}

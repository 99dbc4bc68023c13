using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E.SelfService;

/// <summary>
/// In the browser: an admin gives a catalog template a lease in its dialog (48 h, 6 h grace); the card shows it; a
/// user who provisions from it is told before Create, and the new VM's page shows the lease (checked through the API
/// too: 48 h from creation).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class TemplateLeaseBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task An_admin_gives_a_template_a_lease_and_a_vm_provisioned_from_it_shows_its_expiry()
    {
        var suffix = Guid.NewGuid().ToString("N")[..6];
        var image = $"leasebase{suffix}.img";
        await File.WriteAllBytesAsync(Path.Combine(fx.App.ImageStoreDir, image), new byte[1024 * 1024]);
        using var admin = fx.App.Client(await fx.App.AdminTokenAsync());
        var template = $"leased{suffix}";
        var created = await admin.PostAsJsonAsync("/api/templates", new { name = template, imageId = "upload:" + image, memoryMiB = 32, cloudInit = false });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());

        // the admin sets the lease in the template's dialog
        var page = await fx.NewPageAsync();
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.GotoAsync("/catalog");
        await page.WaitForCircuitAsync();
        var card = page.Locator($"[data-testid=template-card][data-name='{template}']");
        await Assertions.Expect(card.Locator("[data-testid=template-lease]")).ToHaveCountAsync(0);
        await card.GetByLabel($"Edit {template}").ClickAsync();
        await page.FillAsync("#template-lease-hours", "48");
        await page.PressAsync("#template-lease-hours", "Tab"); // the grace field is enabled once the lease is set
        await page.FillAsync("#template-lease-grace", "6");
        await page.ClickAsync("[data-testid=template-save]");
        await Assertions.Expect(card.Locator("[data-testid=template-lease]")).ToContainTextAsync("expires 2 days after creation, deleted 6 hours later");
        await page.ShotAsync("selfservice-template-lease");

        // a user provisions from it: told before Create, and the VM's page shows the lease
        var userName = $"leaser{suffix}";
        const string password = "leaser-password-1";
        var (_, token) = await fx.App.NewUserAsync(userName, password: password);
        var userPage = await fx.NewPageAsync();
        await userPage.SignInAsync(userName, password);
        await userPage.GotoAsync("/catalog");
        await userPage.WaitForCircuitAsync();
        await userPage.Locator($"[data-testid=template-card][data-name='{template}'] [data-testid=template-use]").ClickAsync();
        await Assertions.Expect(userPage.Locator("[data-testid=provision-lease]")).ToContainTextAsync("expires 2 days after creation");
        await userPage.FillAsync("#provision-name", "short-lived");
        var before = DateTimeOffset.UtcNow;
        await userPage.ClickAsync("[data-testid=provision-create]");
        await userPage.WaitForURLAsync("**/vms/*");
        await Assertions.Expect(userPage.Locator("[data-testid=vm-lease]")).ToContainTextAsync("lease ends at");

        using var api = fx.App.Client(token);
        var vm = JsonNode.Parse(await api.GetStringAsync("/api/vms?name=short-lived"))!["items"]!.AsArray().Single()!;
        var lease = JsonNode.Parse(await api.GetStringAsync($"/api/vms/{vm["id"]}/lease"))!;
        var expires = lease["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expires, before.AddHours(48).AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(48).AddMinutes(1));
        Assert.Equal(expires.AddHours(6), lease["deleteAt"]!.GetValue<DateTimeOffset>());
    }
}

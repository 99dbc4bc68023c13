using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E;

[Collection(BrowserCollection.Name)]
public sealed class PortalScenarioTests(BrowserFixture fx)
{
    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>VMs owned by <paramref name="userName"/>, read through the admin API (the database's view, not the page's).</summary>
    private async Task<JsonArray> VmsOfAsync(string userName)
    {
        using var admin = fx.App.Client(await fx.App.AdminTokenAsync());
        var list = JsonNode.Parse(await admin.GetStringAsync("/api/vms?pageSize=500"))!;
        return new JsonArray(list["items"]!.AsArray().Where(v => v!["ownerName"]!.GetValue<string>() == userName).Select(v => v!.DeepClone()).ToArray());
    }

    [Fact]
    public async Task Admin_creates_user_who_creates_edits_and_deletes_a_vm()
    {
        var page = await fx.NewPageAsync();
        var userName = Unique("alice");
        const string password = "alice-password-1";
        var vmName = Unique("web-");

        // admin signs in and creates a user
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.ClickAsync("[data-testid=nav-users]");
        await page.WaitForURLAsync("**/admin/users");
        await page.ClickAsync("[data-testid=user-create]");
        await page.FillAsync("#new-user-name", userName);
        await page.FillAsync("#new-user-password", password);
        await page.ClickAsync("[data-testid=user-save]");
        await page.Row(userName).WaitForAsync();
        await page.ShotAsync("01-admin-users");
        await page.SignOutAsync();

        // the user signs in and creates a VM through the dialog
        await page.SignInAsync(userName, password);
        await page.ClickAsync("[data-testid=vm-create]");
        await page.FillAsync("#vm-name", vmName);
        await page.FillAsync("#vm-memory", "256");
        await page.ShotAsync("02-create-dialog");
        await page.ClickAsync("[data-testid=vm-save]");
        var row = page.Row(vmName);
        await row.WaitForAsync();
        await Assertions.Expect(row).ToContainTextAsync("256 MiB");
        await Assertions.Expect(row).ToContainTextAsync("Stopped");
        await page.ShotAsync("03-vm-list");
        // the grid's search runs on the server: a miss hides the row, a hit shows it again
        var search = page.GetByPlaceholder("Search name, owner, state");
        await search.FillAsync("no-such-vm");
        await Assertions.Expect(page.Row(vmName)).ToHaveCountAsync(0);
        await search.FillAsync(vmName[..6]);
        await Assertions.Expect(page.Row(vmName)).ToHaveCountAsync(1);
        var stored = Assert.Single(await VmsOfAsync(userName));
        Assert.Equal(vmName, stored!["name"]!.GetValue<string>());
        Assert.Equal(256, stored["memoryMiB"]!.GetValue<int>());

        // the VM page shows Summary and Hardware tabs
        await row.Locator("[data-testid=vm-link]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=vm-title]")).ToHaveTextAsync(vmName);
        await page.GetByRole(AriaRole.Tab, new() { Name = "Hardware" }).ClickAsync();
        await Assertions.Expect(page.GetByText("e1000")).ToBeVisibleAsync();
        await page.ShotAsync("04-vm-hardware");
        await page.GoBackAsync();
        await page.WaitForCircuitAsync();

        // edit its memory
        await page.ClickAsync($"[aria-label='Edit {vmName}']");
        await page.FillAsync("#vm-memory", "512");
        await page.ClickAsync("[data-testid=vm-save]");
        await Assertions.Expect(page.Row(vmName)).ToContainTextAsync("512 MiB");
        stored = Assert.Single(await VmsOfAsync(userName));
        Assert.Equal(512, stored!["memoryMiB"]!.GetValue<int>());

        // delete it, confirming the question
        await page.ClickAsync($"[aria-label='Delete {vmName}']");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Row(vmName)).ToHaveCountAsync(0);
        Assert.Empty(await VmsOfAsync(userName));
        await page.ShotAsync("05-after-delete");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Invalid_vm_form_shows_messages_and_saves_nothing()
    {
        var page = await fx.NewPageAsync();
        var userName = Unique("bob");
        await fx.App.NewUserAsync(userName, password: "bob-password-1");
        await page.SignInAsync(userName, "bob-password-1");

        await page.ClickAsync("[data-testid=vm-create]");
        await page.FillAsync("#vm-name", "bad name!");
        await page.FillAsync("#vm-memory", "8");
        await page.ClickAsync("[data-testid=vm-save]");
        await Assertions.Expect(page.GetByText("Name may contain letters, digits").First).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByText("Memory must be between 16 and 16384 MiB.").First).ToBeVisibleAsync();
        await page.ShotAsync("06-invalid-form");

        // still open: fix nothing, cancel; nothing was written
        await page.ClickAsync("[data-testid=vm-cancel]");
        await Assertions.Expect(page.Locator("[data-testid=vm-dialog]")).ToHaveCountAsync(0);
        Assert.Empty(await VmsOfAsync(userName));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Dark_mode_toggle_is_remembered_by_the_browser()
    {
        var page = await fx.NewPageAsync();
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        const string readBackground = "() => getComputedStyle(document.documentElement).getPropertyValue('--mud-palette-background').trim().toLowerCase()";
        var light = await page.EvaluateAsync<string>(readBackground);
        Assert.False(string.IsNullOrEmpty(light));
        await page.ClickAsync("[data-testid=theme-toggle]");
        await page.WaitForFunctionAsync("() => localStorage.getItem('vmportal.darkMode') === 'true'");
        await page.ReloadAsync();
        await page.WaitForCircuitAsync();
        await page.WaitForFunctionAsync($"() => ({readBackground})() !== '{light}'");
        var dark = await page.EvaluateAsync<string>(readBackground);
        await page.ShotAsync("07-dark");
        Assert.False(string.IsNullOrEmpty(dark));
        Assert.NotEqual(light, dark);
        await page.Context.CloseAsync();
    }
}

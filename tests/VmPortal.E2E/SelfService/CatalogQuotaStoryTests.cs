using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E.SelfService;

/// <summary>
/// Issue 12's story in the browser: an admin makes a template from the built-in rescue ISO and gives a user a quota
/// of 2 VMs and 256 MiB; the user creates two VMs from the catalog; the third is refused with a message naming the
/// quota; one starts and reaches its shell (one guest boot); the audit page lists each step, the start included.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class CatalogQuotaStoryTests(BrowserFixture fx)
{
    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..6]}";

    private static async Task ProvisionAsync(IPage page, string template, string name)
    {
        await page.GotoAsync("/catalog");
        await page.WaitForCircuitAsync();
        await page.Locator($"[data-testid=template-card][data-name='{template}'] [data-testid=template-use]").ClickAsync();
        await page.FillAsync("#provision-name", name);
        await page.ClickAsync("[data-testid=provision-create]");
    }

    [Fact]
    public async Task Admin_sets_a_template_and_a_quota_the_user_provisions_two_vms_is_refused_a_third_and_boots_one()
    {
        Assert.True(fx.App.RealImages, $"the rescue ISO is missing: {GuestImages.BuildHint}");
        var userName = Unique("carol");
        const string password = "carol-password-1";
        var (_, token) = await fx.App.NewUserAsync(userName, password: password);
        using var api = fx.App.Client(token);
        api.Timeout = TimeSpan.FromMinutes(12);
        var template = Unique("rescue-");

        // the admin: a template from the built-in rescue ISO, then the user's quota
        var page = await fx.NewPageAsync();
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.ClickAsync("[data-testid=nav-catalog]");
        await page.WaitForURLAsync("**/catalog");
        await page.ClickAsync("[data-testid=template-create]");
        await page.FillAsync("#template-name", template);
        await page.FillAsync("#template-os", "Debian rescue shell");
        await page.Locator("[data-testid=template-iso]").ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { NameRegex = new System.Text.RegularExpressions.Regex("^Debian Linux \\(i386\\) rescue shell$") }).ClickAsync();
        await page.FillAsync("#template-memory", "128");
        await page.ClickAsync("[data-testid=template-save]");
        await page.Locator($"[data-testid=template-card][data-name='{template}']").WaitForAsync();
        await page.ShotAsync("story-01-template");

        await page.ClickAsync("[data-testid=nav-users]");
        await page.WaitForURLAsync("**/admin/users");
        await page.WaitForCircuitAsync();
        await page.GetByPlaceholder("Search").FillAsync(userName);
        await page.Row(userName).WaitForAsync();
        await page.ShotAsync("story-01b-users");
        await page.Row(userName).Locator("button.mud-icon-button").Last.ClickAsync(); // the row's actions menu
        await page.GetByText("Quota…", new() { Exact = true }).ClickAsync();
        await page.FillAsync("#quota-vms", "2");
        await page.FillAsync("#quota-memory", "256");
        await page.ClickAsync("[data-testid=quota-save]");
        await page.Locator("[data-testid=quota-dialog]").WaitForAsync(new() { State = WaitForSelectorState.Detached });
        var quota = JsonNode.Parse(await api.GetStringAsync("/api/quota"))!["quota"]!;
        Assert.Equal((2, 256), (quota["maxVms"]!.GetValue<int>(), quota["maxMemoryMiB"]!.GetValue<int>()));
        await page.SignOutAsync();

        // the user: two VMs from the catalog; the third is refused naming the quota
        await page.SignInAsync(userName, password);
        await ProvisionAsync(page, template, "one");
        await page.WaitForURLAsync("**/vms/*");
        var firstId = Guid.Parse(page.Url.Split('/').Last());
        await ProvisionAsync(page, template, "two");
        await page.WaitForURLAsync(u => u.Contains("/vms/") && !u.EndsWith(firstId.ToString()));
        await ProvisionAsync(page, template, "three");
        await Assertions.Expect(page.Locator("[data-testid=provision-quota]")).ToContainTextAsync("VM quota"); // said before Create
        var refusal = page.Locator("[data-testid=provision-error]");
        await Assertions.Expect(refusal).ToContainTextAsync("VM quota exceeded: 2 of 2 VMs");
        await page.ShotAsync("story-02-refused");
        var mine = JsonNode.Parse(await api.GetStringAsync("/api/vms"))!["items"]!.AsArray().Select(v => v!["name"]!.GetValue<string>()).Order().ToArray();
        Assert.Equal(["one", "two"], mine);

        // one starts (from its page) and reaches its shell
        await page.GotoAsync($"/vms/{firstId}");
        await page.WaitForCircuitAsync();
        await page.ClickAsync("[data-testid=vm-start]");
        await Assertions.Expect(page.Locator("[data-testid=vm-state]")).ToHaveTextAsync("Running", new() { Timeout = 60_000 });
        try
        {
            var deadline = DateTime.UtcNow.AddMinutes(20);
            while (true)
            {
                var r = await api.PostAsJsonAsync($"/api/vms/{firstId}/console/wait", new { pattern = "(?m)^/ #", timeoutSeconds = 600 });
                if (r.IsSuccessStatusCode) break;
                Assert.True(DateTime.UtcNow < deadline, $"no shell prompt: {await r.Content.ReadAsStringAsync()}");
            }
            await page.GetByRole(AriaRole.Tab, new() { Name = "Console" }).ClickAsync();
            await page.Locator("canvas.vmc-canvas[data-seq]").WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
            await page.ShotAsync("story-03-shell");
            await page.SignOutAsync();

            // the admin's audit page lists each step
            await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
            await page.GotoAsync("/admin/audit");
            await page.WaitForCircuitAsync();
            var steps = new[]
            {
                ("admin", "template.create", $"name={template} "), ("admin", "quota.set", $"user={userName} vms=2"),
                (userName, "vm.create", "name=one owner"), (userName, "vm.create", "name=two owner"), (userName, "vm.start", "UI; now running"),
            };
            foreach (var (actor, action, detail) in steps)
                await Assertions.Expect(page.Locator("tr.mud-table-row").Filter(new() { HasText = actor }).Filter(new() { HasText = action })
                    .Filter(new() { HasText = detail }).First).ToBeVisibleAsync();
            await page.ShotAsync("story-04-audit");
        }
        finally
        {
            await api.PostAsync($"/api/vms/{firstId}/stop", null);
        }
    }
}

using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E.SelfService;

/// <summary>
/// In the browser: a user clones a VM from its page (the Clone dialog starts a task) and follows it on the Tasks
/// page until it has succeeded; the clone is then a VM of theirs (checked through the API).
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class CloneTaskBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task A_user_clones_a_vm_and_follows_the_task_on_the_tasks_page()
    {
        var userName = $"cloner{Guid.NewGuid().ToString("N")[..6]}";
        const string password = "cloner-password-1";
        var (_, token) = await fx.App.NewUserAsync(userName, password: password);
        using var api = fx.App.Client(token);
        var created = await api.PostAsJsonAsync("/api/vms", new { name = "origin", memoryMiB = 64, disks = new[] { new { sizeMiB = 16 } } });
        var vm = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        var id = vm["id"]!.GetValue<Guid>();

        var page = await fx.NewPageAsync();
        await page.SignInAsync(userName, password);
        await page.GotoAsync($"/vms/{id}");
        await page.WaitForCircuitAsync();
        await page.ClickAsync("[data-testid=vm-clone]");
        await page.FillAsync("#clone-name", "origin-copy");
        await page.ClickAsync("[data-testid=clone-full]");
        await page.ClickAsync("[data-testid=clone-submit]");
        await Assertions.Expect(page.Locator("[data-testid=clone-dialog]")).ToHaveCountAsync(0);

        await page.ClickAsync("[data-testid=nav-tasks]");
        await page.WaitForURLAsync("**/tasks");
        var row = page.Locator("[data-testid=tasks-table] tr", new() { HasText = "vm.clone" }).First;
        await Assertions.Expect(row.Locator("[data-testid=task-status]")).ToHaveTextAsync("succeeded", new() { Timeout = 60_000 });
        await Assertions.Expect(row).ToContainTextAsync("origin");
        await page.ShotAsync("selfservice-tasks");
        await row.ClickAsync(); // the log opens under the row
        await Assertions.Expect(page.Locator("[data-testid=task-log]")).ToContainTextAsync("created 'origin-copy'");

        var list = JsonNode.Parse(await api.GetStringAsync("/api/vms?name=origin-copy"))!["items"]!.AsArray();
        var clone = Assert.Single(list)!;
        Assert.Null(clone["disks"]![0]!["backingImageId"]?.GetValue<string>());
    }
}

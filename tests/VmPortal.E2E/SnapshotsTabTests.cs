using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E;

/// <summary>
/// The Snapshots tab of a stopped VM in chromium: take two, revert to the first, delete the second, a bad name; each
/// operation is on the Tasks page as a succeeded task of the VM.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class SnapshotsTabTests(BrowserFixture fx)
{
    [Fact]
    public async Task Take_revert_and_delete_snapshots_in_the_tab()
    {
        using var admin = fx.App.Client(await fx.App.AdminTokenAsync());
        var name = $"snaps-{Guid.NewGuid().ToString("N")[..6]}";
        var created = await admin.PostAsJsonAsync("/api/vms", new { name, memoryMiB = 64, disks = new[] { new { sizeMiB = 16 } }, bootOrder = new[] { "disk" } });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var id = JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!.GetValue<Guid>();
        async Task<JsonArray> ApiListAsync() => JsonNode.Parse(await admin.GetStringAsync($"/api/vms/{id}/snapshots"))!.AsArray();

        var page = await fx.NewPageAsync();
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.GotoAsync($"/vms/{id}");
        await page.WaitForCircuitAsync();
        await page.GetByRole(AriaRole.Tab, new() { Name = "Snapshots" }).ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=snap-none]")).ToBeVisibleAsync();
        // a stopped VM has no memory to save: the switch is off limits
        await Assertions.Expect(page.Locator("[data-testid=snap-memory] input")).ToBeDisabledAsync();

        var rows = page.Locator("[data-testid=snap-row]");
        async Task TakeAsync(string snapName, string description)
        {
            await page.FillAsync("#snap-name", snapName);
            await page.FillAsync("#snap-description", description);
            await page.ClickAsync("[data-testid=snap-take]");
            await Assertions.Expect(page.Locator($"[data-testid=snap-row][data-name='{snapName}']")).ToBeVisibleAsync();
        }
        await TakeAsync("first", "clean install");
        await TakeAsync("second", "after changes");
        await Assertions.Expect(rows).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("[data-testid=snap-row][data-name='first']")).ToContainTextAsync("disks only");
        await Assertions.Expect(page.Locator("[data-testid=snap-row][data-name='first']")).ToContainTextAsync("clean install");
        // tree order: first, second (its child), then "You are here" under second
        var order = await page.Locator("[data-testid=snap-table] tbody tr").AllInnerTextsAsync();
        Assert.Equal(3, order.Count);
        Assert.StartsWith("first", order[0].Trim());
        Assert.StartsWith("second", order[1].Trim());
        Assert.Contains("You are here", order[2]);
        // indented as a child of second (depth 2)
        Assert.Contains("3.75em", await page.Locator("[data-testid=snap-here] td").First.GetAttributeAsync("style"));
        await page.ShotAsync("snapshots-01-two");

        // a bad name is refused with a message
        await page.FillAsync("#snap-name", "no spaces");
        await page.ClickAsync("[data-testid=snap-take]");
        await Assertions.Expect(page.Locator("[data-testid=snap-error]")).ToContainTextAsync("letters, digits");
        await page.FillAsync("#snap-name", "");

        // revert to the first, confirming: "You are here" moves under it (a child of first, after second)
        await page.Locator("[data-testid=snap-row][data-name='first'] [data-testid=snap-revert]").ClickAsync();
        await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new() { Name = "Revert", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=snap-here] td").First).ToHaveAttributeAsync("style", new System.Text.RegularExpressions.Regex("2.25em"));
        var list = await ApiListAsync();
        Assert.True(list.Single(s => s!["name"]!.GetValue<string>() == "first")!["current"]!.GetValue<bool>());

        // delete the second, confirming
        await page.Locator("[data-testid=snap-row][data-name='second'] [data-testid=snap-delete]").ClickAsync();
        await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(1);
        Assert.Single(await ApiListAsync());
        await page.ShotAsync("snapshots-02-after-delete");

        // each operation ran as a task of this VM: the Tasks page lists them, succeeded
        await page.GotoAsync("/tasks");
        await page.WaitForCircuitAsync();
        var taskRows = page.Locator("[data-testid=tasks-table] tbody tr").Filter(new() { HasText = name });
        foreach (var type in new[] { "vm.snapshot", "vm.snapshot-revert", "vm.snapshot-delete" })
        {
            var exact = new System.Text.RegularExpressions.Regex(System.Text.RegularExpressions.Regex.Escape(type) + "(?![-\\w])");
            await Assertions.Expect(taskRows.Filter(new() { HasTextRegex = exact }).Filter(new() { HasText = "succeeded" }).First).ToBeVisibleAsync();
        }
        await page.Context.CloseAsync();
    }
}

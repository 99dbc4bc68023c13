using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E.SelfService;

/// <summary>
/// In the browser: an admin uploads an image on the Images page; the upload is a task (<c>image.upload</c>) that the
/// Tasks page lists as succeeded with its log, and the image is listed and stored byte for byte.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ImageUploadTaskBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task An_upload_on_the_images_page_is_a_task_on_the_tasks_page()
    {
        var name = $"ui-upload-{Guid.NewGuid().ToString("N")[..6]}.img";
        var bytes = new byte[2 * 1024 * 1024 + 512];
        new Random(5).NextBytes(bytes);

        var page = await fx.NewPageAsync();
        await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
        await page.GotoAsync("/images");
        await page.WaitForCircuitAsync();
        await page.Locator("input[type=file]").SetInputFilesAsync(new FilePayload { Name = name, MimeType = "application/octet-stream", Buffer = bytes });
        await Assertions.Expect(page.Locator("[data-testid=image-table]")).ToContainTextAsync("upload:" + name, new() { Timeout = 60_000 });
        Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(fx.App.ImageStoreDir, name)));

        await page.ClickAsync("[data-testid=nav-tasks]");
        await page.WaitForURLAsync("**/tasks");
        var row = page.Locator("[data-testid=tasks-table] tr", new() { HasText = name }).First;
        await Assertions.Expect(row).ToContainTextAsync("image.upload");
        await Assertions.Expect(row.Locator("[data-testid=task-status]")).ToHaveTextAsync("succeeded", new() { Timeout = 30_000 });
        await row.ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=task-log]")).ToContainTextAsync($"received {bytes.Length} bytes");
        await page.ShotAsync("selfservice-upload-task");
    }
}

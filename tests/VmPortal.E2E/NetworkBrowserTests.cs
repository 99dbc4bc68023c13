using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.E2E;

/// <summary>
/// Administration → Networks in chromium: the built-in <c>default</c> is listed, an admin creates a network through
/// the dialog (a bad subnet shows the server's message first), the REST API sees it, and deletes it again; the edit
/// dialog of a network with a running VM names the VM, locks the subnet, gateway and DNS fields and applies a new
/// DHCP range live, saying when running guests see it.
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

    [Fact]
    public async Task Editing_a_network_with_a_running_vm_locks_its_addresses_and_changes_the_dhcp_range_live()
    {
        using var admin = fx.App.Client(await fx.App.AdminTokenAsync());
        string name = "", prefix = "";
        for (int attempt = 0; attempt < 5 && name == ""; attempt++)
        {
            var n = $"run{Guid.NewGuid().ToString("N")[..6]}";
            prefix = $"10.{200 + Random.Shared.Next(0, 50)}.{Random.Shared.Next(0, 255)}";
            var created = await admin.PostAsJsonAsync("/api/networks", new { name = n, subnet = $"{prefix}.0/24" });
            if (created.StatusCode == HttpStatusCode.Created) name = n;
        }
        Assert.NotEqual("", name);
        var vmName = $"netvm{Guid.NewGuid().ToString("N")[..6]}";
        var r = await admin.PostAsJsonAsync("/api/vms", new { name = vmName, memoryMiB = 32, bootOrder = new[] { "cdrom" }, nic = new { network = name } });
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var id = JsonNode.Parse(await r.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            var page = await fx.NewPageAsync();
            await page.SignInAsync("admin", PortalAppFixture.AdminPassword);
            await page.ClickAsync("[data-testid=nav-networks]");
            await page.WaitForURLAsync("**/admin/networks");
            // the page lists the VM's switch port before the dialog can know it runs
            await Assertions.Expect(page.Locator($"[data-testid=network-ports-{name}]")).ToContainTextAsync(vmName);
            await page.ClickAsync($"[data-testid=network-edit-{name}]");
            var note = page.Locator("[data-testid=network-running-note]");
            await Assertions.Expect(note).ToContainTextAsync(vmName);
            await Assertions.Expect(note).ToContainTextAsync("renews the lease");
            await Assertions.Expect(page.Locator("#net-subnet")).ToBeDisabledAsync();
            await Assertions.Expect(page.Locator("#net-gateway")).ToBeDisabledAsync();
            await Assertions.Expect(page.Locator("#net-dns")).ToBeDisabledAsync();
            await page.FillAsync("#net-dhcp-start", $"{prefix}.100");
            await page.FillAsync("#net-dhcp-end", $"{prefix}.120");
            await page.ShotAsync("net-02-edit-running");
            await page.ClickAsync("[data-testid=network-save]");
            await Assertions.Expect(page.Locator(".mud-snackbar")).ToContainTextAsync($"running VMs keep their addresses until their DHCP lease renews, then get one from {prefix}.100–{prefix}.120",
                new() { Timeout = 30_000 }); // shown for 4 s once the save returns, however long that takes on a loaded machine
            await Assertions.Expect(page.Locator($"[data-testid=network-{name}]")).ToContainTextAsync($"DHCP {prefix}.100–{prefix}.120", new() { Timeout = 30_000 });
            var n = JsonNode.Parse(await admin.GetStringAsync($"/api/networks/{name}"))!;
            Assert.Equal(($"{prefix}.100", $"{prefix}.120"), (n["dhcpStart"]!.GetValue<string>(), n["dhcpEnd"]!.GetValue<string>()));
            Assert.Contains(n["ports"]!.AsArray(), p => p!["vmId"]?.GetValue<string>() == id); // the VM stayed connected
            await page.Context.CloseAsync();
        }
        finally
        {
            await admin.PostAsync($"/api/vms/{id}/stop", null);
            await admin.DeleteAsync($"/api/vms/{id}");
            await admin.DeleteAsync($"/api/networks/{name}");
        }
    }
}

using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Audit;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Console;

/// <summary>Issue 15 finding 18: power actions and console input (REST and hub) are audited with actor, address and result; input only as counts.</summary>
[Collection(PortalCollection.Name)]
public sealed class PowerAuditTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Power_actions_and_console_input_are_audited_without_the_typed_text()
    {
        var userName = Unique("aud");
        var (_, token) = await App.NewUserAsync(userName);
        using var c = App.Client(token);
        var id = (await CreateVmAsync(c, Unique("audvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        await AssertProblemAsync(await c.PostAsync($"/api/vms/{id}/stop", null), HttpStatusCode.Conflict); // refused: audited as failed
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await c.PostAsJsonAsync($"/api/vms/{id}/console/type", new { text = "hunter2-secret" })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await c.PostAsJsonAsync($"/api/vms/{id}/console/keys", new { keys = new[] { "ctrl", "c" } })).StatusCode);

            await using (var hub = Connect(token))
            {
                await hub.StartAsync();
                await hub.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
                await hub.InvokeAsync("TypeText", "other-secret");
                await hub.InvokeAsync("Key", "KeyA", true);
                await hub.InvokeAsync("Key", "KeyA", false);
                await hub.InvokeAsync<object>("Power", "pause");
                await hub.InvokeAsync<object>("Power", "resume");
            }
            await Task.Delay(500); // the hub writes the session's input counts when the connection ends
        }
        finally
        {
            Assert.Equal(HttpStatusCode.OK, (await c.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        }

        var events = (await App.Services.GetRequiredService<AuditLog>().RecentAsync(2000))
            .Where(e => e.UserName == userName && e.TargetId == id.ToString()).ToList();
        Assert.Contains(events, e => e.Action == "vm.stop" && !e.Success && e.Details.Contains("HTTP 409"));
        Assert.Contains(events, e => e.Action == "vm.start" && e.Success && e.Details.Contains("127.0.0.1"));
        Assert.Contains(events, e => e.Action == "vm.stop" && e.Success);
        Assert.Contains(events, e => e.Action == AuditActions.ConsoleType && e.Details.StartsWith("14 characters"));
        Assert.Contains(events, e => e.Action == AuditActions.ConsoleKeys && e.Details.StartsWith("2 keys"));
        Assert.Contains(events, e => e.Action == "vm.pause" && e.Success && e.Details.Contains("console from"));
        Assert.Contains(events, e => e.Action == "vm.resume" && e.Success);
        Assert.Contains(events, e => e.Action == AuditActions.ConsoleInput && e.Details.Contains("1 key presses, 12 characters typed"));
        Assert.DoesNotContain(events, e => e.Details.Contains("secret"));
    }
}

using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;
using VmPortal.Web.Runtime;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// Deleting a VM drops it from the <see cref="VmHost"/>: its console viewers (owner and share-link viewers) are told
/// and disconnected, and a machine that still runs is powered off with its memory released.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class VmDeletionRuntimeTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Deleting_a_vm_disconnects_its_viewers_and_drops_it_from_the_host()
    {
        var host = App.Services.GetRequiredService<VmHost>();
        var a = await App.NewUserAsync(Unique("del-a"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("delvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        Assert.True(host.TryFind(id, out _));
        var share = await ca.PostAsJsonAsync($"/api/vms/{id}/console/shares", new { expiresInHours = 1 });
        var token = (await JsonAsync(share))["token"]!.GetValue<string>();

        await using var owner = Connect(a.Token);
        await using var viewer = Connect(null);
        var ownerClosed = new TaskCompletionSource<ConsoleClosed>(TaskCreationOptions.RunContinuationsAsynchronously);
        var viewerClosed = new TaskCompletionSource<ConsoleClosed>(TaskCreationOptions.RunContinuationsAsynchronously);
        owner.On<ConsoleClosed>(ConsoleMethods.Closed, c => ownerClosed.TrySetResult(c));
        viewer.On<ConsoleClosed>(ConsoleMethods.Closed, c => viewerClosed.TrySetResult(c));
        await owner.StartAsync();
        await viewer.StartAsync();
        await owner.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
        await viewer.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), token);

        Assert.Equal(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}")).StatusCode);
        Assert.Contains("deleted", (await ownerClosed.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
        Assert.Contains("deleted", (await viewerClosed.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
        Assert.False(host.TryFind(id, out _));
        var until = DateTime.UtcNow.AddSeconds(10);
        while ((owner.State != HubConnectionState.Disconnected || viewer.State != HubConnectionState.Disconnected) && DateTime.UtcNow < until)
            await Task.Delay(50);
        Assert.Equal(HubConnectionState.Disconnected, owner.State);
        Assert.Equal(HubConnectionState.Disconnected, viewer.State);
    }

    [Fact]
    public async Task Forgetting_a_vm_that_still_runs_powers_it_off_and_releases_its_memory()
    {
        var host = App.Services.GetRequiredService<VmHost>();
        var a = await App.NewUserAsync(Unique("fgt-a"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("fgtvm"), memoryMiB: 48))["id"]!.GetValue<Guid>();
        var freeBefore = host.FreeMiB;
        Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        Assert.True(host.TryFind(id, out var hosted));
        var machine = hosted.Machine;
        Assert.NotNull(machine);
        Assert.Equal(freeBefore - 48, host.FreeMiB);

        // as if the VM's row had been deleted while its machine ran (a delete racing a start)
        await App.Services.GetRequiredService<VmRuntime>().ForgetAsync(id);
        Assert.False(host.TryFind(id, out _));
        Assert.Null(hosted.Machine);
        Assert.Equal(VmRunState.Stopped, hosted.State);
        Assert.True(machine.Stopped.IsCompleted);
        Assert.Equal(freeBefore, host.FreeMiB);
        // the stop was persisted, so the row can go
        var until = DateTime.UtcNow.AddSeconds(10);
        while ((await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>() != "stopped" && DateTime.UtcNow < until)
            await Task.Delay(50);
        Assert.Equal(HttpStatusCode.NoContent, (await ca.DeleteAsync($"/api/vms/{id}")).StatusCode);
    }
}

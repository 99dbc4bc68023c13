using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Console;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// Bad input through the console hub (real Kestrel, MessagePack): unknown key codes, nulls, oversized paste and serial
/// input, unknown power actions, calls for a stopped VM or someone else's VM. Each is a clear <see cref="HubException"/>
/// to the caller only: the caller's connection keeps working, and another viewer of the same VM keeps getting frames.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class ConsoleHubBadInputTests(PortalAppFixture app) : ApiTestBase(app)
{
    private static async Task<string> RefusedAsync(HubConnection c, string method, params object?[] args)
    {
        var e = await Assert.ThrowsAsync<HubException>(() => c.InvokeCoreAsync(method, args));
        // a HubException thrown on purpose reaches the client as "… HubException: <text>"; any other server exception
        // would be SignalR's bare "An unexpected error occurred invoking '…' on the server."
        const string marker = "HubException: ";
        var at = e.Message.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, $"{method}: not a deliberate error: {e.Message}");
        var text = e.Message[(at + marker.Length)..];
        Assert.False(string.IsNullOrWhiteSpace(text), e.Message);
        return text;
    }

    [Fact]
    public async Task Bad_calls_get_a_clear_error_and_disturb_nobody_else()
    {
        var a = await App.NewUserAsync(Unique("bad-a"));
        var b = await App.NewUserAsync(Unique("bad-b"));
        using var ca = App.Client(a.Token);
        using var cb = App.Client(b.Token);
        var id = (await CreateVmAsync(ca, Unique("badvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        var stopped = (await CreateVmAsync(ca, Unique("stopped"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        var foreign = (await CreateVmAsync(cb, Unique("foreign"), memoryMiB: 32))["id"]!.GetValue<Guid>();

        Assert.Equal(System.Net.HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/start", null)).StatusCode);
        try
        {
            await using var caller = Connect(a.Token);
            await using var bystander = Connect(a.Token);
            long bystanderFrames = 0;
            bystander.On<ConsoleFrame>(ConsoleMethods.Frame, _ => Interlocked.Increment(ref bystanderFrames));
            await caller.StartAsync();
            await bystander.StartAsync();
            await bystander.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);

            // calls before joining, and joins that are refused
            Assert.Contains("Join", await RefusedAsync(caller, "Key", "KeyA", true));
            var refusal = await RefusedAsync(caller, "JoinConsole", foreign.ToString(), null);
            Assert.Equal(refusal, await RefusedAsync(caller, "JoinConsole", Guid.NewGuid().ToString(), null));
            Assert.Equal(refusal, await RefusedAsync(caller, "JoinConsole", "not-a-guid", null));
            Assert.Equal(refusal, await RefusedAsync(caller, "JoinConsole", null, null));
            Assert.Contains("Join", await RefusedAsync(caller, "TypeText", "x")); // the foreign join left nothing behind

            // a stopped VM: joining works (to watch it start), input does not
            Assert.Equal(VmRunState.Stopped, (await caller.InvokeAsync<JoinResult>("JoinConsole", stopped.ToString(), null)).State);
            foreach (var (method, args) in new (string, object?[])[]
                     {
                         ("Key", ["KeyA", true]), ("TypeText", ["ls\n"]), ("SpecialKeys", ["ctrl-alt-del"]), ("SerialInput", [new byte[] { 65 }]),
                     })
                Assert.Contains("stopped", await RefusedAsync(caller, method, args));
            Assert.Contains("stopped", await RefusedAsync(caller, "Power", "pause"));
            Assert.Contains("stopped", await RefusedAsync(caller, "Power", "reset"));
            Assert.Null(await caller.InvokeAsync<string?>("GetScreenText"));

            // the running VM: every kind of garbage
            await caller.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
            Assert.Contains("NoSuchKey", await RefusedAsync(caller, "Key", "NoSuchKey", true));
            Assert.Contains("Unknown key code", await RefusedAsync(caller, "Key", new string('x', 100_000), true));
            Assert.Contains("required", await RefusedAsync(caller, "Key", null, true));
            Assert.Contains("Unknown key code", await RefusedAsync(caller, "Key", "", false));
            Assert.Contains("too long", await RefusedAsync(caller, "TypeText", new string('a', KeyInput.MaxTextLength + 1)));
            Assert.Contains("cannot be typed", await RefusedAsync(caller, "TypeText", "grüße ☃"));
            Assert.Contains("required", await RefusedAsync(caller, "TypeText", [null]));
            Assert.NotEmpty(await RefusedAsync(caller, "SpecialKeys", "ctrl-alt-nosuch"));
            Assert.NotEmpty(await RefusedAsync(caller, "SpecialKeys", string.Join('-', Enumerable.Repeat("a", 50))));
            Assert.Contains("required", await RefusedAsync(caller, "SpecialKeys", ""));
            Assert.Contains("4096", await RefusedAsync(caller, "SerialInput", new byte[ConsoleHub.MaxSerialInput + 1]));
            Assert.Contains("4096", await RefusedAsync(caller, "SerialInput", Array.Empty<byte>()));
            Assert.Contains("Unknown power action", await RefusedAsync(caller, "Power", "explode"));
            Assert.Contains("Unknown power action", await RefusedAsync(caller, "Power", [null]));
            Assert.Contains("running", await RefusedAsync(caller, "Power", "start")); // already running: illegal transition
            Assert.Contains("running", await RefusedAsync(caller, "Power", "resume"));

            // the caller's connection still works: a real key, text, the screen
            await caller.InvokeAsync("Key", "Enter", true);
            await caller.InvokeAsync("Key", "Enter", false);
            await caller.InvokeAsync("TypeText", "ok\n");
            var text = "";
            var textUntil = DateTime.UtcNow.AddSeconds(30);
            while (!text.Contains("SeaBIOS") && DateTime.UtcNow < textUntil) // null while the firmware switches modes
            {
                text = await caller.InvokeAsync<string?>("GetScreenText") ?? "";
                if (!text.Contains("SeaBIOS")) await Task.Delay(100);
            }
            Assert.Contains("SeaBIOS", text);

            // the bystander kept its console: frames still come (a full frame on request), its input works
            var seen = Interlocked.Read(ref bystanderFrames);
            await bystander.InvokeAsync("RequestFullFrame");
            var until = DateTime.UtcNow.AddSeconds(10);
            while (Interlocked.Read(ref bystanderFrames) == seen && DateTime.UtcNow < until) await Task.Delay(50);
            Assert.True(Interlocked.Read(ref bystanderFrames) > seen, "the bystander got no frame after the bad calls");
            await bystander.InvokeAsync("Key", "Escape", true);
            await bystander.InvokeAsync("Key", "Escape", false);
            Assert.Equal(HubConnectionState.Connected, caller.State);
            Assert.Equal("running", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
            Assert.Equal("stopped", (await JsonAsync(await cb.GetAsync($"/api/vms/{foreign}")))["state"]!.GetValue<string>());
        }
        finally
        {
            await ca.PostAsync($"/api/vms/{id}/stop", null);
        }
    }

    [Fact]
    public async Task A_message_over_the_hub_size_limit_closes_only_that_connection()
    {
        var a = await App.NewUserAsync(Unique("big-a"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("bigvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        await using var paster = Connect(a.Token);
        await using var other = Connect(a.Token);
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        paster.Closed += e => { closed.TrySetResult(e); return Task.CompletedTask; };
        await paster.StartAsync();
        await other.StartAsync();
        await paster.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
        await other.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);

        // 300 KiB of text is over the hub's 256 KiB message limit: SignalR drops that connection
        var big = paster.InvokeAsync("TypeText", new string('a', 300 * 1024));
        await Assert.ThrowsAnyAsync<Exception>(() => big);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HubConnectionState.Disconnected, paster.State);

        // the other viewer of the same VM is untouched
        Assert.Equal(HubConnectionState.Connected, other.State);
        Assert.Equal(VmRunState.Stopped, (await other.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null)).State);
        Assert.Null(await other.InvokeAsync<string?>("GetScreenText"));
    }
}

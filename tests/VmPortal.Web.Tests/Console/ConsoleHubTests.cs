using System.Net;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Core.Console;
using VmPortal.Tests.Infrastructure;
using VmPortal.Web.Hubs;

namespace VmPortal.Web.Tests.Console;

/// <summary>
/// The console hub on real Kestrel over MessagePack, with API tokens: the owner's viewer gets a full frame of the
/// running SeaBIOS screen and may type; a foreign user is refused exactly like a missing VM and gets no frames.
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class ConsoleHubTests(PortalAppFixture app) : ApiTestBase(app)
{
    [Fact]
    public async Task Anonymous_and_forged_connections_reach_the_hub_but_can_do_nothing_without_a_share_link()
    {
        // The hub admits anonymous connections (share-link viewers have no account) and checks every call instead.
        var a = await App.NewUserAsync(Unique("anon-a"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("anonvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();
        foreach (var token in new string?[] { null, "vmp_not-a-real-token" })
        {
            await using var c = new HubConnectionBuilder()
                .WithUrl(new Uri(App.BaseAddress, ConsoleHub.Path), o => { if (token is not null) o.AccessTokenProvider = () => Task.FromResult<string?>(token); })
                .AddMessagePackProtocol()
                .Build();
            int frames = 0;
            c.On<ConsoleFrame>(ConsoleMethods.Frame, _ => Interlocked.Increment(ref frames));
            await c.StartAsync();
            var join = await Assert.ThrowsAsync<HubException>(() => c.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null));
            Assert.Contains("may not use its console", join.Message);
            var badLink = await Assert.ThrowsAsync<HubException>(() => c.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), "vms_forged"));
            Assert.Contains("invalid, expired or revoked", badLink.Message);
            foreach (var (method, args) in new (string, object?[])[]
                     {
                         ("Key", ["KeyA", true]), ("TypeText", ["x"]), ("SpecialKeys", ["ctrl-alt-del"]), ("Mouse", [1, 1, 0]), ("MouseWheel", [1, 0]),
                         ("SerialInput", [new byte[] { 65 }]), ("Power", ["start"]),
                     })
                await Assert.ThrowsAsync<HubException>(() => c.InvokeCoreAsync(method, args));
            var read = await Assert.ThrowsAsync<HubException>(() => c.InvokeAsync<string?>("GetScreenText"));
            Assert.Contains("Join", read.Message);
            await Assert.ThrowsAsync<HubException>(() => c.InvokeAsync("RequestFullFrame"));
            Assert.Equal(0, Volatile.Read(ref frames));
        }
        Assert.Equal("stopped", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Console_hub_streams_frames_to_the_owner_and_refuses_others()
    {
        var a = await App.NewUserAsync(Unique("hub-a"));
        var b = await App.NewUserAsync(Unique("hub-b"));
        using var ca = App.Client(a.Token);
        var id = (await CreateVmAsync(ca, Unique("hubvm"), memoryMiB: 32))["id"]!.GetValue<Guid>();

        await using var owner = Connect(a.Token);
        await using var stranger = Connect(b.Token);
        var ownerFrames = new List<ConsoleFrame>();
        int strangerFrames = 0;
        var firstFull = new TaskCompletionSource<ConsoleFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        owner.On<ConsoleFrame>(ConsoleMethods.Frame, f =>
        {
            lock (ownerFrames) ownerFrames.Add(f);
            if (f.Full && f.Tiles.Length > 0) firstFull.TrySetResult(f);
        });
        stranger.On<ConsoleFrame>(ConsoleMethods.Frame, _ => Interlocked.Increment(ref strangerFrames));
        await owner.StartAsync();
        await stranger.StartAsync();

        // joining a stopped VM works (frames come once it runs); power through the hub
        var join = await owner.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null);
        Assert.Equal(VmRunState.Stopped, join.State);
        Assert.False(join.ReadOnly);
        var typing = await Assert.ThrowsAsync<HubException>(() => owner.InvokeAsync("TypeText", "x"));
        Assert.Contains("stopped", typing.Message);
        Assert.Equal(VmRunState.Running, await owner.InvokeAsync<VmRunState>("Power", "start"));
        try
        {
            var full = await firstFull.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(full.Width >= 640 && full.Height >= 200, $"{full.Width}x{full.Height}");
            Assert.Contains(full.Tiles, t => t.Bytes.Length > 0);

            // input: a real key, text; an unknown key code is an error for this caller only
            await owner.InvokeAsync("Key", "Enter", true);
            await owner.InvokeAsync("Key", "Enter", false);
            await owner.InvokeAsync("TypeText", "hi\n");
            var bad = await Assert.ThrowsAsync<HubException>(() => owner.InvokeAsync("Key", "NoSuchKey", true));
            Assert.Contains("NoSuchKey", bad.Message);
            var badCombo = await Assert.ThrowsAsync<HubException>(() => owner.InvokeAsync("SpecialKeys", "ctrl-alt-nosuch"));
            Assert.False(string.IsNullOrEmpty(badCombo.Message));
            await owner.InvokeAsync("RequestFullFrame");
            Assert.Contains("SeaBIOS", await WaitForTextAsync(owner, "SeaBIOS"));

            // the stranger: same refusal as a VM that does not exist, no frames, no input
            var foreign = await Assert.ThrowsAsync<HubException>(() => stranger.InvokeAsync<JoinResult>("JoinConsole", id.ToString(), null));
            var missing = await Assert.ThrowsAsync<HubException>(() => stranger.InvokeAsync<JoinResult>("JoinConsole", Guid.NewGuid().ToString(), null));
            Assert.Equal(missing.Message, foreign.Message);
            var input = await Assert.ThrowsAsync<HubException>(() => stranger.InvokeAsync("Key", "KeyA", true));
            Assert.Contains("Join", input.Message);
            await Assert.ThrowsAsync<HubException>(() => stranger.InvokeAsync<VmRunState>("Power", "poweroff"));
            await Task.Delay(500);
            Assert.Equal(0, Volatile.Read(ref strangerFrames));

            // the owner's connection kept working through all that
            Assert.Equal(VmRunState.Paused, await owner.InvokeAsync<VmRunState>("Power", "pause"));
            Assert.Equal("paused", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
            await Assert.ThrowsAsync<HubException>(() => owner.InvokeAsync<VmRunState>("Power", "pause"));
            Assert.Equal(VmRunState.Running, await owner.InvokeAsync<VmRunState>("Power", "resume"));
        }
        finally
        {
            Assert.Equal(HttpStatusCode.OK, (await ca.PostAsync($"/api/vms/{id}/stop", null)).StatusCode);
        }
        Assert.Equal("stopped", (await JsonAsync(await ca.GetAsync($"/api/vms/{id}")))["state"]!.GetValue<string>());
        lock (ownerFrames) Assert.NotEmpty(ownerFrames);
    }

    private static async Task<string> WaitForTextAsync(HubConnection c, string text)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string last = "";
        while (DateTime.UtcNow < until)
        {
            last = await c.InvokeAsync<string?>("GetScreenText") ?? "";
            if (last.Contains(text)) return last;
            await Task.Delay(100);
        }
        return last;
    }
}

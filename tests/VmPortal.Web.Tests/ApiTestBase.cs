using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using VmPortal.Emulator.Firmware;
using VmPortal.Web.Hubs;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

public abstract class ApiTestBase(PortalAppFixture app)
{
    protected PortalAppFixture App { get; } = app;

    /// <summary>A console hub connection (MessagePack) with an API token, or anonymous when <paramref name="bearer"/> is null.</summary>
    protected HubConnection Connect(string? bearer) =>
        new HubConnectionBuilder()
            .WithUrl(new Uri(App.BaseAddress, ConsoleHub.Path), o =>
            {
                if (bearer is not null) o.AccessTokenProvider = () => Task.FromResult<string?>(bearer);
            })
            .AddMessagePackProtocol()
            .Build();

    protected static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>
    /// The smallest ISO 9660 image the upload check accepts: <paramref name="sectors"/> × 2048 bytes of noise with a
    /// primary volume descriptor at sector 16 and (when there is room) the set terminator at sector 17.
    /// </summary>
    protected static byte[] MinimalIso(int sectors)
    {
        var iso = new byte[sectors * 2048];
        new Random(sectors).NextBytes(iso);
        byte[] pvd = [1, (byte)'C', (byte)'D', (byte)'0', (byte)'0', (byte)'1', 1];
        byte[] end = [255, (byte)'C', (byte)'D', (byte)'0', (byte)'0', (byte)'1', 1];
        pvd.CopyTo(iso, 16 * 2048);
        if (sectors > 17) end.CopyTo(iso, 17 * 2048);
        return iso;
    }

    /// <summary>The admin uploads the real rescue Linux ISO (the fixture's built-in image folder holds placeholders);
    /// returns its image name (a CD-ROM is <c>upload:NAME</c>).</summary>
    protected async Task<string> UploadRescueIsoAsync()
    {
        var iso = GuestImages.PathOf(GuestImages.RescueIso);
        Assert.True(File.Exists(iso), $"{iso} is missing: {GuestImages.BuildHint}");
        using var admin = App.Client(await App.AdminTokenAsync());
        var isoName = Unique("rescue") + ".iso";
        using (var upload = new StreamContent(File.OpenRead(iso)))
            Assert.True((await admin.PostAsync($"/api/images?name={isoName}", upload)).IsSuccessStatusCode);
        return isoName;
    }

    protected static object VmBody(string name, int memoryMiB = 128, object? extra = null) => new
    {
        name,
        description = "test vm",
        memoryMiB,
        disks = new[] { new { sizeMiB = 2048 } },
        bootOrder = new[] { "cdrom", "disk" },
    };

    protected static async Task<JsonObject> JsonAsync(HttpResponseMessage r) =>
        JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();

    /// <summary>Types <paramref name="text"/> on a VM's console through the REST API.</summary>
    protected static async Task ConsoleTypeAsync(HttpClient c, Guid vm, string text) =>
        Assert.Equal(HttpStatusCode.OK, (await c.PostAsJsonAsync($"/api/vms/{vm}/console/type", new { text })).StatusCode);

    /// <summary>The text on a VM's screen, through the REST API.</summary>
    protected static async Task<string> ConsoleTextAsync(HttpClient c, Guid vm) =>
        (await JsonAsync(await c.GetAsync($"/api/vms/{vm}/console/text")))["text"]!.GetValue<string>();

    /// <summary>Waits for <paramref name="pattern"/> on a VM's screen (console/wait takes at most 600 s per call); a
    /// failure shows the screen.</summary>
    protected static async Task ConsoleWaitAsync(HttpClient c, Guid vm, string pattern, int seconds)
    {
        for (int left = seconds; ; left -= 600)
        {
            var r = await c.PostAsJsonAsync($"/api/vms/{vm}/console/wait", new { pattern, timeoutSeconds = Math.Min(left, 600), source = "screen" });
            if (r.StatusCode == HttpStatusCode.OK) return;
            Assert.True(r.StatusCode == HttpStatusCode.RequestTimeout && left > 600,
                $"wait {pattern}: {r.StatusCode} {await r.Content.ReadAsStringAsync()}; screen:\n{await ConsoleTextAsync(c, vm)}");
        }
    }

    protected static async Task<JsonObject> CreateVmAsync(HttpClient c, string name, int memoryMiB = 128)
    {
        var r = await c.PostAsJsonAsync("/api/vms", VmBody(name, memoryMiB));
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        return await JsonAsync(r);
    }

    /// <summary>Total VMs in the database, as the admin sees them.</summary>
    protected async Task<int> VmCountAsync()
    {
        using var admin = App.Client(await App.AdminTokenAsync());
        var list = await JsonAsync(await admin.GetAsync("/api/vms?pageSize=500"));
        return list["total"]!.GetValue<int>();
    }

    protected static async Task AssertProblemAsync(HttpResponseMessage r, HttpStatusCode status)
    {
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var body = await JsonAsync(r);
        Assert.Equal((int)status, body["status"]!.GetValue<int>());
    }

    protected static StringContent RawJson(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    protected static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);
}

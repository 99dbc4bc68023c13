using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VmPortal.Data.Hosting;

namespace VmPortal.Tests.Infrastructure;

/// <summary>
/// A real portal for tests: its own throwaway PostgreSQL cluster (the same <see cref="EmbeddedPostgres"/> the portal
/// uses, under /tmp, on a free port), a fresh database, and the app on real Kestrel at 127.0.0.1:random.
/// The built-in images are placeholder files (names only) unless a real image cache directory is given
/// (the browser tests use the real ~/.cache/vmportal/images, so "Debian Linux" in the VM dialog really boots).
/// </summary>
public class PortalAppFixture : IAsyncLifetime
{
    public const string AdminPassword = "admin-test-password-1";

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vmportal-tests-{Guid.NewGuid():N}");
    private readonly string? _realImageCache;
    private readonly IReadOnlyDictionary<string, string?> _settings = RelaxedLimits;

    /// <summary>
    /// Tests share one portal and all come from 127.0.0.1: the per-address limits on credential endpoints are raised
    /// so that one test's failed passwords do not throttle another's sign-in. (Per-user limits stay as shipped.)
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string?> RelaxedLimits = new Dictionary<string, string?>
    {
        ["Security:LoginThrottle:PerAddress"] = "1000000",
        ["Security:RateLimit:CredentialsPerMinute"] = "1000000",
        // a small, fixed host whatever the machine has (tests start VMs beyond it)
        ["Runtime:CapacityMiB"] = "4096",
    };
    private EmbeddedPostgres? _pg;
    private PortalFactory? _factory;

    /// <summary>A portal whose built-in images are placeholders.</summary>
    public PortalAppFixture() { }

    /// <summary>A portal whose built-in images come from <paramref name="realImageCache"/> (read only, nothing written there).</summary>
    /// (internal: xUnit wants one public constructor on a collection fixture; this file is compiled into each test project)
    internal PortalAppFixture(string? realImageCache) => _realImageCache = realImageCache;

    /// <summary>A portal with these settings instead of <see cref="RelaxedLimits"/> (e.g. none: the shipped limits).</summary>
    protected PortalAppFixture(IReadOnlyDictionary<string, string?> settings) => _settings = settings;

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1/");
    /// <summary>Whether the built-in images are the real guest images.</summary>
    public bool RealImages => _realImageCache is not null;
    public string ImageCacheDir => _realImageCache ?? Path.Combine(_root, "image-cache");
    public string ImageStoreDir => Path.Combine(_root, "images");
    public IServiceProvider Services => _factory!.Services;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(ImageStoreDir);
        if (_realImageCache is null)
        {
            Directory.CreateDirectory(ImageCacheDir);
            // built-in guest images as the guest-image script names them (content does not matter to the portal)
            await File.WriteAllBytesAsync(Path.Combine(ImageCacheDir, "debian-i386-rescue.iso"), new byte[4096]);
            await File.WriteAllBytesAsync(Path.Combine(ImageCacheDir, "memtest86plus.iso"), new byte[2048]);
        }
        await File.WriteAllBytesAsync(Path.Combine(ImageStoreDir, "base.qcow"), new byte[1024]);

        _pg = await EmbeddedPostgres.StartAsync(
            new EmbeddedPostgresOptions { DataDirectory = Path.Combine(_root, "postgres"), Database = "postgres" },
            NullLogger.Instance);
        var database = "vmportal_test_" + Guid.NewGuid().ToString("N")[..12];
        await _pg.EnsureDatabaseAsync(database);

        _factory = new PortalFactory(_pg.ConnectionStringFor(database), _root, ImageCacheDir, ImageStoreDir, _settings);
        _factory.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _factory.StartServer();
        var addresses = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        BaseAddress = new Uri(addresses.First().Replace("[::]", "127.0.0.1").Replace("localhost", "127.0.0.1"));
    }

    public async Task DisposeAsync()
    {
        if (_factory is not null) await _factory.DisposeAsync();
        if (_pg is not null) await _pg.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The <c>Prefer</c> header of <see cref="Client"/>: hold the answer of task actions until they end (≤ 300 s).</summary>
    public const string HoldAnswers = "wait=300";

    /// <summary>
    /// A plain HttpClient on the real socket (no cookies unless a handler is given). Actions that run as tasks (power,
    /// create, clone) answer 202 + Location by default; this client sends <c>Prefer: wait=300</c> so that most tests
    /// read the held answer (200/201 or the problem, docs/automation.md "Tasks"). <paramref name="holdAnswers"/>
    /// false gives the default 202 answers.
    /// </summary>
    public HttpClient Client(string? bearer = null, bool holdAnswers = true)
    {
        var c = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = BaseAddress };
        if (bearer is not null) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (holdAnswers) c.DefaultRequestHeaders.Add("Prefer", HoldAnswers);
        return c;
    }

    public async Task<string> TokenAsync(string userName, string password, int expiresInDays = 1)
    {
        using var c = Client();
        var r = await c.PostAsJsonAsync("/api/auth/tokens", new { username = userName, password, name = "test", expiresInDays });
        r.EnsureSuccessStatusCode();
        var body = await r.Content.ReadFromJsonAsync<TokenResponse>();
        return body!.Token;
    }

    public Task<string> AdminTokenAsync() => TokenAsync("admin", AdminPassword);

    /// <summary>Creates a user through the admin API and returns a token for them.</summary>
    public async Task<(Guid Id, string Token)> NewUserAsync(string userName, string role = "User", string password = "user-password-1")
    {
        using var admin = Client(await AdminTokenAsync());
        var r = await admin.PostAsJsonAsync("/api/users", new { userName, password, role });
        if (r.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"create user: {r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        var user = await r.Content.ReadFromJsonAsync<UserResponse>();
        return (user!.Id, await TokenAsync(userName, password));
    }

    public sealed record TokenResponse(Guid Id, string Name, string Token, DateTimeOffset ExpiresAt);
    public sealed record UserResponse(Guid Id, string UserName, string Role);

    private sealed class PortalFactory(string connectionString, string root, string imageCache, string imageStore,
        IReadOnlyDictionary<string, string?> settings)
        : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.UseSetting("ConnectionStrings:Portal", connectionString);
            builder.UseSetting("VMPORTAL_ADMIN_PASSWORD", AdminPassword);
            builder.UseSetting("Portal:DataDirectory", Path.Combine(root, "data"));
            builder.UseSetting("Images:BuiltInPath", imageCache);
            builder.UseSetting("Images:StorePath", imageStore);
            foreach (var (k, v) in settings) builder.UseSetting(k, v);
            builder.ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PortalCollection : ICollectionFixture<PortalAppFixture>
{
    public const string Name = "portal";
}

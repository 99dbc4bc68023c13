using Microsoft.EntityFrameworkCore;
using VmPortal.Core.Accounts;
using VmPortal.Data;
using VmPortal.Data.Hosting;

namespace VmPortal.Web.Hosting;

/// <summary>
/// Runs before Kestrel accepts requests: starts (or reuses) the private PostgreSQL when no connection string is
/// configured, applies migrations, seeds roles and the first admin. On shutdown it stops the private PostgreSQL.
/// </summary>
public sealed class DatabaseInitializer(
    IServiceProvider services,
    PortalDatabase database,
    IConfiguration config,
    PortalPaths paths,
    ILogger<DatabaseInitializer> log) : IHostedService
{
    private EmbeddedPostgres? _embedded;

    public async Task StartAsync(CancellationToken ct)
    {
        var cs = config.GetConnectionString("Portal");
        if (string.IsNullOrWhiteSpace(cs))
        {
            if (!OperatingSystem.IsLinux())
                throw new PlatformNotSupportedException("The private PostgreSQL needs Linux; set ConnectionStrings__Portal.");
            var options = new EmbeddedPostgresOptions { DataDirectory = Path.Combine(paths.DataDirectory, "postgres") };
            config.GetSection("Database:Embedded").Bind(options);
            options.DataDirectory = paths.Resolve(options.DataDirectory);
            if (options.PasswordFile is not null) options.PasswordFile = paths.Resolve(options.PasswordFile);
            _embedded = await EmbeddedPostgres.StartAsync(options, log, ct);
            database.ConnectionString = _embedded.ConnectionString;
            database.IsEmbedded = true;
        }
        else
        {
            database.ConnectionString = cs;
        }

        await using (var scope = services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await db.Database.MigrateAsync(ct);
                    break;
                }
                catch (Npgsql.NpgsqlException e) when (attempt < 30 && e.InnerException is System.Net.Sockets.SocketException or TimeoutException)
                {
                    // an external PostgreSQL (docker compose) may still be starting
                    log.LogWarning("Database not reachable yet ({Message}); retrying", e.Message);
                    await Task.Delay(TimeSpan.FromSeconds(2), ct);
                }
            }
        }

        var adminPassword = config["VMPORTAL_ADMIN_PASSWORD"];
        var users = services.GetRequiredService<UserService>();
        var (created, generated) = await users.SeedAsync(adminPassword, ct);
        if (created && generated is not null)
        {
            // printed once: the password is not stored anywhere in clear text
            Console.WriteLine();
            Console.WriteLine("==================================================================");
            Console.WriteLine($"  VmPortal: created the account 'admin' with password: {generated}");
            Console.WriteLine("  (shown only now; set VMPORTAL_ADMIN_PASSWORD to choose it)");
            Console.WriteLine("==================================================================");
            Console.WriteLine();
        }
        else if (created)
        {
            log.LogInformation("Created the account 'admin' with the password from VMPORTAL_ADMIN_PASSWORD");
        }
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (_embedded is not null && OperatingSystem.IsLinux()) await _embedded.StopAsync(CancellationToken.None);
    }
}

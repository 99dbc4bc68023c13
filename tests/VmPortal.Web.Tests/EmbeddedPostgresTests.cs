using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using VmPortal.Data.Hosting;

namespace VmPortal.Web.Tests;

/// <summary>The private cluster: created once, password kept private, reused while running, data kept across restarts.</summary>
public sealed class EmbeddedPostgresTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vmportal-pgtest-{Guid.NewGuid():N}");

    public void Dispose()
    {
        try { Directory.Delete(_root, true); }
        catch (IOException) { }
    }

    private EmbeddedPostgresOptions Options() => new() { DataDirectory = Path.Combine(_root, "postgres"), Database = "portal" };

    private static async Task<object?> ScalarAsync(string cs, string sql)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    [Fact]
    public async Task Creates_reuses_restarts_and_keeps_data()
    {
        var first = await EmbeddedPostgres.StartAsync(Options(), NullLogger.Instance);
        Assert.False(first.Reused);
        var passwordFile = Path.Combine(_root, "postgres.password");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
        Assert.Equal(first.Password, (await File.ReadAllTextAsync(passwordFile)).Trim());
        await ScalarAsync(first.ConnectionString, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);");
        // listens on 127.0.0.1 only
        Assert.Equal("127.0.0.1", await ScalarAsync(first.ConnectionString, "SHOW listen_addresses"));
        Assert.Equal("", await ScalarAsync(first.ConnectionString, "SHOW unix_socket_directories"));

        // a second start while it runs connects to the same cluster
        var second = await EmbeddedPostgres.StartAsync(Options(), NullLogger.Instance);
        Assert.True(second.Reused);
        Assert.Equal(first.Port, second.Port);
        Assert.Equal(42, await ScalarAsync(second.ConnectionString, "SELECT v FROM kept"));

        // a wrong password is refused (scram auth, not trust)
        var wrong = new NpgsqlConnectionStringBuilder(first.ConnectionString) { Password = "nope", Pooling = false }.ConnectionString;
        await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(wrong, "SELECT 1"));

        await first.StopAsync();
        Assert.False(File.Exists(Path.Combine(_root, "postgres", "postmaster.pid")));

        // restart: not re-initialised, data still there
        var third = await EmbeddedPostgres.StartAsync(Options(), NullLogger.Instance);
        Assert.False(third.Reused);
        Assert.Equal(42, await ScalarAsync(third.ConnectionString, "SELECT v FROM kept"));
        await third.StopAsync();
    }
}

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

/// <summary>Issue 15 finding 3: after a crash, a reused pid in postmaster.pid does not stop the portal's database from starting.</summary>
public sealed class EmbeddedPostgresStalePidTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vmportal-pgstale-{Guid.NewGuid():N}");

    public void Dispose()
    {
        try { Directory.Delete(_root, true); }
        catch (IOException) { }
    }

    [Fact]
    public async Task A_stale_pid_held_by_an_unrelated_process_is_ignored_and_postgres_starts()
    {
        var options = new EmbeddedPostgresOptions { DataDirectory = Path.Combine(_root, "postgres"), Database = "portal" };
        var first = await EmbeddedPostgres.StartAsync(options, NullLogger.Instance);
        await using (var conn = new NpgsqlConnection(first.ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        NpgsqlConnection.ClearAllPools();

        // kill -9 the postmaster and its children, as a crash would
        var pidFile = Path.Combine(options.DataDirectory, "postmaster.pid");
        var lines = await File.ReadAllLinesAsync(pidFile);
        var pid = int.Parse(lines[0]);
        static int? ParentOf(string procDir)
        {
            try { return int.Parse(File.ReadAllText(Path.Combine(procDir, "stat")).Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]); }
            catch (Exception) { return null; }
        }
        var children = Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _) && ParentOf(d) == pid)
            .Select(d => Path.GetFileName(d)).ToList();
        using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString(), .. children])) await kill!.WaitForExitAsync();
        for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++) await Task.Delay(50);
        await Task.Delay(500); // children notice and exit
        Assert.True(File.Exists(pidFile)); // the crash left the file behind

        // an unrelated, live process now has "the" pid
        using var squatter = System.Diagnostics.Process.Start("sleep", ["300"])!;
        try
        {
            lines[0] = squatter.Id.ToString();
            await File.WriteAllLinesAsync(pidFile, lines);

            var second = await EmbeddedPostgres.StartAsync(options, NullLogger.Instance);
            Assert.False(second.Reused);
            await using var conn = new NpgsqlConnection(second.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT v FROM kept", conn);
            Assert.Equal(7, await cmd.ExecuteScalarAsync());
            Assert.False(squatter.HasExited); // nobody touched the unrelated process
            await conn.CloseAsync();
            await second.StopAsync();
        }
        finally
        {
            squatter.Kill();
        }
    }
}

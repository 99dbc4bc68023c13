// Linux only: runs PostgreSQL server binaries, runuser and Unix file modes.
#pragma warning disable CA1416
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace VmPortal.Data.Hosting;

/// <summary>Where and how the private PostgreSQL cluster lives.</summary>
public sealed class EmbeddedPostgresOptions
{
    /// <summary>PGDATA of the private cluster, e.g. <c>./.data/postgres</c>.</summary>
    public string DataDirectory { get; set; } = ".data/postgres";

    /// <summary>File holding the generated superuser password (mode 600). Default: <c>{DataDirectory}.password</c>.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>Directory with initdb/pg_ctl; default: the newest <c>/usr/lib/postgresql/N/bin</c>.</summary>
    public string? BinDirectory { get; set; }

    /// <summary>Database the portal uses.</summary>
    public string Database { get; set; } = "vmportal";

    /// <summary>Superuser created by initdb; the portal connects as this role.</summary>
    public string User { get; set; } = "vmportal";

    /// <summary>TCP port on 127.0.0.1; 0 picks a free one at each start.</summary>
    public int Port { get; set; }
}

/// <summary>
/// Starts (or reuses) a private PostgreSQL cluster listening on 127.0.0.1 only (no Unix socket), owned by this
/// process. initdb refuses to run as root, so as root every PostgreSQL command runs through
/// <c>runuser -u postgres --</c> and the data directory is given to the postgres user.
/// The superuser password is generated once and kept in <see cref="EmbeddedPostgresOptions.PasswordFile"/>.
/// </summary>

public sealed class EmbeddedPostgres : IAsyncDisposable
{
    private readonly EmbeddedPostgresOptions _options;
    private readonly ILogger _log;
    private readonly string _dataDir;
    private readonly string _passwordFile;
    private readonly string _binDir;
    private readonly bool _asRoot;
    private bool _stopped;

    private EmbeddedPostgres(EmbeddedPostgresOptions options, ILogger log)
    {
        _options = options;
        _log = log;
        _dataDir = Path.GetFullPath(options.DataDirectory);
        _passwordFile = Path.GetFullPath(options.PasswordFile ?? _dataDir.TrimEnd('/') + ".password");
        _binDir = options.BinDirectory ?? FindBinDirectory();
        _asRoot = Environment.UserName == "root" || geteuid() == 0;
    }

    public int Port { get; private set; }
    public string Password { get; private set; } = "";
    /// <summary>True when this instance found the cluster already running and connected to it.</summary>
    public bool Reused { get; private set; }
    public string DataDirectory => _dataDir;

    /// <summary>Connection string for <paramref name="database"/> (default: the configured database).</summary>
    public string ConnectionStringFor(string? database = null) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = _options.User,
        Password = Password,
        Database = database ?? _options.Database,
        Pooling = true,
    }.ConnectionString;

    public string ConnectionString => ConnectionStringFor();

    /// <summary>Initialises the cluster if needed, starts it (or reuses the running one) and creates the database.</summary>
    public static async Task<EmbeddedPostgres> StartAsync(EmbeddedPostgresOptions options, ILogger log, CancellationToken ct = default)
    {
        var pg = new EmbeddedPostgres(options, log);
        await pg.StartCoreAsync(ct);
        return pg;
    }

    private async Task StartCoreAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_passwordFile)!);
        if (!File.Exists(Path.Combine(_dataDir, "PG_VERSION")))
        {
            await InitDbAsync(ct);
        }
        Password = (await File.ReadAllTextAsync(_passwordFile, ct)).Trim();

        var runningPort = RunningPort();
        if (runningPort is int p)
        {
            Port = p;
            Reused = true;
            _log.LogInformation("Reusing the running private PostgreSQL in {Dir} on 127.0.0.1:{Port}", _dataDir, Port);
        }
        else
        {
            Port = _options.Port != 0 ? _options.Port : FreePort();
            var logFile = Path.Combine(_dataDir, "postgres.log");
            _log.LogInformation("Starting private PostgreSQL in {Dir} on 127.0.0.1:{Port}", _dataDir, Port);
            var (code, output) = await RunPgAsync("pg_ctl",
                ["-D", _dataDir, "-l", logFile, "-w", "-t", "60", "-o", $"-h 127.0.0.1 -p {Port} -k ''", "start"], ct);
            if (code != 0)
            {
                var tail = File.Exists(logFile) ? string.Join('\n', File.ReadLines(logFile).TakeLast(20)) : "";
                throw new InvalidOperationException($"pg_ctl start failed ({code}): {output}\n{tail}");
            }
        }
        await EnsureDatabaseAsync(_options.Database, ct);
    }

    /// <summary>Creates <paramref name="database"/> when it does not exist yet.</summary>
    public async Task EnsureDatabaseAsync(string database, CancellationToken ct = default)
    {
        await using var conn = new NpgsqlConnection(ConnectionStringFor("postgres"));
        for (var attempt = 0; ; attempt++)
        {
            try { await conn.OpenAsync(ct); break; }
            catch (NpgsqlException) when (attempt < 50) { await Task.Delay(200, ct); }
        }
        await using var check = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @n", conn);
        check.Parameters.AddWithValue("n", database);
        if (await check.ExecuteScalarAsync(ct) is null)
        {
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database.Replace("\"", "\"\"")}\"", conn);
            await create.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>Stops the cluster (fast shutdown: running queries are cancelled, data is flushed).</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        if (_stopped) return;
        _stopped = true;
        NpgsqlConnection.ClearAllPools();
        if (RunningPort() is null) return;
        _log.LogInformation("Stopping private PostgreSQL in {Dir}", _dataDir);
        var (code, output) = await RunPgAsync("pg_ctl", ["-D", _dataDir, "-m", "fast", "-w", "-t", "60", "stop"], ct);
        if (code != 0) _log.LogWarning("pg_ctl stop failed ({Code}): {Output}", code, output);
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task InitDbAsync(CancellationToken ct)
    {
        _log.LogInformation("Creating private PostgreSQL cluster in {Dir}", _dataDir);
        Directory.CreateDirectory(_dataDir);
        if (Directory.EnumerateFileSystemEntries(_dataDir).Any())
            throw new InvalidOperationException($"{_dataDir} is not empty but holds no PostgreSQL cluster; move it away.");

        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        await File.WriteAllTextAsync(_passwordFile, password + "\n", ct);
        File.SetUnixFileMode(_passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // initdb reads the password from a file it can open: a private temp file, removed right after.
        var pwTemp = Path.Combine(Path.GetTempPath(), $"vmportal-pg-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(pwTemp, password + "\n", ct);
        File.SetUnixFileMode(pwTemp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetUnixFileMode(_dataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            if (_asRoot)
            {
                EnsurePostgresCanReach(_dataDir);
                await RunAsync("chown", ["postgres:postgres", pwTemp, _dataDir], ct);
            }
            var (code, output) = await RunPgAsync("initdb",
                ["-D", _dataDir, "-U", _options.User, "--pwfile", pwTemp, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"], ct);
            if (code != 0) throw new InvalidOperationException($"initdb failed ({code}): {output}");
        }
        finally
        {
            File.Delete(pwTemp);
        }
    }

    /// <summary>As root the cluster runs as postgres, which needs to traverse every parent directory.</summary>
    private static void EnsurePostgresCanReach(string dir)
    {
        for (var d = Path.GetDirectoryName(dir); !string.IsNullOrEmpty(d) && d != "/"; d = Path.GetDirectoryName(d))
        {
            var mode = File.GetUnixFileMode(d);
            if ((mode & UnixFileMode.OtherExecute) == 0)
                throw new InvalidOperationException(
                    $"The private PostgreSQL runs as the postgres user, which cannot enter {d}. " +
                    $"Allow it (chmod o+x {d}) or set Database:Embedded:DataDirectory to a directory it can reach.");
        }
    }

    /// <summary>
    /// The port of the cluster running on this data directory, or null when none runs. After a crash the pid in
    /// <c>postmaster.pid</c> may belong to an unrelated process by now: the file counts only when that process is a
    /// PostgreSQL server started on this very data directory; otherwise the file is stale and removed (PostgreSQL
    /// itself would refuse to start while the pid is alive).
    /// </summary>
    private int? RunningPort()
    {
        var pidFile = Path.Combine(_dataDir, "postmaster.pid");
        if (!File.Exists(pidFile)) return null;
        string[] lines;
        try { lines = File.ReadAllLines(pidFile); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        if (lines.Length < 4 || !int.TryParse(lines[0], out var pid) || !int.TryParse(lines[3], out var port)) return null;
        if (!Directory.Exists($"/proc/{pid}")) return null; // pg_ctl start sees the dead pid and starts normally
        if (IsOurPostmaster(pid)) return port;
        _log.LogWarning("Stale {File}: pid {Pid} is now {Command}, not PostgreSQL on this data directory; starting PostgreSQL",
            pidFile, pid, CommandLine(pid) is { Length: > 0 } c ? c : "another process");
        try { File.Delete(pidFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"{pidFile} names pid {pid}, which is not this PostgreSQL, and the file cannot be removed ({e.Message}). " +
                "Delete it by hand (no PostgreSQL runs on this data directory) and start again.", e);
        }
        return null;
    }

    /// <summary>Whether <paramref name="pid"/> runs a <c>postgres</c> binary with <c>-D</c> this data directory.</summary>
    private bool IsOurPostmaster(int pid)
    {
        var args = Arguments(pid);
        if (args.Length == 0 || Path.GetFileName(args[0]) is not ("postgres" or "postmaster")) return false;
        var i = Array.IndexOf(args, "-D");
        if (i < 0 || i + 1 >= args.Length) return false;
        string Full(string d) => Path.GetFullPath(d).TrimEnd('/');
        return Full(args[i + 1]) == Full(_dataDir);
    }

    private static string[] Arguments(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    private static string CommandLine(int pid) => string.Join(' ', Arguments(pid));

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string FindBinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        var best = Directory.Exists(root)
            ? Directory.GetDirectories(root)
                .Select(d => (dir: d, ok: int.TryParse(Path.GetFileName(d), out var v), v))
                .Where(x => x.ok && File.Exists(Path.Combine(x.dir, "bin", "initdb")))
                .OrderByDescending(x => x.v).Select(x => Path.Combine(x.dir, "bin")).FirstOrDefault()
            : null;
        return best ?? throw new InvalidOperationException(
            "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql), " +
            "or set ConnectionStrings__Portal to an existing database.");
    }

    private Task<(int, string)> RunPgAsync(string tool, string[] args, CancellationToken ct)
    {
        var exe = Path.Combine(_binDir, tool);
        return _asRoot ? RunAsync("runuser", ["-u", "postgres", "--", exe, .. args], ct) : RunAsync(exe, args, ct);
    }

    private static async Task<(int, string)> RunAsync(string file, string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        p.StandardInput.Close();
        // pg_ctl start leaves the postmaster holding inherited pipes only if it is told to; with -l it does not.
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, (await stdout + await stderr).Trim());
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}

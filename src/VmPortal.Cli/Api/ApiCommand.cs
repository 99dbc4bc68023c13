using System.Text.Json.Nodes;

namespace VmPortal.Cli.Api;

/// <summary>
/// <c>vmportal login|logout|vm|template|console|quota</c>: the portal's REST API from a shell. Human tables by
/// default, <c>--json</c> for scripts. Exit codes: 0 ok, 1 usage (or a request the portal found invalid),
/// 2 timeout, 3 refused or not found, 4 quota exceeded.
/// </summary>
public sealed class ApiCommand(TextWriter stdout, TextWriter stderr, TextReader? stdin, HttpMessageHandler? handler = null)
{
    public const string Usage = """
        vmportal login --url URL --user NAME [--password-stdin] [--days N]   store a token (~/.config/vmportal/login.json, 0600)
        vmportal logout                                                      revoke and forget the stored token
        vmportal vm list [--json]
        vmportal vm show VM [--json]
        vmportal vm create NAME (--template T | --iso IMAGE) [--memory MiB] [--disk-size MiB]
                               [--user U] [--password-stdin] [--ssh-key FILE] [--json] [--no-wait]
        vmportal vm start|stop|reset|pause|resume VM [--no-wait]
        vmportal vm delete VM
        vmportal vm shutdown VM [--timeout SECONDS] [--no-wait]             ACPI power button; waits for the guest
        vmportal vm clone VM NAME [--full] [--no-wait]
        vmportal vm template VM NAME [--description TEXT] [--no-wait]       a stopped VM becomes a catalog template
        Actions run as tasks: the command waits for the task and prints its result; --no-wait prints the task id.
        vmportal template list [--json]
        vmportal task list [--all] [--json]                                  your tasks, newest first (admins: --all)
        vmportal task show|log|cancel TASK
        vmportal task wait TASK [--timeout SECONDS]                          exit 2 on timeout; a failed task exits like its error
        vmportal console text VM
        vmportal console type VM TEXT [--enter]
        vmportal console keys VM KEY...                                      e.g. ctrl alt del
        vmportal console wait VM REGEX [--timeout SECONDS] [--serial]        exit 2 on timeout
        vmportal console screenshot VM FILE.png
        vmportal quota [--json]
        VM is a name or an id. VMPORTAL_URL and VMPORTAL_TOKEN override the stored login.
        Exit codes: 0 ok, 1 usage/invalid, 2 timeout, 3 refused/not found, 4 quota exceeded.
        """;

    private List<string> _args = [];
    private bool _json;

    public static bool Handles(string command) => command is "login" or "logout" or "vm" or "template" or "console" or "quota" or "task";

    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken ct = default)
    {
        _args = args.ToList();
        if (Flag("--help") || Flag("-h"))
        {
            stdout.WriteLine(Usage);
            return CliExit.Ok;
        }
        _json = Flag("--json");
        try
        {
            return (Take(), _args.Count > 0 ? _args[0] : null) switch
            {
                ("login", _) => await LoginAsync(ct),
                ("logout", _) => await LogoutAsync(ct),
                ("vm", _) => await VmAsync(ct),
                ("template", "list") => await ListTemplatesAsync(ct),
                ("console", _) => await ConsoleAsync(ct),
                ("quota", _) => await QuotaAsync(ct),
                ("task", _) => await TaskAsync(ct),
                _ => UsageError("unknown command"),
            };
        }
        catch (ApiException e)
        {
            stderr.WriteLine($"vmportal: {e.Message}");
            return e.ExitCode;
        }
        catch (UsageException e)
        {
            return UsageError(e.Message);
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            stderr.WriteLine("vmportal: the portal did not answer in time");
            return CliExit.Timeout;
        }
    }

    private sealed class UsageException(string message) : Exception(message);

    private int UsageError(string message)
    {
        stderr.WriteLine($"vmportal: {message}");
        stderr.WriteLine(Usage);
        return CliExit.Usage;
    }

    // ---- argument helpers ----
    private string Take(string what = "a command") =>
        _args.Count > 0 && !_args[0].StartsWith("--") ? Pop() : throw new UsageException($"missing {what}");

    private string Pop() { var a = _args[0]; _args.RemoveAt(0); return a; }

    private bool Flag(string name) => _args.Remove(name);

    private string? Option(string name)
    {
        var i = _args.IndexOf(name);
        if (i < 0) return null;
        if (i + 1 >= _args.Count) throw new UsageException($"{name} needs a value");
        var v = _args[i + 1];
        _args.RemoveRange(i, 2);
        return v;
    }

    private int? IntOption(string name) =>
        Option(name) is { } v ? int.TryParse(v, out var n) && n >= 0 ? n : throw new UsageException($"{name} must be a number") : null;

    private void NoMoreArguments()
    {
        if (_args.Count > 0) throw new UsageException($"unexpected argument '{_args[0]}'");
    }

    private ApiClient Client()
    {
        var login = ApiLogin.Load() ?? throw new ApiException(CliExit.Usage, "not logged in: run 'vmportal login --url URL --user NAME' or set VMPORTAL_URL and VMPORTAL_TOKEN");
        return new ApiClient(login.Url, login.Token, handler);
    }

    private string ReadPasswordFromStdin()
    {
        var line = stdin?.ReadLine();
        if (string.IsNullOrEmpty(line)) throw new UsageException("--password-stdin: no password on standard input");
        return line;
    }

    private void Print(JsonNode? node, Action human)
    {
        if (_json) stdout.WriteLine(node?.ToJsonString(ApiClient.Json) ?? "null");
        else human();
    }

    private void Table(IEnumerable<string[]> rows, params string[] header)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = Enumerable.Range(0, header.Length).Select(c => all.Max(r => r[c].Length)).ToArray();
        foreach (var r in all) stdout.WriteLine(string.Join("  ", r.Select((cell, c) => c == r.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
    }

    private static string S(JsonNode? n) => n?.ToString() ?? "";

    // ---- login ----
    private async Task<int> LoginAsync(CancellationToken ct)
    {
        var url = Option("--url") ?? Environment.GetEnvironmentVariable("VMPORTAL_URL") ?? throw new UsageException("--url is required");
        var user = Option("--user") ?? throw new UsageException("--user is required");
        var days = IntOption("--days") ?? 30;
        var password = Flag("--password-stdin") ? ReadPasswordFromStdin()
            : Environment.GetEnvironmentVariable("VMPORTAL_PASSWORD") is { Length: > 0 } p ? p
            : throw new UsageException("give the password with --password-stdin (or VMPORTAL_PASSWORD)");
        NoMoreArguments();
        using var client = new ApiClient(url, null, handler);
        var token = await client.PostAsync("/api/auth/tokens",
            new { username = user, password, name = $"vmportal CLI on {Environment.MachineName}", expiresInDays = days }, ct);
        new ApiLogin(url, S(token!["token"]), user).Save();
        stdout.WriteLine($"Logged in to {url} as {user}; token stored in {ApiLogin.ConfigPath()} (expires {S(token["expiresAt"])}).");
        return CliExit.Ok;
    }

    private async Task<int> LogoutAsync(CancellationToken ct)
    {
        NoMoreArguments();
        var path = ApiLogin.ConfigPath();
        if (ApiLogin.Load() is { } login)
        {
            using var client = new ApiClient(login.Url, login.Token, handler);
            var tokens = await client.GetAsync("/api/auth/tokens", ct);
            var prefix = login.Token.Length >= 8 ? login.Token[..8] : login.Token;
            var mine = tokens?.AsArray().FirstOrDefault(t => S(t?["prefix"]) == prefix && t?["active"]?.GetValue<bool>() == true);
            if (mine is not null) await client.DeleteAsync($"/api/auth/tokens/{S(mine["id"])}", ct);
        }
        if (File.Exists(path)) File.Delete(path);
        stdout.WriteLine("Logged out.");
        return CliExit.Ok;
    }

    // ---- VMs ----
    private async Task<string> ResolveVmAsync(ApiClient client, string nameOrId, CancellationToken ct)
    {
        if (Guid.TryParse(nameOrId, out var id)) return id.ToString();
        var list = await client.GetAsync($"/api/vms?name={Uri.EscapeDataString(nameOrId)}&pageSize=500", ct);
        var matches = list!["items"]!.AsArray().Where(v => string.Equals(S(v!["name"]), nameOrId, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            1 => S(matches[0]!["id"]),
            0 => throw new ApiException(CliExit.Refused, $"no VM named '{nameOrId}'"),
            _ => throw new ApiException(CliExit.Usage, $"several VMs are named '{nameOrId}' (different owners): use the id"),
        };
    }

    private async Task<int> VmAsync(CancellationToken ct)
    {
        var verb = Take("a vm command (list, show, create, start, stop, shutdown, reset, pause, resume, delete, clone, template)");
        using var client = Client();
        switch (verb)
        {
            case "list":
            {
                NoMoreArguments();
                var page = await client.GetAsync("/api/vms?pageSize=500", ct);
                Print(page!["items"], () => Table(page!["items"]!.AsArray().Select(v => new[]
                    { S(v!["name"]), S(v["state"]), $"{S(v["memoryMiB"])} MiB", S(v["ownerName"]), S(v["id"]) }), "NAME", "STATE", "MEMORY", "OWNER", "ID"));
                return CliExit.Ok;
            }
            case "show":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                NoMoreArguments();
                var vm = await client.GetAsync($"/api/vms/{id}", ct);
                Print(vm, () => PrintVm(vm!));
                return CliExit.Ok;
            }
            case "create": return await CreateVmAsync(client, ct);
            case "start" or "stop" or "reset" or "pause" or "resume":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                var noWait = Flag("--no-wait");
                NoMoreArguments();
                return await ActionAsync(client, $"/api/vms/{id}/{verb}", null, noWait, 600, r => stdout.WriteLine(S(r?["state"])), ct);
            }
            case "shutdown":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                var timeout = IntOption("--timeout") ?? 60;
                var noWait = Flag("--no-wait");
                NoMoreArguments();
                return await ActionAsync(client, $"/api/vms/{id}/shutdown?timeoutSeconds={timeout}", null, noWait, timeout + 60,
                    r => stdout.WriteLine(S(r?["state"])), ct);
            }
            case "template":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                var name = Take("a name for the template");
                var description = Option("--description");
                var noWait = Flag("--no-wait");
                NoMoreArguments();
                return await ActionAsync(client, $"/api/vms/{id}/template", new { name, description }, noWait, 3600,
                    t => stdout.WriteLine($"template {S(t?["name"])} ({S(t?["id"])})"), ct);
            }
            case "delete":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                NoMoreArguments();
                await client.DeleteAsync($"/api/vms/{id}", ct);
                if (!_json) stdout.WriteLine("deleted");
                return CliExit.Ok;
            }
            case "clone":
            {
                var id = await ResolveVmAsync(client, Take("a VM"), ct);
                var name = Take("a name for the clone");
                var full = Flag("--full");
                var noWait = Flag("--no-wait");
                NoMoreArguments();
                return await ActionAsync(client, $"/api/vms/{id}/clone", new { name, mode = full ? "full" : "linked" }, noWait, 3600,
                    vm => PrintVm(vm!), ct);
            }
            default: throw new UsageException($"unknown vm command '{verb}'");
        }
    }

    /// <summary>
    /// POSTs an action. The portal answers 202 + the task (docs/automation.md "Tasks"): with <paramref name="noWait"/>
    /// the task id is printed, else the task is followed until it ends and its result printed (a failed task exits
    /// with its error's code). An answer that is not a task (200/201) is printed as it is.
    /// </summary>
    private async Task<int> ActionAsync(ApiClient client, string path, object? body, bool noWait, int timeoutSeconds,
        Action<JsonNode?> human, CancellationToken ct)
    {
        var (status, answer) = await client.PostActionAsync(path, body, ct);
        if (status != 202)
        {
            Print(answer, () => human(answer));
            return CliExit.Ok;
        }
        if (noWait)
        {
            Print(answer, () => stdout.WriteLine(S(answer?["id"])));
            return CliExit.Ok;
        }
        var done = await WaitTaskAsync(client, S(answer?["id"]), timeoutSeconds, ct);
        Print(done["result"], () => human(done["result"]));
        return CliExit.Ok;
    }

    // ---- tasks ----
    private async Task<int> TaskAsync(CancellationToken ct)
    {
        var verb = Take("a task command (list, show, log, wait, cancel)");
        using var client = Client();
        switch (verb)
        {
            case "list":
            {
                var all = Flag("--all");
                NoMoreArguments();
                var list = await client.GetAsync($"/api/tasks?take=100{(all ? "&all=true" : "")}", ct);
                Print(list, () => Table(list!.AsArray().Select(t => new[]
                {
                    S(t!["createdAt"]).Length >= 19 ? S(t["createdAt"])[..19].Replace('T', ' ') : S(t["createdAt"]), S(t["type"]), S(t["targetName"]),
                    S(t["status"]), Progress(t), S(t["id"]),
                }), "CREATED", "TYPE", "TARGET", "STATUS", "PROGRESS", "ID"));
                return CliExit.Ok;
            }
            case "show":
            {
                var id = Take("a task id");
                NoMoreArguments();
                var t = await client.GetAsync($"/api/tasks/{id}", ct);
                Print(t, () => PrintTask(t!));
                return CliExit.Ok;
            }
            case "log":
            {
                var id = Take("a task id");
                NoMoreArguments();
                stdout.Write(await client.GetTextAsync($"/api/tasks/{id}/log", ct));
                return CliExit.Ok;
            }
            case "cancel":
            {
                var id = Take("a task id");
                NoMoreArguments();
                var t = await client.PostAsync($"/api/tasks/{id}/cancel", null, ct);
                Print(t, () => stdout.WriteLine("cancel requested"));
                return CliExit.Ok;
            }
            case "wait":
            {
                var id = Take("a task id");
                var timeout = IntOption("--timeout") ?? 3600;
                NoMoreArguments();
                var t = await WaitTaskAsync(client, id, timeout, ct);
                Print(t, () => PrintTask(t));
                return CliExit.Ok;
            }
            default: throw new UsageException($"unknown task command '{verb}'");
        }
    }

    private static string Progress(JsonNode? t)
    {
        var p = t?["progress"];
        var total = p?["total"]?.GetValue<long>() ?? 0;
        var pct = total > 0 ? $"{100 * (p!["completed"]!.GetValue<long>()) / total}% " : "";
        return pct + S(p?["message"]);
    }

    private void PrintTask(JsonNode t)
    {
        stdout.WriteLine($"task:     {S(t["id"])}");
        stdout.WriteLine($"type:     {S(t["type"])} on {S(t["targetType"])} {S(t["targetName"])}");
        stdout.WriteLine($"status:   {S(t["status"])}");
        stdout.WriteLine($"progress: {Progress(t)}");
        if (t["error"] is JsonObject e) stdout.WriteLine($"error:    {S(e["status"])} {S(e["title"])}: {S(e["detail"])}");
    }

    /// <summary>
    /// Long-polls a task until it ends: its JSON when it succeeded; an <see cref="ApiException"/> with the exit code
    /// of its error (quota 4, bad request 1, guest timeout 2, else 3) when it failed or was cancelled; exit 2 after
    /// <paramref name="timeoutSeconds"/>.
    /// </summary>
    private static async Task<JsonNode> WaitTaskAsync(ApiClient client, string id, int timeoutSeconds, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var left = (int)Math.Ceiling((deadline - DateTime.UtcNow).TotalSeconds);
            var t = (await client.GetAsync($"/api/tasks/{id}?wait={Math.Clamp(left, 0, 60)}", ct))!;
            var status = S(t["status"]);
            if (status == "succeeded") return t;
            if (status is "failed" or "cancelled")
            {
                var e = t["error"];
                var code = e?["status"]?.GetValue<int>() ?? 0;
                var exit = code switch
                {
                    409 when S(e?["title"]) == "Quota exceeded" => CliExit.Quota,
                    400 => CliExit.Usage,
                    504 or 408 => CliExit.Timeout,
                    _ => CliExit.Refused,
                };
                throw new ApiException(exit, $"task {status}: {S(e?["detail"])}");
            }
            if (left <= 0) throw new ApiException(CliExit.Timeout, $"task {id} is still {status} after {timeoutSeconds} s");
        }
    }

    private void PrintVm(JsonNode vm)
    {
        stdout.WriteLine($"name:     {S(vm["name"])}");
        stdout.WriteLine($"id:       {S(vm["id"])}");
        stdout.WriteLine($"state:    {S(vm["state"])}");
        stdout.WriteLine($"owner:    {S(vm["ownerName"])}");
        stdout.WriteLine($"memory:   {S(vm["memoryMiB"])} MiB");
        foreach (var (d, i) in vm["disks"]!.AsArray().Select((d, i) => (d, i)))
            stdout.WriteLine($"disk {i}:   {S(d!["sizeMiB"])} MiB qcow2{(d["backingImageId"] is { } b ? $" on {b}" : "")}");
        if (vm["cdromImageId"] is { } cd) stdout.WriteLine($"cdrom:    {cd}");
        stdout.WriteLine($"boot:     {string.Join(", ", vm["bootOrder"]!.AsArray().Select(S))}");
        if (vm["cloudInit"] is JsonObject ci) stdout.WriteLine($"hostname: {S(ci["hostname"])} (user {S(ci["user"])})");
    }

    private async Task<int> CreateVmAsync(ApiClient client, CancellationToken ct)
    {
        var name = Take("a VM name");
        var template = Option("--template");
        var iso = Option("--iso");
        var memory = IntOption("--memory");
        var diskSize = IntOption("--disk-size");
        var user = Option("--user");
        var keyFile = Option("--ssh-key");
        var password = Flag("--password-stdin") ? ReadPasswordFromStdin() : null;
        var noWait = Flag("--no-wait");
        NoMoreArguments();
        if ((template is null) == (iso is null)) throw new UsageException("give either --template or --iso");
        var keys = keyFile is null ? null : File.ReadAllLines(keyFile).Where(l => l.Trim().Length > 0).Select(l => l.Trim()).ToList();
        object? cloudInit = user is null && password is null && keys is null ? null : new { user, password, sshAuthorizedKeys = keys };
        object body;
        if (template is not null)
        {
            var templates = (await client.GetAsync("/api/templates", ct))!.AsArray();
            var t = templates.FirstOrDefault(x => S(x!["id"]) == template || string.Equals(S(x!["name"]), template, StringComparison.OrdinalIgnoreCase))
                    ?? throw new ApiException(CliExit.Refused, $"no template '{template}' (see 'vmportal template list')");
            body = new { name, templateId = S(t["id"]), memoryMiB = memory, disks = diskSize is int ds ? new[] { new { sizeMiB = ds } } : null, cloudInit };
        }
        else
        {
            body = new
            {
                name, memoryMiB = memory ?? 128, cdromImageId = iso, bootOrder = new[] { "cdrom", "disk" },
                disks = diskSize is int ds ? new[] { new { sizeMiB = ds } } : Array.Empty<object>(), cloudInit,
            };
        }
        return await ActionAsync(client, "/api/vms", body, noWait, 600, vm => PrintVm(vm!), ct);
    }

    private async Task<int> ListTemplatesAsync(CancellationToken ct)
    {
        Pop();
        NoMoreArguments();
        using var client = Client();
        var list = await client.GetAsync("/api/templates", ct);
        Print(list, () => Table(list!.AsArray().Select(t => new[]
            { S(t!["name"]), S(t["os"]), $"{S(t["memoryMiB"])} MiB", S(t["id"]) }), "NAME", "OS", "MEMORY", "ID"));
        return CliExit.Ok;
    }

    // ---- console ----
    private async Task<int> ConsoleAsync(CancellationToken ct)
    {
        var verb = Take("a console command (text, type, keys, wait, screenshot)");
        using var client = Client();
        var id = await ResolveVmAsync(client, Take("a VM"), ct);
        switch (verb)
        {
            case "text":
            {
                NoMoreArguments();
                var r = await client.GetAsync($"/api/vms/{id}/console/text", ct);
                Print(r, () => stdout.WriteLine(S(r?["text"])));
                return CliExit.Ok;
            }
            case "type":
            {
                var enter = Flag("--enter");
                var text = Take("the text to type") + (enter ? "\n" : "");
                NoMoreArguments();
                await client.PostAsync($"/api/vms/{id}/console/type", new { text }, ct);
                return CliExit.Ok;
            }
            case "keys":
            {
                var keys = _args.ToList();
                _args.Clear();
                if (keys.Count == 0) throw new UsageException("name the keys, e.g. ctrl alt del");
                await client.PostAsync($"/api/vms/{id}/console/keys", new { keys }, ct);
                return CliExit.Ok;
            }
            case "wait":
            {
                var serial = Flag("--serial");
                var timeout = IntOption("--timeout") ?? 60;
                var pattern = Take("a regular expression");
                NoMoreArguments();
                // the portal waits at most 10 minutes per request: longer waits are several requests
                var until = DateTime.UtcNow.AddSeconds(timeout);
                while (true)
                {
                    var chunk = Math.Clamp((until - DateTime.UtcNow).TotalSeconds, 1, 600);
                    try
                    {
                        var r = await client.PostAsync($"/api/vms/{id}/console/wait",
                            new { pattern, timeoutSeconds = Math.Round(chunk), source = serial ? "serial" : "screen" }, ct);
                        Print(r, () => stdout.WriteLine(S(r?["match"])));
                        return CliExit.Ok;
                    }
                    catch (ApiException e) when (e.ExitCode == CliExit.Timeout && DateTime.UtcNow < until.AddSeconds(-1)) { }
                }
            }
            case "screenshot":
            {
                var file = Take("a file name");
                NoMoreArguments();
                await File.WriteAllBytesAsync(file, await client.GetBytesAsync($"/api/vms/{id}/console/screenshot", ct), ct);
                return CliExit.Ok;
            }
            default: throw new UsageException($"unknown console command '{verb}'");
        }
    }

    private async Task<int> QuotaAsync(CancellationToken ct)
    {
        NoMoreArguments();
        using var client = Client();
        var q = await client.GetAsync("/api/quota", ct);
        Print(q, () =>
        {
            string Limit(string key) => q!["quota"]![key] is { } v ? v.ToString() : "unlimited";
            stdout.WriteLine($"VMs:          {S(q!["usage"]!["vms"])} of {Limit("maxVms")}");
            stdout.WriteLine($"running VMs:  {S(q["usage"]!["runningVms"])} of {Limit("maxRunningVms")}");
            stdout.WriteLine($"memory (MiB): {S(q["usage"]!["runningMemoryMiB"])} of {Limit("maxMemoryMiB")}");
            stdout.WriteLine($"disks (GiB):  {S(q["usage"]!["diskGiB"])} of {Limit("maxDiskGiB")}");
        });
        return CliExit.Ok;
    }
}

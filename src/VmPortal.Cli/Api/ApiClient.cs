using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VmPortal.Cli.Api;

/// <summary>A refusal from the portal, mapped to the client's exit codes (3 refused/not found, 4 quota).</summary>
public sealed class ApiException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Where the client talks to and with which token: environment first, then the stored login.</summary>
public sealed record ApiLogin(string Url, string Token, string? User = null)
{
    /// <summary><c>$XDG_CONFIG_HOME/vmportal/login.json</c> (default <c>~/.config/vmportal/login.json</c>), mode 0600.</summary>
    public static string ConfigPath()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME");
        var dir = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config") : xdg;
        return Path.Combine(dir, "vmportal", "login.json");
    }

    /// <summary><c>VMPORTAL_URL</c> and <c>VMPORTAL_TOKEN</c> override the stored login (each on its own).</summary>
    public static ApiLogin? Load()
    {
        ApiLogin? stored = null;
        var path = ConfigPath();
        if (File.Exists(path))
        {
            try { stored = JsonSerializer.Deserialize<ApiLogin>(File.ReadAllText(path), ApiClient.Json); }
            catch (JsonException) { stored = null; }
        }
        var url = Environment.GetEnvironmentVariable("VMPORTAL_URL") is { Length: > 0 } u ? u : stored?.Url;
        var token = Environment.GetEnvironmentVariable("VMPORTAL_TOKEN") is { Length: > 0 } t ? t : stored?.Token;
        return url is null || token is null ? null : new ApiLogin(url, token, stored?.User);
    }

    public void Save()
    {
        var path = ConfigPath();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, "");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(temp, JsonSerializer.Serialize(this, ApiClient.Json));
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>The REST API of a VmPortal (<c>/api</c>) for the <c>vmportal</c> command: JSON in and out, problems as <see cref="ApiException"/>.</summary>
public sealed class ApiClient : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly HttpClient http;

    public ApiClient(string url, string? token, HttpMessageHandler? handler = null)
    {
        http = new HttpClient(handler ?? new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(30) };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public void Dispose() => http.Dispose();

    public Task<JsonNode?> GetAsync(string path, CancellationToken ct = default) => SendAsync(HttpMethod.Get, path, null, ct);
    public Task<JsonNode?> PostAsync(string path, object? body = null, CancellationToken ct = default) => SendAsync(HttpMethod.Post, path, body, ct);
    public Task<JsonNode?> DeleteAsync(string path, CancellationToken ct = default) => SendAsync(HttpMethod.Delete, path, null, ct);

    public async Task<string> GetTextAsync(string path, CancellationToken ct = default)
    {
        using var r = await http.GetAsync(path.TrimStart('/'), ct);
        if (!r.IsSuccessStatusCode) throw await ProblemAsync(r, ct);
        return await r.Content.ReadAsStringAsync(ct);
    }

    public async Task<byte[]> GetBytesAsync(string path, CancellationToken ct = default)
    {
        using var r = await http.GetAsync(path.TrimStart('/'), ct);
        if (!r.IsSuccessStatusCode) throw await ProblemAsync(r, ct);
        return await r.Content.ReadAsByteArrayAsync(ct);
    }

    /// <summary>A POST whose answer may be a task (202 + <c>Location: /api/tasks/{id}</c>): the status and the body.</summary>
    public Task<(int Status, JsonNode? Body)> PostActionAsync(string path, object? body = null, CancellationToken ct = default) =>
        SendWithStatusAsync(HttpMethod.Post, path, body, ct);

    private async Task<JsonNode?> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct) =>
        (await SendWithStatusAsync(method, path, body, ct)).Body;

    private async Task<(int Status, JsonNode? Body)> SendWithStatusAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null) request.Content = JsonContent.Create(body, options: Json);
        HttpResponseMessage r;
        try { r = await http.SendAsync(request, ct); }
        catch (HttpRequestException e) { throw new ApiException(CliExit.Refused, $"cannot reach {http.BaseAddress}: {e.Message}"); }
        using (r)
        {
            if (!r.IsSuccessStatusCode) throw await ProblemAsync(r, ct);
            var text = await r.Content.ReadAsStringAsync(ct);
            return ((int)r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }
    }

    /// <summary>A problem-details answer as an exception whose message is the detail (and the field errors).</summary>
    private static async Task<ApiException> ProblemAsync(HttpResponseMessage r, CancellationToken ct)
    {
        var text = await r.Content.ReadAsStringAsync(ct);
        string message = $"{(int)r.StatusCode} {r.ReasonPhrase}";
        string? title = null;
        try
        {
            if (JsonNode.Parse(text) is JsonObject p)
            {
                title = p["title"]?.GetValue<string>();
                var detail = p["detail"]?.GetValue<string>() ?? title;
                if (detail is not null) message = detail;
                if (p["errors"] is JsonObject errors)
                    message += ": " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value!.AsArray().Select(x => x!.GetValue<string>()))}"));
            }
        }
        catch (JsonException) { }
        var code = r.StatusCode switch
        {
            HttpStatusCode.BadRequest => CliExit.Usage,
            HttpStatusCode.RequestTimeout or HttpStatusCode.GatewayTimeout => CliExit.Timeout,
            HttpStatusCode.Conflict when title == "Quota exceeded" => CliExit.Quota,
            _ => CliExit.Refused,
        };
        return new ApiException(code, message);
    }
}

/// <summary>Exit codes of the API commands (docs/automation.md).</summary>
public static class CliExit
{
    public const int Ok = 0, Usage = 1, Timeout = 2, Refused = 3, Quota = 4;
}

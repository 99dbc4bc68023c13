using System.Diagnostics;
using VmPortal.Benchmarks.Console.DemoHost;

// Console demo host. Modes:
//   (default)          serve http://127.0.0.1:5090 — open it in a browser to try the console client
//   --browser-check    start on a free port, drive /usr/bin/chromium with Playwright: type, read, measure latency
//   --load-test        start a server process, connect 1 then 20 SignalR viewers, measure server CPU and bytes
// The bundle is read from src/VmPortal.Web/wwwroot/console (scripts/build-web-assets.sh builds it).
if (args.Contains("--browser-check")) return await BrowserCheck.RunAsync(args);
if (args.Contains("--load-test")) return await LoadTest.RunAsync(args);
if (args.Contains("--idle-vms")) return await IdleVms.RunAsync(args);
var app = DemoServer.Build(args, args.SkipWhile(a => a != "--urls").Skip(1).FirstOrDefault() ?? "http://127.0.0.1:5090");
await app.RunAsync();
return 0;

public static class DemoServer
{
    public static WebApplication Build(string[] args, string url, bool cursorBlink = true)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(url);
        builder.Services.AddSignalR(o => o.MaximumReceiveMessageSize = 128 * 1024).AddMessagePackProtocol();
        builder.Services.AddSingleton(_ => new FakeGuest { CursorBlink = cursorBlink });
        builder.Services.AddSingleton<ViewerPumps>();
        builder.Services.AddHostedService<FrameTicker>();
        var app = builder.Build();

        string bundle = FindBundle();
        app.MapGet("/console/{file}", (string file) =>
        {
            var path = Path.Combine(bundle, Path.GetFileName(file));
            if (!File.Exists(path)) return Results.NotFound();
            var type = file.EndsWith(".js") ? "text/javascript" : file.EndsWith(".css") ? "text/css" : "application/octet-stream";
            return Results.File(path, type);
        });
        app.MapGet("/", (HttpRequest r) => Results.Content(Page(r.Query["share"].ToString()), "text/html"));
        app.MapGet("/vms/{id}/console", (string id, HttpRequest r) => Results.Content(Page(r.Query["share"].ToString(), id), "text/html"));
        app.MapGet("/favicon.ico", () => Results.NoContent());
        app.MapHub<ConsoleHub>("/hubs/console");
        return app;
    }

    private static string Page(string share, string vmId = "demo") => $$"""
        <!doctype html><html><head><meta charset="utf-8"><title>VM console</title>
        <link rel="stylesheet" href="/console/console.css">
        <style>html,body{margin:0;height:100%;background:#111} #console{height:100vh}</style></head>
        <body><div id="console"></div><script src="/console/console.js"></script>
        <script>window.handle = vmConsole.mount(document.getElementById('console'), { vmId: '{{vmId}}', shareToken: {{(share == "" ? "null" : $"'{share}'")}} });</script>
        </body></html>
        """;

    public static string FindBundle()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "src", "VmPortal.Web", "wwwroot", "console");
            if (File.Exists(Path.Combine(p, "console.js"))) return p;
        }
        throw new FileNotFoundException("console.js bundle not found: run scripts/build-web-assets.sh");
    }
}

/// <summary>Drives the fake guest's frame ticks at 30 Hz (sooner after input: <see cref="FakeGuest.Kick"/>) with
/// <see cref="VmPortal.Core.Console.ConsoleTicker"/>, and forwards its serial output.</summary>
public sealed class FrameTicker(FakeGuest guest) : IHostedService
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(1000.0 / 30);
    private VmPortal.Core.Console.ConsoleTicker? ticker;

    public Task StartAsync(CancellationToken ct)
    {
        guest.SerialOut += bytes => guest.Stream.PublishSerial(bytes);
        guest.Stream.PublishPowerState(guest.Lifecycle.State);
        ticker = new VmPortal.Core.Console.ConsoleTicker(guest.Tick, Period, TimeSpan.FromMilliseconds(2), e => Debug.WriteLine(e));
        guest.Kicker = ticker.Kick;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        ticker?.Dispose();
        return Task.CompletedTask;
    }
}

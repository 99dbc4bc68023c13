using VmPortal.Web;
using VmPortal.Web.Runtime;

// Content root: the current directory when it holds appsettings.json (dotnet run in the project, the container),
// otherwise the build output, so that `dotnet run --project src/VmPortal.Web` from the repo root finds its settings.
var cwd = Directory.GetCurrentDirectory();
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    ContentRootPath = File.Exists(Path.Combine(cwd, "appsettings.json")) ? null : AppContext.BaseDirectory,
});

// Serve MudBlazor's and the framework's static web assets straight from the build output in every environment
// (a published app has them in wwwroot and this is a no-op).
builder.WebHost.UseStaticWebAssets();
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
    builder.WebHost.UseUrls("http://127.0.0.1:5080");

builder.AddPortal();
builder.AddVmRuntime();

var app = builder.Build();
app.UsePortal();
app.MapVmRuntime();
app.Run();

/// <summary>Entry point; public for WebApplicationFactory in the tests.</summary>
public partial class Program;

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests.SelfService;

/// <summary>
/// The <c>vmportal</c> API client as a user runs it (the built CLI in its own process, <c>VMPORTAL_URL</c> and
/// <c>VMPORTAL_TOKEN</c> in its environment) against the real portal: its documented exit codes (0 ok, 1 usage or
/// not logged in, 2 timeout, 3 refused or not found, 4 quota), <c>--json</c>, and actions followed as tasks or,
/// with <c>--no-wait</c>, their task id printed. No guest boots (the VM runs the firmware only).
/// </summary>
[Collection(PortalCollection.Name)]
public sealed class CliApiTests(PortalAppFixture app) : ApiTestBase(app)
{
    private async Task<(int Code, string Out, string Err)> CliAsync(string? token, params string[] args)
    {
        var home = Directory.CreateTempSubdirectory("cli-home").FullName;
        try
        {
            var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "vmportal.dll"), .. args])
                { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["HOME"] = home;
            psi.Environment["XDG_CONFIG_HOME"] = Path.Combine(home, ".config");
            psi.Environment.Remove("VMPORTAL_URL");
            psi.Environment.Remove("VMPORTAL_TOKEN");
            if (token is not null)
            {
                psi.Environment["VMPORTAL_URL"] = App.BaseAddress.ToString();
                psi.Environment["VMPORTAL_TOKEN"] = token;
            }
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            return (p.ExitCode, await stdout, await stderr);
        }
        finally { Directory.Delete(home, true); }
    }

    [Fact]
    public async Task The_cli_answers_with_its_documented_exit_codes_and_follows_tasks()
    {
        var (userId, token) = await App.NewUserAsync(Unique("cli"));
        using var admin = App.Client(await App.AdminTokenAsync());
        var img = Unique("cliblank") + ".img"; // a blank base disk: the firmware finds nothing to boot, cheaply
        await File.WriteAllBytesAsync(Path.Combine(App.ImageStoreDir, img), new byte[1 << 20]);
        var template = await JsonAsync(await admin.PostAsJsonAsync("/api/templates", new { name = Unique("cli-tpl"), imageId = "upload:" + img, memoryMiB = 32 }));
        var templateName = template["name"]!.GetValue<string>();

        // 1: usage, or not logged in
        Assert.Equal(1, (await CliAsync(token, "vm", "frobnicate")).Code);
        var notLoggedIn = await CliAsync(null, "vm", "list");
        Assert.Equal(1, notLoggedIn.Code);
        Assert.Contains("not logged in", notLoggedIn.Err);

        // 0: a VM from the template (the create task followed), shown as JSON
        var created = await CliAsync(token, "vm", "create", "cli-one", "--template", templateName, "--json");
        Assert.True(created.Code == 0, created.Err);
        var vm = JsonNode.Parse(created.Out)!;
        Assert.Equal("cli-one", vm["name"]!.GetValue<string>());
        Assert.Equal("stopped", vm["state"]!.GetValue<string>());

        // 3: not found; refused by the state (the task's 409)
        Assert.Equal(3, (await CliAsync(token, "vm", "show", "no-such-vm")).Code);
        var pause = await CliAsync(token, "vm", "pause", "cli-one");
        Assert.Equal(3, pause.Code);
        Assert.Contains("task failed", pause.Err);

        // --no-wait prints the task id; task wait follows it
        var start = await CliAsync(token, "vm", "start", "cli-one", "--no-wait");
        Assert.True(start.Code == 0, start.Err);
        var taskId = start.Out.Trim();
        Assert.True(Guid.TryParse(taskId, out _), start.Out);
        var waited = await CliAsync(token, "task", "wait", taskId, "--json");
        Assert.True(waited.Code == 0, waited.Err);
        Assert.Equal("running", JsonNode.Parse(waited.Out)!["result"]!["state"]!.GetValue<string>());
        try
        {
            // 2: a console wait that times out
            var timeout = await CliAsync(token, "console", "wait", "cli-one", "never-on-this-screen", "--timeout", "1");
            Assert.Equal(2, timeout.Code);
        }
        finally
        {
            var stop = await CliAsync(token, "vm", "stop", "cli-one");
            Assert.True(stop.Code == 0, stop.Err);
            Assert.Equal("stopped", stop.Out.Trim());
        }

        // 4: quota
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync($"/api/users/{userId}/quota", new { maxVms = 1 })).StatusCode);
        var refused = await CliAsync(token, "vm", "create", "cli-two", "--template", templateName);
        Assert.Equal(4, refused.Code);
        Assert.Contains("quota", refused.Err, StringComparison.OrdinalIgnoreCase);

        // the table
        var list = await CliAsync(token, "vm", "list");
        Assert.Equal(0, list.Code);
        Assert.Matches("(?m)^NAME +STATE +MEMORY +OWNER +ID$", list.Out);
        Assert.Matches("(?m)^cli-one +stopped +32 MiB ", list.Out);
        Assert.Equal(0, (await CliAsync(token, "vm", "delete", "cli-one")).Code);
    }
}

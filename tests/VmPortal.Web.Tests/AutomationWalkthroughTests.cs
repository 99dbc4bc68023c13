using System.Diagnostics;
using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Tests.Infrastructure;

namespace VmPortal.Web.Tests;

/// <summary>A portal with the real built-in guest images, for the walkthrough (its own instance: runs beside the others).</summary>
public sealed class RealImagesPortalFixture : IAsyncLifetime
{
    public PortalAppFixture App { get; } = new(File.Exists(GuestImages.PathOf(GuestImages.RescueIso)) ? GuestImages.Directory : null);
    public Task InitializeAsync() => App.InitializeAsync();
    public Task DisposeAsync() => App.DisposeAsync();
}

/// <summary>
/// Runs the two walkthroughs of <c>docs/automation.md</c> exactly as written — the <c>curl</c> one and the
/// <c>vmportal</c> one — with bash against the real portal, both at once (two rescue Linux guests boot), and
/// checks that each ends well and read the guest's answer (<c>i686</c>) from its screen.
/// </summary>
public sealed class AutomationWalkthroughTests(RealImagesPortalFixture fx) : IClassFixture<RealImagesPortalFixture>
{
    private static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(relative);
    }

    /// <summary>The fenced <c>```bash walkthrough=NAME</c> blocks of the document.</summary>
    public static Dictionary<string, string> Blocks(string markdown) =>
        Regex.Matches(markdown, "```bash walkthrough=(\\w+)\\n(.*?)\\n```", RegexOptions.Singleline)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);

    [Fact]
    public async Task Both_walkthroughs_of_docs_automation_md_run_as_written()
    {
        Assert.True(fx.App.RealImages, $"the rescue ISO is missing: {GuestImages.BuildHint}");
        var blocks = Blocks(await File.ReadAllTextAsync(RepoFile("docs/automation.md")));
        Assert.Equal(["curl", "vmportal"], blocks.Keys.Order().ToArray());

        // `vmportal` on PATH: the CLI built beside this test assembly
        var bin = Directory.CreateTempSubdirectory("vmportal-bin").FullName;
        var wrapper = Path.Combine(bin, "vmportal");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec dotnet \"{Path.Combine(AppContext.BaseDirectory, "vmportal.dll")}\" \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var runs = await Task.WhenAll(blocks.Select(b => RunBashAsync(b.Key, b.Value, bin)));
        foreach (var (name, code, output) in runs)
        {
            Assert.True(code == 0, $"walkthrough '{name}' exited {code}:\n{output}");
            Assert.Matches(new Regex("(?m)^i[3-6]86\\r?$"), output);
        }
        Assert.Contains("demo-cli", runs.Single(r => r.Name == "vmportal").Output); // `vm list` printed the table
        Directory.Delete(bin, true);
    }

    private async Task<(string Name, int Code, string Output)> RunBashAsync(string name, string script, string bin)
    {
        var home = Directory.CreateTempSubdirectory("walkthrough-home").FullName;
        var file = Path.Combine(home, $"{name}.sh");
        await File.WriteAllTextAsync(file, script);
        var psi = new ProcessStartInfo("bash", ["-euo", "pipefail", file]) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PORTAL"] = fx.App.BaseAddress.ToString().TrimEnd('/');
        psi.Environment["ADMIN_PASSWORD"] = PortalAppFixture.AdminPassword;
        psi.Environment["HOME"] = home;
        psi.Environment.Remove("XDG_CONFIG_HOME");
        psi.Environment.Remove("VMPORTAL_URL");
        psi.Environment.Remove("VMPORTAL_TOKEN");
        psi.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(25));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); }
        var output = await stdout + await stderr;
        Directory.Delete(home, true);
        return (name, p.HasExited ? p.ExitCode : -1, output);
    }
}

using VmPortal.Cli;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Cli.Tests;

/// <summary><c>vmportal run --save-state / --load-state</c>: memtest86+ saved at its "press Enter" screen continues from there.</summary>
[Trait("Category", "Boot")]
public class CliStateTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliMain.RunAsync(args, null, stdout, stderr, new MemoryStream());
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static readonly string[] Memtest =
    {
        "run", "--memory", "64", "--kernel", GuestImages.PathOf(GuestImages.MemtestKernel), "--append", "console=ttyS0,115200",
    };

    [MemtestFact]
    public async Task ASavedRunContinuesFromItsState()
    {
        string dir = Directory.CreateTempSubdirectory("vmportal-state-").FullName;
        try
        {
            string state = Path.Combine(dir, "memtest.state");
            var first = await Run(Memtest.Concat(new[] { "--until", "to start testing", "--timeout", "240", "--save-state", state }).ToArray());
            Assert.True(first.Exit == 0, first.Err);
            Assert.Matches(@"state saved to .*memtest\.state \([\d.]+ MiB, guest paused \d+ ms", first.Err);
            Assert.True(new FileInfo(state).Length > 0);
            Assert.False(File.Exists(state + ".tmp"));

            // No firmware boot this time: the screen already asks for Enter, and the Enter, queued before the guest
            // resumes, starts the tests. (Waiting for the prompt to settle first raced memtest's 5 s auto-start on a busy host.)
            var second = await Run(Memtest.Concat(new[]
            {
                "--load-state", state, "--type", "\\n", "--type-after", "start", "--until", @"Testing: +\d", "--timeout", "240", "--screen-text",
            }).ToArray());
            Assert.True(second.Exit == 0, second.Err);
            Assert.Matches(@"Testing: +\d", second.Out);

            // The same state with another memory size is refused with the reason.
            var other = await Run("run", "--memory", "32", "--kernel", GuestImages.PathOf(GuestImages.MemtestKernel), "--append", "console=ttyS0,115200",
                "--load-state", state, "--timeout", "10");
            Assert.Equal(1, other.Exit);
            Assert.Contains("memory MiB: saved 64, this machine 32", other.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ABadStateFileIsAUsageErrorWithTheReason()
    {
        string file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "not a state");
            var r = await Run("run", "--load-state", file, "--timeout", "5");
            Assert.Equal(1, r.Exit);
            Assert.Contains("not a VmPortal machine state file", r.Err);
            var missing = await Run("run", "--load-state", file + ".nope");
            Assert.Equal(1, missing.Exit);
            Assert.Contains("--load-state: file not found", missing.Err);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

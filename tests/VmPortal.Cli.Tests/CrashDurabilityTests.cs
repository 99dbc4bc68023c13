using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Cli.Tests;

/// <summary>
/// Issue 10's crash test: a guest writes to its qcow2 disk and syncs (Linux's ata_piix sends FLUSH CACHE), the
/// process that runs the machine is killed with SIGKILL, and the disk is then clean for <c>qemu-img check</c> with
/// the synced data in it. The machine runs in its own <c>vmportal run</c> process, because a test cannot SIGKILL
/// itself; the portal runs the same emulator and disk code in its process.
/// </summary>
[Trait("Category", "Boot")]
public sealed class CrashDurabilityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vmp-crash-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly TimeSpan Step = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_BOOT_TIMEOUT"), out var s) ? s : 300);

    private static (int Exit, string Out) QemuImg(params string[] args) => ImgCommandTests.Qemu(args);

    [RescueFact]
    public async Task DataTheGuestSyncedSurvivesASigkillAndTheQcow2StaysClean()
    {
        string disk = Path.Combine(_dir, "disk.qcow2");
        var created = QemuImg("create", "-q", "-f", "qcow2", disk, "64M");
        Assert.True(created.Exit == 0, created.Out);

        var cli = Path.Combine(AppContext.BaseDirectory, "vmportal.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { cli, "run", "--memory", "128", "--cdrom", GuestImages.PathOf(GuestImages.RescueIso),
                     "--hda", disk, "--nic", "none", "--serial", "stdio", "--timeout", "3600" })
            psi.ArgumentList.Add(a);
        using var vm = Process.Start(psi)!;
        var serial = new StringBuilder();
        var pump = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await vm.StandardOutput.ReadAsync(buffer)) > 0) lock (serial) serial.Append(buffer, 0, n);
        });
        var errors = vm.StandardError.ReadToEndAsync();
        try
        {
            await WaitFor(serial, GuestImages.ReadyLine, vm);
            await Task.Delay(2000); // the serial shell starts after the ready line
            // 4 MiB of random data at 1 MiB, written with O_SYNC-like fsync (→ FLUSH CACHE), then its digest
            await vm.StandardInput.WriteAsync(
                "vmportal-disks && dd if=/dev/urandom of=/tmp/pat bs=65536 count=64 2>/dev/null && " +
                "dd if=/tmp/pat of=/dev/sda bs=65536 seek=16 conv=fsync 2>/dev/null && " +
                "echo \"PAT-$(md5sum < /tmp/pat | cut -c1-32)-END\"\n");
            await vm.StandardInput.FlushAsync();
            var line = await WaitFor(serial, "PAT-[0-9a-f]{32}-END", vm);
            string guestMd5 = line[4..36];

            vm.Kill(); // SIGKILL: no flush, no close, no finalizer of ours runs
            await vm.WaitForExitAsync().WaitAsync(Step);
            Assert.Equal(137, vm.ExitCode); // 128 + SIGKILL

            var check = QemuImg("check", disk);
            Assert.True(check.Exit == 0, $"qemu-img check: exit {check.Exit}\n{check.Out}");
            string raw = Path.Combine(_dir, "disk.raw");
            var converted = QemuImg("convert", "-O", "raw", disk, raw);
            Assert.True(converted.Exit == 0, converted.Out);
            var data = new byte[4 << 20];
            using (var f = File.OpenRead(raw))
            {
                f.Position = 1 << 20;
                f.ReadExactly(data);
            }
            Assert.Equal(guestMd5, Convert.ToHexStringLower(MD5.HashData(data)));
        }
        finally
        {
            if (!vm.HasExited) vm.Kill();
            await pump.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
            _ = errors;
        }
    }

    private static async Task<string> WaitFor(StringBuilder serial, string pattern, Process vm)
    {
        var regex = new System.Text.RegularExpressions.Regex(pattern);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            string text;
            lock (serial) text = serial.ToString();
            var m = regex.Match(text);
            if (m.Success) return m.Value;
            if (vm.HasExited) Assert.Fail($"vmportal run exited ({vm.ExitCode}) before '{pattern}'; serial:\n{Tail(text)}");
            if (sw.Elapsed > Step) Assert.Fail($"'{pattern}' did not appear in {Step.TotalSeconds:0} s; serial:\n{Tail(text)}");
            await Task.Delay(200);
        }
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;
}

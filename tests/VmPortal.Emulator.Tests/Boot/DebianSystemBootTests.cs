using System.Diagnostics;
using VmPortal.Core.CloudInit;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;
using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// The built-in Debian 12 system disk (scripts/build-debian-image.sh) boots from its disk through SeaBIOS and
/// SYSLINUX to systemd's gettys, configured on first boot from a NoCloud seed ISO made by <see cref="NoCloudSeed"/>
/// in the CD-ROM drive: the hostname is set, the seed's user logs in with its password over the serial line and
/// has sudo; a file written and synced survives a power-off and a second boot (without the seed) from the same
/// disk. The disk is a sparse copy of the image (the base is never opened for writing). One class: two long boots.
/// </summary>
[Trait("Category", "Boot")]
public class DebianSystemBootTests(ITestOutputHelper output) : IDisposable
{
    public const string Image = GuestImages.DebianSystemDisk;
    private const uint LinuxNeeds = TestGuests.CpuidFpu | TestGuests.CpuidCx8 | TestGuests.CpuidCmov; // GUESTS.md
    private const string Host = "bootcheck", User = "tester", Password = "vmportal-Test 1";
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(25); // ~6 min alone, 14 min at load 19

    private readonly string _dir = Directory.CreateTempSubdirectory("vmportal-debian-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private MachineConfig Config(string disk, string? seed) => new()
    {
        Name = "debian-boot-test",
        MemoryMiB = 256,
        HardDisks = [new DiskConfig(disk)],
        CdRomImage = seed,
        BootOrder = [BootDevice.HardDisk, BootDevice.CdRom],
        OnTripleFault = TripleFaultAction.PowerOff,
        // Guest time follows instructions (10 ns each), not the host: systemd's and login's timeouts then mean the
        // same amount of guest work however loaded the host is (at load 20 udev's ttyS0 wait of 600 s ran out).
        DeterministicClock = true,
    };

    private static void Send(BootHarness h, string line) => h.Machine.SendSerial(System.Text.Encoding.UTF8.GetBytes(line + "\r"));

    /// <summary>
    /// Logs in on ttyS0 and waits for the shell prompt; returns the serial offset after the prompt. Like a person, it
    /// types the user and password again when the guest dropped them: a password that arrives while login sets up the
    /// terminal can be flushed, and on a loaded host "Login timed out after 60 seconds" and a new prompt follow.
    /// </summary>
    private static async Task<int> LoginOnSerial(BootHarness h)
    {
        for (int attempt = 1; ; attempt++)
        {
            int from = h.Serial.Length;
            Send(h, User);
            await h.WaitFor(@"Password: ?$", screen: false, serialFrom: from, timeout: TimeSpan.FromMinutes(3));
            from = h.Serial.Length;
            Send(h, Password);
            string got = await h.WaitFor($@"{User}@{Host}:~\$ $|login: ?$", screen: false, serialFrom: from, timeout: TimeSpan.FromMinutes(5));
            if (got.StartsWith(User + "@", StringComparison.Ordinal)) return h.Serial.Length;
            Assert.True(attempt < 3, $"no shell after {attempt} logins\n{h.Diagnostics()}");
        }
    }

    /// <summary>Runs a command on the serial shell and returns the text between two markers it prints.</summary>
    private static async Task<string> Shell(BootHarness h, string command)
    {
        int from = h.Serial.Length;
        string tag = "M" + Guid.NewGuid().ToString("N")[..8];
        Send(h, $"echo {tag}-begin; {command}; echo {tag}-end");
        await h.WaitFor($"^{tag}-end", screen: false, serialFrom: from, timeout: TimeSpan.FromMinutes(3));
        string s = h.Serial[from..];
        int b = s.IndexOf(tag + "-begin\r\n", StringComparison.Ordinal);
        int e = s.LastIndexOf(tag + "-end", StringComparison.Ordinal);
        Assert.True(b >= 0 && e > b, $"markers not found in:\n{s}");
        b += tag.Length + 8;
        return s[b..e].Replace("\r", "");
    }

    [BootFact(LinuxNeeds, "Debian 12 (linux-image-686)", Image)]
    public async Task BootsFromDiskConfiguredBySeedLogsInAndKeepsAFileAcrossPowerOff()
    {
        // A sparse copy of the base (cp --sparse=always): the image itself is never written.
        string disk = Path.Combine(_dir, "disk.img");
        var cp = Process.Start("cp", ["--sparse=always", GuestImages.PathOf(Image), disk])!;
        await cp.WaitForExitAsync();
        Assert.Equal(0, cp.ExitCode);
        string seed = Path.Combine(_dir, "seed.iso");
        NoCloudSeed.WriteIso(new NoCloudConfig("boot-test-" + Guid.NewGuid().ToString("N")[..8], Host, User, Sha512Crypt.Hash(Password)), seed);

        // First boot: the seed configures the machine.
        using (var h = new BootHarness(Config(disk, seed)))
        {
            var sw = Stopwatch.StartNew();
            await h.Start();
            await h.WaitFor($@"{Host} login: ?$", screen: false, timeout: BootTimeout);
            double loginSeconds = sw.Elapsed.TotalSeconds;
            long instructions = h.Machine.InstructionCount;
            double guestSeconds = h.Machine.Clock.NowNs / 1e9;
            await h.WaitFor($@"^{Host} login:", serial: false, timeout: TimeSpan.FromMinutes(1));
            output.WriteLine($"first boot (with seed): power-on -> '{Host} login:' on ttyS0 in {loginSeconds:F1} s host time, " +
                             $"{guestSeconds:F1} s guest time, {instructions / 1e9:F2} G instructions");
            Assert.Contains("vmportal-firstboot", h.Serial + h.Screen); // its messages go to the console

            await LoginOnSerial(h);
            Assert.Equal($"{Host}\n", await Shell(h, "hostname"));
            Assert.Equal("0\n", await Shell(h, "sudo -n id -u"));
            Assert.Matches(@"^/etc/ssh/ssh_host_ed25519_key\.pub\n", await Shell(h, "ls /etc/ssh/ssh_host_ed25519_key.pub"));
            Assert.Matches(@"^ext4 +/\n$", await Shell(h, "findmnt -n -o FSTYPE,TARGET /")); // columns padded
            Assert.Equal("kept\n", await Shell(h, "echo kept > ~/mark.txt && sync && cat ~/mark.txt"));
            output.WriteLine(await Shell(h, "systemd-analyze 2>/dev/null || true; uname -r"));
            await h.Machine.PowerOff();
        }

        // Second boot from the same disk, no seed: the user, the hostname and the file are still there.
        using (var h = new BootHarness(Config(disk, null)))
        {
            var sw = Stopwatch.StartNew();
            await h.Start();
            await h.WaitFor($@"{Host} login: ?$", screen: false, timeout: BootTimeout);
            output.WriteLine($"second boot (no seed): power-on -> login: in {sw.Elapsed.TotalSeconds:F1} s host time, {h.Machine.Clock.NowNs / 1e9:F1} s guest time");
            await LoginOnSerial(h);
            Assert.Equal("kept\n", await Shell(h, "cat ~/mark.txt"));

            // A clean shutdown, as the portal's Shut down asks for it: the ACPI power button; systemd-logind powers off.
            Assert.True(h.Machine.GuestHandlesPowerButton, "the guest did not enable the ACPI power button event");
            var shutdown = Stopwatch.StartNew();
            h.Machine.PressPowerButton();
            await h.Machine.Stopped.WaitAsync(BootTimeout);
            output.WriteLine($"power button -> powered off by the guest in {shutdown.Elapsed.TotalSeconds:F1} s host time");
            Assert.True(h.Machine.PoweredOffByGuest, $"the machine stopped without the guest's ACPI soft-off: {h.Machine.State} {h.Machine.CrashReason}");
            Assert.Contains("reboot: Power down", h.Serial);
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Storage;

namespace VmPortal.Benchmarks.Storage;

/// <summary>
/// In-guest disk speed, ours against qemu-system-i386 -accel tcg in the same run: the rescue guest (direct kernel
/// boot, serial console) loads its IDE drivers (<c>vmportal-disks</c>: libata, ata_piix, sd_mod) and runs busybox
/// <c>dd</c> on <c>/dev/sda</c>, a blank qcow2 made by our own code: a write with <c>oflag=direct conv=fsync</c>,
/// then a read with <c>iflag=direct</c> (no guest page cache), of N MiB in 1 MiB blocks.
/// The guest's clock (/proc/uptime around dd) and the host's wall time of each command are printed. Both emulators:
/// PIIX3 IDE, bus-master DMA.
/// Usage: VmPortal.Benchmarks guest-disk [MiB] [--no-qemu]
/// </summary>
public static class GuestDiskBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int mib = args.Length > 1 && int.TryParse(args[1], out var m) ? m : 64;
        bool withQemu = !args.Contains("--no-qemu");
        string dir = Directory.CreateTempSubdirectory("vmp-guest-disk-").FullName;
        try
        {
            Console.WriteLine($"guest dd of {mib} MiB on /dev/sda (blank qcow2, 1 MiB blocks, O_DIRECT), load average {LoadAverage()}");
            string ours = Path.Combine(dir, "ours.qcow2");
            DiskImageFile.CreateQcow2(ours, (long)(mib + 16) << 20);
            using (var g = new OurGuest(ours)) await Measure("VmPortal", g, mib);
            if (withQemu)
            {
                string theirs = Path.Combine(dir, "qemu.qcow2");
                DiskImageFile.CreateQcow2(theirs, (long)(mib + 16) << 20);
                using var q = new QemuGuest(theirs);
                await Measure("QEMU TCG", q, mib);
            }
            Console.WriteLine($"load average at the end {LoadAverage()}");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task Measure(string who, SerialGuest g, int mib)
    {
        var boot = Stopwatch.StartNew();
        await g.Boot();
        Console.WriteLine($"{who}: booted to the shell in {boot.Elapsed.TotalSeconds:F1} s");
        var drivers = await g.Run("vmportal-disks && echo DISKS-OK");
        if (Environment.GetEnvironmentVariable("VMPORTAL_GUEST_DISK_DIAG") == "1")
            Console.WriteLine(await g.Run("cat /proc/interrupts; cat /sys/block/sda/queue/max_sectors_kb /sys/block/sda/queue/scheduler /sys/block/sda/device/queue_depth; " +
                                          "dd if=/dev/sda of=/dev/null bs=64k count=64 iflag=direct; cat /proc/interrupts; cat /proc/diskstats | grep sda"));
        if (!drivers.Contains("DISKS-OK")) throw new InvalidOperationException($"{who}: the IDE drivers did not load:\n{drivers}");
        foreach (var (what, cmd) in new[]
                 {
                     ("write", $"dd if=/dev/zero of=/dev/sda bs=1M count={mib} oflag=direct conv=fsync"),
                     ("read", $"dd if=/dev/sda of=/dev/null bs=1M count={mib} iflag=direct"),
                     // one request per dd call (nothing queued behind it): the latency of a single command
                     ("read 64 KiB blocks", $"dd if=/dev/sda of=/dev/null bs=64k count={mib * 16} iflag=direct"),
                 })
        {
            long i0 = g.Instructions;
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            // the guest's clock: /proc/uptime before and after (this busybox dd prints no time)
            string output = await g.Run($"echo 3 > /proc/sys/vm/drop_caches; a=$(cut -d' ' -f1 /proc/uptime); {cmd} 2>/dev/null; " +
                                        "echo \"T $a $(cut -d' ' -f1 /proc/uptime) T\"");
            double host = wall.Elapsed.TotalSeconds;
            var t = Regex.Match(output, @"T ([0-9.]+) ([0-9.]+) T");
            if (!t.Success) throw new InvalidOperationException($"{who}: no timing in:\n{output}");
            double guest = double.Parse(t.Groups[2].Value, CultureInfo.InvariantCulture) - double.Parse(t.Groups[1].Value, CultureInfo.InvariantCulture);
            string busy = g.Instructions > 0
                ? $"  [guest {(g.Instructions - i0) / host / 1e6:F0} MIPS, process CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds / host * 100:F0} %]"
                : "";
            Console.WriteLine($"{who}: {what,-18} {mib / guest,7:F1} MB/s by the guest's clock ({guest:F2} s), {mib / host,7:F1} MB/s by the host's ({host:F2} s){busy}");
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private abstract class SerialGuest : IDisposable
    {
        private readonly StringBuilder _serial = new();
        protected void Append(string s) { lock (_serial) _serial.Append(s); }
        private string Serial { get { lock (_serial) return _serial.ToString(); } }
        protected abstract void Send(string text);
        public abstract Task Boot();
        public abstract void Dispose();
        public virtual long Instructions => 0;

        protected async Task<Match> WaitFor(string pattern, int from)
        {
            var re = new Regex(pattern, RegexOptions.Multiline);
            for (var t = Stopwatch.StartNew(); t.Elapsed < TimeSpan.FromMinutes(30); await Task.Delay(20))
                if (re.Match(Serial, Math.Min(from, Serial.Length)) is { Success: true } m) return m;
            throw new TimeoutException($"/{pattern}/ did not appear:\n{Serial[Math.Max(0, Serial.Length - 2000)..]}");
        }

        public async Task<string> Run(string command)
        {
            int from = Serial.Length;
            string marker = $"END{Random.Shared.Next(100000, 999999)}";
            Send($"{command}; echo {marker[..3]}''{marker[3..]}\r");
            var m = await WaitFor($"^{marker}", from);
            return Serial[from..m.Index];
        }
    }

    private sealed class OurGuest : SerialGuest
    {
        private readonly Machine _machine;

        public OurGuest(string disk)
        {
            _machine = new Machine(new MachineConfig
            {
                Name = "guest-disk",
                MemoryMiB = 128,
                KernelPath = GuestImages.PathOf(GuestImages.RescueKernel),
                InitrdPath = GuestImages.PathOf(GuestImages.RescueInitrd),
                KernelCommandLine = "console=ttyS0,115200",
                HardDisks = new[] { new DiskConfig(disk) },
            });
            _machine.SerialOutput += x => Append(Encoding.Latin1.GetString(x));
        }

        public override async Task Boot()
        {
            await _machine.Start();
            await WaitFor(@"/ # ", 0);
        }

        protected override void Send(string text) => _machine.SendSerial(Encoding.ASCII.GetBytes(text));
        public override long Instructions => _machine.InstructionCount;
        public override void Dispose() => _machine.Dispose();
    }

    private sealed class QemuGuest : SerialGuest
    {
        private readonly Process _p;

        public QemuGuest(string disk)
        {
            var psi = new ProcessStartInfo("qemu-system-i386",
                $"-accel tcg -m 128 -display none -monitor none -serial stdio -no-reboot -nic none " +
                $"-drive file={disk},format=qcow2,if=ide,cache=writeback " +
                $"-kernel {GuestImages.PathOf(GuestImages.RescueKernel)} -initrd {GuestImages.PathOf(GuestImages.RescueInitrd)} " +
                "-append console=ttyS0,115200")
            { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            _p = Process.Start(psi)!;
            _ = Task.Run(async () =>
            {
                var buf = new char[4096];
                int n;
                while ((n = await _p.StandardOutput.ReadAsync(buf)) > 0) Append(new string(buf, 0, n));
            });
        }

        public override Task Boot() => WaitFor(@"/ # ", 0);

        protected override void Send(string text)
        {
            _p.StandardInput.Write(text);
            _p.StandardInput.Flush();
        }

        public override void Dispose()
        {
            try { _p.Kill(); } catch (Exception) { }
            _p.Dispose();
        }
    }
}

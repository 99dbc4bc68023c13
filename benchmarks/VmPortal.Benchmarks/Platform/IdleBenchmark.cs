using System.Diagnostics;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Benchmarks.Platform;

/// <summary>
/// Host CPU of idle machines: N machines with no boot media run SeaBIOS to "No bootable device" (it then waits in
/// HLT for the next timer interrupt), and the process's CPU time is measured over a window. With <c>--refresh</c>
/// each machine's screen is also refreshed 30 times a second, as the portal's console ticker does.
/// With <c>--linux</c> the machines boot the Debian rescue guest (direct kernel boot) to its shell prompt instead:
/// an idle Linux, whose timer interrupts wake the machine.
/// With <c>--linux --qemu</c> the same guest then idles under qemu-system-i386 -accel tcg, measured the same way.
/// Usage: idle [machines=10] [seconds=20] [--refresh] [--linux [--qemu]]
/// </summary>
public static class IdleBenchmark
{
    private static long refreshes, refreshChanged, refreshTicks;

    /// <summary>Blocks decoded and code pages invalidated, summed over the machines (diagnostics: the CPU is not public on Machine).</summary>
    private static (long Decoded, long Invalidated) DecodeCounters(List<Machine> machines)
    {
        long decoded = 0, invalidated = 0;
        foreach (var m in machines)
            if (Network.GuestProfiler.CpuOf(m) is { } cpu)
            {
                decoded += cpu.BlocksCompiled;
                invalidated += cpu.CodePageInvalidations;
            }
        return (decoded, invalidated);
    }

    public static async Task<int> Run(string[] args)
    {
        int count = args.Length > 1 && int.TryParse(args[1], out var c) ? c : 10;
        int seconds = args.Length > 2 && int.TryParse(args[2], out var s) ? s : 20;
        bool refresh = args.Contains("--refresh");
        bool linux = args.Contains("--linux");
        string images = Environment.GetEnvironmentVariable("VMPORTAL_IMAGE_CACHE")
                        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "vmportal", "images");
        var machines = new List<Machine>();
        var serial = new List<System.Text.StringBuilder>();
        for (int i = 0; i < count; i++)
        {
            var config = linux
                ? new MachineConfig
                {
                    Name = $"idle-linux-{i}", MemoryMiB = 128,
                    KernelPath = Path.Combine(images, GuestImages.RescueKernel),
                    InitrdPath = Path.Combine(images, GuestImages.RescueInitrd),
                    KernelCommandLine = GuestImages.RescueCommandLine,
                }
                : new MachineConfig { Name = $"idle-{i}", MemoryMiB = 32 };
            var m = new Machine(config);
            var log = new System.Text.StringBuilder();
            serial.Add(log);
            m.SerialOutput += b => { lock (log) log.Append(System.Text.Encoding.Latin1.GetString(b)); };
            machines.Add(m);
            await m.Start();
        }
        string ready = linux ? "/ # " : "No bootable device";
        bool Ready(int i)
        {
            if (!linux) return (machines[i].ReadScreenText() ?? "").Contains(ready, StringComparison.Ordinal);
            lock (serial[i]) return serial[i].ToString().Contains(ready, StringComparison.Ordinal);
        }
        using var stop = new CancellationTokenSource();
        var refresher = refresh
            ? Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(33));
                while (await timer.WaitForNextTickAsync(stop.Token).AsTask().ContinueWith(t => !t.IsCanceled && t.Result))
                    foreach (var m in machines)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        if (m.Screen?.Refresh() == true) Interlocked.Increment(ref refreshChanged);
                        Interlocked.Add(ref refreshTicks, Stopwatch.GetTimestamp() - t0);
                        Interlocked.Increment(ref refreshes);
                    }
            })
            : Task.CompletedTask;
        // Warm-up: SeaBIOS tries every boot device (a few seconds), then says "No bootable device" and halts;
        // Linux boots to its prompt.
        var warm = Stopwatch.StartNew();
        var limit = TimeSpan.FromSeconds(linux ? 600 : 60);
        while (warm.Elapsed < limit && !Enumerable.Range(0, count).All(Ready)) await Task.Delay(200);
        if (!Enumerable.Range(0, count).All(Ready))
        {
            Console.WriteLine($"not every machine showed \"{ready}\" within {limit.TotalSeconds:F0} s");
            return 1;
        }
        await Task.Delay(linux ? 10_000 : 2000);
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        long instr0 = machines.Sum(m => m.InstructionCount);
        var (decoded0, invalidated0) = DecodeCounters(machines);
        long r0 = refreshes, rc0 = refreshChanged, rt0 = refreshTicks;
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        if (refresh)
            Console.WriteLine($"screen refreshes: {(refreshes - r0) / seconds}/s, {(refreshChanged - rc0) / seconds}/s with a change, " +
                              $"{Stopwatch.GetElapsedTime(0, refreshTicks - rt0).TotalMilliseconds / seconds:F2} ms of CPU per second");
        proc.Refresh();
        double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        double wall = sw.Elapsed.TotalSeconds;
        long instr = machines.Sum(m => m.InstructionCount) - instr0;
        var (decoded1, invalidated1) = DecodeCounters(machines);
        stop.Cancel();
        await refresher;
        foreach (var m in machines) { await m.PowerOff(); m.Dispose(); }
        double pct = 100 * cpu / wall;
        Console.WriteLine($"{count} idle machines ({(linux ? "Linux at its shell prompt" : "SeaBIOS, no bootable device")}){(refresh ? " + 30 Hz screen refresh" : "")}: " +
                          $"{pct:F2} % of one core over {wall:F0} s ({cpu:F2} s CPU), {instr / wall:N0} guest instructions/s in total");
        Console.WriteLine($"decoded-instruction cache: {(decoded1 - decoded0) / wall:N0} blocks decoded/s, {(invalidated1 - invalidated0) / wall:N0} code pages invalidated by writes/s");
        string qemuResult = "";
        if (linux && args.Contains("--qemu"))
        {
            double? q = await QemuIdlePercent(images, seconds);
            Console.WriteLine(q is double qp
                ? $"qemu-system-i386 -accel tcg, the same guest at its prompt: {qp:F2} % of one core over {seconds} s"
                : "qemu-system-i386 not found or the guest did not reach its prompt: QEMU comparison skipped");
            qemuResult = $" qemu_idle_cpu_percent={(q is double v ? v.ToString("F2") : "n/a")}";
        }
        Console.WriteLine($"RESULT idle_machines={count} idle_cpu_percent={pct:F2} idle_guest_ips={instr / wall:F0}{qemuResult}");
        return 0;
    }

    /// <summary>
    /// The same idle guest under qemu-system-i386 -accel tcg (direct kernel boot, 128 MiB, no NIC): its process's CPU
    /// time (utime + stime of /proc/PID/stat) over <paramref name="seconds"/> once the guest printed its ready line and
    /// settled for 10 s, as a percentage of one core. Null without QEMU.
    /// </summary>
    private static async Task<double?> QemuIdlePercent(string images, int seconds)
    {
        var psi = new ProcessStartInfo("qemu-system-i386")
        {
            RedirectStandardOutput = true, RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "-accel", "tcg", "-m", "128", "-nographic", "-nic", "none",
                     "-kernel", Path.Combine(images, GuestImages.RescueKernel), "-initrd", Path.Combine(images, GuestImages.RescueInitrd),
                     "-append", GuestImages.RescueCommandLine })
            psi.ArgumentList.Add(a);
        Process qemu;
        try { qemu = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { return null; }
        using (qemu)
        {
            var output = new System.Text.StringBuilder();
            var ready = new TaskCompletionSource();
            qemu.OutputDataReceived += (_, e) =>
            {
                if (e.Data == null) return;
                lock (output) output.AppendLine(e.Data);
                if (e.Data.Contains("VMPORTAL-GUEST-READY", StringComparison.Ordinal)) ready.TrySetResult(); // printed by the rescue init before its shell
            };
            qemu.BeginOutputReadLine();
            qemu.BeginErrorReadLine();
            try
            {
                if (await Task.WhenAny(ready.Task, Task.Delay(TimeSpan.FromMinutes(3))) != ready.Task) return null;
                await Task.Delay(10_000);
                double t0 = CpuSeconds(qemu.Id);
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                double t1 = CpuSeconds(qemu.Id);
                return 100 * (t1 - t0) / seconds;
            }
            finally
            {
                try { qemu.Kill(); } catch (InvalidOperationException) { }
            }
        }
    }

    /// <summary>utime + stime of a process in seconds (Linux, /proc/PID/stat; clock ticks of 1/100 s).</summary>
    private static double CpuSeconds(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[11]) + long.Parse(f[12])) / 100.0; // fields 14 and 15 of the whole line
    }
}

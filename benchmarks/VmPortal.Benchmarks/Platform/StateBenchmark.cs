using System.Diagnostics;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Snapshots;

namespace VmPortal.Benchmarks.Platform;

/// <summary>
/// Machine state speed on a running 128 MiB rescue Linux at its shell prompt (direct kernel boot): per round,
/// save to a file (how long the guest stood still, the whole save, the file size), load into a fresh machine, and
/// revert the running machine to the file. Booting takes minutes on a busy host, so the booted guest's state is
/// kept in <c>--boot-state FILE</c> (default /tmp/vmportal-state-bench.state) and later runs start from it.
/// <c>--at-instructions N</c> measures the guest while it boots, once it has run N instructions (for hosts too busy to boot).
/// Usage: state [rounds=5] [--boot-state FILE] [--at-instructions N]
/// </summary>
public static class StateBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int rounds = args.Length > 1 && int.TryParse(args[1], out var r) ? r : 5;
        int bi = Array.IndexOf(args, "--boot-state");
        string bootState = bi >= 0 && bi + 1 < args.Length ? args[bi + 1] : Path.Combine(Path.GetTempPath(), "vmportal-state-bench.state");
        var config = new MachineConfig
        {
            Name = "state-bench", MemoryMiB = 128,
            KernelPath = GuestImages.PathOf(GuestImages.RescueKernel),
            InitrdPath = GuestImages.PathOf(GuestImages.RescueInitrd),
            KernelCommandLine = GuestImages.RescueCommandLine,
        };
        if (config.Validate() is { Count: > 0 } problems) { Console.Error.WriteLine(string.Join("; ", problems)); return 1; }

        using var machine = new Machine(config);
        var serial = new System.Text.StringBuilder();
        machine.SerialOutput += b => { lock (serial) serial.Append(System.Text.Encoding.Latin1.GetString(b)); };
        int ai = Array.IndexOf(args, "--at-instructions");
        long atInstructions = ai >= 0 && ai + 1 < args.Length && long.TryParse(args[ai + 1], out var n) ? n : 0;
        if (atInstructions > 0)
        {
            // A busy host may need many minutes to reach the prompt: measure the booting guest instead.
            await machine.Start();
            while (machine.InstructionCount < atInstructions)
            {
                if (machine.State == MachineState.Crashed) { Console.Error.WriteLine(machine.CrashReason); return 1; }
                await Task.Delay(200);
            }
            Console.WriteLine($"booting guest at {machine.InstructionCount:N0} instructions, guest time {machine.Clock.NowNs / 1e9:F1} s");
        }
        else if (File.Exists(bootState))
        {
            await using (var f = File.OpenRead(bootState)) await machine.LoadState(f);
            await machine.Resume();
            Console.WriteLine($"started from {bootState}");
        }
        else
        {
            var boot = Stopwatch.StartNew();
            await machine.Start();
            while (!System.Text.RegularExpressions.Regex.IsMatch(machine.ReadScreenText() ?? "", @"^/ #$", System.Text.RegularExpressions.RegexOptions.Multiline)) // rows are trimmed
            {
                if (machine.State == MachineState.Crashed) { Console.Error.WriteLine(machine.CrashReason); return 1; }
                await Task.Delay(200);
            }
            await Task.Delay(2000);
            await using (var f = File.Create(bootState)) await machine.SaveState(f);
            Console.WriteLine($"booted to the shell in {boot.Elapsed.TotalSeconds:F0} s; state kept in {bootState}");
        }
        await Task.Delay(1000);

        string loadBefore = File.ReadAllText("/proc/loadavg").Trim();
        string file = Path.Combine(Path.GetTempPath(), $"vmportal-state-bench-{Environment.ProcessId}.state");
        var paused = new List<double>(); var save = new List<double>(); var load = new List<double>(); var revert = new List<double>();
        var saveCpu = new List<double>(); var loadCpu = new List<double>(); var revertCpu = new List<double>();
        var revertRead = new List<double>(); var revertReadCpu = new List<double>(); var revertGc = new List<double>();
        long bytes = 0;
        try
        {
            for (int i = 0; i < rounds; i++)
            {
                Machine.StateSaveResult s;
                await using (var f = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20)) s = await machine.SaveState(f);
                paused.Add(s.Paused.TotalMilliseconds); save.Add(s.Total.TotalMilliseconds); bytes = s.Bytes;

                // The rest with the guest paused, so this process's CPU time is the state work alone (a busy host
                // stretches wall time; CPU time shows what the work costs).
                await machine.Pause();
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                await using (var f = new FileStream(file + ".2", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20)) await machine.SaveState(f);
                saveCpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds);
                File.Delete(file + ".2");

                var sw = Stopwatch.StartNew();
                cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                using (var fresh = new Machine(config))
                {
                    await using (var f = File.OpenRead(file)) await fresh.LoadState(f);
                    load.Add(sw.Elapsed.TotalMilliseconds);
                    loadCpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds);
                    await fresh.PowerOff();
                }

                sw.Restart();
                cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                int gen2 = GC.CollectionCount(2);
                MachineSnapshot snapshot;
                await using (var f = File.OpenRead(file)) snapshot = StateFile.Read(f);
                revertRead.Add(sw.Elapsed.TotalMilliseconds);
                revertReadCpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds);
                await machine.LoadState(snapshot);
                revert.Add(sw.Elapsed.TotalMilliseconds);
                revertCpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds);
                revertGc.Add(GC.CollectionCount(2) - gen2);
                await machine.Resume();
                await Task.Delay(500);
            }
            Console.WriteLine($"128 MiB rescue Linux{(atInstructions > 0 ? " (booting)" : " at its prompt")}, {rounds} rounds (median / min / max, ms), {DateTime.UtcNow:HH:mm} UTC, load average before {loadBefore}:");
            Console.WriteLine($"  save: guest paused   {Stats(paused)}");
            Console.WriteLine($"  save: whole (to file) {Stats(save)}");
            Console.WriteLine($"  load into a fresh machine {Stats(load)}");
            Console.WriteLine($"  revert the running machine {Stats(revert)}");
            Console.WriteLine($"    of which read + check the file {Stats(revertRead)}");
            Console.WriteLine($"  CPU time, guest paused: save {Stats(saveCpu)}");
            Console.WriteLine($"  CPU time, guest paused: load into a fresh machine {Stats(loadCpu)}");
            Console.WriteLine($"  CPU time, guest paused: revert {Stats(revertCpu)}");
            Console.WriteLine($"    of which read + check the file {Stats(revertReadCpu)}");
            Console.WriteLine($"  full (gen 2) collections during a revert {Stats(revertGc)}");
            Console.WriteLine($"  load average {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"  file size {bytes / 1048576.0:F1} MiB");
            if (atInstructions > 0) return 0;
            machine.TypeText("echo $((6*7))\n");
            var deadline = Stopwatch.StartNew();
            while (!(machine.ReadScreenText() ?? "").Contains("\n42\n", StringComparison.Ordinal) && deadline.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(100);
            Console.WriteLine((machine.ReadScreenText() ?? "").Contains("\n42\n", StringComparison.Ordinal)
                ? "  after the reverts the shell still answers (echo $((6*7)) → 42)"
                : "  WARNING: the shell did not answer after the reverts");
        }
        finally
        {
            File.Delete(file);
            await machine.PowerOff();
        }
        return 0;
    }

    private static string Stats(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return $"{s[s.Count / 2],7:F0} {s[0],7:F0} {s[^1],7:F0}";
    }
}

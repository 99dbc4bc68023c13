using System.Diagnostics;
using System.Text.RegularExpressions;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Storage;

namespace VmPortal.Benchmarks.Platform;

/// <summary>
/// What the portal's snapshot operations cost on a running 128 MiB rescue Linux with a 64 MiB qcow2 disk, done the way
/// <c>SnapshotService</c> does them (without the database): take with memory (the guest's pause: capture + close the
/// disk + create the next overlay + reopen; then the state file written while it runs; the frozen layer's and the
/// file's sizes), revert to it (read + check the file, pause, load the state, new overlay over the layer, resume),
/// suspend (pause, capture, write + fsync, power off) and resume (a fresh machine loads the file and runs), each with
/// the time of its steps. By default the guest is measured at its shell prompt (booted first; the host's load decides
/// how long that takes); <c>--at-instructions N</c> measures the booting guest after N instructions instead.
/// Usage: snapshot [rounds=3] [--at-instructions N]
/// </summary>
public static class SnapshotBenchmark
{
    private sealed class Steps
    {
        private readonly Dictionary<string, List<double>> _v = [];
        private readonly List<string> _order = [];
        public void Add(string name, double ms)
        {
            if (!_v.TryGetValue(name, out var l)) { _v[name] = l = []; _order.Add(name); }
            l.Add(ms);
        }
        public void Add(string name, Stopwatch sw) { Add(name, sw.Elapsed.TotalMilliseconds); sw.Restart(); }
        public IEnumerable<(string Name, List<double> Values)> All => _order.Select(n => (n, _v[n]));
    }

    public static async Task<int> Run(string[] args)
    {
        int rounds = args.Length > 1 && int.TryParse(args[1], out var r) ? r : 3;
        int ai = Array.IndexOf(args, "--at-instructions");
        long at = ai >= 0 && ai + 1 < args.Length && long.TryParse(args[ai + 1], out var n) ? n : 0;
        string dir = Directory.CreateTempSubdirectory("vmportal-snapshot-bench-").FullName;
        try
        {
            string disk = Path.Combine(dir, "disk-0.qcow2");
            DiskImageFile.CreateQcow2(disk, 64L << 20);
            MachineConfig Config(string path) => new()
            {
                Name = "snapshot-bench", MemoryMiB = 128,
                KernelPath = GuestImages.PathOf(GuestImages.RescueKernel),
                InitrdPath = GuestImages.PathOf(GuestImages.RescueInitrd),
                KernelCommandLine = GuestImages.RescueCommandLine,
                HardDisks = [new DiskConfig(path)],
            };
            if (Config(disk).Validate() is { Count: > 0 } problems) { Console.Error.WriteLine(string.Join("; ", problems)); return 1; }
            var machine = new Machine(Config(disk));
            var boot = Stopwatch.StartNew();
            await machine.Start();
            bool AtPrompt() => Regex.IsMatch(machine.ReadScreenText() ?? "", @"^/ #$", RegexOptions.Multiline);
            while (at > 0 ? machine.InstructionCount < at : !AtPrompt())
            {
                if (machine.State == MachineState.Crashed) { Console.Error.WriteLine(machine.CrashReason); return 1; }
                await Task.Delay(200);
            }
            if (at == 0) await Task.Delay(2000); // the shell has settled
            Console.WriteLine(at > 0
                ? $"booting guest at {machine.InstructionCount:N0} instructions, guest time {machine.Clock.NowNs / 1e9:F1} s"
                : $"guest at its shell prompt after {boot.Elapsed.TotalSeconds:F0} s ({machine.InstructionCount:N0} instructions, guest time {machine.Clock.NowNs / 1e9:F1} s)");

            string loadBefore = LoadAverage();
            var steps = new Steps();
            long stateBytes = 0, layerBytes = 0;
            int k = 0;
            string active = disk;
            for (int i = 0; i < rounds; i++)
            {
                // take with memory
                var whole = Stopwatch.StartNew();
                var sw = Stopwatch.StartNew();
                string layer = active, next = Path.Combine(dir, $"disk-{++k}.qcow2");
                var res = await machine.SwapDisks(() => { DiskImageFile.CreateQcow2(next, 0, layer); return [new DiskConfig(next)]; }, captureState: true);
                steps.Add("take: guest paused (capture + disk swap)", res.Paused.TotalMilliseconds);
                steps.Add("take: call returned", sw);
                string stateFile = Path.Combine(dir, $"snap-{k}.vmstate");
                await using (var f = new FileStream(stateFile, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    stateBytes = StateFile.Write(f, res.State!);
                    steps.Add("take: compress + write", sw);
                    f.Flush(flushToDisk: true);
                    steps.Add("take: fsync", sw);
                }
                steps.Add("take: whole", whole.Elapsed.TotalMilliseconds);
                layerBytes = new FileInfo(layer).Length;
                active = next;
                await Task.Delay(1000); // the guest runs on

                // revert to it
                whole.Restart(); sw.Restart();
                MachineSnapshot state;
                await using (var f = File.OpenRead(stateFile)) state = StateFile.Read(f);
                steps.Add("revert: read + check the file", sw);
                string over = Path.Combine(dir, $"disk-{++k}.qcow2"), discarded = active;
                var p = Stopwatch.StartNew();
                await machine.Pause();
                steps.Add("revert: pause", sw);
                await machine.LoadState(state);
                steps.Add("revert: load state", sw);
                await machine.SwapDisks(() => { DiskImageFile.CreateQcow2(over, 0, layer); return [new DiskConfig(over)]; });
                steps.Add("revert: disk swap", sw);
                await machine.Resume();
                steps.Add("revert: guest paused", p.Elapsed.TotalMilliseconds);
                File.Delete(discarded);
                active = over;
                steps.Add("revert: whole", whole.Elapsed.TotalMilliseconds);
                await Task.Delay(1000);

                // suspend and resume
                whole.Restart(); sw.Restart();
                string susp = Path.Combine(dir, "suspended.vmstate");
                await machine.Pause();
                steps.Add("suspend: pause", sw);
                var (captured, _) = await machine.CaptureState();
                steps.Add("suspend: capture", sw);
                await using (var f = new FileStream(susp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    StateFile.Write(f, captured);
                    steps.Add("suspend: compress + write", sw);
                    f.Flush(flushToDisk: true);
                    steps.Add("suspend: fsync", sw);
                }
                await machine.PowerOff();
                machine.Dispose();
                steps.Add("suspend: power off", sw);
                steps.Add("suspend: whole", whole.Elapsed.TotalMilliseconds);
                whole.Restart(); sw.Restart();
                machine = new Machine(Config(active));
                MachineSnapshot saved;
                await using (var f = File.OpenRead(susp)) saved = StateFile.Read(f);
                steps.Add("resume: read + check the file", sw);
                await machine.LoadState(saved);
                steps.Add("resume: fresh machine, load state", sw);
                await machine.Resume();
                steps.Add("resume: run", sw);
                steps.Add("resume: whole", whole.Elapsed.TotalMilliseconds);
                File.Delete(susp);
                await Task.Delay(1000);
            }
            Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average (1/5/15 min) {loadBefore} before the rounds, {LoadAverage()} after, {Environment.ProcessorCount} cores");
            Console.WriteLine($"128 MiB rescue Linux ({(at > 0 ? "booting" : "at its prompt")}), 64 MiB qcow2 disk, {rounds} rounds, ms: median / min / max");
            foreach (var (name, values) in steps.All) Console.WriteLine($"  {name,-45} {Stats(values)}");
            Console.WriteLine($"  snapshot on disk: state file {stateBytes / 1048576.0:F1} MiB + frozen layer {layerBytes / 1024.0:F0} KiB");
            bool answers = false;
            if (at == 0)
            {
                machine.TypeText("echo $((6*7))\n");
                var deadline = Stopwatch.StartNew();
                while (!(answers = (machine.ReadScreenText() ?? "").Contains("\n42\n", StringComparison.Ordinal)) && deadline.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(100);
            }
            Console.WriteLine($"  {(machine.State == MachineState.Running ? "the guest runs on" : $"WARNING: machine {machine.State}")} at {machine.InstructionCount:N0} instructions{(at == 0 ? answers ? "; the shell answers" : "; WARNING: the shell did not answer" : "")}");
            await machine.PowerOff();
            machine.Dispose();
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    private static string Stats(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return $"{s[s.Count / 2],7:F0} {s[0],7:F0} {s[^1],7:F0}";
    }
}

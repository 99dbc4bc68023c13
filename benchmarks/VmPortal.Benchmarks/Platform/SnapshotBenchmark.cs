using System.Diagnostics;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Snapshots;
using VmPortal.Emulator.Storage;

namespace VmPortal.Benchmarks.Platform;

/// <summary>
/// What the portal's snapshot operations cost on a running 128 MiB rescue Linux with a 64 MiB qcow2 disk, done the way
/// <c>SnapshotService</c> does them (without the database): take with memory (the guest's pause: capture + close the
/// disk + create the next overlay + reopen; then the state file written while it runs; the frozen layer's and the
/// file's sizes), revert to it (pause, load the state, new overlay over the layer, resume), suspend (pause, capture,
/// write, power off) and resume (a fresh machine loads the file and runs). <c>--at-instructions N</c>: measure once the
/// guest has run N instructions (booting; default 400 M), since reaching the prompt takes many minutes on a busy host.
/// Usage: snapshot [rounds=3] [--at-instructions N]
/// </summary>
public static class SnapshotBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        int rounds = args.Length > 1 && int.TryParse(args[1], out var r) ? r : 3;
        int ai = Array.IndexOf(args, "--at-instructions");
        long at = ai >= 0 && ai + 1 < args.Length && long.TryParse(args[ai + 1], out var n) ? n : 400_000_000;
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
            await machine.Start();
            while (machine.InstructionCount < at)
            {
                if (machine.State == MachineState.Crashed) { Console.Error.WriteLine(machine.CrashReason); return 1; }
                await Task.Delay(200);
            }
            Console.WriteLine($"booting guest at {machine.InstructionCount:N0} instructions, guest time {machine.Clock.NowNs / 1e9:F1} s");

            var takePaused = new List<double>(); var takeTotal = new List<double>(); var revertWall = new List<double>(); var revertPaused = new List<double>();
            var suspendWall = new List<double>(); var resumeWall = new List<double>();
            long stateBytes = 0, layerBytes = 0;
            int k = 0;
            string active = disk;
            for (int i = 0; i < rounds; i++)
            {
                // take with memory
                var sw = Stopwatch.StartNew();
                string layer = active, next = Path.Combine(dir, $"disk-{++k}.qcow2");
                var res = await machine.SwapDisks(() => { DiskImageFile.CreateQcow2(next, 0, layer); return [new DiskConfig(next)]; }, captureState: true);
                string stateFile = Path.Combine(dir, $"snap-{k}.vmstate");
                await using (var f = new FileStream(stateFile, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    stateBytes = StateFile.Write(f, res.State!);
                    f.Flush(flushToDisk: true);
                }
                takeTotal.Add(sw.Elapsed.TotalMilliseconds); takePaused.Add(res.Paused.TotalMilliseconds);
                layerBytes = new FileInfo(layer).Length;
                active = next;
                await Task.Delay(1000); // the guest runs on (and writes nothing to the disk: no driver in the rescue initramfs)

                // revert to it
                sw.Restart();
                MachineSnapshot state;
                await using (var f = File.OpenRead(stateFile)) state = StateFile.Read(f);
                string over = Path.Combine(dir, $"disk-{++k}.qcow2"), discarded = active;
                await machine.Pause();
                var p = Stopwatch.StartNew();
                await machine.LoadState(state);
                await machine.SwapDisks(() => { DiskImageFile.CreateQcow2(over, 0, layer); return [new DiskConfig(over)]; });
                await machine.Resume();
                revertPaused.Add(p.Elapsed.TotalMilliseconds);
                File.Delete(discarded);
                active = over;
                revertWall.Add(sw.Elapsed.TotalMilliseconds);
                await Task.Delay(1000);

                // suspend and resume
                sw.Restart();
                string susp = Path.Combine(dir, "suspended.vmstate");
                await machine.Pause();
                var (captured, _) = await machine.CaptureState();
                await using (var f = new FileStream(susp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    StateFile.Write(f, captured);
                    f.Flush(flushToDisk: true);
                }
                await machine.PowerOff();
                machine.Dispose();
                suspendWall.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                machine = new Machine(Config(active));
                await using (var f = File.OpenRead(susp)) await machine.LoadState(f);
                await machine.Resume();
                resumeWall.Add(sw.Elapsed.TotalMilliseconds);
                File.Delete(susp);
                await Task.Delay(1000);
            }
            Console.WriteLine($"128 MiB rescue Linux (booting), 64 MiB qcow2 disk, {rounds} rounds (median / min / max, ms):");
            Console.WriteLine($"  take with memory: guest paused {Stats(takePaused)}");
            Console.WriteLine($"  take with memory: whole (state file synced) {Stats(takeTotal)}");
            Console.WriteLine($"  revert to it: guest paused {Stats(revertPaused)}");
            Console.WriteLine($"  revert to it: whole (read + check the file, pause, load, swap) {Stats(revertWall)}");
            Console.WriteLine($"  suspend (pause, capture, write + fsync, power off) {Stats(suspendWall)}");
            Console.WriteLine($"  resume (fresh machine, load, run) {Stats(resumeWall)}");
            Console.WriteLine($"  snapshot on disk: state file {stateBytes / 1048576.0:F1} MiB + frozen layer {layerBytes / 1024.0:F0} KiB");
            Console.WriteLine($"  {(machine.State == MachineState.Running ? "the guest runs on" : $"WARNING: machine {machine.State}")} at {machine.InstructionCount:N0} instructions");
            await machine.PowerOff();
            machine.Dispose();
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Stats(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return $"{s[s.Count / 2],7:F0} {s[0],7:F0} {s[^1],7:F0}";
    }
}

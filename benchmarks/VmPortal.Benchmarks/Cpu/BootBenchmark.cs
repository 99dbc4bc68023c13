using System.Diagnostics;
using System.Text;
using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Benchmarks.Cpu;

/// <summary>
/// Linux boot speed: direct kernel boot of the Debian i386 rescue guest (128 MiB, as benchmarks/boot-time.sh)
/// until its shell prompt on the serial console. Reports wall time, our process's CPU time (meaningful on a
/// shared machine), the guest instructions retired per CPU second and the JIT tier's counters (on by default: VMPORTAL_JIT=0 turns it
/// off, VMPORTAL_JIT_THRESHOLD sets its threshold). VMPORTAL_CPU_CACHE=0 turns the
/// decoded-instruction cache off for an A/B comparison. VMPORTAL_BOOT_SERIAL=file keeps the serial log (the kernel's
/// timestamped messages), VMPORTAL_BOOT_APPEND adds kernel parameters (nokaslr: EIP samples that match /proc/kallsyms).
/// </summary>
public static class BootBenchmark
{
    public static async Task<int> Run(string[] args)
    {
        string dir = Environment.GetEnvironmentVariable("VMPORTAL_IMAGE_CACHE")
                     ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "vmportal", "images");
        string kernel = Path.Combine(dir, GuestImages.RescueKernel);
        string initrd = Path.Combine(dir, GuestImages.RescueInitrd);
        if (!File.Exists(kernel) || !File.Exists(initrd))
        {
            Console.Error.WriteLine($"guest images missing in {dir}: run scripts/build-guest-images.sh");
            return 1;
        }
        var serial = new StringBuilder();
        var prompt = new TaskCompletionSource();
        using var machine = new Machine(new MachineConfig
        {
            Name = "boot-bench",
            MemoryMiB = 128,
            KernelPath = kernel,
            InitrdPath = initrd,
            KernelCommandLine = (GuestImages.RescueCommandLine + " " + Environment.GetEnvironmentVariable("VMPORTAL_BOOT_APPEND")).Trim(),
            OnTripleFault = TripleFaultAction.PowerOff,
        });
        machine.SerialOutput += b =>
        {
            lock (serial)
            {
                serial.Append(Encoding.Latin1.GetString(b));
                if (serial.ToString().Contains("/ # ")) prompt.TrySetResult();
            }
        };
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        await machine.Start();
        // Guest profile: where the CPU is (linear EIP) every 20 ms, to tell busy-wait loops from real work.
        var samples = new Dictionary<string, int>();
        (double Wall, double Cpu, long Instructions)? kernelAt = null;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                string d = machine.DescribeCpu();
                int at = d.IndexOf("(lin ", StringComparison.Ordinal);
                if (at >= 0)
                {
                    string key = d.Substring(at + 5, 8);
                    samples[key] = samples.GetValueOrDefault(key) + 1;
                    // The first sample in the kernel's own mapping (0xC0000000 and up): BIOS, loader and the kernel's
                    // decompressor (which runs with paging off) are behind.
                    int cr0At = d.IndexOf("CR0=", StringComparison.Ordinal);
                    if (kernelAt == null && cr0At >= 0 && d[cr0At + 4] >= '8' // CR0.PG: paging on
                        && uint.TryParse(key, System.Globalization.NumberStyles.HexNumber, null, out uint lin) && lin >= 0xC000_0000)
                    {
                        proc.Refresh();
                        kernelAt = (sw.Elapsed.TotalSeconds, (proc.TotalProcessorTime - cpu0).TotalSeconds, machine.InstructionCount);
                    }
                }
                try { await Task.Delay(20, sampling.Token); } catch (OperationCanceledException) { }
            }
        });
        // VMPORTAL_BOOT_INSTRUCTIONS=n: measure only the first n guest instructions of the boot (the same work for an
        // A/B comparison whatever the speed), instead of the whole boot to the prompt.
        long window = long.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_BOOT_INSTRUCTIONS"), out var w) ? w : 0;
        if (window > 0)
        {
            while (machine.InstructionCount < window && sw.Elapsed < TimeSpan.FromMinutes(30)) await Task.Delay(5);
            proc.Refresh();
            double cpuS = (proc.TotalProcessorTime - cpu0).TotalSeconds;
            long n = machine.InstructionCount;
            sampling.Cancel();
            await sampler;
            Console.WriteLine($"first {n:N0} guest instructions of the Linux boot: {sw.Elapsed.TotalSeconds:F1} s wall, {cpuS:F1} s CPU = {n / cpuS / 1e6:F1} MIPS per CPU second");
            if (machine.JitStatistics is { Enabled: true } wjit) Console.WriteLine($"JIT: {wjit}");
            Console.WriteLine($"RESULT boot_window_instructions={n} boot_window_cpu_s={cpuS:F1} boot_window_mips={n / cpuS / 1e6:F1}");
            return 0;
        }
        var done = await Task.WhenAny(prompt.Task, Task.Delay(TimeSpan.FromMinutes(10)));
        sw.Stop();
        sampling.Cancel();
        await sampler;
        proc.Refresh();
        double cpuSeconds = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        long instr = machine.InstructionCount;
        if (done != prompt.Task)
        {
            Console.WriteLine($"boot did not reach the prompt in 10 min: {machine.DescribeCpu()}");
            return 1;
        }
        if (Environment.GetEnvironmentVariable("VMPORTAL_BOOT_SERIAL") is { Length: > 0 } serialPath)
            lock (serial) File.WriteAllText(serialPath, serial.ToString()); // the guest's own timestamps, for a side-by-side with QEMU
        Console.WriteLine($"Linux direct kernel boot to the shell prompt: {sw.Elapsed.TotalSeconds:F1} s wall, {cpuSeconds:F1} s CPU, " +
                          $"{instr:N0} guest instructions = {instr / cpuSeconds / 1e6:F1} MIPS per CPU second");
        if (Network.GuestProfiler.CpuOf(machine) is { } bootCpu) // diagnostics: the machine does not expose its CPU
            Console.WriteLine($"page-table walks: {bootCpu.PageWalks:N0} ({bootCpu.PageWalks / Math.Max(1.0, instr / 1e6):F0} per million instructions)");
        if (kernelAt is { } phase)
            Console.WriteLine($"before the kernel proper (firmware, loader, decompressor; first EIP sample with paging on at 0xC0000000 or above): {phase.Wall:F1} s wall, {phase.Cpu:F1} s CPU, {phase.Instructions:N0} instructions");
        if (Environment.GetEnvironmentVariable("VMPORTAL_BOOT_PROFILE") == "1")
        {
            int total = samples.Values.Sum();
            Console.WriteLine($"guest EIP samples: {total}; hottest linear addresses:");
            foreach (var (k, v) in samples.OrderByDescending(x => x.Value).Take(int.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_BOOT_PROFILE_TOP"), out int top) ? top : 25))
                Console.WriteLine($"  {k}: {v} ({100.0 * v / total:F1} %)");
            // The CPU of the running board (diagnostics only: the machine does not expose it).
            if (Network.GuestProfiler.CpuOf(machine) is { } cpu)
                Console.WriteLine($"decoded blocks compiled: {cpu.BlocksCompiled:N0}, code pages invalidated by writes: {cpu.CodePageInvalidations:N0}");
        }
        if (VmPortal.Emulator.Cpu.Cpu.InterpreterOpcodeHistogram is { } hist)
        {
            long total = hist.Sum();
            Console.WriteLine($"interpreted instructions: {total:N0} ({100.0 * total / instr:F1} %); top opcodes:");
            foreach (var (k, count) in hist.Select((c, k) => (k, c)).OrderByDescending(x => x.c).Take(40))
                Console.WriteLine($"  {(k < 256 ? $"{k:X2}" : $"0F {k - 256:X2}")}: {count:N0}");
        }
        if (machine.JitStatistics is { Enabled: true } jit)
        {
            Console.WriteLine($"JIT: {jit}");
            Console.WriteLine($"RESULT jit_blocks={jit.BlocksCompiled} jit_compile_s={jit.CompileTime.TotalSeconds:F2} jit_emit_s={jit.EmitTime.TotalSeconds:F2} jit_compile_cpu_s={jit.CompileCpuTime.TotalSeconds:F2} jit_cache_blocks={jit.CacheBlocks} jit_cache_il_bytes={jit.CacheIlBytes}");
        }
        Console.WriteLine($"RESULT boot_wall_s={sw.Elapsed.TotalSeconds:F1} boot_cpu_s={cpuSeconds:F1} boot_mips={instr / cpuSeconds / 1e6:F1}");
        return 0;
    }
}

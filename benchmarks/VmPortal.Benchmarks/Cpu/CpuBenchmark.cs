using System.Diagnostics;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using CpuCore = VmPortal.Emulator.Cpu.Cpu;

namespace VmPortal.Benchmarks.Cpu;

/// <summary>
/// Guest MIPS on a CPU-bound 32-bit loop (Cpu/cpu-loop.asm: ALU, loads/stores, branches, calls), run on our
/// interpreter and, in the same run, under qemu-system-i386 -accel tcg (the same ROM image, -bios).
/// Times are CPU time (the build machine is shared, wall-clock is not meaningful there): our process's processor
/// time around the run loop, QEMU's user+system time; QEMU's is the difference between a long and a short run,
/// which removes its start-up cost.
/// </summary>
public static class CpuBenchmark
{
    private const int InstructionsPerIteration = 16;

    public static int Run(string[] args)
    {
        long iterations = args.Length > 1 && long.TryParse(args[1], out var n) ? n : 50_000_000;
        string asm = Path.Combine(AppContext.BaseDirectory, "Cpu", "cpu-loop.asm");
        byte[] romLong = Assemble(asm, iterations);
        byte[] romShort = Assemble(asm, 1000);

        // --jit on|off|both (default: the CPU's default, VMPORTAL_JIT): "both" alternates off/on runs (twice each) so a
        // busy shared machine slows both alike.
        int ji = Array.IndexOf(args, "--jit");
        string jitMode = ji >= 0 && ji + 1 < args.Length ? args[ji + 1] : "default";
        bool?[] modes = jitMode switch
        {
            "on" => new bool?[] { true },
            "off" => new bool?[] { false },
            "both" => new bool?[] { false, true, false, true },
            _ => new bool?[] { null },
        };

        // Warm-up (.NET tiering), then the measured runs.
        RunOurs(Assemble(asm, 2_000_000), modes[^1]);
        double ourMips = 0, jitMips = 0, interpMips = 0;
        foreach (var jit in modes)
        {
            var (instr, seconds, cpuSeconds, cpu) = RunOurs(romLong, jit);
            ourMips = instr / cpuSeconds / 1e6;
            if (cpu.JitEnabled) jitMips = Math.Max(jitMips, ourMips); else interpMips = Math.Max(interpMips, ourMips);
            Console.WriteLine($"VmPortal CPU (JIT {(cpu.JitEnabled ? "on" : "off")}): {instr:N0} guest instructions in {cpuSeconds:F2} s CPU time ({seconds:F2} s wall) = {ourMips:F1} MIPS per core ({instr / seconds / 1e6:F1} wall-clock)");
            if (cpu.JitEnabled)
                Console.WriteLine($"  JIT: {cpu.JitBlocksCompiled} blocks compiled in {cpu.JitCompileTime.TotalMilliseconds:F1} ms, code cache {cpu.JitCacheBlocks} blocks / {cpu.JitCacheIlBytes:N0} IL bytes, {100.0 * cpu.JitInstructions / Math.Max(1, instr):F1} % of instructions in compiled code");
        }

        double? qemuMips = null;
        var qemuLong = RunQemu(romLong);
        var qemuShort = RunQemu(romShort);
        if (qemuLong is double tl && qemuShort is double ts)
        {
            double q = tl - ts;
            long qInstr = iterations * InstructionsPerIteration;
            qemuMips = qInstr / q / 1e6;
            Console.WriteLine($"qemu-system-i386 -accel tcg: {qInstr:N0} guest instructions in {q:F2} s CPU time (long run {tl:F2} s - start-up run {ts:F2} s) = {qemuMips:F1} MIPS");
        }
        else Console.WriteLine("qemu-system-i386 not found: QEMU comparison skipped");
        if (jitMips > 0 && interpMips > 0) Console.WriteLine($"RESULT cpu_mips_jit_off={interpMips:F1} cpu_mips_jit_on={jitMips:F1} (best of each)");
        Console.WriteLine($"RESULT cpu_mips={ourMips:F1} qemu_tcg_mips={(qemuMips.HasValue ? qemuMips.Value.ToString("F1") : "n/a")}");
        return 0;
    }

    private static byte[] Assemble(string asm, long iterations)
    {
        string outFile = Path.Combine(Path.GetTempPath(), $"vmportal-bench-{iterations}.rom");
        var psi = new ProcessStartInfo("nasm", $"-f bin -DITER={iterations} -o \"{outFile}\" \"{asm}\"") { RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("nasm not found (scripts/install-deps.sh test)");
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException("nasm failed: " + err);
        return File.ReadAllBytes(outFile);
    }

    private static (long Instructions, double Seconds, double CpuSeconds, CpuCore Cpu) RunOurs(byte[] rom, bool? jit)
    {
        var mem = new PhysicalMemory(32 * 1024 * 1024);
        int off = mem.LoadRom(0xF0000, rom);
        mem.MapRom(0xFFFF0000, 0x10000, off);
        var io = new IoBus();
        bool done = false;
        io.Register(0xF4, 1, null, (port, size, value) => done = true);
        var cpu = new CpuCore(mem, io);
        if (jit is bool j) cpu.JitEnabled = j;
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        while (!done && !cpu.ShutdownPending && !cpu.Halted) cpu.Run(1_000_000);
        sw.Stop();
        proc.Refresh();
        var cpuTime = proc.TotalProcessorTime - cpu0;
        if (!done) throw new InvalidOperationException("benchmark guest did not finish: " + cpu.ShutdownReason);
        return (cpu.InstructionCount, sw.Elapsed.TotalSeconds, cpuTime.TotalSeconds, cpu);
    }

    private static double? RunQemu(byte[] rom)
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmportal-bench-qemu-{rom.GetHashCode():X}.rom");
        File.WriteAllBytes(path, rom);
        try
        {
            // CPU time (user + system) of the QEMU process, measured by the shell: the machine may be shared.
            string qemuArgs = $"-accel tcg -bios '{path}' -display none -device isa-debug-exit,iobase=0xf4,iosize=1 -m 32 -no-reboot -monitor none -serial none -nodefaults";
            var psi = new ProcessStartInfo("bash", new[] { "-c", $"TIMEFORMAT='%U %S'; {{ time qemu-system-i386 {qemuArgs} >/dev/null 2>&1 ; }} 2>&1" })
            { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi);
            if (p == null) return null;
            string text = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(300_000)) { p.Kill(true); return null; }
            var parts = text.Trim().Split(' ');
            if (parts.Length < 2 || !double.TryParse(parts[^2], System.Globalization.CultureInfo.InvariantCulture, out double u)
                || !double.TryParse(parts[^1], System.Globalization.CultureInfo.InvariantCulture, out double sy)) return null;
            return u + sy;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        finally
        {
            File.Delete(path);
        }
    }
}

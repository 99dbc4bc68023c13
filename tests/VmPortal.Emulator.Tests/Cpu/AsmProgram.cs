using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using CpuCore = VmPortal.Emulator.Cpu.Cpu;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// Test ROMs written in assembly (Cpu/Asm/*.asm): assembled with nasm at test time into a 64 KiB image that is
/// mapped at F0000h and FFFF0000h, run from the reset vector on our CPU (or under qemu-system-i386 -bios for the
/// differential tests). Programs print "name=value" lines to the debug port E9h and finish by writing port F4h.
/// </summary>
internal static class AsmProgram
{
    public const ushort DebugPort = 0xE9;
    public const ushort ExitPort = 0xF4;

    public static string AsmDir => Path.Combine(AppContext.BaseDirectory, "Cpu", "Asm");

    public static string? Nasm { get; } = FindTool("nasm");
    public static string? Qemu { get; } = FindTool("qemu-system-i386");

    private static string? FindTool(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Assembles a source (a file name in Cpu/Asm or full text) and returns the 64 KiB image.</summary>
    public static byte[] Assemble(string sourceText, string name)
    {
        if (Nasm == null) throw new InvalidOperationException("nasm is not installed (scripts/install-deps.sh test)");
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sourceText)))[..16];
        string work = Path.Combine(Path.GetTempPath(), "vmportal-asm");
        Directory.CreateDirectory(work);
        string src = Path.Combine(work, $"{name}-{hash}.asm");
        string bin = Path.ChangeExtension(src, ".bin");
        if (!File.Exists(bin))
        {
            // Unique temporary names: test classes run in parallel and may assemble the same new source at once.
            string tmp = $"{bin}.{Guid.NewGuid():N}.tmp";
            string srcTmp = $"{src}.{Guid.NewGuid():N}.asm";
            File.WriteAllText(srcTmp, sourceText);
            var psi = new ProcessStartInfo(Nasm, $"-f bin -I \"{AsmDir}/\" -o \"{tmp}\" \"{srcTmp}\"")
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            File.Delete(srcTmp);
            if (p.ExitCode != 0) throw new InvalidOperationException($"nasm failed for {name}: {err}");
            File.Move(tmp, bin, true);
        }
        return File.ReadAllBytes(bin);
    }

    public sealed class Result
    {
        public required string Output;
        public required bool Exited;
        public required CpuCore Cpu;
        public required PhysicalMemory Memory;
        public long Instructions;
    }

    /// <summary>Runs a ROM image on our CPU until it writes the exit port, halts with interrupts off, or the budget runs out.</summary>
    /// <param name="jit">true: JIT tier on with threshold 0 (every block compiled before its first run); false: off;
    /// null: the CPU's default (VMPORTAL_JIT).</param>
    /// <param name="jitBackground">With <paramref name="jit"/> set: compile on the background compiler thread (the
    /// moment a block switches to compiled code then depends on that thread) instead of deterministically.</param>
    public static Result RunOurs(byte[] rom, long maxInstructions = 50_000_000, bool blockCache = true, bool? jit = null, int jitThreshold = 0,
        bool jitBackground = false, int jitRegionOps = 0)
    {
        var mem = new PhysicalMemory(32 * 1024 * 1024);
        int off = mem.LoadRom(0xF0000, rom);
        mem.MapRom(0xFFFF0000, 0x10000, off);
        var io = new IoBus();
        var sb = new StringBuilder();
        bool exited = false;
        io.Register(DebugPort, 1, null, (port, size, value) => sb.Append((char)(value & 0xFF)));
        io.Register(ExitPort, 1, null, (port, size, value) => exited = true);
        var cpu = new CpuCore(mem, io) { BlockCacheEnabled = blockCache };
        if (jit is bool j) { cpu.JitEnabled = j; cpu.JitThreshold = jitThreshold; cpu.JitBackground = jitBackground; cpu.JitRegionMaxOps = jitRegionOps; }
        int faults = 0;
        cpu.ExceptionRaised = (v, e, cs, eip) =>
        {
            if (++faults <= 8) sb.Append($"~exception {v} error {e:X} at {cs:X4}:{eip:X8}\n");
        };
        long done = 0;
        while (!exited && !cpu.ShutdownPending && done < maxInstructions && faults < 10_000)
        {
            int n = cpu.Run(100_000);
            done += n;
            if (cpu.Halted && n == 0) break;
        }
        if (cpu.ShutdownPending) sb.Append("SHUTDOWN: " + cpu.ShutdownReason + "\n");
        return new Result { Output = sb.ToString(), Exited = exited, Cpu = cpu, Memory = mem, Instructions = cpu.InstructionCount };
    }

    /// <summary>Runs the same ROM under QEMU (TCG) and returns what it printed on the debug port, or null without QEMU.</summary>
    public static string? RunQemu(byte[] rom, string name, int timeoutMs = 20_000)
    {
        if (Qemu == null) return null;
        string work = Path.Combine(Path.GetTempPath(), "vmportal-asm");
        Directory.CreateDirectory(work);
        string bin = Path.Combine(work, $"{name}-{Guid.NewGuid():N}.rom");
        string outFile = bin + ".out";
        File.WriteAllBytes(bin, rom);
        var psi = new ProcessStartInfo(Qemu,
            $"-accel tcg -cpu pentium3 -bios \"{bin}\" -display none -debugcon file:\"{outFile}\" " +
            "-device isa-debug-exit,iobase=0xf4,iosize=1 -m 32 -no-reboot -monitor none -serial none -nodefaults")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        if (!p.WaitForExit(timeoutMs)) { p.Kill(true); }
        string output = File.Exists(outFile) ? File.ReadAllText(outFile) : "";
        File.Delete(bin);
        if (File.Exists(outFile)) File.Delete(outFile);
        return output;
    }

    /// <summary>The ";! name=value" expectations written next to the instructions in an .asm source.</summary>
    public static List<string> Expectations(string source)
    {
        var list = new List<string>();
        foreach (var line in source.Split('\n'))
        {
            int i = line.IndexOf(";!", StringComparison.Ordinal);
            if (i >= 0) list.Add(line[(i + 2)..].Trim().Split(' ')[0]);
        }
        return list;
    }
}

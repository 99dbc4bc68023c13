using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using CpuCore = VmPortal.Emulator.Cpu.Cpu;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// The JIT tier (Cpu/Jit/) must be invisible to the guest. Every assembly test program, with every block compiled
/// before its first run (threshold 0), prints its expectations and gives the same output, retired-instruction count,
/// EIP, EFLAGS and registers as the interpreter alone (the interpreter's own output is checked against the
/// expectations and against QEMU by AsmTests, so the JIT run matches QEMU too).
/// </summary>
public sealed class JitTests
{
    [NasmTheory]
    [MemberData(nameof(AsmTests.Programs), MemberType = typeof(AsmTests))]
    public void JitAndInterpreterGiveTheSameRun(string name)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, name + ".asm"));
        var rom = AsmProgram.Assemble(source, name);
        var jit = AsmProgram.RunOurs(rom, jit: true);
        var interpreted = AsmProgram.RunOurs(rom, blockCache: false);
        Assert.True(jit.Exited, jit.Output);
        var lines = jit.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        var missing = AsmProgram.Expectations(source).Where(e => !lines.Contains(e)).ToList();
        Assert.True(missing.Count == 0, $"{name} with the JIT: expected lines not printed: {string.Join(", ", missing)}\noutput:\n{jit.Output}");
        AssertSameState(interpreted, jit);
        Assert.True(jit.Cpu.JitBlocksCompiled > 0);
        Assert.True(jit.Cpu.JitInstructions > 0);
    }

    internal static void AssertSameState(AsmProgram.Result expected, AsmProgram.Result actual)
    {
        Assert.Equal(expected.Output, actual.Output);
        Assert.Equal(expected.Instructions, actual.Instructions);
        Assert.Equal(expected.Cpu.Eip, actual.Cpu.Eip);
        Assert.Equal(expected.Cpu.Eflags, actual.Cpu.Eflags);
        Assert.Equal(
            new[] { expected.Cpu.Eax, expected.Cpu.Ebx, expected.Cpu.Ecx, expected.Cpu.Edx, expected.Cpu.Esi, expected.Cpu.Edi, expected.Cpu.Esp, expected.Cpu.Ebp },
            new[] { actual.Cpu.Eax, actual.Cpu.Ebx, actual.Cpu.Ecx, actual.Cpu.Edx, actual.Cpu.Esi, actual.Cpu.Edi, actual.Cpu.Esp, actual.Cpu.Ebp });
    }

    /// <summary>Real-mode loop at 0000:1000: "mov ax, imm16 ; inc bx ; jmp short back" (a block that loops to itself).</summary>
    private static (CpuCore Cpu, PhysicalMemory Mem) LoopMachine(int threshold, bool background = false)
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(0x1000, new byte[] { 0xB8, 0x11, 0x11, 0x43, 0xEB, 0xFA });
        var cpu = new CpuCore(mem, new IoBus()) { JitEnabled = true, JitThreshold = threshold, JitBackground = background };
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.DS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = 0x1000;
        cpu.Esp = 0x8000;
        return (cpu, mem);
    }

    [Fact]
    public void CompiledLoopKeepsTheRunBudgetAndSeesDeviceWrites()
    {
        var (cpu, mem) = LoopMachine(threshold: 10);
        // Budgets that end inside the loop stop exactly there, before and after the block is compiled.
        Assert.Equal(7, cpu.Run(7));
        Assert.Equal(0x1003u, cpu.Eip);
        Assert.Equal(2u, cpu.Ebx & 0xFFFF);
        Assert.Equal(2993, cpu.Run(2993));
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        Assert.Equal(0x1000u, cpu.Eip);
        Assert.Equal(1, cpu.JitBlocksCompiled);
        Assert.True(cpu.JitInstructions > 2000, $"only {cpu.JitInstructions} instructions ran compiled");
        Assert.Equal(3001, cpu.Run(3001));
        Assert.Equal(0x1003u, cpu.Eip);

        // A device write into the compiled block: the next run uses the new bytes.
        mem.WriteBytes(0x1001, new byte[] { 0x22, 0x22 });
        cpu.Eip = 0x1000;
        cpu.Run(3000);
        Assert.Equal(0x2222u, cpu.Eax & 0xFFFF);
        uint before = cpu.Ebx & 0xFFFF;
        mem.Write8(0x1003, 0x4B); // inc bx -> dec bx
        cpu.Eip = 0x1000;
        cpu.Run(300);
        Assert.Equal((before - 100) & 0xFFFF, cpu.Ebx & 0xFFFF);
        Assert.True(cpu.JitBlocksCompiled >= 3);
    }

    [Fact]
    public void BackgroundCompilerInstallsTheBlockWhileTheLoopRuns()
    {
        var (cpu, _) = LoopMachine(threshold: 10, background: true);
        // The block keeps running in the decoded-instruction cache until the compiler thread has its code ready.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        long runs = 0;
        while (cpu.JitInstructions == 0 && DateTime.UtcNow < deadline)
        {
            Assert.Equal(3000, cpu.Run(3000));
            runs++;
        }
        Assert.True(cpu.JitInstructions > 0, "the background compiler never delivered the block");
        Assert.Equal(1, cpu.JitBlocksCompiled);
        Assert.Equal(1, cpu.JitCacheBlocks);
        Assert.True(cpu.JitCompileTime > TimeSpan.Zero);
        // Exactly the interpreter's state: 3 instructions per pass, BX counts the passes.
        Assert.Equal(0x1000u, cpu.Eip);
        Assert.Equal((uint)(runs * 1000) & 0xFFFF, cpu.Ebx & 0xFFFF);
        Assert.Equal(0x1111u, cpu.Eax & 0xFFFF);
    }

    [Fact]
    public void ALoopOfSeveralBlocksRunsInsideOneRegion()
    {
        // 16-bit real mode at 0000:1000, three blocks in one page:
        //   top:  inc bx ; cmp bx, 5 ; jne skip      (block 1)
        //         inc dx                             (block 2, falls through)
        //   skip: add si, bx ; dec cx ; jnz top       (block 3, back to block 1)
        byte[] code = { 0x43, 0x83, 0xFB, 0x05, 0x75, 0x01, 0x42, 0x01, 0xDE, 0x49, 0x75, 0xF4 };
        CpuCore Make(bool jit)
        {
            var mem = new PhysicalMemory(2 * 1024 * 1024);
            mem.WriteBytes(0x1000, code);
            var c = new CpuCore(mem, new IoBus()) { JitEnabled = jit, JitThreshold = 0, JitBackground = false, JitRegionMaxOps = 256 };
            c.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
            c.Eip = 0x1000;
            c.Ecx = 50_000;
            return c;
        }
        var jit = Make(true);
        var interpreted = Make(false);
        // Budgets that end inside the loop (at every block boundary and inside blocks) stop exactly there.
        foreach (int n in new[] { 1, 2, 3, 4, 5, 6, 7, 100, 1001, 99_999, 100_000 })
        {
            Assert.Equal(interpreted.Run(n), jit.Run(n));
            Assert.Equal(interpreted.Eip, jit.Eip);
            Assert.Equal((interpreted.Ebx, interpreted.Ecx, interpreted.Edx, interpreted.Esi), (jit.Ebx, jit.Ecx, jit.Edx, jit.Esi));
            Assert.Equal(interpreted.Eflags, jit.Eflags);
        }
        Assert.True((jit.Ecx & 0xFFFF) is > 0 and < 20_000, $"CX {jit.Ecx & 0xFFFF}"); // still inside the loop
        Assert.True(jit.JitInstructions > 140_000, $"{jit.JitInstructions} instructions compiled");
        // The loop stays in compiled code: a handful of entries from the block loop for 200,000 instructions.
        Assert.True(jit.JitEntries < 40, $"{jit.JitEntries} entries");
    }

    /// <summary>Code compiled while DS was flat (its limit check and base add left out) and run again with other data
    /// segments (based, limited, read-only), in single blocks and in regions: the block loop drops such code and the
    /// block compiles again without the assumption.</summary>
    [NasmTheory]
    [InlineData(0)]
    [InlineData(64)]
    public void CodeCompiledForFlatSegmentsFollowsOtherSegments(int regionOps)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, "flatseg.asm"));
        var rom = AsmProgram.Assemble(source, "flatseg");
        var jit = AsmProgram.RunOurs(rom, jit: true, jitRegionOps: regionOps);
        var interpreted = AsmProgram.RunOurs(rom, blockCache: false);
        Assert.True(jit.Exited, jit.Output);
        AssertSameState(interpreted, jit);
        Assert.True(jit.Cpu.JitFlatMismatches >= 1, $"{jit.Cpu.JitFlatMismatches} compiled blocks met a segment that was not flat");
    }

    [Theory]
    [InlineData(0x7FFF, 0x0001)]
    [InlineData(0x1234, 0x00F0)]
    [InlineData(0xFF80, 0x0081)]
    public void RegionExitsHandOverTheirOwnFlags(ushort ax, ushort bx)
    {
        // One region (real mode, 0000:1000, threshold 2: its blocks are decoded before it compiles) with two exits to
        // another page whose flag states differ in operation and size (the compiled method has one shared epilogue
        // per flag state): the flags right after each exit must be the interpreter's.
        //   1000: add ax, bx ; cmp cx, 5 ; je 100A     (block 1)
        //   1007: jmp near 2000                         (block 2: exits with CMP's flags, 16-bit)
        //   100A: add al, bl ; jmp near 2100            (block 3: exits with ADD's flags, 8-bit)
        //   2000: mov cx, 5 ; jmp near 1000             2100: mov cx, 7 ; jmp near 1000
        byte[] code = { 0x01, 0xD8, 0x83, 0xF9, 0x05, 0x74, 0x03, 0xE9, 0xF6, 0x0F, 0x00, 0xD8, 0xE9, 0xF1, 0x10 };
        CpuCore Make(bool jit)
        {
            var mem = new PhysicalMemory(2 * 1024 * 1024);
            mem.WriteBytes(0x1000, code);
            mem.WriteBytes(0x2000, new byte[] { 0xB9, 0x05, 0x00, 0xE9, 0xFA, 0xEF });
            mem.WriteBytes(0x2100, new byte[] { 0xB9, 0x07, 0x00, 0xE9, 0xFA, 0xEE });
            var c = new CpuCore(mem, new IoBus()) { JitEnabled = jit, JitThreshold = 2, JitBackground = false, JitRegionMaxOps = 64 };
            c.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
            c.Eip = 0x1000;
            (c.Ecx, c.Eax, c.Ebx) = (7u, ax, bx);
            return c;
        }
        var jit = Make(true);
        var interpreted = Make(false);
        for (int pass = 0; pass < 30; pass++)
        {
            // 4 instructions to the exit at 2000, 2 back, 5 to the exit at 2100, 2 back: compare right after each exit.
            foreach (var (n, at) in new[] { (4, 0x2000u), (2, 0x1000u), (5, 0x2100u), (2, 0x1000u) })
            {
                Assert.Equal(interpreted.Run(n), jit.Run(n));
                Assert.Equal(at, jit.Eip);
                Assert.Equal((interpreted.Eax, interpreted.Ebx, interpreted.Ecx), (jit.Eax, jit.Ebx, jit.Ecx));
                Assert.Equal(interpreted.Eflags, jit.Eflags);
            }
        }
        Assert.True(jit.JitInstructions > 300, $"{jit.JitInstructions} instructions compiled");
    }

    [Fact]
    public void CodeCacheIsBounded()
    {
        // 14 tiny blocks "inc ax; jmp near next; nop", one per page (a region never spans pages), the last jumps back
        // to the first; a cache of 4 keeps evicting.
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        const int blocks = 14;
        for (int i = 0; i < blocks; i++)
        {
            int at = 0x1000 + i * 0x1000;
            int next = i == blocks - 1 ? 0x1000 : at + 0x1000;
            int rel = next - (at + 4);
            mem.WriteBytes((uint)at, new byte[] { 0x40, 0xE9, (byte)rel, (byte)(rel >> 8), 0x90 });
        }
        var cpu = new CpuCore(mem, new IoBus()) { JitEnabled = true, JitThreshold = 0, JitCacheCapacity = 4 };
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.Eip = 0x1000;
        cpu.Run(blocks * 2 * 10);
        Assert.Equal(blocks * 10u, cpu.Eax & 0xFFFF);
        Assert.Equal(4, cpu.JitCacheBlocks);
        Assert.True(cpu.JitEvictions >= blocks * 10 - 4, $"evictions {cpu.JitEvictions}");
        Assert.True(cpu.JitCacheIlBytes > 0);
    }
}

/// <summary>
/// The recorded 80286 tests (<see cref="Cpu286ConformanceTests"/>) with the JIT tier compiling every block (threshold
/// 0): each test's instruction runs as compiled code, the HLT after it through the interpreter. Every 16th test of each
/// form (each test compiles one block, so the whole set would add minutes to CI); the same pass criteria as the
/// interpreter run.
/// </summary>
public sealed class Cpu286JitConformanceTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public Cpu286JitConformanceTests(Xunit.Abstractions.ITestOutputHelper output) => _output = output;

    [Cpu286Theory]
    [MemberData(nameof(Cpu286ConformanceTests.Forms), MemberType = typeof(Cpu286ConformanceTests))]
    public void FormWithTheJit(string form)
    {
        var root = CpuTestData.Root286!;
        var meta = Cpu286ConformanceTests.Metadata.Load(root);
        var (status, flagsMask) = meta.Lookup(form);
        var result = Cpu286ConformanceTests.RunForm(root, form, flagsMask, meta.Revoked, out var failures, meta.UndefinedRegs(form), sampleEvery: 16, jit: true);
        foreach (var f in failures.Take(10)) _output.WriteLine(f);
        _output.WriteLine($"{form} (JIT): {result.Passed}/{result.Total} passed, {result.DeviationCount} deviations, {result.Failed} failed");
        Assert.True(result.Total > 0);
        if (status != "undefined")
            Assert.True(result.Failed == 0, $"{form} with the JIT: {result.Failed} of {result.Total} tests failed; first: {failures.FirstOrDefault()}");
    }
}

using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using CpuCore = VmPortal.Emulator.Cpu.Cpu;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// The decoded-instruction cache (Cpu/Cpu.BlockCache.cs): it must be invisible to the guest. Every assembly test
/// program gives the same output, the same retired-instruction count and the same final registers with the cache
/// on and off (faults, interrupts in V86/protected mode, paging changes, task switches, self-modifying code); code
/// changed by a device (DMA through PhysicalMemory) runs with its new bytes; and the cache really is used.
/// </summary>
public sealed class BlockCacheTests
{
    [NasmTheory]
    [MemberData(nameof(AsmTests.Programs), MemberType = typeof(AsmTests))]
    public void CacheOnAndOffGiveTheSameRun(string name)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, name + ".asm"));
        var rom = AsmProgram.Assemble(source, name);
        var cached = AsmProgram.RunOurs(rom, blockCache: true);
        var interpreted = AsmProgram.RunOurs(rom, blockCache: false);
        Assert.True(cached.Exited, cached.Output);
        Assert.Equal(interpreted.Output, cached.Output);
        Assert.Equal(interpreted.Instructions, cached.Instructions);
        Assert.Equal(interpreted.Cpu.Eip, cached.Cpu.Eip);
        Assert.Equal(interpreted.Cpu.Eflags, cached.Cpu.Eflags);
        Assert.Equal(
            new[] { interpreted.Cpu.Eax, interpreted.Cpu.Ebx, interpreted.Cpu.Ecx, interpreted.Cpu.Edx, interpreted.Cpu.Esi, interpreted.Cpu.Edi, interpreted.Cpu.Esp, interpreted.Cpu.Ebp },
            new[] { cached.Cpu.Eax, cached.Cpu.Ebx, cached.Cpu.Ecx, cached.Cpu.Edx, cached.Cpu.Esi, cached.Cpu.Edi, cached.Cpu.Esp, cached.Cpu.Ebp });
        Assert.Equal(0, interpreted.Cpu.BlocksCompiled);
        Assert.True(cached.Cpu.BlocksCompiled > 0);
    }

    /// <summary>
    /// codetlb.asm calls a routine on another page 1,000 times, so the fetch changes pages 2,000 times: the fetch takes
    /// each page from the TLB and walks the page tables only when the entry is missing (after the INVLPG and the CR3
    /// reload the program does). Before, the block loop walked at every page change.
    /// </summary>
    [NasmTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void FetchAcrossPagesWalksOnlyOnATlbMiss(bool jit)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, "codetlb.asm"));
        var r = AsmProgram.RunOurs(AsmProgram.Assemble(source, "codetlb"), jit: jit);
        Assert.True(r.Exited, r.Output);
        Assert.Contains("calls=000003E8", r.Output);
        Assert.Contains("invlpg=00000002", r.Output);
        Assert.InRange(r.Cpu.PageWalks, 1, 100);
    }

    /// <summary>Real-mode loop at 0000:1000: "mov ax, imm16 ; inc bx ; jmp short back".</summary>
    private static (CpuCore Cpu, PhysicalMemory Mem) LoopMachine()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(0x1000, new byte[] { 0xB8, 0x11, 0x11, 0x43, 0xEB, 0xFA });
        var cpu = new CpuCore(mem, new IoBus());
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.DS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = 0x1000;
        cpu.Esp = 0x8000;
        return (cpu, mem);
    }

    /// <summary>
    /// A forward Jcc does not end its block: the real-mode loop "inc bx; cmp bx, 1000; je out; inc cx; jmp back" is one
    /// block (two before: the Jcc ended the first), and the Jcc taken leaves the block at once, in the block loop and in
    /// compiled code: the "inc cx" after it does not run on the last pass.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AJccInsideABlockFallsThroughOrLeavesIt(bool jit)
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(0x1000, new byte[]
        {
            0x43,                   // 1000: inc bx
            0x81, 0xFB, 0xE8, 0x03, // 1001: cmp bx, 1000
            0x74, 0x03,             // 1005: je 100A
            0x41,                   // 1007: inc cx
            0xEB, 0xF6,             // 1008: jmp 1000
            0xB8, 0x34, 0x12,       // 100A: mov ax, 1234h
            0xEB, 0xFE,             // 100D: jmp $
        });
        var cpu = new CpuCore(mem, new IoBus()) { JitEnabled = jit, JitThreshold = 0, JitBackground = false };
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = 0x1000;
        cpu.Esp = 0x8000;

        // 999 passes of five instructions, then inc, cmp, je (taken), mov, and jmp $ for the rest.
        Assert.Equal(10000, cpu.Run(10000));
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        Assert.Equal(999u, cpu.Ecx & 0xFFFF);
        Assert.Equal(0x1234u, cpu.Eax & 0xFFFF);
        Assert.Equal(0x100Du, cpu.Eip);
        Assert.Equal(3, cpu.BlocksCompiled); // the loop, the code at the Jcc's target, and jmp $ (its own target)
        if (jit) Assert.True(cpu.JitInstructions > 4000, $"{cpu.JitInstructions} instructions run compiled");
    }

    /// <summary>A backward Jcc (a loop's back edge) ends its block: "inc bx; cmp bx, 1000; jne back" is a block of
    /// three, and the code after the loop its own block, not the mostly unused tail of the loop's.</summary>
    [Fact]
    public void ABackwardJccEndsItsBlock()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(0x1000, new byte[]
        {
            0x43,                   // 1000: inc bx
            0x81, 0xFB, 0xE8, 0x03, // 1001: cmp bx, 1000
            0x75, 0xF9,             // 1005: jne 1000
            0xB8, 0x34, 0x12,       // 1007: mov ax, 1234h
            0xEB, 0xFE,             // 100A: jmp $
        });
        var cpu = new CpuCore(mem, new IoBus());
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = 0x1000;

        Assert.Equal(3001, cpu.Run(3001)); // 1,000 passes of three, then mov
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        Assert.Equal(0x1234u, cpu.Eax & 0xFFFF);
        Assert.Equal(0x100Au, cpu.Eip);
        Assert.Equal(2, cpu.BlocksCompiled); // the loop, and the code after it (a jne that went on: one block for both)
    }

    /// <summary>String instructions are decoded: a loop with a MOVSB and a STOSB inside is one block (each ended a block
    /// in the interpreter before), and a REP STOSW ends its block but runs in the decoded cache, with 16-bit addresses.</summary>
    [Fact]
    public void StringInstructionsRunInTheDecodedCache()
    {
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(0x1000, new byte[]
        {
            0xA4,                   // 1000: movsb
            0xAA,                   // 1001: stosb
            0x43,                   // 1002: inc bx
            0x81, 0xFB, 0x64, 0x00, // 1003: cmp bx, 100
            0x75, 0xF7,             // 1007: jne 1000
            0xB9, 0x05, 0x00,       // 1009: mov cx, 5
            0xF3, 0xAB,             // 100C: rep stosw
            0xEB, 0xFE,             // 100E: jmp $
        });
        for (int i = 0; i < 100; i++) mem.WriteBytes((uint)(0x2000 + i), new[] { (byte)(i * 7 + 1) });
        var cpu = new CpuCore(mem, new IoBus());
        foreach (var seg in new[] { Emulator.Cpu.SegmentRegister.CS, Emulator.Cpu.SegmentRegister.DS, Emulator.Cpu.SegmentRegister.ES, Emulator.Cpu.SegmentRegister.SS })
            cpu.SetSegmentReal(seg, 0);
        cpu.Eip = 0x1000;
        cpu.Esi = 0x2000;
        cpu.Edi = 0x3000;
        cpu.Eax = 0xA55A;

        Assert.Equal(507, cpu.Run(507)); // 100 passes of five, mov, five REP iterations, jmp $
        Assert.Equal(0x100Eu, cpu.Eip);
        Assert.Equal(0x2000u + 100, cpu.Esi);
        Assert.Equal(0x3000u + 200 + 10, cpu.Edi);
        Assert.Equal(0u, cpu.Ecx & 0xFFFF);
        for (int i = 0; i < 100; i++)
        {
            Assert.Equal((byte)(i * 7 + 1), mem.Read8((uint)(0x3000 + 2 * i)));
            Assert.Equal(0x5A, mem.Read8((uint)(0x3000 + 2 * i + 1)));
        }
        for (int i = 0; i < 5; i++) Assert.Equal(0xA55Au, mem.Read16((uint)(0x3000 + 200 + 2 * i)));
        Assert.Equal(3, cpu.BlocksCompiled); // the loop; mov and REP STOSW; jmp $
    }

    [Fact]
    public void DeviceWriteToCachedCodeTakesEffect()
    {
        var (cpu, mem) = LoopMachine();
        Assert.Equal(3000, cpu.Run(3000));
        Assert.Equal(0x1111u, cpu.Eax & 0xFFFF);
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        long compiled = cpu.BlocksCompiled;
        Assert.InRange(compiled, 1, 3); // the loop is decoded once, not 1000 times

        // A DMA-style write (devices write guest memory through PhysicalMemory) changes the immediate.
        mem.WriteBytes(0x1001, new byte[] { 0x22, 0x22 });
        Assert.True(cpu.CodePageInvalidations > 0);
        cpu.Run(3000);
        Assert.Equal(0x2222u, cpu.Eax & 0xFFFF);
        Assert.True(cpu.BlocksCompiled > compiled);

        // A 32-bit device write turns "inc bx" into "dec bx" (4Bh) and keeps the rest.
        uint before = cpu.Ebx & 0xFFFF;
        mem.Write8(0x1003, 0x4B);
        cpu.Eip = 0x1000;
        cpu.Run(300);
        Assert.Equal((before - 100) & 0xFFFF, cpu.Ebx & 0xFFFF);
    }

    [Fact]
    public void FourBlocksOfOneTableSetStayDecoded()
    {
        // Four real-mode blocks whose code lands in the same set of the block table, each jumping to the next with a
        // far jump (a segment load ends a block in the interpreter). Each is decoded once. A direct-mapped table
        // re-decoded two such blocks on every pass, a two-way table three: an idle Linux guest had both.
        int[] at = new int[4]; // in conventional memory (below the VGA window)
        at[0] = 0x1000;
        for (int i = 1; i < 4; i++)
            at[i] = Enumerable.Range(at[i - 1] + 0x10, 0x9F000 - at[i - 1]).First(x => CpuCore.BlockTableSet(x) == CpuCore.BlockTableSet(at[0]));
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        byte[] inc = { 0x43, 0x41, 0x46, 0x47 }; // inc bx, inc cx, inc si, inc di
        for (int i = 0; i < 4; i++)
        {
            int next = at[(i + 1) % 4];
            mem.WriteBytes((uint)at[i], new byte[] { inc[i], 0xEA, (byte)(next & 0xF), 0x00, (byte)(next >> 4), (byte)(next >> 12) }); // inc r; jmp far next
        }
        var cpu = new CpuCore(mem, new IoBus());
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = (uint)at[0];
        cpu.Esp = 0x8000;

        Assert.Equal(8000, cpu.Run(8000));
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        Assert.Equal(1000u, cpu.Ecx & 0xFFFF);
        Assert.Equal(1000u, cpu.Esi & 0xFFFF);
        Assert.Equal(1000u, cpu.Edi & 0xFFFF);
        Assert.InRange(cpu.BlocksCompiled, 4, 8);
    }

    [Fact]
    public void InstructionCountAndRunBudgetAreExact()
    {
        var (cpu, _) = LoopMachine();
        // Budgets that end in the middle of a block stop exactly there.
        Assert.Equal(7, cpu.Run(7));
        Assert.Equal(7, cpu.InstructionCount);
        Assert.Equal(0x1003u, cpu.Eip); // mov, inc, jmp, mov, inc, jmp, mov: next is inc
        Assert.Equal(2u, cpu.Ebx & 0xFFFF);
        Assert.Equal(1, cpu.Run(1));
        Assert.Equal(3u, cpu.Ebx & 0xFFFF);
        Assert.Equal(0x1004u, cpu.Eip);
    }

    [Fact]
    public void DisablingTheCacheInterpretsEverything()
    {
        var (cpu, _) = LoopMachine();
        cpu.BlockCacheEnabled = false;
        cpu.Run(3000);
        Assert.Equal(0, cpu.BlocksCompiled);
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
    }
}

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
    public void TwoBlocksOfOneTableSlotStayDecoded()
    {
        // Two real-mode blocks whose code lands in the same slot of the block table, jumping to each other with far
        // jumps (a segment load ends a block in the interpreter, so every block is looked up in the table). Each is
        // decoded once; a direct-mapped table re-decoded both on every pass, as an idle Linux guest's colliding blocks were.
        const int a = 0x1000;
        int b = Enumerable.Range(0x2000, 0xE0000).First(x => CpuCore.BlockTableSlot(x) == CpuCore.BlockTableSlot(a));
        var mem = new PhysicalMemory(2 * 1024 * 1024);
        mem.WriteBytes(a, new byte[] { 0x43, 0xEA, (byte)(b & 0xF), 0x00, (byte)(b >> 4), (byte)(b >> 12) }); // inc bx; jmp far b
        mem.WriteBytes((uint)b, new byte[] { 0x41, 0xEA, 0x00, 0x10, 0x00, 0x00 });                                // inc cx; jmp far 0000:1000
        var cpu = new CpuCore(mem, new IoBus());
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.CS, 0);
        cpu.SetSegmentReal(Emulator.Cpu.SegmentRegister.SS, 0);
        cpu.Eip = a;
        cpu.Esp = 0x8000;

        Assert.Equal(4000, cpu.Run(4000));
        Assert.Equal(1000u, cpu.Ebx & 0xFFFF);
        Assert.Equal(1000u, cpu.Ecx & 0xFFFF);
        Assert.InRange(cpu.BlocksCompiled, 2, 4);
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

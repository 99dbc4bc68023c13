using VmPortal.Emulator.Cpu;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using CpuCore = VmPortal.Emulator.Cpu.Cpu;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// Guest garbage never becomes a host exception: random bytes executed in real mode and in 32-bit protected mode
/// (with random IDT contents) only ever produce guest exceptions, halts or a triple fault — never an
/// "emulator error" shutdown. And a triple fault is reported as a shutdown with its reason.
/// </summary>
public sealed class CpuRobustnessTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, true)]
    public void RandomBytesNeverCrashTheHost(int seed, bool protectedMode)
    {
        var rng = new Random(seed);
        for (int round = 0; round < 40; round++)
        {
            var mem = new PhysicalMemory(4 * 1024 * 1024);
            var garbage = new byte[1024 * 1024];
            rng.NextBytes(garbage);
            mem.WriteBytes(0, garbage);
            var cpu = new CpuCore(mem, new IoBus());
            cpu.Eip = 0x1000 + (uint)rng.Next(0xE000);
            cpu.SetSegmentReal(SegmentRegister.CS, 0);
            cpu.Esp = (uint)rng.Next();
            if (protectedMode)
            {
                // Enter protected mode with random descriptor tables: LGDT/LIDT from random memory, set CR0.PE.
                byte[] prog = { 0x0F, 0x01, 0x16, 0x00, 0x05, 0x0F, 0x01, 0x1E, 0x08, 0x05, 0x0F, 0x20, 0xC0, 0x0C, 0x01, 0x0F, 0x22, 0xC0 };
                uint at = cpu.Eip;
                mem.WriteBytes(at, prog);
                mem.WriteBytes(0x500, new byte[] { 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x00 }); // GDT: base 10000h, 64K of garbage
                mem.WriteBytes(0x508, new byte[] { 0xFF, 0x07, 0x00, 0x00, 0x02, 0x00 }); // IDT: base 20000h
                cpu.SetSegmentReal(SegmentRegister.DS, 0);
            }
            for (int slice = 0; slice < 50 && !cpu.ShutdownPending; slice++)
            {
                cpu.Run(10_000);
                if (cpu.Halted) cpu.RaiseNmi(); // keep going through HLTs
            }
            if (cpu.ShutdownPending)
                Assert.DoesNotContain("emulator error", cpu.ShutdownReason ?? "");
        }
    }

    [Fact]
    public void TripleFaultIsReportedAsShutdown()
    {
        var mem = new PhysicalMemory(1024 * 1024);
        var cpu = new CpuCore(mem, new IoBus());
        // LIDT with limit 0, then INT3: #GP (vector beyond limit) -> #DF -> #GP again -> triple fault.
        byte[] prog = { 0x0F, 0x01, 0x1E, 0x00, 0x05, 0xCC, 0xF4 };
        mem.WriteBytes(0x1000, prog);
        mem.WriteBytes(0x500, new byte[] { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 });
        cpu.SetSegmentReal(SegmentRegister.CS, 0);
        cpu.SetSegmentReal(SegmentRegister.DS, 0);
        cpu.Eip = 0x1000;
        cpu.Run(100);
        Assert.True(cpu.ShutdownPending);
        Assert.Contains("triple fault", cpu.ShutdownReason);
        Assert.Equal(0, cpu.Run(100));
        cpu.Reset();
        Assert.False(cpu.ShutdownPending);
        Assert.Equal(0xFFF0u, cpu.Eip);
    }
}

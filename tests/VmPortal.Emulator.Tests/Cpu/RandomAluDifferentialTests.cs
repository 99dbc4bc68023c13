using System.Text;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// Generated instruction sequences (seeded, so a failure reproduces): random ALU, shift, rotate, bit, BCD-free
/// data-movement, SETcc and CMOVcc instructions on random 8/16/32-bit register operands and immediates. After every
/// instruction the program prints the six general registers and the defined arithmetic flags (OF SF ZF PF CF; AF is
/// left out because it is undefined after the logic instructions), then restores the flags so carries chain into the
/// next ADC/SBB/RCL. Our CPU must print exactly what qemu-system-i386 (TCG) prints.
/// </summary>
public sealed class RandomAluDifferentialTests
{
    private static readonly string[] R32 = { "eax", "ebx", "ecx", "edx", "esi", "edi" };
    private static readonly string[] R16 = { "ax", "bx", "cx", "dx", "si", "di" };
    private static readonly string[] R8 = { "al", "bl", "cl", "dl", "ah", "bh", "ch", "dh" };
    private static readonly string[] Alu = { "add", "sub", "adc", "sbb", "and", "or", "xor", "cmp", "test" };
    private static readonly string[] Shift1 = { "shl", "shr", "sar", "rol", "ror", "rcl", "rcr" };
    private static readonly string[] Cc = { "o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g" };

    public static IEnumerable<object[]> Seeds() => Enumerable.Range(1, 4).Select(i => new object[] { i });

    internal static string Generate(int seed, int count)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder();
        sb.AppendLine("%include \"rom.inc\"");
        sb.AppendLine("real_main:");
        sb.AppendLine("    ENTER_PM32 main32");
        sb.AppendLine("bits 32");
        sb.AppendLine("main32:");
        foreach (var r in R32) sb.AppendLine($"    mov {r}, 0x{(uint)rng.NextInt64(0, 1L << 32):X8}");
        sb.AppendLine("    push dword 0x002");
        sb.AppendLine("    popfd");
        for (int i = 0; i < count; i++)
        {
            sb.AppendLine("    " + RandomInstruction(rng));
            sb.AppendLine("    pushfd");
            sb.AppendLine("    pop dword [0x20F00]");
            sb.AppendLine("    push dword [0x20F00]");
            sb.AppendLine("    and dword [0x20F00], 0x8C5");
            foreach (var r in R32) sb.AppendLine($"    PUT '{r[1]}', {r}");
            sb.AppendLine("    PUT 'f', [0x20F00]");
            sb.AppendLine("    popfd");
        }
        sb.AppendLine("    EXIT32");
        sb.AppendLine("%include \"rom_end.inc\"");
        return sb.ToString();
    }

    private static string RandomInstruction(Random rng)
    {
        T Pick<T>(T[] a) => a[rng.Next(a.Length)];
        int size = rng.Next(3);
        string[] regs = size == 0 ? R8 : size == 1 ? R16 : R32;
        string a = Pick(regs), b = Pick(regs);
        string imm = size == 0 ? $"0x{rng.Next(256):X2}" : size == 1 ? $"0x{rng.Next(65536):X4}" : $"0x{(uint)rng.NextInt64(0, 1L << 32):X8}";
        switch (rng.Next(12))
        {
            case 0: case 1: return $"{Pick(Alu)} {a}, {b}";
            case 2: case 3: return $"{Pick(Alu)} {a}, {imm}";
            case 4: return $"{Pick(new[] { "inc", "dec", "neg", "not" })} {a}";
            case 5: return $"{Pick(Shift1)} {a}, 1";
            case 6: return size == 0 ? $"set{Pick(Cc)} {a}" : $"cmov{Pick(Cc)} {a}, {b}";
            case 7: return size == 2 ? $"bswap {a}" : $"xchg {a}, {b}";
            case 8: return size == 0 ? $"movzx {Pick(R32)}, {a}" : $"movsx {Pick(R32)}, {Pick(R8)}";
            case 9: return size == 0 ? $"mov {a}, {imm}" : $"bt {a}, {rng.Next(size == 1 ? 16 : 32)}";
            case 10: return size == 0 ? "stc" : $"{Pick(new[] { "bts", "btr", "btc" })} {a}, {rng.Next(size == 1 ? 16 : 32)}";
            default: return Pick(new[] { "clc", "cmc", "stc" });
        }
    }

    [QemuTheory]
    [MemberData(nameof(Seeds))]
    public void GeneratedSequenceMatchesQemu(int seed)
    {
        string source = Generate(seed, 150);
        var rom = AsmProgram.Assemble(source, $"random-alu-{seed}");
        var ours = AsmProgram.RunOurs(rom);
        Assert.True(ours.Exited, "our run did not finish:\n" + ours.Output);
        var qemu = (AsmProgram.RunQemu(rom, $"random-alu-{seed}") ?? "").Split('\n');
        var mine = ours.Output.Split('\n').Where(l => !l.StartsWith('~')).ToArray();
        Assert.True(qemu.Length > 100, "QEMU printed too little: " + string.Join("\n", qemu.Take(5)));
        for (int i = 0; i < Math.Max(qemu.Length, mine.Length); i++)
        {
            string q = i < qemu.Length ? qemu[i] : "(none)", o = i < mine.Length ? mine[i] : "(none)";
            if (q != o)
            {
                // Name the instruction that produced the first difference (7 lines per instruction).
                var lines = source.Split('\n');
                var instrs = lines.Where((l, k) => k + 1 < lines.Length && lines[k + 1] == "    pushfd").ToList();
                var instr = instrs.ElementAtOrDefault(i / 7);
                Assert.Fail($"seed {seed}: line {i + 1} differs: qemu '{q}' ours '{o}' after '{instr?.Trim()}'");
            }
        }
    }
}

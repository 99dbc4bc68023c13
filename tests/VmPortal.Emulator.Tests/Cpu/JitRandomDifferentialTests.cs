using System.Text;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// Random-program differential for the JIT tier: seeded generated programs (ALU with every flag, ADC/SBB chains,
/// shifts and rotates (also SHL/SHR/SAR by CL with counts 0, 1-31, past an 8/16-bit width), INC/DEC/NEG/NOT, MOV/LEA/MOVZX/MOVSX/XCHG, SETcc/CMOVcc, IMUL/MUL, DIV (also overflowing: #DE,
/// whose handler mixes the state it sees into the checksum and steps over the DIV), PUSH/POP, REP STOSB, MOVS/CMPS/
/// STOS/LODS/SCAS of every size (single, REP, REPE, REPNE, either direction, segment overrides), forward
/// Jcc, JMP through a register or memory, counted loops that jump back to their own start, loads and stores of 1/2/4 bytes also across page
/// boundaries) run from RAM with paging on. Between instructions the program sometimes marks one data page not
/// present, so a later load or store faults (#PF) in the middle of a compiled block; the handler makes it present
/// again and IRETs, so the faulting instruction restarts with the EFLAGS pushed at the fault: registers, flags and
/// the retired count at the fault must be exactly the interpreter's (the handler mixes the registers, EIP and EFLAGS
/// it sees at each fault into a checksum that is compared too). Functions in the body are called twice, so CALL and
/// RET run inside compiled regions. Some programs also store into their own code
/// (the immediate of an instruction further on). Each program runs under the interpreter alone, with every block
/// compiled (threshold 0), with a threshold of 2 (blocks switch tiers mid-run; also with regions of up to 256
/// instructions, Cpu.JitRegionMaxOps, and at threshold 0 with such regions) and with a threshold of 2 on the
/// background compiler (blocks switch tiers whenever that thread delivers); final registers, EFLAGS, EIP,
/// instruction count, output, data memory and code memory must be equal.
/// </summary>
public sealed class JitRandomDifferentialTests
{
    private static readonly string[] R32 = { "eax", "ebx", "ecx", "edx", "edi" };
    private static readonly string[] R16 = { "ax", "bx", "cx", "dx", "di" };
    private static readonly string[] R8 = { "al", "bl", "cl", "dl", "ah", "bh", "ch", "dh" };
    private static readonly string[] Src32 = { "eax", "ebx", "ecx", "edx", "edi", "esi", "ebp" };
    private static readonly string[] Alu = { "add", "sub", "adc", "sbb", "and", "or", "xor", "cmp" };
    private static readonly string[] Shifts = { "shl", "shr", "sar", "rol", "ror", "rcl", "rcr" };
    private static readonly string[] Cc = { "o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g" };

    private const uint DataBase = 0x4F000, DataEnd = 0x52000, ToggledPage = 0x50000, CodeBase = 0x60000;

    public static IEnumerable<object[]> Seeds() => Enumerable.Range(1, 10).Select(i => new object[] { i });

    internal static string Generate(int seed, int count)
    {
        var rng = new Random(seed * 7919);
        var sb = new StringBuilder();
        sb.AppendLine("%include \"rom.inc\"");
        sb.AppendLine("real_main:");
        sb.AppendLine("    ENTER_PM32 main32");
        sb.AppendLine("bits 32");
        sb.AppendLine("main32:");
        sb.AppendLine("    SET_GATE 14, pf_handler, 0x8E, 0x08");
        sb.AppendLine("    SET_GATE 0, de_handler, 0x8E, 0x08");
        // Identity-map 0-4 MiB (PD 10000h, PT 11000h), paging on.
        sb.AppendLine("    mov edi, 0x11000\n    mov eax, 0x003\n    mov ecx, 1024\n.fill:\n    mov [edi], eax\n    add eax, 0x1000\n    add edi, 4\n    loop .fill");
        sb.AppendLine("    mov dword [0x10000], 0x11003\n    mov eax, 0x10000\n    mov cr3, eax\n    mov eax, cr0\n    or eax, 0x80000000\n    mov cr0, eax");
        // Pseudo-random data, then the body copied to RAM.
        sb.AppendLine($"    mov edi, 0x{DataBase:X}\n    mov ecx, 0x{(DataEnd - DataBase) / 4:X}\n    mov eax, 0x{(uint)rng.NextInt64(0, 1L << 32):X8}");
        sb.AppendLine(".data:\n    mov [edi], eax\n    imul eax, eax, 1103515245\n    add eax, 12345\n    add edi, 4\n    loop .data");
        sb.AppendLine($"    mov esi, body + 0xF0000\n    mov edi, 0x{CodeBase:X}\n    mov ecx, body_end - body\n    cld\n    rep movsb");
        sb.AppendLine($"    mov dword [0x20F08], 0x{unchecked(CodeBase - 0xF0000u):X8}"); // CS base is F0000
        foreach (var r in R32) sb.AppendLine($"    mov {r}, 0x{(uint)rng.NextInt64(0, 1L << 32):X8}");
        sb.AppendLine($"    mov esi, 0x{(uint)rng.NextInt64(0, 1L << 32):X8}");
        sb.AppendLine($"    mov ebp, 0x{DataBase + 0x800:X}");
        sb.AppendLine("    push dword 0x002\n    popfd");
        sb.AppendLine("    call [0x20F08]");
        sb.AppendLine("    pushfd\n    pop dword [0x20F00]");
        foreach (var (n, r) in new[] { ("a", "eax"), ("b", "ebx"), ("c", "ecx"), ("d", "edx"), ("S", "esi"), ("D", "edi"), ("p", "ebp"), ("s", "esp") })
            sb.AppendLine($"    PUT '{n}', {r}");
        sb.AppendLine("    PUT 'f', [0x20F00]");
        sb.AppendLine("    PUT 'n', [0x20F04]");
        sb.AppendLine("    PUT 'h', [0x20F10]");
        sb.AppendLine("    EXIT32");
        sb.AppendLine("pf_handler:");
        // Mix the state at the fault into a checksum: the eight registers (PUSHAD), the error code, EIP, CS and EFLAGS
        // pushed by the fault — what compiled code holding registers and flags in locals must hand over exactly.
        sb.AppendLine("    pushad\n    lea esi, [esp]\n    mov ecx, 12\n.mix:\n    mov eax, [0x20F10]\n    rol eax, 5\n    xor eax, [esi]\n    mov [0x20F10], eax\n    add esi, 4\n    loop .mix\n    popad");
        sb.AppendLine($"    or dword [0x11000 + 0x{ToggledPage >> 12:X}*4], 1\n    invlpg [0x{ToggledPage:X}]\n    inc dword [0x20F04]\n    add esp, 4\n    iret");
        // #DE (a DIV that overflows): mix the eight registers, EIP, CS, EFLAGS at the fault, step over the 2-byte DIV r32.
        sb.AppendLine("de_handler:");
        sb.AppendLine("    pushad\n    lea esi, [esp]\n    mov ecx, 11\n.mixd:\n    mov eax, [0x20F10]\n    rol eax, 7\n    xor eax, [esi]\n    mov [0x20F10], eax\n    add esi, 4\n    loop .mixd\n    popad");
        sb.AppendLine("    add dword [esp], 2\n    iret");
        sb.AppendLine("body:");
        int label = 0;
        for (int i = 0; i < count; i++)
        {
            int kind = rng.Next(40);
            if (kind == 0)
            {
                // Counted loop: a block that jumps back to its own start.
                sb.AppendLine($"    mov esi, {rng.Next(1, 7)}");
                sb.AppendLine($".L{label}:");
                int k = rng.Next(1, 6);
                for (int j = 0; j < k; j++) sb.AppendLine("    " + Instruction(rng));
                sb.AppendLine("    dec esi");
                sb.AppendLine($"    jnz .L{label}");
                label++;
            }
            else if (kind == 1)
            {
                sb.AppendLine($"    j{Cc[rng.Next(Cc.Length)]} .F{label}");
                int k = rng.Next(1, 4);
                for (int j = 0; j < k; j++) sb.AppendLine("    " + Instruction(rng));
                sb.AppendLine($".F{label}:");
                label++;
            }
            else if (kind == 2)
            {
                // The data page at ToggledPage becomes not present: the next access to it faults.
                sb.AppendLine($"    and dword [0x11000 + 0x{ToggledPage >> 12:X}*4], 0xFFFFFFFE");
                sb.AppendLine($"    invlpg [0x{ToggledPage:X}]");
            }
            else if (kind == 4)
            {
                // A function in the same page and its call: CALL/RET inside a compiled region (the return site).
                sb.AppendLine($"    jmp .A{label}");
                sb.AppendLine($".C{label}:");
                int k = rng.Next(1, 5);
                for (int j = 0; j < k; j++) sb.AppendLine("    " + Instruction(rng));
                sb.AppendLine("    ret");
                sb.AppendLine($".A{label}:");
                sb.AppendLine($"    call .C{label}");
                if (rng.Next(2) == 0) sb.AppendLine($"    j{Cc[rng.Next(Cc.Length)]} .A{label}x\n    {Instruction(rng)}\n.A{label}x:");
                sb.AppendLine($"    call .C{label}");
                label++;
            }
            else if (kind == 5)
            {
                // JMP r/m32 over a few instructions: through a register, or through a memory slot near EBP (an offset
                // in CS, whose base is F0000).
                string target = $"0x{unchecked(CodeBase - 0xF0000u):X8} + .J{label} - body";
                if (rng.Next(2) == 0) sb.AppendLine($"    mov edx, {target}\n    jmp edx");
                else
                {
                    string slot = $"[ebp + 0x{rng.Next(0x100, 0x1700):X}]";
                    sb.AppendLine($"    mov dword {slot}, {target}\n    jmp {slot}");
                }
                int k = rng.Next(1, 3);
                for (int j = 0; j < k; j++) sb.AppendLine("    " + Instruction(rng));
                sb.AppendLine($".J{label}:");
                label++;
            }
            else if (kind == 3)
            {
                // Self-modifying code: a store into the immediate of an instruction a few lines on.
                sb.AppendLine($"    mov dword [0x{CodeBase:X} + .S{label} + 1 - body], 0x{(uint)rng.NextInt64(0, 1L << 32):X8}");
                int k = rng.Next(0, 3);
                for (int j = 0; j < k; j++) sb.AppendLine("    " + Instruction(rng));
                sb.AppendLine($".S{label}:\n    mov {R32[rng.Next(R32.Length)]}, 0x11111111");
                label++;
            }
            else sb.AppendLine("    " + Instruction(rng));
        }
        sb.AppendLine("    ret");
        sb.AppendLine("body_end:");
        sb.AppendLine("%include \"rom_end.inc\"");
        return sb.ToString();
    }

    /// <summary>A data address: mostly around EBP, sometimes straddling a page boundary or absolute.</summary>
    private static string Mem(Random rng, string size)
    {
        uint addr;
        switch (rng.Next(6))
        {
            case 0: addr = (uint)(0x50000 - rng.Next(1, 4)); break;          // crosses into the toggled page
            case 1: addr = (uint)(0x51000 - rng.Next(1, 4)); break;          // crosses out of it
            case 2: return $"{size} [0x{(uint)rng.Next((int)DataBase, (int)DataEnd - 4):X}]";
            default: addr = (uint)rng.Next((int)DataBase, (int)DataEnd - 4); break;
        }
        int disp = (int)addr - (int)(DataBase + 0x800);
        return $"{size} [ebp {(disp < 0 ? "-" : "+")} 0x{Math.Abs(disp):X}]";
    }

    private static string Instruction(Random rng)
    {
        T Pick<T>(T[] a) => a[rng.Next(a.Length)];
        int size = rng.Next(4) switch { 0 => 0, 1 => 1, _ => 2 };
        string[] regs = size == 0 ? R8 : size == 1 ? R16 : R32;
        string sz = size == 0 ? "byte" : size == 1 ? "word" : "dword";
        string a = Pick(regs), b = Pick(regs);
        string imm = size == 0 ? $"0x{rng.Next(256):X2}" : size == 1 ? $"0x{rng.Next(65536):X4}" : $"0x{(uint)rng.NextInt64(0, 1L << 32):X8}";
        string m = Mem(rng, sz);
        switch (rng.Next(23))
        {
            case 0: case 1: return $"{Pick(Alu)} {a}, {b}";
            case 2: return $"{Pick(Alu)} {a}, {imm}";
            case 3: return $"{Pick(Alu)} {a}, {m}";
            case 4: return $"{Pick(Alu)} {m}, {a}";
            case 5: return $"{Pick(Alu)} {m}, {imm}";
            case 6: return rng.Next(3) switch { 0 => $"test {a}, {b}", 1 => $"test {m}, {a}", _ => $"test {a}, {imm}" };
            case 7: return $"{Pick(new[] { "inc", "dec", "neg", "not" })} {(rng.Next(2) == 0 ? a : m)}";
            case 8:
            {
                string dst = rng.Next(3) == 0 ? m : a;
                return rng.Next(3) switch { 0 => $"{Pick(Shifts)} {dst}, 1", 1 => $"{Pick(Shifts)} {dst}, cl", _ => $"{Pick(Shifts)} {dst}, {rng.Next(32)}" };
            }
            case 9: return rng.Next(4) switch { 0 => $"mov {a}, {m}", 1 => $"mov {m}, {a}", 2 => $"mov {a}, {imm}", _ => $"mov {m}, {imm}" };
            case 10: case 11: return $"mov {a}, {b}";
            case 12: return $"lea {Pick(R32)}, [{Pick(Src32)} + {Pick(Src32)}*{1 << rng.Next(4)} + 0x{rng.Next(1 << 20):X}]";
            case 13:
                return rng.Next(4) switch
                {
                    0 => $"movzx {Pick(R32)}, {Mem(rng, "byte")}",
                    1 => $"movsx {Pick(R32)}, {Mem(rng, "word")}",
                    2 => $"movzx {Pick(R32)}, {Pick(R8)}",
                    _ => $"movsx {Pick(R32)}, {Pick(R16)}",
                };
            case 14:
                return rng.Next(3) switch
                {
                    0 => $"push {Pick(Src32)}\n    pop {Pick(R32)}",
                    1 => $"push {Mem(rng, "dword")}\n    {Pick(Alu)} {Pick(R32)}, {Pick(R32)}\n    pop {Pick(R32)}",
                    _ => $"push 0x{rng.Next():X}\n    pop {Mem(rng, "dword")}",
                };
            case 15: return rng.Next(2) == 0 ? $"set{Pick(Cc)} {(rng.Next(2) == 0 ? Pick(R8) : Mem(rng, "byte"))}" : $"cmov{Pick(Cc)} {Pick(R32)}, {(rng.Next(2) == 0 ? Pick(R32) : Mem(rng, "dword"))}";
            case 16:
            {
                int v = rng.Next(7);
                if (v == 6)
                {
                    // SHL/SHR/SAR of a register by CL with chosen counts: 0 (flags unchanged), 1, up to 31, at or past
                    // an 8/16-bit operand's width, and with bits above the 5-bit mask (0x21 = 1)
                    string r = size == 0 ? Pick(R8.Where(x => x != "cl").ToArray()) : size == 1 ? Pick(R16) : Pick(R32);
                    int n = Pick(new[] { 0, 0, 1, 1, 2, 5, 7, 8, 9, 15, 16, 17, 24, 31, 0x20, 0x21, 0xFF });
                    return $"mov cl, 0x{n:X}\n    {Pick(new[] { "shl", "shr", "sar" })} {r}, cl";
                }
                if (v == 3)
                {
                    // DIV r32 that fits (EDX < divisor)
                    string d = Pick(new[] { "eax", "ebx", "ecx", "edi" });
                    return $"and edx, 0xFF\n    or {d}, 0x100\n    div {d}";
                }
                return v switch
                {
                    0 => $"imul {Pick(R32)}, {Mem(rng, "dword")}, {rng.Next(-1000, 1000)}",
                    1 => $"mul {(size == 0 ? Pick(R8) : Pick(R32))}",
                    2 => $"{Pick(new[] { "mul", "imul" })} {(rng.Next(2) == 0 ? Pick(R32) : Mem(rng, "dword"))}",
                    // any DIV r32: the random EDX:EAX mostly overflows, a #DE the de_handler checks and steps over
                    4 => $"div {Pick(R32)}",
                    _ => $"{Pick(new[] { "shl", "shr", "sar" })} {(size == 0 ? Pick(R8) : Pick(R16))}, {rng.Next(1, 20)}",
                };
            }
            case 17: return rng.Next(2) == 0 ? $"xchg {a}, {b}" : $"xchg {m}, {a}";
            case 18: return $"pushfd\n    pop {Pick(R32)}";
            case 19: return Pick(new[] { "clc", "stc", "cmc" });
            case 20: return $"lea edi, [ebp + 0x{rng.Next(0, 0x2000):X}]\n    mov ecx, {rng.Next(0, 40)}\n    rep stosb";
            case 21:
            {
                // A string instruction of any size on the data area (through the toggled page too): single, REP, REPE or
                // REPNE, upwards or downwards, sometimes with an (flat) segment override on the source. ESI is kept (it
                // counts the generated loops); where the source ended up goes into EDX.
                string op = Pick(new[] { "movs", "cmps", "stos", "lods", "scas" });
                string rep = op is "cmps" or "scas" ? Pick(new[] { "", "repe ", "repne " }) : Pick(new[] { "", "rep " });
                string seg = op is "movs" or "cmps" or "lods" && rng.Next(3) == 0 ? Pick(new[] { "es ", "ss " }) : "";
                return $"push esi\n    lea esi, [ebp + 0x{rng.Next(0x100, 0x1700):X}]\n    lea edi, [ebp + 0x{rng.Next(0x100, 0x1700):X}]\n" +
                       $"    mov ecx, {rng.Next(0, 24)}\n    {(rng.Next(3) == 0 ? "std" : "cld")}\n    {seg}{rep}{op}{"bwd"[size]}\n    cld\n    mov edx, esi\n    pop esi";
            }
            default: return $"cmp {a}, {(rng.Next(2) == 0 ? imm : m)}";
        }
    }

    [NasmTheory]
    [MemberData(nameof(Seeds))]
    public void JitMatchesTheInterpreter(int seed)
    {
        string source = Generate(seed, 900);
        var rom = AsmProgram.Assemble(source, $"jit-random-{seed}");
        var interpreted = AsmProgram.RunOurs(rom, blockCache: false);
        Assert.True(interpreted.Exited, "interpreter run did not finish:\n" + interpreted.Output);
        Assert.DoesNotContain("~exception 13", interpreted.Output);
        foreach (var (threshold, background, region) in new[] { (0, false, 0), (0, false, 12), (0, false, 256), (2, false, 0), (2, false, 256), (2, true, 0) })
        {
            var jit = AsmProgram.RunOurs(rom, jit: true, jitThreshold: threshold, jitBackground: background, jitRegionOps: region);
            JitTests.AssertSameState(interpreted, jit);
            for (uint a = DataBase; a < DataEnd; a += 4)
                if (interpreted.Memory.Read32(a) != jit.Memory.Read32(a))
                    Assert.Fail($"seed {seed}, threshold {threshold}: data differs at {a:X}: interpreter {interpreted.Memory.Read32(a):X8}, JIT {jit.Memory.Read32(a):X8}");
            for (uint a = CodeBase; a < CodeBase + 0x4000; a += 4)
                Assert.Equal(interpreted.Memory.Read32(a), jit.Memory.Read32(a));
            for (uint a = 0x8F000; a < 0x90000; a += 4)
                Assert.Equal(interpreted.Memory.Read32(a), jit.Memory.Read32(a));
            // In the background run, how much runs compiled depends on the compiler thread (on a busy host: little).
            if (!background)
                Assert.True(jit.Cpu.JitInstructions > jit.Instructions / 4, $"only {jit.Cpu.JitInstructions} of {jit.Instructions} instructions ran compiled");
        }
    }

    /// <summary>The generated programs really fault and really modify their code (the differential covers both).</summary>
    [NasmTheory]
    [InlineData(1, 2, 3)]
    public void GeneratedProgramsFaultAndModifyTheirCode(params int[] seeds)
    {
        int faults = 0;
        foreach (int seed in seeds)
        {
            var r = AsmProgram.RunOurs(AsmProgram.Assemble(Generate(seed, 900), $"jit-random-{seed}"), jit: false);
            var line = r.Output.Split('\n').First(l => l.StartsWith("n=", StringComparison.Ordinal));
            faults += Convert.ToInt32(line[2..], 16);
            Assert.True(r.Cpu.CodePageInvalidations > 0);
        }
        Assert.True(faults > 5, $"only {faults} page faults");
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using VmPortal.Emulator.Cpu.Fpu;
using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Fpu;

/// <summary>
/// Replays vectors recorded on real silicon (HardwareVectors/x87vectors.c, run on the development host's x87:
/// AMD EPYC) through X87.Execute: same control word, same operands, same instruction bytes; the status word and
/// the resulting stack/memory must match bit for bit for every exactly specified instruction. Transcendentals
/// (where silicon is only faithful, not correctly rounded) must agree within 1 ulp, flags included.
/// </summary>
public class FpuHardwareVectorTests(ITestOutputHelper output)
{
    private sealed record Vector(string Op, int Cw, Float80 A, Float80 B, int Sw, Float80 R0, Float80 R1, ulong Mem);

    private static string VectorFile(string name = "x87-vectors.txt", [CallerFilePath] string source = "")
    {
        string local = Path.Combine(Path.GetDirectoryName(source) ?? ".", "HardwareVectors", name);
        if (File.Exists(local)) return local;
        for (string? dir = AppContext.BaseDirectory; dir != null; dir = Path.GetDirectoryName(dir))
        {
            string candidate = Path.Combine(dir, "tests", "VmPortal.Emulator.Tests", "Fpu", "HardwareVectors", name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(name + " not found");
    }

    private static Float80 Parse80(string s) =>
        new(ushort.Parse(s[..4], NumberStyles.HexNumber), ulong.Parse(s[4..], NumberStyles.HexNumber));

    private static List<Vector> Load()
    {
        var list = new List<Vector>();
        foreach (string line in File.ReadLines(VectorFile()))
        {
            string[] p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length != 9 || p[4] != "->") continue;
            list.Add(new Vector(p[0], int.Parse(p[1], NumberStyles.HexNumber), Parse80(p[2]), Parse80(p[3]),
                int.Parse(p[5], NumberStyles.HexNumber), Parse80(p[6]), Parse80(p[7]), ulong.Parse(p[8], NumberStyles.HexNumber)));
        }
        return list;
    }

    private static readonly Dictionary<string, (byte Op, byte Modrm, bool Memory)> Encodings = new()
    {
        ["fadd"] = (0xD8, 0xC1, false), ["fsub"] = (0xD8, 0xE1, false), ["fsubr"] = (0xD8, 0xE9, false),
        ["fmul"] = (0xD8, 0xC9, false), ["fdiv"] = (0xD8, 0xF1, false), ["fdivr"] = (0xD8, 0xF9, false),
        ["fsqrt"] = (0xD9, 0xFA, false), ["fprem"] = (0xD9, 0xF8, false), ["fprem1"] = (0xD9, 0xF5, false),
        ["fscale"] = (0xD9, 0xFD, false), ["frndint"] = (0xD9, 0xFC, false), ["fxtract"] = (0xD9, 0xF4, false),
        ["fcom"] = (0xD8, 0xD1, false), ["fucom"] = (0xDD, 0xE1, false), ["fxam"] = (0xD9, 0xE5, false),
        ["ftst"] = (0xD9, 0xE4, false), ["fsin"] = (0xD9, 0xFE, false), ["fcos"] = (0xD9, 0xFF, false),
        ["fptan"] = (0xD9, 0xF2, false), ["fpatan"] = (0xD9, 0xF3, false), ["f2xm1"] = (0xD9, 0xF0, false),
        ["fyl2x"] = (0xD9, 0xF1, false), ["fyl2xp1"] = (0xD9, 0xF9, false), ["fsincos"] = (0xD9, 0xFB, false),
        ["fchs"] = (0xD9, 0xE0, false),
        ["fst32"] = (0xD9, 0x10, true), ["fst64"] = (0xDD, 0x10, true), ["fist16"] = (0xDF, 0x10, true),
        ["fist32"] = (0xDB, 0x10, true), ["fist64"] = (0xDF, 0x38, true), ["fbstp"] = (0xDF, 0x30, true),
    };

    private static readonly HashSet<string> Transcendental =
        ["fsin", "fcos", "fptan", "fpatan", "f2xm1", "fyl2x", "fyl2xp1", "fsincos"];

    // Condition codes that the SDM defines for each instruction (others are "undefined" and not compared).
    private static int DefinedBits(string op) => op switch
    {
        "fcom" or "fucom" or "ftst" or "fxam" or "fprem" or "fprem1" => 0xFFFF & ~(FpuStatus.ErrorSummary | FpuStatus.Busy),
        "fsin" or "fcos" or "fptan" or "fsincos" => FpuStatus.TopMask | FpuStatus.C2 | 0x7F,
        _ => FpuStatus.TopMask | FpuStatus.C1 | 0x7F,
    };

    private static (int Sw, Float80 R0, Float80 R1, ulong Mem) Replay(Vector v)
    {
        var h = new FpuHarness();
        h.SetControlWord(v.Cw);
        h.Load(v.B);
        h.Load(v.A);
        var (op, modrm, memory) = Encodings[v.Op];
        FpuResult r = h.Exec(op, modrm);
        Assert.Equal(FpuResult.Ok, r);
        ulong mem = 0;
        ushort bcdHigh = 0;
        if (memory)
        {
            int size = X87.Classify(op, modrm, true).Size;
            mem = size switch
            {
                2 => BinaryPrimitives.ReadUInt16LittleEndian(h.Out),
                4 => BinaryPrimitives.ReadUInt32LittleEndian(h.Out),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(h.Out),
            };
            if (size == 10) bcdHigh = BinaryPrimitives.ReadUInt16LittleEndian(h.Out.AsSpan(8));
        }
        int sw = h.Sw;
        Float80 r0 = h.Pop(), r1 = h.Pop();
        if (v.Op == "fbstp") r1 = new Float80(bcdHigh, r1.Significand);
        return (sw, r0, r1, mem);
    }

    [Fact]
    public void ExactInstructionsMatchSiliconBitForBit()
    {
        List<Vector> vectors = Load();
        Assert.True(vectors.Count > 4000);
        var failures = new List<string>();
        int compared = 0;
        foreach (Vector v in vectors)
        {
            if (Transcendental.Contains(v.Op)) continue;
            var (sw, r0, r1, mem) = Replay(v);
            int mask = DefinedBits(v.Op);
            compared++;
            if ((sw & mask) != (v.Sw & mask) || r0 != v.R0 || r1 != v.R1 || mem != v.Mem)
                failures.Add($"{v.Op} cw={v.Cw:X4} a={v.A} b={v.B}: hw sw={v.Sw:X4} {v.R0} {v.R1} {v.Mem:X} / ours sw={sw:X4} {r0} {r1} {mem:X}");
        }
        foreach (string f in failures.Take(40)) output.WriteLine(f);
        output.WriteLine($"{compared - failures.Count}/{compared} exact vectors match silicon");
        Assert.Empty(failures);
    }

    [Fact]
    public void TranscendentalsAreCloseToSilicon()
    {
        var failures = new List<string>();
        var worst = new Dictionary<string, double>();
        var identical = new Dictionary<string, (int Same, int Total)>();
        foreach (Vector v in Load())
        {
            if (!Transcendental.Contains(v.Op)) continue;
            var (sw, r0, r1, _) = Replay(v);
            int mask = DefinedBits(v.Op) & ~FpuStatus.Precision & ~FpuStatus.C1;
            if ((sw & mask) != (v.Sw & mask))
            {
                failures.Add($"{v.Op} cw={v.Cw:X4} a={v.A} b={v.B}: hw sw={v.Sw:X4} ours {sw:X4}");
                continue;
            }
            double u = Math.Max(Distance(r0, v.R0), Distance(r1, v.R1));
            worst[v.Op] = Math.Max(worst.GetValueOrDefault(v.Op), u);
            var (same, total) = identical.GetValueOrDefault(v.Op);
            identical[v.Op] = (same + (u == 0 ? 1 : 0), total + 1);
            if (u > 1) failures.Add($"{v.Op} cw={v.Cw:X4} a={v.A} b={v.B}: hw {v.R0} {v.R1} ours {r0} {r1} ({u} ulp)");
        }
        foreach (var (op, u) in worst.OrderBy(k => k.Key))
            output.WriteLine($"{op}: max {u} ulp from silicon, {identical[op].Same}/{identical[op].Total} bit-identical");
        foreach (var g in failures.GroupBy(f => f.Split(' ')[0]))
            foreach (string f in g.Take(6)) output.WriteLine(f);
        Assert.Empty(failures);
    }

    // ulps between two values of the same class (NaNs and specials must be identical)
    private static double Distance(Float80 a, Float80 b)
    {
        if (a == b) return 0;
        Float80Class ca = a.Classify(), cb = b.Classify();
        if (ca is not (Float80Class.Normal or Float80Class.Denormal) || cb is not (Float80Class.Normal or Float80Class.Denormal)
            || a.Sign != b.Sign)
            return double.PositiveInfinity;
        return Reference.Ulps(a, b);
    }

    // ---- unmasked exceptions: random exception masks, state captured on silicon with FNSAVE (no #MF taken)

    private static readonly Dictionary<string, (byte Op, byte Modrm)> UnmaskedEncodings = new()
    {
        ["fadd"] = (0xD8, 0xC1), ["fsub"] = (0xD8, 0xE1), ["fmul"] = (0xD8, 0xC9), ["fdiv"] = (0xD8, 0xF1),
        ["fsqrt"] = (0xD9, 0xFA), ["fscale"] = (0xD9, 0xFD), ["frndint"] = (0xD9, 0xFC), ["fxtract"] = (0xD9, 0xF4),
        ["fprem"] = (0xD9, 0xF8), ["fcom"] = (0xD8, 0xD1), ["fst32"] = (0xD9, 0x18), ["fst64"] = (0xDD, 0x18),
        ["fist16"] = (0xDF, 0x18), ["fist32"] = (0xDB, 0x18), ["fist64"] = (0xDF, 0x38), ["fbstp"] = (0xDF, 0x30),
        ["fld32"] = (0xD9, 0x00), ["fld64"] = (0xDD, 0x00), ["fsin"] = (0xD9, 0xFE), ["fyl2x"] = (0xD9, 0xF1),
        ["fpatan"] = (0xD9, 0xF3), ["f2xm1"] = (0xD9, 0xF0), ["fptan"] = (0xD9, 0xF2), ["fchs"] = (0xD9, 0xE0),
        ["fstp80"] = (0xDB, 0x38), ["fxch"] = (0xD9, 0xCA), ["fcomp"] = (0xD8, 0xD9), ["fcomi"] = (0xDB, 0xF1),
        ["fcomip"] = (0xDF, 0xF1),
    };

    [Fact]
    public void UnmaskedExceptionsMatchSilicon()
    {
        var failures = new List<string>();
        int count = 0;
        foreach (string line in File.ReadLines(VectorFile("x87-unmasked-vectors.txt")))
        {
            string[] p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length != 14 || p[5] != "->") continue;
            string opName = p[0];
            int cw = int.Parse(p[1], NumberStyles.HexNumber);
            Float80 a = Parse80(p[2]), b = Parse80(p[3]);
            ulong memIn = ulong.Parse(p[4], NumberStyles.HexNumber);
            int hwCw = int.Parse(p[6], NumberStyles.HexNumber), hwSw = int.Parse(p[7], NumberStyles.HexNumber);
            int hwTw = int.Parse(p[8], NumberStyles.HexNumber);
            Float80[] hwSt = { Parse80(p[9]), Parse80(p[10]), Parse80(p[11]) };
            ulong hwMem = ulong.Parse(p[12], NumberStyles.HexNumber);
            int hwMemHigh = int.Parse(p[13], NumberStyles.HexNumber);

            var h = new FpuHarness();
            h.SetControlWord(cw);
            h.Load(b);
            h.Load(a);
            h.Ctx.Eflags = 0x891;                                   // OF SF AF set: FCOMI must clear them
            var (op, modrm) = UnmaskedEncodings[opName];
            FpuResult r = h.Exec(op, modrm, BitConverter.GetBytes(memIn));
            // memory as the CPU would leave it: the A5 sentinel, overwritten only when the store happened
            byte[] mem = Enumerable.Repeat((byte)0xA5, 16).ToArray();
            var cls = X87.Classify(op, modrm, true);
            if (cls.Access == FpuMemoryAccess.Write && r == FpuResult.Ok) h.Out.AsSpan(0, cls.Size).CopyTo(mem);
            if (cls.Access != FpuMemoryAccess.Write) BitConverter.GetBytes(memIn).CopyTo(mem, 0);
            bool eflagsOp = opName is "fcomi" or "fcomip";          // the recorder stored EFLAGS in mem
            if (eflagsOp) { hwMem &= 0x8D5; BitConverter.GetBytes((ulong)(h.Ctx.Eflags & 0x8D5)).CopyTo(mem, 0); }

            bool transcendental = opName is "fsin" or "fyl2x" or "fpatan" or "f2xm1" or "fptan";
            int undefined = opName is "fcom" or "fcomp" or "fprem" ? 0
                : opName is "fsin" or "fptan" ? FpuStatus.C0 | FpuStatus.C3
                : FpuStatus.C0 | FpuStatus.C2 | FpuStatus.C3;
            if (transcendental) undefined |= FpuStatus.C1;          // rounding direction of a faithful result
            var errors = new List<string>();
            if (h.Fpu.ControlWord != hwCw) errors.Add($"cw {h.Fpu.ControlWord:X4}/{hwCw:X4}");
            if ((h.Fpu.StatusWord & ~undefined) != (hwSw & ~undefined)) errors.Add($"sw {h.Fpu.StatusWord:X4}/{hwSw:X4}");
            if (h.Fpu.TagWord != hwTw) errors.Add($"tw {h.Fpu.TagWord:X4}/{hwTw:X4}");
            int top = (hwSw >> 11) & 7;
            for (int i = 0; i < 3; i++)
            {
                bool empty = ((hwTw >> (2 * ((top + i) & 7))) & 3) == 3;
                if (empty) continue;
                Float80 ours = h.Fpu.St(i);
                if (ours != hwSt[i] && !(transcendental && Distance(ours, hwSt[i]) <= 1))
                    errors.Add($"st{i} {ours}/{hwSt[i]}");
            }
            if (BitConverter.ToUInt64(mem, 0) != hwMem || BitConverter.ToUInt16(mem, 8) != hwMemHigh)
                errors.Add($"mem {BitConverter.ToUInt64(mem, 0):X16}/{hwMem:X16} ({r})");
            if (errors.Count > 0) failures.Add($"{opName} cw={cw:X4} a={a} b={b} m={memIn:X}: {string.Join(", ", errors)}");
            count++;
        }
        foreach (var g in failures.GroupBy(f => f.Split(' ')[0]))
            foreach (string f in g.Take(5)) output.WriteLine(f);
        output.WriteLine($"{count - failures.Count}/{count} unmasked-exception vectors match silicon");
        Assert.True(count > 2000);
        Assert.Empty(failures);
    }
}

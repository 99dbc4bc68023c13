using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>A theory that is skipped (with the reason) when nasm is not installed.</summary>
public sealed class NasmTheoryAttribute : TheoryAttribute
{
    public NasmTheoryAttribute()
    {
        if (AsmProgram.Nasm == null) Skip = "nasm not installed: run scripts/install-deps.sh test";
    }
}

/// <summary>A theory that is skipped when nasm or qemu-system-i386 is missing.</summary>
public sealed class QemuTheoryAttribute : TheoryAttribute
{
    public QemuTheoryAttribute()
    {
        if (AsmProgram.Nasm == null) Skip = "nasm not installed: run scripts/install-deps.sh test";
        else if (AsmProgram.Qemu == null) Skip = "qemu-system-i386 not installed: run scripts/install-deps.sh test";
    }
}

/// <summary>
/// Our assembly test programs (Cpu/Asm/*.asm): each is run on our CPU and must print every ";! name=value"
/// expectation written in its source (architected results: register values, error codes, CR2, A/D bits…),
/// and must reach its exit (no triple fault, no runaway).
/// </summary>
public sealed class AsmTests
{
    private readonly ITestOutputHelper _output;

    public AsmTests(ITestOutputHelper output) => _output = output;

    public static IEnumerable<object[]> Programs() =>
        Directory.GetFiles(AsmProgram.AsmDir, "*.asm").Select(f => new object[] { Path.GetFileNameWithoutExtension(f) }).OrderBy(o => (string)o[0]);

    [NasmTheory]
    [MemberData(nameof(Programs))]
    public void ProgramPrintsItsExpectations(string name)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, name + ".asm"));
        var rom = AsmProgram.Assemble(source, name);
        var r = AsmProgram.RunOurs(rom);
        _output.WriteLine(r.Output);
        Assert.True(r.Exited, $"{name} did not reach its exit:\n{r.Output}");
        var lines = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        var expectations = AsmProgram.Expectations(source);
        Assert.NotEmpty(expectations);
        var missing = expectations.Where(e => !lines.Contains(e)).ToList();
        Assert.True(missing.Count == 0, $"{name}: expected lines not printed: {string.Join(", ", missing)}\noutput:\n{r.Output}");
    }

    /// <summary>
    /// Differential: the same program under qemu-system-i386 (TCG) must print exactly the same lines, except
    /// lines whose name starts with '~' (values that legitimately differ between the two CPUs, such as CPUID).
    /// </summary>
    [QemuTheory]
    [MemberData(nameof(Programs))]
    public void SameOutputAsQemu(string name)
    {
        string source = File.ReadAllText(Path.Combine(AsmProgram.AsmDir, name + ".asm"));
        var rom = AsmProgram.Assemble(source, name);
        var ours = AsmProgram.RunOurs(rom).Output;
        var qemu = AsmProgram.RunQemu(rom, name) ?? "";
        static List<string> Filter(string s) => s.Split('\n').Where(l => !l.StartsWith('~')).ToList();
        var q = Filter(qemu);
        var o = Filter(ours);
        var diffs = new List<string>();
        for (int i = 0; i < Math.Max(q.Count, o.Count); i++)
        {
            string a = i < q.Count ? q[i] : "(none)", b = i < o.Count ? o[i] : "(none)";
            if (a != b) diffs.Add($"line {i + 1}: qemu '{a}' ours '{b}'");
        }
        Assert.True(diffs.Count == 0, $"{name}: {diffs.Count} lines differ from QEMU:\n{string.Join("\n", diffs.Take(20))}");
    }
}

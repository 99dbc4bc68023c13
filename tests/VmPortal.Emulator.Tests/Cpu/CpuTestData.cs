namespace VmPortal.Emulator.Tests.Cpu;

/// <summary>
/// Locates the recorded CPU test data (../shared/cpu-tests from the repository root, or $VMPORTAL_CPU_TESTS).
/// The data is not part of the repository; tests that need it are skipped with a message when it is absent.
/// </summary>
internal static class CpuTestData
{
    public const string EnvVar = "VMPORTAL_CPU_TESTS";

    public static string? RepoRoot { get; } = FindRepoRoot();

    public static string? Root286 { get; } = Find286();

    public static string MissingMessage =>
        $"80286 recorded tests not found: put the SingleStepTests data at ../shared/cpu-tests/80286-real-mode (next to the repository) or set {EnvVar} to the cpu-tests folder.";

    private static string? FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "VmPortal.sln"))) dir = dir.Parent;
        return dir?.FullName;
    }

    private static string? Find286()
    {
        var env = Environment.GetEnvironmentVariable(EnvVar);
        if (!string.IsNullOrEmpty(env))
        {
            if (File.Exists(Path.Combine(env, "metadata.json"))) return env;
            var sub = Path.Combine(env, "80286-real-mode");
            if (File.Exists(Path.Combine(sub, "metadata.json"))) return sub;
        }
        if (RepoRoot != null)
        {
            var p = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "cpu-tests", "80286-real-mode"));
            if (File.Exists(Path.Combine(p, "metadata.json"))) return p;
        }
        return null;
    }
}

/// <summary>A theory that is skipped (with the reason) when the recorded 80286 tests are not present.</summary>
public sealed class Cpu286TheoryAttribute : TheoryAttribute
{
    public Cpu286TheoryAttribute()
    {
        if (CpuTestData.Root286 == null) Skip = CpuTestData.MissingMessage;
    }
}

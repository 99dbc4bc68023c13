namespace VmPortal.Benchmarks.Console.DemoHost;

public static class LoadTest
{
    public static Task<int> RunAsync(string[] args) => Task.FromResult(0);
}

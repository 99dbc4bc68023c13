using System.Runtime.CompilerServices;

namespace VmPortal.TestSupport;

/// <summary>
/// xunit runs test classes in parallel, and many of them wait on guests with blocking calls. On a 2-core machine the
/// thread pool starts with 2 threads and adds about one per half second when they are all blocked, so an await (a
/// CLI run's screen poll, a Kestrel request, a SignalR callback) could wait seconds for a thread: long enough to miss
/// a guest's timed prompt, such as memtest86+'s 3 s wait for Enter. Every test assembly starts with enough threads.
/// </summary>
internal static class TestThreadPool
{
    [ModuleInitializer]
    internal static void Init()
    {
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}

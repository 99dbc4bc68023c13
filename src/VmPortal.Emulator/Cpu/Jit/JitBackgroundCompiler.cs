using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

/// <summary>A compiled block waiting to be installed by its machine thread (the background compiler's result).</summary>
internal sealed class JitCompiled(JitBlockFn fn, int ilSize, int flat)
{
    public readonly JitBlockFn Fn = fn;
    public readonly int IlSize = ilSize;
    public readonly int Flat = flat;
}

public sealed partial class Cpu
{
    /// <summary>
    /// One compiler thread for the process (all machines share it): takes hot blocks (with their regions) from the machine threads,
    /// emits their IL and calls the new code once with a negative run budget, which returns at once (the compiled
    /// block's prologue) but makes the .NET JIT compile it here instead of on the machine thread. The result waits in
    /// <see cref="CodeBlock.Pending"/> until the block's machine thread next reaches the block and installs it
    /// (Cpu.Jit.cs), so the code cache and the block table are only ever touched by their machine thread. Meanwhile
    /// the block keeps running in the decoded-instruction cache.
    /// </summary>
    private static class JitBackgroundCompiler
    {
        /// <summary>Blocks queued at most; a hot block finding the queue full counts up to the threshold again.</summary>
        public const int MaxQueued = 512;

        private static readonly Queue<(Cpu Owner, CodeBlock[] Region, int Flat)> Work = new();
        private static Thread? _thread;

        public static bool TryEnqueue(Cpu owner, CodeBlock[] region, int flat)
        {
            lock (Work)
            {
                if (Work.Count >= MaxQueued) return false;
                Work.Enqueue((owner, region, flat));
                if (_thread == null)
                {
                    _thread = new Thread(Loop) { IsBackground = true, Name = "VmPortal JIT compiler", Priority = ThreadPriority.BelowNormal };
                    _thread.Start();
                }
                else if (Work.Count == 1) Monitor.Pulse(Work);
            }
            return true;
        }

        private static void Loop()
        {
            while (true)
            {
                Cpu owner;
                CodeBlock[] region;
                int flat;
                lock (Work)
                {
                    while (Work.Count == 0) Monitor.Wait(Work);
                    (owner, region, flat) = Work.Dequeue();
                }
                var b = region[0];
                // A block whose page was written since it was queued never runs again: skip it.
                var versions = owner._codeVersion;
                int page = b.Offset >> 12;
                if ((uint)page < (uint)versions.Length && Volatile.Read(ref versions[page]) != b.Version) continue;
                long t0 = Stopwatch.GetTimestamp(), cpu0 = ThreadCpuNs();
                try
                {
                    var (fn, size, flatUsed) = JitCompiler.Compile(region, flat);
                    Interlocked.Add(ref owner._jitEmitTicks, Stopwatch.GetTimestamp() - t0);
                    fn(null!, ref Unsafe.NullRef<DecodedOp>(), -1); // the .NET JIT compiles it now
                    b.Pending = new JitCompiled(fn, size, flatUsed);
                }
                catch (Exception e)
                {
                    // A compiler bug must not take the process down: the block stays in the decoded-instruction cache.
                    Trace.WriteLine($"JIT: compiling the block at {b.Offset:X} failed: {e}");
                    b.CompileFailed = true;
                }
                Interlocked.Add(ref owner._jitCompileTicks, Stopwatch.GetTimestamp() - t0);
                Interlocked.Add(ref owner._jitCompileCpuNs, ThreadCpuNs() - cpu0);
            }
        }

        /// <summary>CPU time of the calling thread in nanoseconds (Linux: /proc/thread-self/schedstat; 0 elsewhere), so
        /// the compile cost is known apart from the machine's load.</summary>
        private static long ThreadCpuNs()
        {
            try
            {
                string s = File.ReadAllText("/proc/thread-self/schedstat");
                int sp = s.IndexOf(' ');
                return long.Parse(sp > 0 ? s.AsSpan(0, sp) : s.AsSpan(), System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception) { return 0; }
        }
    }
}

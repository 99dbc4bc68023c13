using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace VmPortal.Emulator.Cpu;

/// <summary>Counters of the JIT tier: blocks compiled, host time spent compiling, the code cache's content (compiled
/// blocks and their IL bytes), evictions from the bounded cache, and guest instructions retired in compiled code.
/// <paramref name="EmitTime"/> is the part of the compile time spent writing IL (the rest is the .NET JIT's);
/// <paramref name="CompileCpuTime"/> the background compiler thread's CPU time (compile time and emit time are wall time).
/// For the whole CPU: <paramref name="AllInstructions"/> retired in any tier, <paramref name="BlocksDecoded"/> into the
/// decoded-instruction cache and <paramref name="CodePageInvalidations"/> (code pages written, their blocks dropped).</summary>
public readonly record struct JitStatistics(bool Enabled, long BlocksCompiled, TimeSpan CompileTime, int CacheBlocks, long CacheIlBytes,
    long Evictions, long Instructions, long Entries = 0, TimeSpan EmitTime = default, TimeSpan CompileCpuTime = default,
    long AllInstructions = 0, long BlocksDecoded = 0, long CodePageInvalidations = 0)
{
    public override string ToString() =>
        $"{BlocksCompiled:N0} blocks compiled in {CompileTime.TotalSeconds:F2} s (IL emission {EmitTime.TotalSeconds:F2} s; compiler thread CPU {CompileCpuTime.TotalSeconds:F2} s), code cache {CacheBlocks:N0} blocks / {CacheIlBytes / 1024.0:F0} KiB IL, " +
        $"{Evictions:N0} evicted, {Instructions:N0} of {AllInstructions:N0} instructions run compiled in {Entries:N0} entries; " +
        $"{BlocksDecoded:N0} blocks decoded, {CodePageInvalidations:N0} code-page writes";
}

/// <summary>A block compiled to IL by the JIT tier (JitCompiler.cs), with the region of its page it leads to: runs the
/// whole block and continues in the region's blocks while it can.</summary>
internal delegate void JitBlockFn(Cpu cpu, ref DecodedOp ops, long end);

// The JIT tier's policy: blocks of the decoded-instruction cache (Cpu.BlockCache.cs) count their executions; a block
// run more than JitThreshold times is compiled to a DynamicMethod (JitCompiler.cs) and from then on runs compiled
// whenever the run budget covers the whole block. Compiled code lives as long as its CodeBlock is in the block table
// and in a bounded FIFO (JitCacheCapacity blocks): the oldest compiled block loses its code when the FIFO is full, and
// a block dropped by a code-page write or a table collision takes its code with it (DynamicMethods are collectible).
public sealed partial class Cpu
{
    private bool _jitEnabled = Environment.GetEnvironmentVariable("VMPORTAL_JIT") != "0";
    private int _jitThreshold = ParseThreshold(Environment.GetEnvironmentVariable("VMPORTAL_JIT_THRESHOLD"));
    private bool _jitBackground = Environment.GetEnvironmentVariable("VMPORTAL_JIT_BACKGROUND") != "0";
    private CodeBlock?[] _jitFifo = new CodeBlock?[DefaultJitCacheCapacity];
    private int _jitFifoNext, _jitFifoCount, _jitLive;
    private long _jitCompileTicks, _jitEmitTicks, _jitCompileCpuNs;

    /// <summary>Default number of compiled blocks kept (the FIFO bound of the code cache).</summary>
    public const int DefaultJitCacheCapacity = 8192;

    /// <summary>Default executions of a block before it is compiled. Chosen by measurement (docs/performance.md "JIT
    /// tier"): the .NET JIT takes a few milliseconds per compiled region, which only a block run some 10⁴–10⁵ times
    /// earns back. 50,000 against 200,000: the Debian installer reaches its first question 9 % sooner, the Linux boot
    /// and an idle guest cost the same; 20,000 spends more on the compiler thread for no further gain.</summary>
    public const int DefaultJitThreshold = 50_000;

    private static int ParseThreshold(string? s) => int.TryParse(s, out int v) && v >= 0 ? v : DefaultJitThreshold;

    /// <summary>The JIT tier (compiling hot blocks to IL). On by default; VMPORTAL_JIT=0 turns it off.</summary>
    public bool JitEnabled
    {
        get => _jitEnabled;
        set => _jitEnabled = value;
    }

    /// <summary>Executions of a block before it is compiled (0: compile every block before its first run, for tests).
    /// VMPORTAL_JIT_THRESHOLD sets the default.</summary>
    public int JitThreshold
    {
        get => _jitThreshold;
        set => _jitThreshold = Math.Max(0, value);
    }

    /// <summary>Compile hot blocks on the process's JIT compiler thread while the block keeps running in the
    /// decoded-instruction cache (default; VMPORTAL_JIT_BACKGROUND=0 compiles on the machine thread). A threshold of
    /// 0 always compiles on the machine thread, before the block's first run.</summary>
    public bool JitBackground
    {
        get => _jitBackground;
        set => _jitBackground = value;
    }

    /// <summary>Compiled blocks kept at most; the oldest loses its code first.</summary>
    public int JitCacheCapacity
    {
        get => _jitFifo.Length;
        set
        {
            FlushJitCache();
            _jitFifo = new CodeBlock?[Math.Max(1, value)];
        }
    }

    /// <summary>Blocks compiled to IL since power-on.</summary>
    public long JitBlocksCompiled { get; private set; }

    /// <summary>Compiled blocks whose code was dropped because the code cache was full.</summary>
    public long JitEvictions { get; private set; }

    /// <summary>Host time spent compiling (IL emission and the .NET JIT's compilation of the first call).</summary>
    public TimeSpan JitCompileTime => TimeSpan.FromTicks(Volatile.Read(ref _jitCompileTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);

    /// <summary>The part of <see cref="JitCompileTime"/> spent emitting IL (dry runs included); the rest is the .NET JIT's.</summary>
    public TimeSpan JitEmitTime => TimeSpan.FromTicks(Volatile.Read(ref _jitEmitTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);

    /// <summary>CPU time the background compiler thread spent compiling this CPU's blocks (IL emission and the .NET JIT;
    /// Linux only, else zero): unlike <see cref="JitCompileTime"/> not inflated by the machine's load.</summary>
    public TimeSpan JitCompileCpuTime => TimeSpan.FromTicks(Volatile.Read(ref _jitCompileCpuNs) / 100);

    /// <summary>Compiled blocks currently in the code cache (with their code: not evicted, not dropped from the block table).</summary>
    public int JitCacheBlocks => _jitLive;

    /// <summary>IL bytes of the compiled blocks currently in the code cache.</summary>
    public long JitCacheIlBytes { get; private set; }

    /// <summary>Calls from the block loop into compiled code (statistics: instructions per entry show how long compiled
    /// code runs before it returns to the block loop).</summary>
    public long JitEntries { get; private set; }

    /// <summary>Instructions retired inside compiled blocks (statistics).</summary>
    public long JitInstructions { get; private set; }

    /// <summary>The JIT tier's counters (read from any thread: a snapshot for statistics, not synchronised).</summary>
    public JitStatistics GetJitStatistics() =>
        new(_jitEnabled, JitBlocksCompiled, JitCompileTime, JitCacheBlocks, JitCacheIlBytes, JitEvictions, JitInstructions, JitEntries, JitEmitTime, JitCompileCpuTime,
            InstructionCount, BlocksCompiled, CodePageInvalidations);

    /// <summary>A block reached the threshold: compile it now (threshold 0 or no background compiler: on this thread,
    /// deterministic for tests), or hand it to the background compiler and install its result once it is ready.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void JitHot(CodeBlock b)
    {
        if (_jitThreshold == 0 || !_jitBackground) { JitCompile(b); return; }
        b.Hits = _jitThreshold; // counting stops here while the compiler works
        if (!b.JitQueued)
        {
            if (JitBackgroundCompiler.TryEnqueue(this, JitRegion(b), JitFlatFor(b))) b.JitQueued = true;
            else b.Hits = 0; // queue full: count up again
            return;
        }
        var ready = b.Pending;
        if (ready == null) return;
        b.Pending = null;
        b.JitQueued = false;
        JitInstall(b, ready.Fn, ready.IlSize, ready.Flat);
        b.JitRan = true; // the background compiler ran it once, so the .NET JIT has compiled it
    }

    /// <summary>Blocks of a region at most.</summary>
    private const int JitRegionMaxBlocks = 16;

    /// <summary>Default of <see cref="JitRegionMaxOps"/>: chosen by measurement (docs/performance.md "JIT tier"): the
    /// CPU loop runs 2.3× faster in one region than in four single blocks, the Linux boot takes 15 % less CPU (the same
    /// at high load, where the longer compilations eat the gain); regions stay far below the IL size at which the .NET
    /// JIT stops optimising.</summary>
    public const int DefaultJitRegionMaxOps = 64;

    private int _jitRegionMaxOps =
        int.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_JIT_REGION_OPS"), out int v) && v >= 0 ? v : DefaultJitRegionMaxOps;

    /// <summary>Instructions of a compiled region at most (default <see cref="DefaultJitRegionMaxOps"/>,
    /// VMPORTAL_JIT_REGION_OPS); 0: every block compiles alone.</summary>
    public int JitRegionMaxOps
    {
        get => _jitRegionMaxOps;
        set => _jitRegionMaxOps = Math.Max(0, value);
    }

    /// <summary>
    /// The region compiled for a hot block: the block and the blocks of its page it reaches through direct jumps and
    /// fall-throughs (breadth first), as far as they are decoded and current, warm (a sixteenth of the threshold), and
    /// do not end in the interpreter; at most <see cref="JitRegionMaxBlocks"/> blocks and <see cref="JitRegionMaxOps"/>
    /// instructions (0: the block alone). Loops whose body spans several blocks of a page then run inside one compiled method.
    /// </summary>
    private CodeBlock[] JitRegion(CodeBlock entry)
    {
        var list = new List<CodeBlock>(4) { entry };
        int ops = entry.Count, page = entry.Offset >> 12;
        for (int i = 0; i < list.Count && list.Count < JitRegionMaxBlocks && _jitRegionMaxOps > 0; i++)
        {
            foreach (int succ in JitCompiler.Successors(list[i]))
            {
                if (succ >> 12 != page || list.Exists(x => x.Offset == succ)) continue;
                var b = FindBlock(succ, entry.Cs32);
                if (b == null || b.Version != entry.Version || b.EndsInInterpreter) continue;
                if (b.Jit == null && b.Hits < _jitThreshold / 16) continue;
                if (ops + b.Count > _jitRegionMaxOps || list.Count >= JitRegionMaxBlocks) continue;
                list.Add(b);
                ops += b.Count;
            }
        }
        return list.ToArray();
    }

    /// <summary>Compiles a block on this thread and enters it in the bounded code cache.</summary>
    private void JitCompile(CodeBlock b)
    {
        long t0 = Stopwatch.GetTimestamp();
        var (fn, ilSize, flat) = JitCompiler.Compile(JitRegion(b), JitFlatFor(b));
        Interlocked.Add(ref _jitCompileTicks, Stopwatch.GetTimestamp() - t0);
        Interlocked.Add(ref _jitEmitTicks, Stopwatch.GetTimestamp() - t0);
        JitInstall(b, fn, ilSize, flat);
        b.JitRan = false;
    }

    /// <summary>The flat segments a block's compiled code may assume: those flat now, unless code assuming them met
    /// other segments before (<see cref="JitFlatMismatch"/>).</summary>
    private int JitFlatFor(CodeBlock b) => b.JitNoFlat ? 0 : _flatMask;

    /// <summary>A compiled block assumes flat segments that are not flat now: its code goes, and the block compiles
    /// again (after the threshold) with no such assumption, so code run with both kinds of segments settles on the
    /// general form.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void JitFlatMismatch(CodeBlock b)
    {
        JitDrop(b);
        b.JitNoFlat = true;
        b.Hits = 0;
        JitFlatMismatches++;
    }

    /// <summary>Compiled blocks dropped because they assumed flat segments that were not flat (statistics).</summary>
    public long JitFlatMismatches { get; private set; }

    private void JitInstall(CodeBlock b, JitBlockFn fn, int ilSize, int flat)
    {
        b.Jit = fn;
        b.JitIlSize = ilSize;
        b.JitFlat = flat;
        JitBlocksCompiled++;
        if (_jitFifoCount == _jitFifo.Length)
        {
            var old = _jitFifo[_jitFifoNext];
            if (old?.Jit != null)
            {
                JitCacheIlBytes -= old.JitIlSize;
                old.Jit = null;
                old.JitIlSize = 0;
                old.Hits = 0;
                _jitLive--;
                JitEvictions++;
            }
        }
        else _jitFifoCount++;
        _jitFifo[_jitFifoNext] = b;
        JitCacheIlBytes += ilSize;
        _jitLive++;
        _jitFifoNext = (_jitFifoNext + 1) % _jitFifo.Length;
    }

    /// <summary>First run of a compiled block: the .NET JIT compiles the DynamicMethod now, counted as compile time.</summary>
    private void JitFirstRun(CodeBlock b, ref DecodedOp op, long end)
    {
        long t0 = Stopwatch.GetTimestamp();
        b.JitRan = true;
        try { b.Jit!(this, ref op, end); }
        finally { Interlocked.Add(ref _jitCompileTicks, Stopwatch.GetTimestamp() - t0); }
    }

    /// <summary>A compiled block left the block table: its code goes (the FIFO slot stays until its turn).</summary>
    private void JitDrop(CodeBlock b)
    {
        b.Jit = null;
        JitCacheIlBytes -= b.JitIlSize;
        b.JitIlSize = 0;
        _jitLive--;
    }

    private void FlushJitCache()
    {
        foreach (var b in _jitFifo)
            if (b != null) { b.Jit = null; b.JitIlSize = 0; b.Hits = 0; }
        Array.Clear(_jitFifo);
        _jitFifoCount = _jitFifoNext = _jitLive = 0;
        JitCacheIlBytes = 0;
    }
}

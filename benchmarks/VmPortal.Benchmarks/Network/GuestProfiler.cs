using System.Reflection;
using VmPortal.Emulator;

namespace VmPortal.Benchmarks.Network;

/// <summary>
/// Where a guest spends its time, for the network benchmark: a thread samples the guest CPU's instruction pointer
/// every ~0.2 ms (racy reads of the machine thread's state; the JIT updates EIP per block, which is fine for a
/// histogram) and counts halted samples as idle. Kernel addresses are named from the kernel's System.map (the same
/// 6.1.0 686 kernel as the rescue guest's); user-space addresses are counted together. Diagnostics only: reaches into
/// the machine by reflection so the emulator needs no profiling API.
/// </summary>
internal sealed class GuestProfiler : IDisposable
{
    private readonly Thread _thread;
    private readonly Dictionary<uint, int> _eips = new();
    private readonly (uint Address, string Name)[] _symbols;
    private volatile bool _stop;
    private int _halted, _samples;

    public GuestProfiler(Machine machine, string systemMap)
    {
        _symbols = File.ReadLines(systemMap)
            .Select(l => l.Split(' '))
            .Where(p => p.Length == 3 && p[1] is "t" or "T" or "W" or "w")
            .Select(p => (Convert.ToUInt32(p[0], 16), p[2]))
            .OrderBy(x => x.Item1).ToArray();
        var boardField = typeof(Machine).GetField("_board", BindingFlags.NonPublic | BindingFlags.Instance)!;
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                var board = boardField.GetValue(machine);
                if (board?.GetType().GetProperty("Cpu")?.GetValue(board) is Emulator.Cpu.Cpu cpu)
                {
                    _samples++;
                    if (cpu.Halted) _halted++;
                    else
                    {
                        uint eip = cpu.Eip;
                        _eips[eip] = _eips.GetValueOrDefault(eip) + 1;
                    }
                }
                Thread.Sleep(0);
                Thread.SpinWait(20000);
            }
        }) { IsBackground = true, Name = "guest profiler" };
        _thread.Start();
    }

    public void Stop()
    {
        _stop = true;
        _thread.Join();
    }

    private string Name(uint eip)
    {
        if (eip < 0xC000_0000) return "(user space)";
        int lo = 0, hi = _symbols.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (_symbols[mid].Address <= eip) { found = mid; lo = mid + 1; } else hi = mid - 1;
        }
        return found < 0 ? "?" : _symbols[found].Name;
    }

    public void Print(TextWriter w)
    {
        w.WriteLine($"guest a profile: {_samples} samples, halted {100.0 * _halted / Math.Max(1, _samples):F1} %");
        foreach (var (name, n) in _eips.GroupBy(e => Name(e.Key)).Select(g => (g.Key, g.Sum(e => e.Value))).OrderByDescending(x => x.Item2).Take(30))
            w.WriteLine($"  {100.0 * n / Math.Max(1, _samples),5:F1} %  {name}");
    }

    public void Dispose()
    {
        if (!_stop) Stop();
    }
}

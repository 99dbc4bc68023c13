using System.Reflection;
using VmPortal.Emulator;

namespace VmPortal.Benchmarks.Network;

/// <summary>
/// Where a guest spends its time, for the network benchmark: a thread samples the guest CPU's instruction pointer
/// about every millisecond (racy reads of the machine thread's state; the JIT updates EIP per block, which is fine for
/// a histogram) and counts halted samples as idle; it prints the split halted / kernel / user space and the most
/// sampled kernel addresses (Debian ships no System.map and KASLR moves the kernel: name them from the guest's
/// /proc/kallsyms). Diagnostics only: reaches into the machine by reflection so the emulator needs no profiling API.
/// </summary>
internal sealed class GuestProfiler : IDisposable
{
    private readonly Thread _thread;
    private readonly Dictionary<uint, int> _eips = new();
    private volatile bool _stop;
    private int _halted, _samples;

    public GuestProfiler(Machine machine)
    {
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
                Thread.Sleep(1);
            }
        }) { IsBackground = true, Name = "guest profiler" };
        _thread.Start();
    }

    public void Stop()
    {
        _stop = true;
        _thread.Join();
    }

    private List<uint> Top => _eips.Where(e => e.Key >= 0xC000_0000).OrderByDescending(e => e.Value).Take(25).Select(e => e.Key).ToList();

    /// <summary>
    /// A command for the guest that prints the /proc/kallsyms lines near the most sampled kernel addresses (same 4 KiB
    /// and the one before: busybox grep is quick where an awk loop over 80,000 symbols is not).
    /// </summary>
    public string NameQuery() => "grep -i " + string.Join(" ", Top.SelectMany(a => new[] { a >> 12, (a >> 12) - 1 }).Distinct()
        .Select(p => $"-e '^{p:x5}'")) + " /proc/kallsyms";

    public void Print(TextWriter w, string kallsyms)
    {
        var symbols = kallsyms.Split('\n').Select(l => l.Trim().Split(' '))
            .Where(p => p.Length >= 3 && p[0].Length == 8 && p[1] is "t" or "T")
            .Select(p => (Address: Convert.ToUInt32(p[0], 16), Name: p[2])).OrderBy(x => x.Address).ToList();
        string Name(uint eip)
        {
            if (eip < 0xC000_0000) return "(user space)";
            var best = symbols.LastOrDefault(x => x.Address <= eip && eip - x.Address < 0x2000);
            return best.Name ?? "(other kernel)";
        }
        double Pct(int n) => 100.0 * n / Math.Max(1, _samples);
        w.WriteLine($"guest a profile: {_samples} samples, halted {Pct(_halted):F1} %");
        foreach (var (name, n) in _eips.GroupBy(e => Name(e.Key)).Select(g => (g.Key, g.Sum(e => e.Value))).OrderByDescending(x => x.Item2).Take(25))
            w.WriteLine($"  {Pct(n),5:F1} %  {name}");
    }

    public void Dispose()
    {
        if (!_stop) Stop();
    }
}

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

    public void Print(TextWriter w)
    {
        int user = _eips.Where(e => e.Key < 0xC000_0000).Sum(e => e.Value), kernel = _eips.Values.Sum() - user;
        double Pct(int n) => 100.0 * n / Math.Max(1, _samples);
        w.WriteLine($"guest a: {_samples} samples, halted {Pct(_halted):F1} %, kernel {Pct(kernel):F1} %, user space {Pct(user):F1} %");
        w.WriteLine("  most sampled kernel addresses (name them from the guest's /proc/kallsyms): " +
            string.Join(", ", _eips.Where(e => e.Key >= 0xC000_0000).OrderByDescending(e => e.Value).Take(12).Select(e => $"{e.Key:x8} {Pct(e.Value):F1} %")));
    }

    public void Dispose()
    {
        if (!_stop) Stop();
    }
}

using System.Reflection;
using VmPortal.Emulator;
using VmPortal.Emulator.Devices.E1000;

namespace VmPortal.Benchmarks.Network;

/// <summary>
/// Where a guest spends its time, for the network benchmark: a thread samples the guest CPU's instruction pointer
/// about every millisecond (racy reads of the machine thread's state; the JIT updates EIP per block, which is fine for
/// a histogram) and counts halted samples as idle; it prints the split halted / kernel / user space and the most
/// sampled kernel addresses and functions, named from the guest's own /proc/kallsyms (Debian ships no System.map and
/// KASLR moves the kernel; the benchmark fetches the table through the NAT before the transfer). With the card's
/// counters it also prints the e1000's register accesses, interrupts and transmit kicks per MiB sent.
/// Diagnostics only: reaches into the machine by reflection so the emulator needs no profiling API.
/// </summary>
internal sealed class GuestProfiler : IDisposable
{
    private readonly Thread _thread;
    private readonly Dictionary<uint, int> _eips = new();
    private volatile bool _stop;
    private int _halted, _samples;

    private readonly (uint Address, string Name)[] _symbols;
    private readonly Machine _machine;
    private readonly E1000? _nic;
    private readonly (long Interrupts, long Kicks, long Descriptors, long Frames, long Bytes, long Packets, long Tso) _nic0;

    /// <summary>The machine's board (rebuilt at each reset) by reflection.</summary>
    private static object? Board(Machine machine) =>
        typeof(Machine).GetField("_board", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(machine);

    /// <summary>The machine's CPU by reflection (diagnostics: Machine does not expose it), or null when it is not running.</summary>
    internal static Emulator.Cpu.Cpu? CpuOf(Machine machine) =>
        Board(machine) is { } board ? board.GetType().GetProperty("Cpu")?.GetValue(board) as Emulator.Cpu.Cpu : null;

    public GuestProfiler(Machine machine, string? kallsyms = null)
    {
        _machine = machine;
        _symbols = ParseKallsyms(kallsyms);
        _nic = Board(machine)?.GetType().GetProperty("Nic")?.GetValue(Board(machine)) as E1000;
        if (_nic != null)
        {
            _nic.RegisterAccessCounts = new long[E1000.MmioSize / 4 * 2];
            _nic0 = (_nic.InterruptsRaised, _nic.TransmitKicks, _nic.TransmitDescriptors, _nic.FramesSent, _nic.BytesSent,
                _nic.Transmitter.Packets, _nic.Transmitter.TsoPackets);
        }
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

    /// <summary>Text symbols of /proc/kallsyms ("c1000000 T _stext", "d08b7000 t e1000_xmit_frame\t[e1000]"), sorted.</summary>
    private static (uint, string)[] ParseKallsyms(string? text)
    {
        if (text is null) return [];
        var list = new List<(uint, string)>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 3 || f[1].Length != 1 || "tTwW".IndexOf(f[1][0]) < 0 ||
                !uint.TryParse(f[0], System.Globalization.NumberStyles.HexNumber, null, out uint a) || a == 0) continue;
            list.Add((a, f.Length > 3 ? $"{f[2]} {f[3]}" : f[2]));
        }
        return list.OrderBy(x => x.Item1).ToArray();
    }

    private string? NameOf(uint eip)
    {
        int lo = 0, hi = _symbols.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) / 2;
            if (_symbols[mid].Address <= eip) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? null : _symbols[found].Name;
    }

    public void Print(TextWriter w)
    {
        int user = _eips.Where(e => e.Key < 0xC000_0000).Sum(e => e.Value), kernel = _eips.Values.Sum() - user;
        double Pct(int n) => 100.0 * n / Math.Max(1, _samples);
        w.WriteLine($"guest a: {_samples} samples, halted {Pct(_halted):F1} %, kernel {Pct(kernel):F1} %, user space {Pct(user):F1} %");
        w.WriteLine("  most sampled kernel addresses (name them from the guest's /proc/kallsyms): " +
            string.Join(", ", _eips.Where(e => e.Key >= 0xC000_0000).OrderByDescending(e => e.Value).Take(12).Select(e => $"{e.Key:x8} {Pct(e.Value):F1} %")));
        if (_symbols.Length > 0)
        {
            w.WriteLine($"  most sampled kernel functions ({_symbols.Length} symbols from the guest's /proc/kallsyms):");
            foreach (var g in _eips.Where(e => e.Key >= 0xC000_0000).GroupBy(e => NameOf(e.Key) ?? "?").Select(g => (g.Key, N: g.Sum(e => e.Value)))
                         .OrderByDescending(g => g.N).Take(30))
                w.WriteLine($"    {Pct(g.N),5:F1} %  {g.Key}");
        }
        if (_nic is { RegisterAccessCounts: { } counts })
        {
            double mib = Math.Max(1, _nic.BytesSent - _nic0.Bytes) / 1048576.0;
            w.WriteLine($"  e1000 during the transfer, per MiB sent: {(_nic.FramesSent - _nic0.Frames) / mib:F0} frames, " +
                $"{(_nic.TransmitKicks - _nic0.Kicks) / mib:F0} TDT writes, {(_nic.TransmitDescriptors - _nic0.Descriptors) / mib:F0} descriptors, " +
                $"{(_nic.Transmitter.Packets - _nic0.Packets) / mib:F0} packets ({(_nic.Transmitter.TsoPackets - _nic0.Tso) / mib:F0} TSO), " +
                $"{(_nic.InterruptsRaised - _nic0.Interrupts) / mib:F0} interrupts; register accesses per MiB:");
            var names = typeof(E1000Registers).GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.FieldType == typeof(int) && f.Name != "DescriptorSize" && !f.Name.EndsWith("Entries") && f.Name != "ReceiveAddresses")
                .GroupBy(f => (int)f.GetValue(null)!).ToDictionary(g => g.Key, g => g.First().Name);
            foreach (var (i, n) in counts.Select((n, i) => (i, n)).Where(x => x.n > 0).OrderByDescending(x => x.n).Take(12))
            {
                int reg = i / 2 * 4;
                w.WriteLine($"    {(i % 2 == 0 ? "read " : "write")} {names.GetValueOrDefault(reg, $"0x{reg:x4}"),-8} {n / mib,8:F1}");
            }
            _nic.RegisterAccessCounts = null;
        }
    }

    public void Dispose()
    {
        if (!_stop) Stop();
    }
}

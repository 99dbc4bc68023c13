using System.Diagnostics;
using VmPortal.Core.Runtime;
using VmPortal.Emulator;

namespace VmPortal.Benchmarks.Console.DemoHost;

/// <summary>
/// Host CPU of N idle VMs on a <see cref="VmHost"/> (real machines running a firmware that halts, console tickers at
/// 30 Hz), with no viewers and with one viewer each. Usage: --idle-vms [N] [--seconds S]
/// </summary>
public static class IdleVms
{
    public static async Task<int> RunAsync(string[] args)
    {
        int n = int.TryParse(args.SkipWhile(a => a != "--idle-vms").Skip(1).FirstOrDefault(), out var v) ? v : 10;
        int seconds = int.TryParse(args.SkipWhile(a => a != "--seconds").Skip(1).FirstOrDefault(), out var s) ? s : 10;
        var dir = Directory.CreateTempSubdirectory("idle-vms").FullName;
        var image = new byte[4096];
        new byte[] { 0xFA, 0xF4, 0xEB, 0xFD }.CopyTo(image, 0);           // cli; hlt; jmp back
        new byte[] { 0xEA, 0x00, 0xF0, 0x00, 0xF0 }.CopyTo(image, 0xFF0); // reset vector → F000:F000
        var bios = Path.Combine(dir, "halt.bin");
        File.WriteAllBytes(bios, image);
        try
        {
            using var host = new VmHost(new VmHostOptions { CapacityMiB = 64L * n });
            var vms = new List<HostedVm>();
            for (int i = 0; i < n; i++)
            {
                var vm = host.Get(Guid.NewGuid());
                await vm.StartAsync(new MachineConfig { Name = $"idle{i}", MemoryMiB = 32, BiosPath = bios });
                vms.Add(vm);
            }
            System.Console.WriteLine($"{n} halted VMs running; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
            await Measure($"{n} idle VMs, no viewers", seconds);
            var viewers = vms.Select(vm => vm.Console.AddViewer()).ToList();
            var drains = viewers.Select(vw => Task.Run(async () => { await foreach (var _ in vw.Reader.ReadAllAsync()) { } })).ToList();
            await Measure($"{n} idle VMs, one viewer each (reader draining)", seconds);
            viewers.ForEach(x => x.Dispose());
            await Task.WhenAll(drains);
            return 0;
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task Measure(string what, int seconds)
    {
        await Task.Delay(2000);
        var p = Process.GetCurrentProcess();
        var cpu0 = p.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        p.Refresh();
        double pct = (p.TotalProcessorTime - cpu0).TotalSeconds / sw.Elapsed.TotalSeconds * 100;
        System.Console.WriteLine($"{what}: {pct:F1} % of one core");
    }
}

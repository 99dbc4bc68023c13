using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using Xunit.Abstractions;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// memtest86+ (Debian's package, booted from its ISO through SeaBIOS) shows its test screen, measures the CPU clock
/// the guest sees, and runs its complete first pass over 64 MiB without reporting an error: every test pattern, the
/// block moves (REP MOVS), the random-number tests and the bit-fade test with its two timed waits. The longest test
/// of the suite (about 13 minutes on a quiet machine, mostly CPU-bound guest work), so it has its own class: xunit
/// runs it beside the other boot tests.
/// </summary>
[Trait("Category", "Boot")]
public class MemtestPassTests(ITestOutputHelper output)
{
    [BootFact(0, "memtest86+", GuestImages.MemtestIso)]
    public async Task Memtest86PlusShowsItsScreenAndCompletesItsFirstPassOver64MiBWithoutErrors()
    {
        using var h = new BootHarness(BootHarness.Config(memoryMiB: 64, cdrom: GuestImages.MemtestIso));
        await h.Start();
        await h.WaitFor(@"Memtest86\+", serial: false);
        var sw = Stopwatch.StartNew();
        await h.WaitFor(@"Pass", serial: false);
        Assert.DoesNotMatch(@"Errors:\s*[1-9]", h.Screen);
        // memtest86+ times 50 ms of PIT counter 2 with RDTSC: its CLK is the TSC rate as the guest sees it.
        string clk = await h.WaitFor(@"CLK/Temp:\s*\d+MHz", serial: false);
        int mhz = int.Parse(Regex.Match(clk, @"\d+").Value, CultureInfo.InvariantCulture);
        Assert.InRange(mhz, h.Machine.Config.TscFrequencyHz / 1e6 * 0.98, h.Machine.Config.TscFrequencyHz / 1e6 * 1.02);

        // The pass counter ("Pass: 1", beside "Errors:") goes up when the pass ends; the progress bar's "Pass  42%"
        // has no colon.
        string passed = await h.WaitFor(@"Pass:\s*1(?![\d%])", serial: false, timeout: TimeSpan.FromMinutes(45));
        string screen = h.Screen;
        Assert.Matches(@"Errors:\s*0\b", screen);
        Assert.DoesNotMatch(@"Errors:\s*[1-9]", screen);
        output.WriteLine($"memtest86+ first pass over 64 MiB: {sw.Elapsed.TotalMinutes:F1} min (wall) after its screen appeared, " +
                         $"guest time {h.Machine.Clock.NowNs / 60e9:F1} min; {passed.Trim()}\n{screen}");
    }
}

using System.Diagnostics;
using System.Text;
using VmPortal.Emulator.Firmware;

namespace VmPortal.Emulator.Tests.Platform;

public class MachineTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static MachineConfig TinyConfig(byte[] bios, string name, Action<MachineConfigBuilder>? edit = null)
    {
        var b = new MachineConfigBuilder { Name = name, Bios = TestGuests.WriteTemp(bios, name) };
        edit?.Invoke(b);
        return b.Build();
    }

    [Fact]
    public void ConfigValidationListsEveryProblem()
    {
        var config = new MachineConfig
        {
            MemoryMiB = 1,
            CdRomImage = "/nonexistent/cd.iso",
            InitrdPath = "/nonexistent/initrd",
            HardDisks = new[] { new DiskConfig("/a"), new DiskConfig("/b"), new DiskConfig("/c"), new DiskConfig("/d") },
            BootOrder = new[] { BootDevice.CdRom, BootDevice.CdRom },
        };
        var problems = config.Validate();
        Assert.Contains(problems, p => p.Contains("memory must be between"));
        Assert.Contains(problems, p => p.Contains("CD-ROM image not found: /nonexistent/cd.iso"));
        Assert.Contains(problems, p => p.Contains("at most 3 hard disks"));
        Assert.Contains(problems, p => p.Contains("hard disk image (hdb) not found: /b"));
        Assert.Contains(problems, p => p.Contains("initrd or kernel command line needs a kernel"));
        Assert.Contains(problems, p => p.Contains("boot order"));
        var e = Assert.Throws<ArgumentException>(() => new Machine(config));
        Assert.Contains("memory must be between", e.Message);
    }

    [Fact]
    public void ADefaultConfigIsValid()
    {
        Assert.Empty(new MachineConfig().Validate());
    }

    [Fact]
    public async Task ACorruptBiosImageCrashesThatMachineWithTheReason()
    {
        using var machine = new Machine(TinyConfig(new byte[1000], "corrupt-bios"));
        string? reported = null;
        machine.Crashed += r => reported = r;
        await machine.Start().WaitAsync(Wait);
        await machine.Stopped.WaitAsync(Wait);
        Assert.Equal(MachineState.Crashed, machine.State);
        Assert.Contains("not a multiple of 4 KiB", machine.CrashReason);
        Assert.Equal(machine.CrashReason, reported);
    }

    [Fact]
    public async Task ACorruptKernelCrashesThatMachineWithTheReason()
    {
        string kernel = TestGuests.WriteTemp(Encoding.ASCII.GetBytes(new string('Z', 8192)), "corrupt-kernel");
        using var machine = new Machine(TinyConfig(TestGuests.Halt(), "corrupt-kernel", b => b.Kernel = kernel));
        await machine.Start().WaitAsync(Wait);
        await machine.Stopped.WaitAsync(Wait);
        Assert.Equal(MachineState.Crashed, machine.State);
        Assert.Contains(kernel, machine.CrashReason);
        Assert.Contains("not a Linux kernel image", machine.CrashReason);
    }

    [CpuFact]
    public async Task ATripleFaultEndsOnlyThatMachineWhileAnotherKeepsRunning()
    {
        using var ticker = new Machine(TinyConfig(TestGuests.Ticker(), "ticker"));
        int ticks = 0;
        ticker.DebugOutput += bytes => Interlocked.Add(ref ticks, bytes.Length);
        await ticker.Start().WaitAsync(Wait);

        using var faulty = new Machine(TinyConfig(TestGuests.TripleFault(), "faulty", b => b.OnTripleFault = TripleFaultAction.PowerOff));
        await faulty.Start().WaitAsync(Wait);
        await faulty.Stopped.WaitAsync(Wait);
        Assert.Equal(MachineState.Crashed, faulty.State);
        Assert.Contains("triple fault", faulty.CrashReason, StringComparison.OrdinalIgnoreCase);

        int before = Volatile.Read(ref ticks);
        var sw = Stopwatch.StartNew();
        while (Volatile.Read(ref ticks) <= before && sw.Elapsed < Wait) await Task.Delay(20);
        Assert.True(Volatile.Read(ref ticks) > before, "the other machine stopped producing output");
        Assert.Equal(MachineState.Running, ticker.State);
        await ticker.PowerOff().WaitAsync(Wait);
        Assert.Equal(MachineState.PoweredOff, ticker.State);
    }

    [CpuFact]
    public async Task ATripleFaultResetsTheBoardByDefault()
    {
        using var machine = new Machine(TinyConfig(TestGuests.TripleFault(), "reset-on-fault"));
        var reset = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        machine.ResetOccurred += r => reset.TrySetResult(r);
        await machine.Start().WaitAsync(Wait);
        string reason = await reset.Task.WaitAsync(Wait);
        Assert.Contains("triple fault", reason, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(MachineState.Running, machine.State);
        await machine.PowerOff().WaitAsync(Wait);
    }

    /// <summary>A guest's reset request takes effect after the instruction that made it: what follows never runs (SeaBIOS
    /// triple-faults on purpose after its reset writes; that used to end a machine set to power off on a triple fault).</summary>
    [Theory]
    [InlineData(0xCF9, "reset through port 0xCF9")]
    [InlineData(0x92, "reset through port 0x92")]
    [InlineData(0x64, "reset through the keyboard controller")]
    public async Task AGuestsResetRequestResetsAtOnceAndNothingAfterItRuns(int port, string expected)
    {
        using var machine = new Machine(TinyConfig(TestGuests.ResetThenTripleFault(port), $"reset-{port:x}", b => b.OnTripleFault = TripleFaultAction.PowerOff));
        var reasons = new List<string>();
        machine.ResetOccurred += r => { lock (reasons) reasons.Add(r); };
        var output = new StringBuilder();
        machine.DebugOutput += b => { lock (output) output.Append(Encoding.ASCII.GetString(b)); };
        await machine.Start().WaitAsync(Wait);
        await WaitFor(() => { lock (output) return output.ToString().StartsWith("RRR", StringComparison.Ordinal); });
        await machine.Pause().WaitAsync(Wait);
        Assert.Equal(MachineState.Paused, machine.State);
        Assert.True(machine.ResetCount >= 2);
        lock (reasons) Assert.All(reasons, r => Assert.Equal(expected, r));
        await machine.PowerOff().WaitAsync(Wait);
    }

    /// <summary>A pause point set at power-on holds however late the caller looks (a Start followed by
    /// PauseAtInstruction could find a busy host's guest far beyond it); a machine that stops before it fails the wait
    /// with the reason.</summary>
    [Fact]
    public async Task AMachineStartedWithAPausePointStopsThereExactly()
    {
        using var machine = new Machine(TinyConfig(TestGuests.Ticker(), "pause-at-start", b => b.Deterministic = true));
        var paused = machine.StartAndPauseAt(300_000);
        await Task.Delay(1000); // the guest runs some 10⁷ instructions a second: long past the point without it
        await paused.WaitAsync(Wait);
        Assert.Equal(MachineState.Paused, machine.State);
        Assert.Equal(300_000, machine.InstructionCount);
        await Assert.ThrowsAsync<InvalidOperationException>(() => machine.StartAndPauseAt(400_000));
        await machine.PauseAtInstruction(400_000).WaitAsync(Wait);
        Assert.Equal(400_000, machine.InstructionCount);
        await machine.PowerOff().WaitAsync(Wait);

        using var faulty = new Machine(TinyConfig(TestGuests.TripleFault(), "pause-at-crash", b => b.OnTripleFault = TripleFaultAction.PowerOff));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => faulty.StartAndPauseAt(1_000_000).WaitAsync(Wait));
        Assert.Equal(MachineState.Crashed, faulty.State);
        Assert.Contains("before instruction 1000000", e.Message);
        Assert.Contains("triple fault", e.Message);
    }

    [CpuFact]
    public async Task PauseFreezesInstructionsAndGuestTime()
    {
        using var machine = new Machine(TinyConfig(TestGuests.Ticker(), "pause"));
        await machine.Start().WaitAsync(Wait);
        await Task.Delay(100);
        await machine.Pause().WaitAsync(Wait);
        Assert.Equal(MachineState.Paused, machine.State);
        long count = machine.InstructionCount, now = machine.Clock.NowNs;
        await Task.Delay(200);
        Assert.Equal(count, machine.InstructionCount);
        Assert.Equal(now, machine.Clock.NowNs);
        await machine.Resume().WaitAsync(Wait);
        var sw = Stopwatch.StartNew();
        while (machine.InstructionCount == count && sw.Elapsed < Wait) await Task.Delay(10);
        Assert.True(machine.InstructionCount > count);
        Assert.True(machine.Clock.NowNs > now);
        await machine.PowerOff().WaitAsync(Wait);
    }

    [CpuFact]
    public async Task ResetRestartsTheFirmware()
    {
        using var machine = new Machine(TinyConfig(TestGuests.Halt(), "reset"));
        var output = new StringBuilder();
        machine.DebugOutput += b => { lock (output) output.Append(Encoding.ASCII.GetString(b)); };
        await machine.Start().WaitAsync(Wait);
        await WaitFor(() => { lock (output) return output.ToString() == "H"; });
        await machine.Reset().WaitAsync(Wait);
        await WaitFor(() => { lock (output) return output.ToString() == "HH"; });
        Assert.Equal(1, machine.ResetCount);
        await machine.PowerOff().WaitAsync(Wait);
    }

    [CpuFact]
    public async Task AHaltedGuestCostsAlmostNoHostCpu()
    {
        using var machine = new Machine(TinyConfig(TestGuests.Halt(), "idle"));
        int tid = 0;
        machine.StateChanged += s => { if (s == MachineState.Running) tid = ThreadCpu.CurrentThreadId(); };
        await machine.Start().WaitAsync(Wait);
        await Task.Delay(200);
        Assert.NotEqual(0, tid);
        var before = ThreadCpu.CpuTime(tid);
        await Task.Delay(1000);
        var used = ThreadCpu.CpuTime(tid) - before;
        // A spinning machine thread would use ~1000 ms here.
        Assert.True(used < TimeSpan.FromMilliseconds(100), $"idle machine thread used {used.TotalMilliseconds:F0} ms of CPU in 1 s");
        await machine.PowerOff().WaitAsync(Wait);
    }

    [CpuFact]
    public async Task DeterministicClockFollowsInstructions()
    {
        using var machine = new Machine(TinyConfig(TestGuests.Ticker(), "deterministic", b => b.Deterministic = true));
        await machine.Start().WaitAsync(Wait);
        await Task.Delay(200);
        await machine.PowerOff().WaitAsync(Wait);
        Assert.True(machine.InstructionCount > 0);
        Assert.Equal(machine.InstructionCount * machine.Config.NsPerInstruction, machine.Clock.NowNs);
    }

    [CpuFact]
    public async Task SerialInputReachesTheGuestsUart()
    {
        using var machine = new Machine(TinyConfig(TestGuests.SerialEcho(), "serial", b => b.Serial = true));
        var echoed = new List<byte>();
        machine.DebugOutput += b => { lock (echoed) echoed.AddRange(b); };
        await machine.Start().WaitAsync(Wait);
        machine.SendSerial("hello, uart"u8);
        await WaitFor(() => { lock (echoed) return echoed.Count >= 11; });
        lock (echoed) Assert.Equal("hello, uart", Encoding.ASCII.GetString(echoed.ToArray()));
        await machine.PowerOff().WaitAsync(Wait);
    }

    [CpuFact]
    public async Task TypedTextArrivesAsTranslatedScancodes()
    {
        using var machine = new Machine(TinyConfig(TestGuests.KeyboardEcho(), "keyboard"));
        var codes = new List<byte>();
        machine.DebugOutput += b => { lock (codes) codes.AddRange(b); };
        await machine.Start().WaitAsync(Wait);
        machine.TypeText("aA\n");
        // Set 1 through the i8042's translation: a = 1E/9E, Shift = 2A/AA, Enter = 1C/9C.
        byte[] expected = { 0x1E, 0x9E, 0x2A, 0x1E, 0x9E, 0xAA, 0x1C, 0x9C };
        await WaitFor(() => { lock (codes) return codes.Count >= expected.Length; });
        lock (codes) Assert.Equal(expected, codes.ToArray());
        await machine.PowerOff().WaitAsync(Wait);
    }

    [CpuFact]
    public async Task SingleKeysGoAheadOfTypedTextAndPendingTextCanBeDropped()
    {
        using var machine = new Machine(TinyConfig(TestGuests.KeyboardEcho(), "keyboard"));
        var codes = new List<byte>();
        machine.DebugOutput += b => { lock (codes) codes.AddRange(b); };
        await machine.Start().WaitAsync(Wait);
        await machine.Pause().WaitAsync(Wait); // nothing reaches the keyboard while paused

        Assert.Equal(3, machine.EnqueueTyped(KeyboardText.ToKeyEvents("aB\n")));
        Assert.Equal(3, machine.TypedKeystrokesPending);
        machine.SendKey(0x2B, true); // F, sent after the text but a single key: it goes first
        machine.SendKey(0x2B, false);
        await machine.Resume().WaitAsync(Wait);
        // Set 1: F = 21/A1, a = 1E/9E, Shift+B = 2A 30 B0 AA, Enter = 1C/9C.
        byte[] expected = { 0x21, 0xA1, 0x1E, 0x9E, 0x2A, 0x30, 0xB0, 0xAA, 0x1C, 0x9C };
        await WaitFor(() => { lock (codes) return codes.Count >= expected.Length; });
        lock (codes) Assert.Equal(expected, codes.ToArray());
        Assert.Equal(0, machine.TypedKeystrokesPending);

        await machine.Pause().WaitAsync(Wait);
        machine.TypeText("XYZ");
        Assert.Equal(3, machine.TypedKeystrokesPending);
        Assert.Equal(3, machine.ClearTypedText());
        Assert.Equal(0, machine.TypedKeystrokesPending);
        machine.SendKey(0x2B, true);
        machine.SendKey(0x2B, false);
        await machine.Resume().WaitAsync(Wait);
        await WaitFor(() => { lock (codes) return codes.Count >= expected.Length + 2; });
        await Task.Delay(200); // a dropped keystroke would arrive by now
        lock (codes) Assert.Equal(expected.Concat(new byte[] { 0x21, 0xA1 }).ToArray(), codes.ToArray());
        await machine.PowerOff().WaitAsync(Wait);
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > Wait) throw new TimeoutException("condition not reached");
            await Task.Delay(10);
        }
    }
}

/// <summary>CPU time of one OS thread, from /proc (Linux).</summary>
internal static class ThreadCpu
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    public static int CurrentThreadId() => GetTid();

    public static TimeSpan CpuTime(int tid)
    {
        string stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(fields[11]) + long.Parse(fields[12]); // utime, stime (fields 14 and 15)
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ = 100
    }
}

/// <summary>Mutable helper to build the immutable <see cref="MachineConfig"/> in tests.</summary>
public sealed class MachineConfigBuilder
{
    public string Name { get; set; } = "test";
    public string? Bios { get; set; }
    public string? Kernel { get; set; }
    public bool Deterministic { get; set; }
    public bool Serial { get; set; }
    public TripleFaultAction OnTripleFault { get; set; } = TripleFaultAction.Reset;

    public MachineConfig Build() => new()
    {
        Name = Name,
        MemoryMiB = 16,
        BiosPath = Bios,
        KernelPath = Kernel,
        DeterministicClock = Deterministic,
        OnTripleFault = OnTripleFault,
        SerialEnabled = Serial,
    };
}

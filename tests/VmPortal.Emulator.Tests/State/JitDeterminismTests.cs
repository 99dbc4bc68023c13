using VmPortal.Emulator.Firmware;

namespace VmPortal.Emulator.Tests.State;

/// <summary>
/// The background JIT compiler (Cpu/Jit/JitBackgroundCompiler.cs) installs compiled code whenever it is ready, so two
/// runs of the same deterministic machine switch from decoded to compiled code at different instructions. The guest
/// must not see that: several SeaBIOS machines run side by side (sharing the one compiler thread, as in the portal)
/// to the same instruction count reach byte-identical states, and the same state as a run without the JIT.
/// </summary>
public class JitDeterminismTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(3);

    private sealed class FixedTime : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    }

    private static async Task<string> HashAt(bool? jit, long instructions, int i, int? threshold = null)
    {
        var config = new MachineConfig
        {
            Name = $"jit-determinism-{i}",
            MemoryMiB = 32,
            DeterministicClock = true,
            OnTripleFault = TripleFaultAction.PowerOff,
            Jit = jit,
            JitThreshold = threshold,
            TimeProvider = new FixedTime(), // the RTC starts from the host's time: the same for every run
        };
        using var m = new Machine(config);
        try { await m.StartAndPauseAt(instructions).WaitAsync(Wait); }
        catch (InvalidOperationException) when (m.State == MachineState.Crashed)
        {
            Assert.Fail($"machine {i} crashed before instruction {instructions}: {m.CrashReason}");
        }
        return await m.StateHash().WaitAsync(Wait);
    }

    [MachineStateTests.SeaBiosFact]
    public async Task MachinesCompilingInTheBackgroundReachTheSameStateAsTheInterpreter()
    {
        const long instructions = 6_000_000;
        string reference = await HashAt(false, instructions, 0);
        Assert.Equal(reference, await HashAt(false, instructions, 0));
        for (int round = 0; round < 3; round++)
        {
            var hashes = await Task.WhenAll(Enumerable.Range(1, 6).Select(i => Task.Run(() => HashAt(null, instructions, i))));
            Assert.All(hashes, h => Assert.Equal(reference, h));
        }
    }
}

using System.Buffers.Binary;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Snapshots;

namespace VmPortal.Emulator.Tests.State;

/// <summary>
/// Machine state files with SeaBIOS running its POST (PCI, VGA BIOS, ATA probing, timers, the RTC): determinism of
/// save/load, byte-identical round trips of every component, and refusal of bad files.
/// </summary>
public class MachineStateTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);

    public sealed class SeaBiosFactAttribute : FactAttribute
    {
        public SeaBiosFactAttribute()
        {
            if (FirmwareFiles.FindBios() == null) Skip = FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName);
        }
    }

    internal static MachineConfig SeaBiosConfig(int memoryMiB = 32) => new()
    {
        Name = "state-test",
        MemoryMiB = memoryMiB,
        DeterministicClock = true,
        OnTripleFault = TripleFaultAction.PowerOff,
    };

    /// <summary>A machine that ran <paramref name="instructions"/> instructions and is paused.</summary>
    private static async Task<Machine> RunTo(MachineConfig config, long instructions)
    {
        var m = new Machine(config);
        try { await m.StartAndPauseAt(instructions).WaitAsync(Wait); }
        catch (InvalidOperationException) when (m.State == MachineState.Crashed)
        {
            Assert.Fail($"the machine crashed before instruction {instructions}: {m.CrashReason}");
        }
        Assert.Equal(MachineState.Paused, m.State);
        return m;
    }

    private static async Task<byte[]> Save(Machine m)
    {
        using var ms = new MemoryStream();
        await m.SaveState(ms).WaitAsync(Wait);
        return ms.ToArray();
    }

    [SeaBiosFact]
    public async Task SavingAndLoadingContinuesBitExactly()
    {
        var config = SeaBiosConfig();
        using var a = await RunTo(config, 3_000_000);
        byte[] file = await Save(a);
        long saved = a.InstructionCount;
        await a.PauseAtInstruction(saved + 4_000_000).WaitAsync(Wait);
        string expected = await a.StateHash();

        using var b = new Machine(config);
        await b.LoadState(new MemoryStream(file)).WaitAsync(Wait);
        Assert.Equal(MachineState.Paused, b.State);
        Assert.Equal(saved, b.InstructionCount);
        await b.PauseAtInstruction(saved + 4_000_000).WaitAsync(Wait);
        Assert.Equal(a.InstructionCount, b.InstructionCount);
        Assert.Equal(a.Clock.NowNs, b.Clock.NowNs);
        Assert.Equal(expected, await b.StateHash());
        Assert.Equal(a.ReadScreenText(), b.ReadScreenText());
        Assert.Contains("SeaBIOS", b.ReadScreenText());
    }

    [SeaBiosFact]
    public async Task EveryComponentRoundTripsToIdenticalBytes()
    {
        var config = SeaBiosConfig();
        using var a = await RunTo(config, 5_000_000);
        var (first, _) = await a.CaptureState();
        using var b = new Machine(config);
        await b.LoadState(first).WaitAsync(Wait);
        var (second, _) = await b.CaptureState();

        Assert.Equal(first.Components.Select(c => c.Name), second.Components.Select(c => c.Name));
        foreach (var c in first.Components)
        {
            var d = second.Find(c.Name)!;
            Assert.True(c.Json.AsSpan().SequenceEqual(d.Json), $"component '{c.Name}' changed in a round trip:\n{System.Text.Encoding.UTF8.GetString(c.Json)}\n{System.Text.Encoding.UTF8.GetString(d.Json)}");
            Assert.Equal(c.Version, d.Version);
            Assert.Equal(c.Areas.Count, d.Areas.Count);
            for (int i = 0; i < c.Areas.Count; i++)
            {
                Assert.Equal(c.Areas[i].Image.PresentBitmap, d.Areas[i].Image.PresentBitmap);
                Assert.True(c.Areas[i].Image.Pages.AsSpan().SequenceEqual(d.Areas[i].Image.Pages), $"area {c.Name}/{c.Areas[i].Name} changed");
            }
        }
        // Every device of the board is in the file, each under its own name.
        foreach (var name in new[] { "machine", "memory", "cpu", "pci-bus", "pci-00.0", "pci-01.0", "pci-01.1", "pci-02.0", "port-a", "port-b",
                     "pit", "rtc", "i8042", "com1", "dma", "floppy", "fpu-error", "ide", "vga", "fw-cfg", "pic", "timers" })
            Assert.NotNull(first.Find(name));
        using var f1 = new MemoryStream();
        using var f2 = new MemoryStream();
        StateFile.Write(f1, first);
        StateFile.Write(f2, second);
        Assert.Equal(f1.ToArray(), f2.ToArray());
    }

    [SeaBiosFact]
    public async Task RamIsCompressedAndZeroPagesAreSkipped()
    {
        using var a = await RunTo(SeaBiosConfig(memoryMiB: 256), 3_000_000);
        var (snapshot, _) = await a.CaptureState();
        var ram = snapshot.Find("memory")!.Areas.Single(x => x.Name == "ram").Image;
        Assert.Equal(256L * 1024 * 1024, ram.Length);
        Assert.True(ram.Pages.Length < 4 * 1024 * 1024, $"{ram.Pages.Length} bytes of non-zero pages stored");
        byte[] file = await Save(a);
        Assert.True(file.Length < 2 * 1024 * 1024, $"state file of {file.Length} bytes for a guest using little memory");
    }

    // ---- bad files: refused with a message naming the problem; the running machine is untouched ----

    private static byte[] Rewrite(byte[] file, Func<List<ComponentState>, List<ComponentState>> edit)
    {
        var snapshot = StateFile.Read(file);
        using var ms = new MemoryStream();
        StateFile.Write(ms, new MachineSnapshot(edit(snapshot.Components.ToList())));
        return ms.ToArray();
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "format", "format version 7 is not supported (this build reads format versions 1 to 2)" },
        { "component-version", "component 'pit' has state version 99; this build reads version 1" },
        { "unknown-component", "unknown component(s) 'sound-blaster': this build has no such device" },
        { "missing-component", "component(s) 'rtc' missing" },
        { "truncated", "the file is truncated" },
        { "checksum", "checksum mismatch" },
        { "not-a-state-file", "not a VmPortal machine state file" },
        { "fields", "state component 'cpu' (version 1): its fields do not match this build" },
        // refused at the last component, after RAM and VRAM were read: a running machine's arrays, which the new board
        // reuses, must be as they were
        { "late-fields", "state component 'timers' (version 1): its fields do not match this build" },
        { "memory", "saved 32, this machine 64" },
    };

    [SeaBiosTheory]
    [MemberData(nameof(BadFiles))]
    public async Task BadFilesAreRefusedAndTheMachineIsUntouched(string kind, string message)
    {
        var config = SeaBiosConfig();
        using var source = await RunTo(config, 2_000_000);
        byte[] good = await Save(source);
        byte[] bad = kind switch
        {
            "format" => Patch(good, 8, 7),
            "component-version" => Rewrite(good, cs => cs.Select(c => c.Name == "pit" ? new ComponentState(c.Name, 99, c.Json, c.Areas) : c).ToList()),
            "unknown-component" => Rewrite(good, cs => [.. cs, new ComponentState("sound-blaster", 1, "{}"u8.ToArray(), [])]),
            "missing-component" => Rewrite(good, cs => cs.Where(c => c.Name != "rtc").ToList()),
            "truncated" => good[..(good.Length / 2)],
            "checksum" => Flip(good, good.Length / 2),
            "not-a-state-file" => "hello, world"u8.ToArray(),
            "fields" => Rewrite(good, cs => cs.Select(c => c.Name == "cpu"
                ? new ComponentState(c.Name, c.Version, System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(c.Json).Replace("\"Eax\"", "\"Rax\"")), c.Areas) : c).ToList()),
            "late-fields" => Rewrite(good, cs => cs.Select(c => c.Name == "timers"
                ? new ComponentState(c.Name, c.Version, System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(c.Json).Replace("\"Timers\"", "\"Clocks\"")), c.Areas) : c).ToList()),
            "memory" => good,
            _ => throw new ArgumentException(kind),
        };

        // A fresh machine stays unstarted.
        using (var fresh = new Machine(kind == "memory" ? SeaBiosConfig(memoryMiB: 64) : config))
        {
            var e = await Assert.ThrowsAsync<InvalidDataException>(() => fresh.LoadState(new MemoryStream(bad)));
            Assert.Contains(message, e.Message);
            Assert.StartsWith("machine state file: ", e.Message);
            Assert.Equal(MachineState.Created, fresh.State);
        }

        // A running machine keeps its state and goes on running.
        using var running = await RunTo(kind == "memory" ? SeaBiosConfig(memoryMiB: 64) : config, 1_000_000);
        string before = await running.StateHash();
        var e2 = await Assert.ThrowsAsync<InvalidDataException>(() => running.LoadState(new MemoryStream(bad)));
        Assert.Contains(message, e2.Message);
        Assert.Equal(before, await running.StateHash());
        await running.PauseAtInstruction(2_000_000).WaitAsync(Wait);
        Assert.True(running.InstructionCount >= 2_000_000);
    }

    [SeaBiosFact]
    public async Task ARunningMachineRevertsToALoadedState()
    {
        var config = SeaBiosConfig();
        using var m = await RunTo(config, 2_000_000);
        byte[] file = await Save(m);
        string atSave = await m.StateHash();
        await m.PauseAtInstruction(5_000_000).WaitAsync(Wait);
        Assert.NotEqual(atSave, await m.StateHash());
        string? reason = null;
        m.ResetOccurred += r => reason = r;
        await m.LoadState(new MemoryStream(file)).WaitAsync(Wait);
        Assert.Equal("machine state loaded", reason);
        Assert.Equal(atSave, await m.StateHash());
        Assert.Equal(MachineState.Paused, m.State);
    }

    [Fact]
    public async Task SavingAMachineThatIsNotRunningIsRefused()
    {
        using var m = new Machine(SeaBiosConfig());
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => m.SaveState(new MemoryStream()));
        Assert.Contains("not running", e.Message);
    }

    private static byte[] Patch(byte[] file, int offset, uint value)
    {
        var copy = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] Flip(byte[] file, int offset)
    {
        var copy = (byte[])file.Clone();
        copy[offset] ^= 0x40;
        return copy;
    }
}

public sealed class SeaBiosTheoryAttribute : TheoryAttribute
{
    public SeaBiosTheoryAttribute()
    {
        if (FirmwareFiles.FindBios() == null) Skip = FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName);
    }
}

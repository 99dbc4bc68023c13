using System.Buffers.Binary;
using System.Diagnostics;
using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Tests.Cpu;

namespace VmPortal.Emulator.Tests.Platform;

/// <summary>
/// Guest time as a guest measures it: the TSC calibrated against PIT counter 2 (gated and read through port 0x61),
/// the way Linux (arch/x86/kernel/tsc.c, pit_calibrate_tsc) and memtest86+ (50 ms) do it. The TSC and the PIT
/// must agree on the frequency, and the TSC deltas of the polling loop must be steady enough for Linux's
/// "no SMI hit us" check (max delta at most 10× the min delta), however the host schedules the machine thread.
/// </summary>
public class GuestTimeTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private const int Rounds = 5;

    /// <summary>
    /// Real-mode firmware (4 KiB, reset vector at F000:FFF0): <c>ROUNDS</c> times, starts counter 2 in mode 0 with
    /// <c>LATCH</c>, polls port 0x61 bit 5 (OUT) reading RDTSC each time, then writes four little-endian dwords to
    /// port 0xE9: total TSC ticks, polls, smallest and largest TSC delta between two polls.
    /// </summary>
    private const string CalibrationSource = """
        bits 16
        org 0xF000
        start:
            cli
            xor ax, ax
            mov ss, ax
            mov sp, 0x7000
            mov cx, ROUNDS
        round:
            push cx
            in al, 0x61
            and al, 0xFC            ; speaker data off, gate low
            or al, 0x01             ; gate high
            out 0x61, al
            mov al, 0xB0            ; counter 2, lobyte/hibyte, mode 0, binary
            out 0x43, al
            mov al, LATCH & 0xFF
            out 0x42, al
            mov al, LATCH >> 8
            out 0x42, al
            mov ebp, 0xFFFFFFFF     ; smallest delta
            xor ebx, ebx            ; largest delta
            xor ecx, ecx            ; polls
            rdtsc
            mov esi, eax            ; start
            mov edi, eax            ; previous read
            nop                     ; (so the first delta, like every other, spans 13 instructions)
            nop
            nop
            nop
            nop
            nop
            nop
        .poll:
            in al, 0x61
            test al, 0x20           ; counter 2 OUT: terminal count reached
            jnz .done
            rdtsc
            mov edx, eax
            sub edx, edi
            mov edi, eax
            cmp edx, ebp
            cmovb ebp, edx
            cmp edx, ebx
            cmova ebx, edx
            inc ecx
            jmp .poll
        .done:
            rdtsc
            sub eax, esi
            call out32
            mov eax, ecx
            call out32
            mov eax, ebp
            call out32
            mov eax, ebx
            call out32
            pop cx
            loop round
        halt:
            hlt
            jmp halt

        out32:                      ; EAX as 4 bytes to port 0xE9
            push cx
            mov cx, 4
        .byte:
            out 0xE9, al
            shr eax, 8
            loop .byte
            pop cx
            ret

            times 0xFF0-($-$$) db 0
            jmp 0xF000:start
            times 0x1000-($-$$) db 0
        """;

    private readonly record struct Round(uint Ticks, uint Polls, uint MinDelta, uint MaxDelta);

    private static string _lastRun = "";

    private static async Task<Round[]> Calibrate(int latch, long tscHz, bool deterministic)
    {
        string source = $"%define ROUNDS {Rounds}\n%define LATCH {latch}\n" + CalibrationSource;
        byte[] image = AsmProgram.Assemble(source, "pitcal");
        var config = new MachineConfig
        {
            Name = "pit-calibration",
            MemoryMiB = 16,
            BiosPath = TestGuests.WriteTemp(image, "pitcal"),
            TscFrequencyHz = tscHz,
            DeterministicClock = deterministic,
        };
        using var machine = new Machine(config);
        var bytes = new List<byte>();
        machine.DebugOutput += b => { lock (bytes) bytes.AddRange(b); };
        await machine.Start().WaitAsync(Wait);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            lock (bytes) if (bytes.Count >= Rounds * 16) break;
            Assert.True(machine.State == MachineState.Running, $"machine stopped: {machine.CrashReason}");
            if (sw.Elapsed > Wait) throw new TimeoutException($"calibration rounds not finished: {bytes.Count} bytes, {machine.DescribeCpu()}");
            await Task.Delay(20);
        }
        await machine.PowerOff().WaitAsync(Wait);
        _lastRun = $"{machine.InstructionCount:N0} instructions in {sw.Elapsed.TotalMilliseconds:F0} ms host, {machine.Clock.NowNs / 1e6:F0} ms guest";
        var data = bytes.ToArray().AsSpan();
        var rounds = new Round[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            var r = data.Slice(i * 16, 16);
            rounds[i] = new Round(BinaryPrimitives.ReadUInt32LittleEndian(r), BinaryPrimitives.ReadUInt32LittleEndian(r[4..]),
                BinaryPrimitives.ReadUInt32LittleEndian(r[8..]), BinaryPrimitives.ReadUInt32LittleEndian(r[12..]));
        }
        return rounds;
    }

    private static string Describe(Round[] rounds, double expected) => _lastRun + ": " + string.Join("; ", rounds.Select(r =>
        $"{r.Ticks} ticks ({r.Ticks / expected:P1} of expected), {r.Polls} polls, delta {r.MinDelta}..{r.MaxDelta}"));

    [GuestAsmTheory]
    [InlineData(11931, 1_000_000_000L)]   // Linux: 10 ms (CAL_LATCH), the default 1 GHz TSC
    [InlineData(59659, 1_000_000_000L)]   // memtest86+: 50 ms
    [InlineData(11931, 2_500_000_000L)]   // another configured TSC rate is what the guest measures
    public async Task TheTscMeasuredAgainstPitCounter2MatchesTheConfiguredFrequency(int latch, long tscHz)
    {
        var rounds = await Calibrate(latch, tscHz, deterministic: false);
        double expected = (double)latch / Pit8254.FrequencyHz * tscHz;
        string all = Describe(rounds, expected);
        foreach (var r in rounds)
        {
            // The measured interval ends at the first poll after OUT rose: a little over the PIT interval.
            Assert.True(r.Ticks > expected * 0.995 && r.Ticks < expected * 1.02, $"TSC/PIT disagree: {all}");
            // Linux also wants >= 1000 polls per 10 ms: that is host speed (~2 MIPS), checked by benchmarks, not here.
            Assert.True(r.Polls > 0, all);
            Assert.True(r.MaxDelta <= 10L * r.MinDelta, $"TSC jitter between polls would fail Linux's SMI check: {all}");
        }
    }

    [GuestAsmFact]
    public async Task WithADeterministicClockTheCalibrationIsExact()
    {
        const int latch = 11931;
        var rounds = await Calibrate(latch, 1_000_000_000, deterministic: true);
        double expected = (double)latch / Pit8254.FrequencyHz * 1e9;
        foreach (var r in rounds)
        {
            Assert.InRange(r.Ticks, expected, expected * 1.001);
            // Every poll is 13 instructions at 10 ns.
            Assert.Equal(130u, r.MinDelta);
            Assert.Equal(130u, r.MaxDelta);
        }
    }
}

/// <summary>A fact running a nasm-assembled guest on a whole machine: skipped without the CPU or nasm.</summary>
public sealed class GuestAsmFactAttribute : FactAttribute
{
    public GuestAsmFactAttribute() => Skip = GuestAsm.SkipReason;
}

/// <summary>A theory running a nasm-assembled guest on a whole machine: skipped without the CPU or nasm.</summary>
public sealed class GuestAsmTheoryAttribute : TheoryAttribute
{
    public GuestAsmTheoryAttribute() => Skip = GuestAsm.SkipReason;
}

internal static class GuestAsm
{
    public static string? SkipReason => TestGuests.CpuMissing
        ?? (AsmProgram.Nasm == null ? "nasm not installed: run scripts/install-deps.sh test" : null);
}

namespace VmPortal.Emulator.Devices.Acpi;

/// <summary>
/// The ACPI power-management timer (PM_TMR): a free-running 24-bit counter at 3.579545 MHz (the colour-burst
/// crystal), read as a 32-bit register at PMBA+8 of the <see cref="Piix4PowerManagement"/> function. The count
/// follows guest time (<see cref="Timing.MachineClock.NowNs"/>), so it agrees with the PIT, RTC and TSC. Bit 23
/// toggling sets TMR_STS in PM1_STS (every 2^23 ticks, 2.34 s), which raises an SCI when TMR_EN is set.
/// Guests: SeaBIOS (its timer source once the PIIX4 PM is found), Linux (clocksource acpi_pm, TSC calibration
/// reference), memtest86+ (TSC calibration when the FADT has a PM timer).
/// </summary>
public static class AcpiPmTimer
{
    public const long FrequencyHz = 3_579_545;
    public const uint CounterMask = 0x00FF_FFFF;
    /// <summary>TMR_STS is set each time bit 23 of the counter changes.</summary>
    public const long TicksPerStatus = 1L << 23;

    /// <summary>Ticks since power-on at guest time <paramref name="ns"/> (not wrapped).</summary>
    public static long TicksAt(long ns) => ns <= 0 ? 0 : (long)((Int128)ns * FrequencyHz / 1_000_000_000);

    /// <summary>The 24-bit register value at guest time <paramref name="ns"/>.</summary>
    public static uint ValueAt(long ns) => (uint)(TicksAt(ns) & CounterMask);

    /// <summary>The first guest time (ns) at which the tick count is at least <paramref name="ticks"/>.</summary>
    public static long NsForTicks(long ticks) =>
        ticks <= 0 ? 0 : (long)(((Int128)ticks * 1_000_000_000 + FrequencyHz - 1) / FrequencyHz);
}

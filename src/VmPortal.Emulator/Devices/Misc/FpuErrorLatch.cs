using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Misc;

/// <summary>
/// The PC/AT x87 error wiring: the CPU's FERR# (an unmasked x87 exception with CR0.NE = 0) raises IRQ 13 through
/// a latch, and any write to port 0xF0 clears the latch and asserts IGNNE# until FERR# drops, so the handler's next
/// FPU instruction does not fault again. The machine calls <see cref="SetFerr"/> from the CPU's
/// <c>FerrChanged</c> callback and gives <see cref="IgnoreNumericError"/> to the FPU.
/// Guests: DOS-era software and old Linux FPU error paths (modern Linux sets CR0.NE and uses #MF instead).
/// </summary>
public sealed class FpuErrorLatch
{
    public const ushort ClearPort = 0xF0;
    public const int Irq = 13;

    private readonly IIrqSink _irq;
    private bool _ferr, _latched;

    public FpuErrorLatch(IoBus io, IIrqSink irq)
    {
        _irq = irq;
        io.Register(ClearPort, 1, null, (p, s, v) => Clear());
    }

    /// <summary>IGNNE#: set by a write to 0xF0 while FERR# is asserted, cleared when FERR# drops.</summary>
    public bool IgnoreNumericError { get; private set; }

    /// <summary>FERR# from the CPU.</summary>
    public void SetFerr(bool asserted)
    {
        if (asserted == _ferr) return;
        _ferr = asserted;
        if (asserted)
        {
            if (!IgnoreNumericError && !_latched) { _latched = true; _irq.SetIrq(Irq, true); }
        }
        else IgnoreNumericError = false;
    }

    public void Reset()
    {
        _ferr = _latched = IgnoreNumericError = false;
        _irq.SetIrq(Irq, false);
    }

    /// <summary>Named, versioned state for machine snapshots (the IRQ 13 line itself is restored with the PIC).</summary>
    public sealed record State(int Version, bool Ferr, bool Latched, bool IgnoreNumericError)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _ferr, _latched, IgnoreNumericError);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"FERR latch state version {s.Version} is not supported.");
        (_ferr, _latched, IgnoreNumericError) = (s.Ferr, s.Latched, s.IgnoreNumericError);
    }

    private void Clear()
    {
        if (_latched) { _latched = false; _irq.SetIrq(Irq, false); }
        if (_ferr) IgnoreNumericError = true;
    }
}

namespace VmPortal.Emulator.Io;

/// <summary>
/// Where devices signal their interrupt lines (ISA IRQ 0–15, PCI lines routed onto them).
/// Edge-triggered ISA devices raise then lower; level-triggered devices hold the line while they need service.
/// Implemented by the interrupt controller pair (8259 master + slave).
/// </summary>
public interface IIrqSink
{
    void SetIrq(int irq, bool level);
}

/// <summary>What the CPU asks the interrupt controller at instruction boundaries.</summary>
public interface IInterruptController
{
    /// <summary>True when an unmasked interrupt request waits for the CPU.</summary>
    bool HasPendingInterrupt { get; }

    /// <summary>The INTA cycle: returns the vector of the highest-priority request and marks it in service.</summary>
    byte AcknowledgeInterrupt();
}

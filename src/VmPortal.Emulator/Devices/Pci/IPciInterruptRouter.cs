namespace VmPortal.Emulator.Devices.Pci;

/// <summary>Turns PCI INTx# lines into ISA IRQs (the PIIX3's PIRQ routing). Implemented by <see cref="Piix3IsaBridge"/>.</summary>
public interface IPciInterruptRouter
{
    /// <summary>Function <paramref name="device"/>.<paramref name="function"/> drives its INTx# <paramref name="pin"/> (1 = INTA#) to <paramref name="level"/>.</summary>
    void SetPciIntx(int device, int function, int pin, bool level);
}

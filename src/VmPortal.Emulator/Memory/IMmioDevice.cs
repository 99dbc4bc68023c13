namespace VmPortal.Emulator.Memory;

/// <summary>A device mapped into the physical address space (VGA window, linear framebuffer, APIC…).
/// Addresses are absolute physical addresses; size is 1, 2 or 4 bytes.</summary>
public interface IMmioDevice
{
    uint MmioRead(uint address, int size);
    void MmioWrite(uint address, int size, uint value);
}

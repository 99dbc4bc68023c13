namespace VmPortal.Emulator.Devices.Rtc;

/// <summary>Boot device codes SeaBIOS reads from CMOS bytes 0x3D/0x38 (QEMU's convention).</summary>
public enum CmosBootDevice : byte
{
    None = 0, Floppy = 1, HardDisk = 2, CdRom = 3, Network = 4,
}

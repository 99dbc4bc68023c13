namespace VmPortal.Emulator.Devices.FwCfg;

/// <summary>
/// OpenFirmware-style device paths for the fw_cfg "bootorder" file, in the form SeaBIOS builds for our PCI layout
/// (PIIX3 ISA bridge at 01.0, PIIX IDE at 01.1) and matches with its glob rules (src/boot.c).
/// </summary>
public static class FwCfgBootPaths
{
    /// <summary>IDE drive on <paramref name="channel"/> (0 primary, 1 secondary), <paramref name="slave"/> = 0 master / 1 slave.</summary>
    public static string Ide(int channel, int slave) => $"/pci@i0cf8/ide@1,1/drive@{channel:x}/disk@{slave:x}";

    /// <summary>Floppy drive <paramref name="unit"/> on the controller at 0x3F0.</summary>
    public static string Floppy(int unit) => $"/pci@i0cf8/isa@1/fdc@03f0/floppy@{unit:x}";

    /// <summary>A PCI device (its option ROM boots, e.g. a NIC): <paramref name="name"/> is free text such as "ethernet".</summary>
    public static string Pci(string name, int device, int function = 0) =>
        function == 0 ? $"/pci@i0cf8/{name}@{device:x}" : $"/pci@i0cf8/{name}@{device:x},{function:x}";

    /// <summary>Stops the boot list here instead of falling back to other devices.</summary>
    public const string Halt = "HALT";
}

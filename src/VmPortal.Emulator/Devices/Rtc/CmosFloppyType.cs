namespace VmPortal.Emulator.Devices.Rtc;

/// <summary>Floppy drive types as the CMOS (byte 0x10) and the BIOS encode them.</summary>
public enum CmosFloppyType : byte
{
    None = 0, Kb360 = 1, Mb1_2 = 2, Kb720 = 3, Mb1_44 = 4, Mb2_88 = 5,
}

using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Devices.Floppy;

/// <summary>
/// One floppy drive on the <see cref="FloppyController"/>: its head position, the inserted medium and its geometry
/// (guessed from the image size: 160 K … 2.88 M; anything else is treated as 1.44 M), and the disk-change line.
/// Insert/eject from the host on the machine thread.
/// </summary>
public sealed class FloppyDrive
{
    private static readonly (long Size, int Cylinders, int Heads, int Sectors)[] Formats =
    {
        (160 * 1024, 40, 1, 8), (180 * 1024, 40, 1, 9), (320 * 1024, 40, 2, 8), (360 * 1024, 40, 2, 9),
        (720 * 1024, 80, 2, 9), (1200 * 1024, 80, 2, 15), (1440 * 1024, 80, 2, 18), (1680 * 1024, 80, 2, 21),
        (2880 * 1024, 80, 2, 36),
    };

    public FloppyDrive(int unit) => Unit = unit;

    public int Unit { get; }
    public IDiskImage? Media { get; private set; }
    public int Cylinders { get; private set; } = 80;
    public int Heads { get; private set; } = 2;
    public int SectorsPerTrack { get; private set; } = 18;
    /// <summary>Cylinder under the head.</summary>
    public int Cylinder { get; internal set; }
    /// <summary>Disk change line (DIR bit 7): set at power-on and on eject/insert, cleared by a step with a disk in.</summary>
    public bool DiskChanged { get; internal set; } = true;
    public bool HasMedia => Media != null;
    public bool WriteProtected => Media?.IsReadOnly ?? false;

    public void Insert(IDiskImage media)
    {
        Media = media;
        DiskChanged = true;
        var f = Formats.FirstOrDefault(x => x.Size == media.Length);
        if (f.Size == 0) f = (1440 * 1024, 80, 2, 18);
        (Cylinders, Heads, SectorsPerTrack) = (f.Cylinders, f.Heads, f.Sectors);
    }

    public void Eject()
    {
        Media = null;
        DiskChanged = true;
    }

    /// <summary>Logical sector for C/H/S (S from 1), or -1 when outside the medium.</summary>
    public long Lba(int cylinder, int head, int sector)
    {
        if (cylinder < 0 || cylinder >= Cylinders || head < 0 || head >= Heads || sector < 1 || sector > SectorsPerTrack) return -1;
        return ((long)cylinder * Heads + head) * SectorsPerTrack + sector - 1;
    }
}

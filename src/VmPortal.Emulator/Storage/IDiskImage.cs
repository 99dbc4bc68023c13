namespace VmPortal.Emulator.Storage;

/// <summary>
/// A disk image addressed in 512-byte sectors (hard disks, CD-ROM media, floppies).
/// CD-ROM media are read in 2048-byte blocks as four consecutive sectors.
/// Reads past the end of the image return zeros; writes past the end are ignored
/// (a device checks the range first and reports an error to the guest).
/// Implementations are used from the machine thread only; they need not be thread safe.
/// </summary>
public interface IDiskImage : IDisposable
{
    /// <summary>Bytes per sector for every image.</summary>
    public const int SectorSize = 512;

    /// <summary>Size of the image in bytes (may be a non-multiple of 512 for foreign raw files).</summary>
    long Length { get; }

    /// <summary>Number of whole or partial sectors: ceil(Length / 512).</summary>
    long SectorCount { get; }

    bool IsReadOnly { get; }

    /// <summary>Reads <c>buffer.Length / 512</c> sectors starting at <paramref name="sector"/>. The length must be a multiple of 512.</summary>
    void Read(long sector, Span<byte> buffer);

    /// <summary>Writes whole sectors. Throws <see cref="InvalidOperationException"/> on a read-only image.</summary>
    void Write(long sector, ReadOnlySpan<byte> buffer);

    /// <summary>Makes written data durable (fsync for file-backed images).</summary>
    void Flush();
}

/// <summary>Argument checks shared by the image implementations.</summary>
internal static class DiskImageChecks
{
    public static void CheckBuffer(long sector, int length)
    {
        if (sector < 0) throw new ArgumentOutOfRangeException(nameof(sector));
        if (length % IDiskImage.SectorSize != 0)
            throw new ArgumentException("Buffer length must be a multiple of 512 bytes.");
    }

    /// <summary>How many bytes of a transfer at byte <paramref name="offset"/> of <paramref name="length"/> bytes lie inside an image of <paramref name="size"/> bytes.</summary>
    public static int InRange(long offset, int length, long size)
    {
        if (offset >= size) return 0;
        return (int)Math.Min(length, size - offset);
    }
}

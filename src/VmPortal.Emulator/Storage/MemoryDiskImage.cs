namespace VmPortal.Emulator.Storage;

/// <summary>A disk image held in a byte array: scratch disks, tests, small floppies.</summary>
public sealed class MemoryDiskImage : IDiskImage
{
    private readonly byte[] _data;

    /// <summary>A zero-filled writable image of <paramref name="sizeBytes"/> bytes.</summary>
    public MemoryDiskImage(int sizeBytes) : this(new byte[sizeBytes], readOnly: false) { }

    /// <summary>Wraps <paramref name="data"/> (not copied: writes land in it).</summary>
    public MemoryDiskImage(byte[] data, bool readOnly)
    {
        _data = data;
        IsReadOnly = readOnly;
    }

    public long Length => _data.Length;
    public long SectorCount => (Length + IDiskImage.SectorSize - 1) / IDiskImage.SectorSize;
    public bool IsReadOnly { get; }

    /// <summary>The bytes of the image (for tests and snapshots).</summary>
    public ReadOnlySpan<byte> Data => _data;

    public void Read(long sector, Span<byte> buffer)
    {
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int n = DiskImageChecks.InRange(offset, buffer.Length, _data.Length);
        if (n > 0) _data.AsSpan((int)offset, n).CopyTo(buffer);
        buffer[n..].Clear();
    }

    public void Write(long sector, ReadOnlySpan<byte> buffer)
    {
        if (IsReadOnly) throw new InvalidOperationException("The image is read-only.");
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int n = DiskImageChecks.InRange(offset, buffer.Length, _data.Length);
        if (n > 0) buffer[..n].CopyTo(_data.AsSpan((int)offset));
    }

    public void Flush() { }

    public void Dispose() { }
}

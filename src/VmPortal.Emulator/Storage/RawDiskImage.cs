using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// A raw image file (.img, .iso): sector n is at byte n×512. Opened read-only or read-write.
/// Uses positional I/O (<see cref="RandomAccess"/>), so nothing is buffered or preallocated:
/// <see cref="Create"/> makes a sparse file, and only written sectors take space on the host.
/// </summary>
public sealed class RawDiskImage : IDiskImage
{
    private readonly SafeFileHandle _handle;
    private bool _disposed;

    public RawDiskImage(string path, bool readOnly)
    {
        Path = path;
        IsReadOnly = readOnly;
        _handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            readOnly ? FileShare.Read : FileShare.None);
        Length = RandomAccess.GetLength(_handle);
    }

    /// <summary>Creates (or truncates) a zero-filled sparse image of <paramref name="sizeBytes"/> bytes and opens it read-write.</summary>
    public static RawDiskImage Create(string path, long sizeBytes)
    {
        if (sizeBytes <= 0 || sizeBytes % IDiskImage.SectorSize != 0)
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), "Size must be a positive multiple of 512.");
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            fs.SetLength(sizeBytes); // extends without writing: a hole on file systems that support them
        return new RawDiskImage(path, readOnly: false);
    }

    public string Path { get; }
    public long Length { get; }
    public long SectorCount => (Length + IDiskImage.SectorSize - 1) / IDiskImage.SectorSize;
    public bool IsReadOnly { get; }

    public void Read(long sector, Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int n = DiskImageChecks.InRange(offset, buffer.Length, Length);
        int done = 0;
        while (done < n)
        {
            int r = RandomAccess.Read(_handle, buffer.Slice(done, n - done), offset + done);
            if (r <= 0) break; // file shrank under us: the rest reads as zeros
            done += r;
        }
        buffer[done..].Clear();
    }

    public void Write(long sector, ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsReadOnly) throw new InvalidOperationException("The image is read-only.");
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int n = DiskImageChecks.InRange(offset, buffer.Length, Length);
        if (n > 0) RandomAccess.Write(_handle, buffer[..n], offset);
    }

    public void Flush()
    {
        if (!_disposed && !IsReadOnly) RandomAccess.FlushToDisk(_handle);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _handle.Dispose();
    }
}

using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// Common base of the file formats: byte-granular <see cref="ReadAt"/>/<see cref="WriteAt"/> (clipped to
/// <see cref="Length"/>; reads past the end give zeros) under the sector-based <see cref="IDiskImage"/> calls, and
/// the backing image (if any), which is disposed with this one.
/// </summary>
public abstract class DiskImageBase : IDiskImage
{
    private bool _disposed;

    protected DiskImageBase(string path, bool readOnly)
    {
        Path = path;
        IsReadOnly = readOnly;
    }

    /// <summary>The image file.</summary>
    public string Path { get; }
    public abstract DiskFormat Format { get; }
    public abstract long Length { get; }
    public long SectorCount => (Length + IDiskImage.SectorSize - 1) / IDiskImage.SectorSize;
    public bool IsReadOnly { get; }

    /// <summary>The image this one reads unallocated clusters from (qcow2 backing file), or null.</summary>
    public DiskImageBase? Backing { get; protected set; }

    protected bool IsDisposed => _disposed;

    public void Read(long sector, Span<byte> buffer)
    {
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        ReadAt(sector * IDiskImage.SectorSize, buffer);
    }

    public void Write(long sector, ReadOnlySpan<byte> buffer)
    {
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        WriteAt(sector * IDiskImage.SectorSize, buffer);
    }

    /// <summary>Reads bytes at any offset; the part past <see cref="Length"/> reads as zeros.</summary>
    public void ReadAt(long offset, Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        int n = DiskImageChecks.InRange(offset, buffer.Length, Length);
        if (n > 0) ReadCore(offset, buffer[..n]);
        buffer[Math.Max(n, 0)..].Clear();
    }

    /// <summary>Writes bytes at any offset; the part past <see cref="Length"/> is dropped.</summary>
    public void WriteAt(long offset, ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsReadOnly) throw new InvalidOperationException("The image is read-only.");
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        int n = DiskImageChecks.InRange(offset, buffer.Length, Length);
        if (n > 0) WriteCore(offset, buffer[..n]);
    }

    /// <summary>Reads <paramref name="buffer"/>.Length bytes, all inside the image.</summary>
    protected abstract void ReadCore(long offset, Span<byte> buffer);
    /// <summary>Writes <paramref name="buffer"/>.Length bytes, all inside the image; the image is writable.</summary>
    protected abstract void WriteCore(long offset, ReadOnlySpan<byte> buffer);

    /// <summary>Data and metadata on stable storage (fsync); nothing for read-only images.</summary>
    public abstract void Flush();

    protected abstract void DisposeCore();

    public void Dispose()
    {
        if (_disposed) return;
        try { DisposeCore(); }
        finally
        {
            _disposed = true;
            Backing?.Dispose();
        }
        GC.SuppressFinalize(this);
    }

    // ---- helpers for the formats ----

    /// <summary>Reads exactly buffer.Length bytes at <paramref name="offset"/>; bytes past the end of the file read as zeros.</summary>
    internal static void ReadFile(SafeFileHandle handle, long offset, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int r = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (r <= 0) break;
            done += r;
        }
        buffer[done..].Clear();
    }

    /// <summary>Reads exactly buffer.Length bytes or throws <see cref="InvalidDataException"/> naming <paramref name="what"/>.</summary>
    internal static void ReadExact(SafeFileHandle handle, long offset, Span<byte> buffer, long fileLength, string what, string path)
    {
        if (offset < 0 || offset + buffer.Length > fileLength)
            throw new InvalidDataException($"{System.IO.Path.GetFileName(path)}: {what} at offset {offset} lies past the end of the file ({fileLength} bytes)");
        ReadFile(handle, offset, buffer);
    }
}

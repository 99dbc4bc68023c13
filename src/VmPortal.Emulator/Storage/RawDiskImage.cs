using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// A raw image file (.img, .iso): sector n is at byte n×512. Opened read-only or read-write.
/// Uses positional I/O (<see cref="RandomAccess"/>), so nothing is buffered or preallocated:
/// <see cref="Create"/> makes a sparse file, and only written sectors take space on the host.
/// A transfer is one read or write call whatever its length.
/// </summary>
public sealed class RawDiskImage : DiskImageBase
{
    private readonly SafeFileHandle _handle;
    private long _length;

    public RawDiskImage(string path, bool readOnly) : base(path, readOnly)
    {
        _handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            readOnly ? FileShare.Read : FileShare.None);
        _length = RandomAccess.GetLength(_handle);
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

    public override DiskFormat Format => DiskFormat.Raw;
    public override long Length => _length;

    protected override void ReadCore(long offset, Span<byte> buffer) => ReadFile(_handle, offset, buffer);

    protected override void WriteCore(long offset, ReadOnlySpan<byte> buffer) => RandomAccess.Write(_handle, buffer, offset);

    /// <summary>Grows the file (sparse) to <paramref name="newLength"/> bytes.</summary>
    internal void Grow(long newLength)
    {
        if (newLength < _length) throw new ArgumentOutOfRangeException(nameof(newLength), "Images only grow.");
        RandomAccess.SetLength(_handle, newLength);
        _length = newLength;
    }

    public override void Flush()
    {
        if (!IsDisposed && !IsReadOnly) RandomAccess.FlushToDisk(_handle);
    }

    protected override void DisposeCore() => _handle.Dispose();
}

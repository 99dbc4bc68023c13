using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// Copy-on-write overlay over a read-only base image (linked clones, snapshots). The base is only ever read;
/// every write lands in the overlay file, one cluster at a time.
///
/// Overlay file format, version 1 (all integers little endian):
/// <code>
///   0  8 bytes  magic "VMPCOW1\n"
///   8  u32      version (1)
///  12  u32      cluster size in bytes (power of two, 4 KiB – 1 MiB)
///  16  u64      virtual size in bytes (must equal the base image's size)
///  24  u64      cluster count = ceil(virtual size / cluster size)
///  32  u64      offset of the cluster table (4096)
///  40  u64      offset of the first data cluster (table end rounded up to 4096)
///  48…4095      zero
/// table:        one u64 per cluster: 0 = not in the overlay (read from the base), otherwise the byte
///               offset of that cluster's data in the overlay file.
/// data:         whole clusters appended at the end of the file as they are first written.
/// </code>
/// A first write to a cluster copies the base's bytes for the rest of the cluster, appends the cluster,
/// then writes its table entry (data before pointer, so a crash never exposes a cluster of garbage).
/// </summary>
public sealed class CowDiskImage : IDiskImage
{
    public const int HeaderSize = 4096;
    public const int DefaultClusterSize = 64 * 1024;
    public const uint Version = 1;
    private static ReadOnlySpan<byte> Magic => "VMPCOW1\n"u8;
    private const int MagicOffset = 0, VersionOffset = 8, ClusterSizeOffset = 12, VirtualSizeOffset = 16;
    private const int ClusterCountOffset = 24, TableOffsetOffset = 32, DataOffsetOffset = 40;

    private readonly IDiskImage _base;
    private readonly SafeFileHandle _overlay;
    private readonly long[] _table;
    private readonly int _clusterSize;
    private readonly long _tableOffset;
    private long _nextFree;
    private readonly byte[] _clusterBuffer;
    private readonly byte[] _entryBuffer = new byte[8];
    private bool _disposed;

    private CowDiskImage(IDiskImage baseImage, SafeFileHandle overlay, int clusterSize, long tableOffset, long[] table, long nextFree)
    {
        _base = baseImage;
        _overlay = overlay;
        _clusterSize = clusterSize;
        _tableOffset = tableOffset;
        _table = table;
        _nextFree = nextFree;
        _clusterBuffer = new byte[clusterSize];
    }

    /// <summary>Creates a new, empty overlay file over <paramref name="baseImage"/> (which is never written).</summary>
    public static CowDiskImage Create(string overlayPath, IDiskImage baseImage, int clusterSize = DefaultClusterSize)
    {
        if (clusterSize < 4096 || clusterSize > 1024 * 1024 || (clusterSize & (clusterSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(clusterSize));
        long size = baseImage.Length;
        long count = (size + clusterSize - 1) / clusterSize;
        long dataStart = AlignUp(HeaderSize + count * 8, 4096);
        var header = new byte[HeaderSize];
        Magic.CopyTo(header.AsSpan(MagicOffset));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(VersionOffset), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(ClusterSizeOffset), (uint)clusterSize);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(VirtualSizeOffset), size);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(ClusterCountOffset), count);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(TableOffsetOffset), HeaderSize);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(DataOffsetOffset), dataStart);
        var handle = File.OpenHandle(overlayPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        try
        {
            RandomAccess.Write(handle, header, 0);
            RandomAccess.SetLength(handle, dataStart); // the table is a hole of zeros: "nothing in the overlay"
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return new CowDiskImage(baseImage, handle, clusterSize, HeaderSize, new long[count], dataStart);
    }

    /// <summary>Opens an existing overlay over <paramref name="baseImage"/>; throws <see cref="InvalidDataException"/> if the file is not a matching overlay.</summary>
    public static CowDiskImage Open(string overlayPath, IDiskImage baseImage)
    {
        var handle = File.OpenHandle(overlayPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        try
        {
            var header = new byte[HeaderSize];
            if (RandomAccess.Read(handle, header, 0) < 48 || !header.AsSpan(MagicOffset, 8).SequenceEqual(Magic))
                throw new InvalidDataException("Not a VmPortal copy-on-write overlay.");
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(VersionOffset));
            if (version != Version) throw new InvalidDataException($"Unsupported overlay version {version}.");
            int clusterSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(ClusterSizeOffset));
            long size = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(VirtualSizeOffset));
            long count = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(ClusterCountOffset));
            long tableOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(TableOffsetOffset));
            long dataStart = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(DataOffsetOffset));
            if (clusterSize < 4096 || clusterSize > 1024 * 1024 || (clusterSize & (clusterSize - 1)) != 0
                || count != (size + clusterSize - 1) / clusterSize || tableOffset < 48 || dataStart < tableOffset + count * 8)
                throw new InvalidDataException("Corrupt overlay header.");
            if (size != baseImage.Length)
                throw new InvalidDataException($"Overlay was made for a base of {size} bytes, this base has {baseImage.Length}.");
            var raw = new byte[count * 8];
            RandomAccess.Read(handle, raw, tableOffset);
            var table = new long[count];
            long fileLength = RandomAccess.GetLength(handle);
            for (long i = 0; i < count; i++)
            {
                long off = BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan((int)(i * 8)));
                if (off != 0 && (off < dataStart || off + clusterSize > AlignUp(fileLength, clusterSize)))
                    throw new InvalidDataException($"Overlay cluster {i} points outside the file.");
                table[i] = off;
            }
            long nextFree = Math.Max(dataStart, AlignUp(fileLength, 4096));
            return new CowDiskImage(baseImage, handle, clusterSize, tableOffset, table, nextFree);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public long Length => _base.Length;
    public long SectorCount => (Length + IDiskImage.SectorSize - 1) / IDiskImage.SectorSize;
    public bool IsReadOnly => false;
    public int ClusterSize => _clusterSize;

    /// <summary>Number of clusters that live in the overlay.</summary>
    public int AllocatedClusters
    {
        get
        {
            int n = 0;
            foreach (long t in _table) if (t != 0) n++;
            return n;
        }
    }

    public void Read(long sector, Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int inRange = DiskImageChecks.InRange(offset, buffer.Length, Length);
        buffer[inRange..].Clear();
        int done = 0;
        while (done < inRange)
        {
            long pos = offset + done;
            long cluster = pos / _clusterSize;
            int within = (int)(pos % _clusterSize);
            int n = Math.Min(_clusterSize - within, inRange - done);
            var dest = buffer.Slice(done, n);
            long at = _table[cluster];
            if (at != 0) ReadOverlay(dest, at + within);
            else ReadBase(pos, dest);
            done += n;
        }
    }

    public void Write(long sector, ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DiskImageChecks.CheckBuffer(sector, buffer.Length);
        long offset = sector * IDiskImage.SectorSize;
        int inRange = DiskImageChecks.InRange(offset, buffer.Length, Length);
        int done = 0;
        while (done < inRange)
        {
            long pos = offset + done;
            long cluster = pos / _clusterSize;
            int within = (int)(pos % _clusterSize);
            int n = Math.Min(_clusterSize - within, inRange - done);
            var src = buffer.Slice(done, n);
            long at = _table[cluster];
            if (at != 0)
            {
                RandomAccess.Write(_overlay, src, at + within);
            }
            else
            {
                // First write to this cluster: copy the base's cluster, patch it, append it, then point at it.
                long clusterStart = cluster * _clusterSize;
                ReadBase(clusterStart, _clusterBuffer);
                src.CopyTo(_clusterBuffer.AsSpan(within));
                long newAt = _nextFree;
                RandomAccess.Write(_overlay, _clusterBuffer, newAt);
                _nextFree = newAt + _clusterSize;
                BinaryPrimitives.WriteInt64LittleEndian(_entryBuffer, newAt);
                RandomAccess.Write(_overlay, _entryBuffer, _tableOffset + cluster * 8);
                _table[cluster] = newAt;
            }
            done += n;
        }
    }

    public void Flush()
    {
        if (!_disposed) RandomAccess.FlushToDisk(_overlay);
    }

    /// <summary>Closes the overlay. The base image is owned by the caller and is not disposed.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _overlay.Dispose();
    }

    private void ReadOverlay(Span<byte> dest, long fileOffset)
    {
        int done = 0;
        while (done < dest.Length)
        {
            int r = RandomAccess.Read(_overlay, dest[done..], fileOffset + done);
            if (r <= 0) { dest[done..].Clear(); return; }
            done += r;
        }
    }

    /// <summary>Reads base bytes at any byte offset (the base is sector addressed, so unaligned edges go through a bounce sector).</summary>
    private void ReadBase(long pos, Span<byte> dest)
    {
        const int S = IDiskImage.SectorSize;
        int head = (int)(pos % S);
        if (head == 0 && dest.Length % S == 0)
        {
            _base.Read(pos / S, dest);
            return;
        }
        // Cluster and sector boundaries are 512-aligned, so this path only serves partial tails of odd-sized bases.
        Span<byte> bounce = stackalloc byte[S];
        int done = 0;
        while (done < dest.Length)
        {
            long p = pos + done;
            _base.Read(p / S, bounce);
            int w = (int)(p % S);
            int n = Math.Min(S - w, dest.Length - done);
            bounce.Slice(w, n).CopyTo(dest[done..]);
            done += n;
        }
    }

    private static long AlignUp(long v, long a) => (v + a - 1) / a * a;
}

using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// QEMU's qcow2 format, versions 2 and 3 (docs/interop/qcow2.txt): a two-level table (L1 → L2 → data cluster)
/// maps each guest cluster to a host cluster; unallocated clusters read from the backing image (or zeros),
/// zero clusters (v3) read zeros, compressed clusters (deflate) are read and, when written, copied into a new
/// cluster. Refcounts (a refcount table → refcount blocks, any width 1–64 bits) count the users of each host
/// cluster so <c>qemu-img check</c> stays clean.
///
/// Allocation: new clusters (data, L2 tables, refcount blocks) are always taken at the end of the file.
/// Metadata is cached and written back in an order that leaves at most leaked clusters after a crash at any
/// point: (1) refcount blocks, then the refcount table (with an fsync before a table that points at a new
/// block), fsync — data and refcounts are durable before anything points at them; (2) L2 tables, fsync;
/// (3) the L1 table, fsync; (4) refcount decrements of clusters the tables no longer use (after the tables
/// that stopped using them are durable). <see cref="Flush"/> runs this write-back; so does an over-full cache.
/// </summary>
public sealed class Qcow2DiskImage : DiskImageBase
{
    private const ulong OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;
    private const ulong CopiedFlag = 1UL << 63, CompressedFlag = 1UL << 62, ZeroFlag = 1;
    private const int MaxCachedTableBytes = 32 << 20;

    private readonly SafeFileHandle _h;
    private readonly Qcow2Header _hd;
    private readonly string _name;
    private readonly int _cb, _cs, _l2Bits;
    private long _size;
    private long _fileLength;
    private ulong[] _l1;
    private long _l1Offset;
    private int _l1DirtyLo = int.MaxValue, _l1DirtyHi = -1;
    private readonly Dictionary<long, L2Table> _l2Cache = new();
    private readonly Dictionary<long, RefBlock> _rcCache = new();
    private long[] _rcTable = Array.Empty<long>();
    private bool _rcTableDirty;
    private long _fileEnd; // next free cluster (allocation pointer), cluster aligned
    private readonly List<(long Cluster, int Count)> _pendingFrees = new();
    private readonly byte[] _clusterBuf; // table I/O
    private readonly byte[] _mergeBuf;   // copy-on-write of a partly written cluster
    private byte[]? _decompressed;
    private ulong _decompressedEntry;
    private bool _writeBackFailed;

    private sealed class L2Table { public required ulong[] E; public bool Dirty; }
    private sealed class RefBlock { public required byte[] Data; public bool Dirty; }
    private enum Kind { Unallocated, Zero, Data, Compressed }

    private Qcow2DiskImage(string path, bool readOnly, SafeFileHandle h, Qcow2Header hd, DiskImageBase? backing) : base(path, readOnly)
    {
        _h = h;
        _hd = hd;
        _name = System.IO.Path.GetFileName(path);
        _cb = hd.ClusterBits;
        _cs = 1 << _cb;
        _l2Bits = _cb - 3;
        _size = hd.Size;
        _fileLength = RandomAccess.GetLength(h);
        _l1Offset = hd.L1Offset;
        _clusterBuf = new byte[_cs];
        _mergeBuf = new byte[_cs];
        Backing = backing;
        _l1 = LoadL1(hd.L1Offset, hd.L1Size);
    }

    public override DiskFormat Format => DiskFormat.Qcow2;
    public override long Length => _size;
    public int ClusterSize => _cs;
    public int Version => _hd.Version;
    /// <summary>Guest clusters of the virtual size (the last one may be partial).</summary>
    public long ClusterCount => (_size + _cs - 1) >> _cb;

    /// <summary>
    /// Whether this image itself holds guest cluster <paramref name="cluster"/> (data, compressed or zero), i.e. a
    /// read of it does not reach the backing file. Layer merges (<see cref="DiskImageFile.MergeBackingLayer"/>) use it.
    /// </summary>
    public bool HoldsCluster(long cluster) => Lookup(cluster).Kind != Kind.Unallocated;

    /// <summary>Opens an image; <paramref name="backing"/> is the already opened backing image (owned by this one from now on).</summary>
    internal static Qcow2DiskImage Open(string path, bool readOnly, DiskImageBase? backing)
    {
        var h = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, readOnly ? FileShare.Read : FileShare.None);
        try
        {
            var hd = Qcow2Header.Read(h, RandomAccess.GetLength(h), path);
            if (!readOnly && hd.WriteRefusal() is { } why) throw new InvalidDataException($"{System.IO.Path.GetFileName(path)}: qcow2 {why}");
            var img = new Qcow2DiskImage(path, readOnly, h, hd, backing);
            if (!readOnly) img.PrepareForWriting();
            return img;
        }
        catch
        {
            h.Dispose();
            throw;
        }
    }

    private InvalidDataException Bad(string what) => new($"{_name}: qcow2 {what}");

    private ulong[] LoadL1(long offset, int entries)
    {
        var raw = new byte[entries * 8];
        ReadFile(_h, offset, raw);
        var l1 = new ulong[entries];
        for (int i = 0; i < entries; i++)
        {
            ulong e = BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * 8));
            long off = (long)(e & OffsetMask);
            if (off != 0 && ((off & (_cs - 1)) != 0 || off + _cs > _fileLength))
                throw Bad($"L1 entry {i} points to an L2 table at offset {off}, {((off & (_cs - 1)) != 0 ? "not cluster aligned" : "past the end of the file")}");
            l1[i] = e;
        }
        return l1;
    }

    private void PrepareForWriting()
    {
        // the refcount table, and the end of the allocated area (which may lie past the end of the file after a crash)
        _rcTable = new long[_hd.RcTableClusters * (_cs / 8)];
        var raw = new byte[_rcTable.Length * 8];
        ReadFile(_h, _hd.RcTableOffset, raw);
        long end = (_fileLength + _cs - 1) & ~(long)(_cs - 1);
        long perBlock = RefsPerBlock;
        for (int i = 0; i < _rcTable.Length; i++)
        {
            long off = (long)(BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * 8)) & OffsetMask);
            if (off == 0) continue;
            if ((off & (_cs - 1)) != 0 || off + _cs > _fileLength)
                throw Bad($"refcount table entry {i} points to offset {off}, {((off & (_cs - 1)) != 0 ? "not cluster aligned" : "past the end of the file")}");
            _rcTable[i] = off;
            var blk = LoadRefBlock(off);
            for (long j = perBlock - 1; j >= 0; j--)
                if (GetRef(blk.Data, j) != 0)
                {
                    end = Math.Max(end, ((long)i * perBlock + j + 1) << _cb);
                    break;
                }
        }
        _fileEnd = end;
        // autoclear bits name extensions whose consistency we do not maintain: clear them, as the spec asks
        if (_hd.Version == 3 && _hd.Autoclear != 0)
        {
            WriteU64(Qcow2Header.OffAutoclear, 0);
            _hd.Autoclear = 0;
        }
    }

    // ---------------- lookup ----------------

    private L2Table GetL2(long l2Offset)
    {
        if (_l2Cache.TryGetValue(l2Offset, out var t)) return t;
        if (_l2Cache.Count * (long)_cs >= MaxCachedTableBytes) TrimCaches();
        if (l2Offset + _cs > _fileLength) throw Bad($"L2 table at offset {l2Offset} lies past the end of the file");
        ReadFile(_h, l2Offset, _clusterBuf);
        var e = new ulong[_cs / 8];
        for (int i = 0; i < e.Length; i++) e[i] = BinaryPrimitives.ReadUInt64BigEndian(_clusterBuf.AsSpan(i * 8));
        t = new L2Table { E = e };
        _l2Cache[l2Offset] = t;
        return t;
    }

    private (Kind Kind, long Host, ulong Entry) Lookup(long cluster)
    {
        long l1i = cluster >> _l2Bits;
        if (l1i >= _l1.Length) return (Kind.Unallocated, 0, 0);
        long l2Off = (long)(_l1[l1i] & OffsetMask);
        if (l2Off == 0) return (Kind.Unallocated, 0, 0);
        ulong e = GetL2(l2Off).E[cluster & ((1L << _l2Bits) - 1)];
        if ((e & CompressedFlag) != 0) return (Kind.Compressed, 0, e);
        long host = (long)(e & OffsetMask);
        if (_hd.Version >= 3 && (e & ZeroFlag) != 0) return (Kind.Zero, host, e);
        if (host == 0) return (Kind.Unallocated, 0, e);
        if ((host & (_cs - 1)) != 0) throw Bad($"L2 entry for guest cluster {cluster} points to offset {host}, not cluster aligned");
        if (host >= _fileLength) throw Bad($"L2 entry for guest cluster {cluster} points to offset {host}, past the end of the file ({_fileLength} bytes)");
        return (Kind.Data, host, e);
    }

    // ---------------- read ----------------

    protected override void ReadCore(long offset, Span<byte> buffer)
    {
        int pos = 0;
        while (pos < buffer.Length)
        {
            long vo = offset + pos;
            long ci = vo >> _cb;
            int intra = (int)(vo & (_cs - 1));
            var (kind, host, entry) = Lookup(ci);
            int n = Math.Min(_cs - intra, buffer.Length - pos);
            // extend the run over following clusters of the same kind (and, for data, contiguous on the host)
            while (kind != Kind.Compressed && pos + n < buffer.Length)
            {
                var (k2, h2, _) = Lookup((offset + pos + n) >> _cb);
                if (k2 != kind || (kind == Kind.Data && h2 != host + intra + n)) break;
                n += Math.Min(_cs, buffer.Length - pos - n);
            }
            var dst = buffer.Slice(pos, n);
            switch (kind)
            {
                case Kind.Data: ReadFile(_h, host + intra, dst); break;
                case Kind.Zero: dst.Clear(); break;
                case Kind.Unallocated:
                    if (Backing != null) Backing.ReadAt(vo, dst); else dst.Clear();
                    break;
                case Kind.Compressed: Decompress(entry).AsSpan(intra, n).CopyTo(dst); break;
            }
            pos += n;
        }
    }

    private (long Offset, int Length) CompressedRange(ulong entry)
    {
        int x = 62 - (_cb - 8);
        long off = (long)(entry & ((1UL << x) - 1));
        long sectors = (long)((entry >> x) & ((1UL << (_cb - 8)) - 1));
        int len = (int)((sectors + 1) * 512 - (off & 511));
        return (off, len);
    }

    private byte[] Decompress(ulong entry)
    {
        if (_decompressed != null && _decompressedEntry == entry) return _decompressed;
        var (off, len) = CompressedRange(entry);
        if (off >= _fileLength) throw Bad($"compressed cluster at offset {off} lies past the end of the file");
        len = (int)Math.Min(len, _fileLength - off);
        var src = new byte[len];
        ReadFile(_h, off, src);
        var dst = _decompressed ?? new byte[_cs];
        int got = 0;
        try
        {
            using var z = new DeflateStream(new MemoryStream(src), CompressionMode.Decompress);
            while (got < _cs)
            {
                int r = z.Read(dst, got, _cs - got);
                if (r <= 0) break;
                got += r;
            }
        }
        catch (InvalidDataException e) { throw Bad($"compressed cluster at offset {off} does not decompress ({e.Message})"); }
        if (got != _cs) throw Bad($"compressed cluster at offset {off} decompresses to {got} bytes instead of {_cs}");
        _decompressed = dst;
        _decompressedEntry = entry;
        return dst;
    }

    // ---------------- write ----------------

    protected override void WriteCore(long offset, ReadOnlySpan<byte> buffer)
    {
        if (_writeBackFailed) throw new IOException($"{_name}: an earlier metadata write failed; the image is closed for writing");
        int pos = 0;
        long runHost = -1; int runStart = 0, runLen = 0;
        while (pos < buffer.Length)
        {
            long vo = offset + pos;
            long ci = vo >> _cb;
            int intra = (int)(vo & (_cs - 1));
            int n = Math.Min(_cs - intra, buffer.Length - pos);
            var src = buffer.Slice(pos, n);
            long target = PrepareClusterWrite(ci, intra, src);
            if (target >= 0)
            {
                if (runLen > 0 && runHost + runLen == target) runLen += n;
                else
                {
                    if (runLen > 0) WriteHost(runHost, buffer.Slice(runStart, runLen));
                    runHost = target; runStart = pos; runLen = n;
                }
            }
            pos += n;
        }
        if (runLen > 0) WriteHost(runHost, buffer.Slice(runStart, runLen));
    }

    private void WriteHost(long offset, ReadOnlySpan<byte> data)
    {
        RandomAccess.Write(_h, data, offset);
        _fileLength = Math.Max(_fileLength, offset + data.Length);
    }

    /// <summary>
    /// Makes guest cluster <paramref name="ci"/> writable. Returns the host offset where <paramref name="src"/> goes
    /// (the caller writes it, merged with neighbours), or -1 when this method already wrote the whole cluster.
    /// </summary>
    private long PrepareClusterWrite(long ci, int intra, ReadOnlySpan<byte> src)
    {
        var (kind, host, entry) = Lookup(ci);
        if (kind == Kind.Data) return host + intra; // allocated and ours (no internal snapshots when writable): in place
        bool whole = intra == 0 && src.Length == _cs;
        byte[]? merged = null;
        if (!whole)
        {
            // copy-on-write: the rest of the cluster comes from what it read as before
            merged = _mergeBuf;
            long vstart = ci << _cb;
            switch (kind)
            {
                case Kind.Zero: Array.Clear(merged); break;
                case Kind.Compressed: Decompress(entry).CopyTo(merged, 0); break;
                default:
                    if (Backing != null) Backing.ReadAt(vstart, merged); else Array.Clear(merged);
                    break;
            }
            src.CopyTo(merged.AsSpan(intra));
        }
        // a preallocated zero cluster keeps its host cluster; anything else gets a new one at the end of the file
        long newHost = kind == Kind.Zero && host != 0 && (host & (_cs - 1)) == 0 && host < _fileEnd ? host : AllocateClusters(1);
        if (merged != null) WriteHost(newHost, merged);
        SetL2Entry(ci, (ulong)newHost | CopiedFlag);
        if (kind == Kind.Compressed)
        {
            var (off, len) = CompressedRange(entry);
            long first = off >> _cb, last = (off + len - 1) >> _cb;
            _pendingFrees.Add((first, (int)(last - first + 1)));
            if (_decompressedEntry == entry) _decompressed = null;
        }
        return merged != null ? -1 : newHost;
    }

    private void SetL2Entry(long ci, ulong value)
    {
        long l1i = ci >> _l2Bits;
        if (l1i >= _l1.Length) throw Bad($"guest cluster {ci} lies beyond the L1 table");
        long l2Off = (long)(_l1[l1i] & OffsetMask);
        L2Table t;
        if (l2Off == 0)
        {
            l2Off = AllocateClusters(1);
            t = new L2Table { E = new ulong[_cs / 8], Dirty = true };
            if (_l2Cache.Count * (long)_cs >= MaxCachedTableBytes) TrimCaches();
            _l2Cache[l2Off] = t;
            _l1[l1i] = (ulong)l2Off | CopiedFlag;
            _l1DirtyLo = (int)Math.Min(_l1DirtyLo, l1i);
            _l1DirtyHi = (int)Math.Max(_l1DirtyHi, l1i);
        }
        else t = GetL2(l2Off);
        t.E[ci & ((1L << _l2Bits) - 1)] = value;
        t.Dirty = true;
    }

    // ---------------- refcounts ----------------

    private long RefsPerBlock => (long)_cs * 8 >> _hd.RefcountOrder;

    private long GetRef(byte[] blk, long i) => GetRef(blk, i, _hd.RefcountOrder);

    private static long GetRef(byte[] blk, long i, int order)
    {
        int bits = 1 << order;
        switch (bits)
        {
            case 8: return blk[i];
            case 16: return BinaryPrimitives.ReadUInt16BigEndian(blk.AsSpan((int)i * 2));
            case 32: return BinaryPrimitives.ReadUInt32BigEndian(blk.AsSpan((int)i * 4));
            case 64: return (long)BinaryPrimitives.ReadUInt64BigEndian(blk.AsSpan((int)i * 8));
            default:
                int per = 8 / bits;
                return (blk[i / per] >> (int)(i % per * bits)) & ((1 << bits) - 1);
        }
    }

    private void SetRef(byte[] blk, long i, long v)
    {
        int bits = 1 << _hd.RefcountOrder;
        if (bits < 64 && (v < 0 || v >= 1L << bits)) throw Bad($"refcount {v} does not fit in {bits} bits");
        switch (bits)
        {
            case 8: blk[i] = (byte)v; break;
            case 16: BinaryPrimitives.WriteUInt16BigEndian(blk.AsSpan((int)i * 2), (ushort)v); break;
            case 32: BinaryPrimitives.WriteUInt32BigEndian(blk.AsSpan((int)i * 4), (uint)v); break;
            case 64: BinaryPrimitives.WriteUInt64BigEndian(blk.AsSpan((int)i * 8), (ulong)v); break;
            default:
                int per = 8 / bits, shift = (int)(i % per * bits), mask = ((1 << bits) - 1) << shift;
                blk[i / per] = (byte)((blk[i / per] & ~mask) | ((int)v << shift));
                break;
        }
    }

    private RefBlock LoadRefBlock(long off)
    {
        if (_rcCache.TryGetValue(off, out var b)) return b;
        var data = new byte[_cs];
        ReadFile(_h, off, data);
        b = new RefBlock { Data = data };
        _rcCache[off] = b;
        return b;
    }

    /// <summary>Takes <paramref name="count"/> contiguous clusters at the end of the file, refcount 1 each.</summary>
    private long AllocateClusters(int count)
    {
        long first = _fileEnd;
        _fileEnd += (long)count << _cb;
        for (int i = 0; i < count; i++) AddRef((first >> _cb) + i, +1);
        return first;
    }

    private void AddRef(long cluster, int delta)
    {
        long ti = cluster / RefsPerBlock;
        if (ti >= _rcTable.Length) GrowRefcountTable(ti);
        if (_rcTable[ti] == 0)
        {
            long b = _fileEnd;
            _fileEnd += _cs;
            _rcTable[ti] = b;
            _rcTableDirty = true;
            _rcCache[b] = new RefBlock { Data = new byte[_cs], Dirty = true };
            AddRef(b >> _cb, +1); // the new block counts itself (or asks for the next block)
        }
        var blk = LoadRefBlock(_rcTable[ti]);
        long i = cluster % RefsPerBlock;
        long v = GetRef(blk.Data, i) + delta;
        if (v < 0) throw Bad($"refcount of cluster {cluster} would drop below zero");
        SetRef(blk.Data, i, v);
        blk.Dirty = true;
    }

    private void GrowRefcountTable(long neededIndex)
    {
        int perCluster = _cs / 8;
        long entries = Math.Max(_rcTable.Length * 2L, neededIndex + 2);
        entries = (entries + perCluster - 1) / perCluster * perCluster;
        int clusters = (int)(entries / perCluster);
        if ((long)clusters * _cs > Qcow2Header.MaxRefcountTableBytes) throw Bad("refcount table would exceed the supported maximum");
        long oldOffset = _hd.RcTableOffset;
        int oldClusters = _hd.RcTableClusters;
        var old = _rcTable;
        _rcTable = new long[entries];
        old.CopyTo(_rcTable, 0);
        long newOffset = _fileEnd;
        _fileEnd += (long)clusters << _cb;
        for (int i = 0; i < clusters; i++) AddRef((newOffset >> _cb) + i, +1);
        // blocks, then the new table, durable before the header points at it
        WriteDirtyRefBlocks();
        WriteRefcountTable(newOffset);
        RandomAccess.FlushToDisk(_h);
        var hdr = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(hdr, (ulong)newOffset);
        BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(8), (uint)clusters);
        RandomAccess.Write(_h, hdr, Qcow2Header.OffRcTableOffset);
        RandomAccess.FlushToDisk(_h);
        _hd.RcTableOffset = newOffset;
        _hd.RcTableClusters = clusters;
        _rcTableDirty = false;
        _pendingFrees.Add((oldOffset >> _cb, oldClusters)); // freed once nothing points at it
    }

    // ---------------- write-back ----------------

    private void WriteDirtyRefBlocks()
    {
        foreach (var (off, b) in _rcCache)
            if (b.Dirty)
            {
                WriteHost(off, b.Data);
                b.Dirty = false;
            }
    }

    private void WriteRefcountTable(long offset)
    {
        var raw = new byte[_rcTable.Length * 8];
        for (int i = 0; i < _rcTable.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(raw.AsSpan(i * 8), (ulong)_rcTable[i]);
        WriteHost(offset, raw);
    }

    private void WriteBack()
    {
        if (IsReadOnly) return;
        try
        {
            // (1) data and refcounts durable before anything points at them
            WriteDirtyRefBlocks();
            if (_rcTableDirty)
            {
                RandomAccess.FlushToDisk(_h); // new blocks before the table entries naming them
                WriteRefcountTable(_hd.RcTableOffset);
                _rcTableDirty = false;
            }
            RandomAccess.FlushToDisk(_h);
            // (2) L2 tables, (3) L1
            bool wrote = false;
            foreach (var (off, t) in _l2Cache)
                if (t.Dirty)
                {
                    for (int i = 0; i < t.E.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(_clusterBuf.AsSpan(i * 8), t.E[i]);
                    WriteHost(off, _clusterBuf);
                    t.Dirty = false;
                    wrote = true;
                }
            if (_l1DirtyHi >= 0)
            {
                if (wrote) RandomAccess.FlushToDisk(_h);
                int lo = _l1DirtyLo, n = _l1DirtyHi - lo + 1;
                var raw = new byte[n * 8];
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt64BigEndian(raw.AsSpan(i * 8), _l1[lo + i]);
                WriteHost(_l1Offset + lo * 8L, raw);
                _l1DirtyLo = int.MaxValue; _l1DirtyHi = -1;
                wrote = true;
            }
            if (wrote) RandomAccess.FlushToDisk(_h);
            // (4) clusters nothing points at any more
            if (_pendingFrees.Count > 0)
            {
                foreach (var (c, count) in _pendingFrees)
                    for (int i = 0; i < count; i++) AddRef(c + i, -1);
                _pendingFrees.Clear();
                WriteDirtyRefBlocks();
                RandomAccess.FlushToDisk(_h);
            }
        }
        catch
        {
            _writeBackFailed = true;
            throw;
        }
    }

    private void TrimCaches()
    {
        WriteBack();
        foreach (var k in _l2Cache.Where(kv => !kv.Value.Dirty).Select(kv => kv.Key).ToList()) _l2Cache.Remove(k);
        foreach (var k in _rcCache.Where(kv => !kv.Value.Dirty).Select(kv => kv.Key).ToList()) _rcCache.Remove(k);
    }

    public override void Flush()
    {
        if (IsDisposed || IsReadOnly) return;
        WriteBack();
    }

    // ---------------- resize ----------------

    /// <summary>Grows the virtual size (the new area reads as zeros or from the backing file, like QEMU's resize).</summary>
    internal void Grow(long newSize)
    {
        if (IsReadOnly) throw new InvalidOperationException("The image is read-only.");
        if (newSize < _size) throw new ArgumentOutOfRangeException(nameof(newSize), "Images only grow.");
        if (newSize > Qcow2Header.MaxVirtualSize) throw new ArgumentOutOfRangeException(nameof(newSize), "Larger than the supported maximum (4 TiB).");
        long perL1 = (long)_cs << _l2Bits;
        long needL1 = (newSize + perL1 - 1) / perL1;
        WriteBack();
        var hdr = new byte[24];
        BinaryPrimitives.WriteUInt64BigEndian(hdr, (ulong)newSize);
        if (needL1 > _l1.Length)
        {
            if (needL1 * 8 > Qcow2Header.MaxL1Bytes) throw new ArgumentOutOfRangeException(nameof(newSize), "L1 table would exceed the supported maximum.");
            int clusters = (int)((needL1 * 8 + _cs - 1) / _cs);
            var l1 = new ulong[needL1];
            _l1.CopyTo(l1, 0);
            long oldOff = _l1Offset;
            int oldClusters = (int)((_l1.Length * 8L + _cs - 1) / _cs);
            long newOff = AllocateClusters(clusters);
            var raw = new byte[(long)clusters * _cs];
            for (int i = 0; i < l1.Length; i++) BinaryPrimitives.WriteUInt64BigEndian(raw.AsSpan(i * 8), l1[i]);
            WriteHost(newOff, raw);
            WriteBack(); // refcounts of the new table, fsync
            BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(12), (uint)needL1);
            BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(16), (ulong)newOff);
            RandomAccess.Write(_h, hdr, Qcow2Header.OffSize); // size, crypt (0), l1_size, l1_table_offset: one sector
            RandomAccess.FlushToDisk(_h);
            _l1 = l1;
            _l1Offset = newOff;
            _pendingFrees.Add((oldOff >> _cb, oldClusters));
            WriteBack();
        }
        else
        {
            RandomAccess.Write(_h, hdr.AsSpan(0, 8), Qcow2Header.OffSize);
            RandomAccess.FlushToDisk(_h);
        }
        _size = newSize;
    }

    private void WriteU64(int offset, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        RandomAccess.Write(_h, b, offset);
    }

    protected override void DisposeCore()
    {
        try
        {
            if (!IsReadOnly && !_writeBackFailed) WriteBack();
        }
        finally { _h.Dispose(); }
    }

    // ---------------- create ----------------

    /// <summary>
    /// Writes a new, empty version 3 image: cluster 0 header (+ backing format extension and backing name),
    /// cluster 1 refcount table, cluster 2 refcount block, then the L1 table. Nothing depends on the backing
    /// image's size but the header.
    /// </summary>
    internal static void Create(string path, long size, string? backingFile, string? backingFormat, int clusterBits = 16)
    {
        if (size < 0 || size > Qcow2Header.MaxVirtualSize) throw new ArgumentOutOfRangeException(nameof(size), $"Size must be between 0 and {Qcow2Header.MaxVirtualSize} bytes.");
        int cs = 1 << clusterBits;
        long perL1 = (long)cs << (clusterBits - 3);
        int l1Entries = (int)Math.Max(1, (size + perL1 - 1) / perL1);
        int l1Clusters = (l1Entries * 8 + cs - 1) / cs;
        var header = Qcow2Header.BuildV3(clusterBits, size, l1Entries, 3L * cs, cs, 1, backingFile, backingFormat);
        var table = new byte[cs];
        BinaryPrimitives.WriteUInt64BigEndian(table, (ulong)(2L * cs));
        var block = new byte[cs];
        for (int i = 0; i < 3 + l1Clusters; i++) BinaryPrimitives.WriteUInt16BigEndian(block.AsSpan(i * 2), 1);
        try
        {
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
            RandomAccess.Write(h, header, 0);
            RandomAccess.Write(h, table, cs);
            RandomAccess.Write(h, block, 2L * cs);
            RandomAccess.Write(h, new byte[(long)l1Clusters * cs], 3L * cs);
            RandomAccess.FlushToDisk(h);
        }
        catch
        {
            try { File.Delete(path); } catch (IOException) { }
            throw;
        }
    }

    // ---------------- backing file ----------------

    /// <summary>
    /// Rewrites the backing file name and format recorded in a version 3 image (cluster 0: the header extensions and
    /// the name after them) without touching its data, like <c>qemu-img rebase -u</c>. Other header extensions are
    /// kept. The new header area is written with one write at offset 0 (a few hundred bytes, within the first page)
    /// and synced.
    /// </summary>
    internal static void SetBacking(string path, string? backingFile, string? backingFormat)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        long len = RandomAccess.GetLength(h);
        var hd = Qcow2Header.Read(h, len, path);
        string name = System.IO.Path.GetFileName(path);
        if (hd.Version != 3) throw new InvalidDataException($"{name}: qcow2 version {hd.Version}: only version 3 images can be rebased here");
        int cs = hd.ClusterSize;
        var b = new byte[Math.Min(cs, len)];
        ReadFile(h, 0, b);
        int start = (hd.HeaderLength + 7) & ~7;
        var area = new MemoryStream();
        if (backingFormat != null)
        {
            var fmt = System.Text.Encoding.UTF8.GetBytes(backingFormat);
            WriteExtension(area, Qcow2Header.ExtBackingFormat, fmt);
        }
        int pos = start, oldEnd = start;
        while (pos + 8 <= b.Length)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            int elen = (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos + 4));
            if (type == Qcow2Header.ExtEnd) { oldEnd = pos + 8; break; }
            if (type != Qcow2Header.ExtBackingFormat) WriteExtension(area, type, b.AsSpan(pos + 8, elen).ToArray());
            pos += 8 + ((elen + 7) & ~7);
        }
        if (hd.BackingFileOffset != 0) oldEnd = Math.Max(oldEnd, (int)(hd.BackingFileOffset + hd.BackingFileSize));
        area.Write(new byte[8]); // end of extensions
        long nameOffset = 0;
        byte[] nameBytes = [];
        if (backingFile != null)
        {
            nameBytes = System.Text.Encoding.UTF8.GetBytes(backingFile);
            if (nameBytes.Length is 0 or > 1023) throw new ArgumentException("The backing file name must be 1..1023 bytes long.");
            nameOffset = start + area.Length;
            area.Write(nameBytes);
        }
        int newEnd = start + (int)area.Length;
        if (newEnd > b.Length) throw new InvalidDataException($"{name}: qcow2 the new backing file name does not fit in the header cluster");
        int upTo = Math.Max(newEnd, oldEnd);
        Array.Clear(b, start, upTo - start);
        area.ToArray().CopyTo(b, start);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(8), (ulong)nameOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), (uint)nameBytes.Length);
        RandomAccess.Write(h, b.AsSpan(0, upTo), 0);
        RandomAccess.FlushToDisk(h);
    }

    private static void WriteExtension(MemoryStream area, uint type, byte[] data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, type);
        BinaryPrimitives.WriteUInt32BigEndian(head[4..], (uint)data.Length);
        area.Write(head);
        area.Write(data);
        area.Write(new byte[((data.Length + 7) & ~7) - data.Length]);
    }

    // ---------------- check ----------------

    /// <summary>Walks every table and compares the stored refcounts with the users found (like <c>qemu-img check</c>).</summary>
    internal static List<string> Check(string path)
    {
        var problems = new List<string>();
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = RandomAccess.GetLength(h);
        var hd = Qcow2Header.Read(h, fileLength, path);
        int cb = hd.ClusterBits, cs = 1 << cb;
        void Problem(string p) { if (problems.Count < 100) problems.Add(p); else if (problems.Count == 100) problems.Add("(more problems not listed)"); }
        if ((hd.Incompatible & Qcow2Header.IncompatCorrupt) != 0) Problem("the image is marked corrupt");
        if ((hd.Incompatible & Qcow2Header.IncompatDirty) != 0) Problem("the image is marked dirty (refcounts may be stale)");
        var used = new Dictionary<long, int>();
        void Use(long offset, long bytes, string what)
        {
            if (offset + bytes > ((fileLength + cs - 1) & ~(long)(cs - 1)))
            {
                Problem($"{what} at offset {offset} lies past the end of the file");
                return;
            }
            for (long c = offset >> cb; c <= (offset + bytes - 1) >> cb; c++) used[c] = used.GetValueOrDefault(c) + 1;
        }
        Use(0, cs, "header");
        Use(hd.L1Offset, hd.L1Size * 8L, "L1 table");
        Use(hd.RcTableOffset, (long)hd.RcTableClusters * cs, "refcount table");
        if (hd.SnapshotCount > 0) Use(hd.SnapshotsOffset, 1, "snapshot table");

        // L1 → L2 → data
        var l1raw = new byte[hd.L1Size * 8];
        ReadFile(h, hd.L1Offset, l1raw);
        var l2raw = new byte[cs];
        var copiedChecks = new List<(long Cluster, bool Copied, string What)>();
        for (int i = 0; i < hd.L1Size; i++)
        {
            ulong e = BinaryPrimitives.ReadUInt64BigEndian(l1raw.AsSpan(i * 8));
            long l2 = (long)(e & OffsetMask);
            if (l2 == 0) continue;
            if ((l2 & (cs - 1)) != 0) { Problem($"L1 entry {i}: L2 table offset {l2} is not cluster aligned"); continue; }
            if (l2 + cs > fileLength) { Problem($"L1 entry {i}: L2 table at offset {l2} lies past the end of the file"); continue; }
            Use(l2, cs, $"L2 table (L1 entry {i})");
            copiedChecks.Add((l2 >> cb, (e & CopiedFlag) != 0, $"L2 table at offset {l2}"));
            ReadFile(h, l2, l2raw);
            for (int j = 0; j < cs / 8; j++)
            {
                ulong d = BinaryPrimitives.ReadUInt64BigEndian(l2raw.AsSpan(j * 8));
                if (d == 0) continue;
                long guest = (((long)i << (cb - 3)) + j) << cb;
                if ((d & CompressedFlag) != 0)
                {
                    int x = 62 - (cb - 8);
                    long off = (long)(d & ((1UL << x) - 1));
                    long sectors = (long)((d >> x) & ((1UL << (cb - 8)) - 1));
                    long len = (sectors + 1) * 512 - (off & 511);
                    if (off >= fileLength) Problem($"compressed cluster for guest offset {guest} at offset {off} lies past the end of the file");
                    else Use(off, Math.Min(len, fileLength - off), $"compressed cluster for guest offset {guest}");
                    continue;
                }
                long host = (long)(d & OffsetMask);
                if (host == 0) continue;
                if ((host & (cs - 1)) != 0) { Problem($"guest offset {guest}: data cluster offset {host} is not cluster aligned"); continue; }
                if (host >= fileLength) { Problem($"guest offset {guest}: data cluster at offset {host} lies past the end of the file"); continue; }
                Use(host, cs, $"data cluster for guest offset {guest}");
                copiedChecks.Add((host >> cb, (d & CopiedFlag) != 0, $"data cluster at offset {host}"));
            }
        }

        // stored refcounts
        var rcraw = new byte[(long)hd.RcTableClusters * cs];
        ReadFile(h, hd.RcTableOffset, rcraw);
        long perBlock = (long)cs * 8 >> hd.RefcountOrder;
        var stored = new Dictionary<long, long>();
        var blk = new byte[cs];
        for (int i = 0; i < rcraw.Length / 8; i++)
        {
            long off = (long)(BinaryPrimitives.ReadUInt64BigEndian(rcraw.AsSpan(i * 8)) & OffsetMask);
            if (off == 0) continue;
            if ((off & (cs - 1)) != 0 || off + cs > fileLength) { Problem($"refcount table entry {i}: block offset {off} is misaligned or past the end of the file"); continue; }
            Use(off, cs, $"refcount block {i}");
            ReadFile(h, off, blk);
            for (long j = 0; j < perBlock; j++)
            {
                long r = GetRef(blk, j, hd.RefcountOrder);
                if (r != 0) stored[i * perBlock + j] = r;
            }
        }
        if (hd.SnapshotCount > 0 || hd.ExtensionTypes.Contains(Qcow2Header.ExtBitmaps))
            return problems; // snapshot and bitmap users are not counted: refcount comparison would be wrong
        foreach (var c in used.Keys.Union(stored.Keys).OrderBy(c => c))
        {
            long r = stored.GetValueOrDefault(c);
            int u = used.GetValueOrDefault(c);
            if (r < u) Problem($"cluster {c} (offset {c << cb}): refcount {r} but {u} user(s)");
            else if (r > u) Problem($"leaked cluster {c} (offset {c << cb}): refcount {r} but {u} user(s)");
        }
        foreach (var (c, copied, what) in copiedChecks)
        {
            bool one = stored.GetValueOrDefault(c) == 1;
            if (one != copied) Problem($"{what}: COPIED flag {(copied ? "set" : "clear")} but refcount {stored.GetValueOrDefault(c)}");
        }
        return problems;
    }
}

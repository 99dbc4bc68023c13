using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// Virtual PC / Hyper-V VHD (Microsoft's "Virtual Hard Disk Image Format Specification" 1.0), fixed and dynamic,
/// read and write. All integers big endian.
/// <list type="bullet">
/// <item>Footer (512 bytes, "conectix") at the end of the file; dynamic disks keep a copy at offset 0. The
/// checksum is the one's complement of the byte sum with the checksum field taken as zero.</item>
/// <item>Fixed: the disk's bytes, then the footer.</item>
/// <item>Dynamic: header ("cxsparse", 1024 bytes) at the footer's data offset, block allocation table (BAT: one
/// u32 sector number per block, 0xFFFFFFFF = not allocated → zeros), blocks of a sector bitmap (rounded up to
/// 512 bytes) followed by the block's data (2 MiB by default).</item>
/// </list>
/// The disk size follows QEMU's reading: images from Virtual PC ("vpc ") and QEMU's "qemu" creator use the CHS
/// geometry, everything else (Hyper-V, Disk2vhd, ours) the footer's current size.
/// A new block goes where the footer was: the footer is first rewritten past the new block (so a crash always
/// leaves a footer at the end), then the bitmap (all sectors present) and the data; the BAT entry is written
/// back on <see cref="Flush"/> after an fsync, so a crash leaves at most an unreferenced block.
/// Differencing VHDs (type 4) are refused.
/// </summary>
public sealed class VhdDiskImage : DiskImageBase
{
    public const int FooterSize = 512;
    public const uint TypeFixed = 2, TypeDynamic = 3, TypeDifferencing = 4;
    public const int DefaultBlockSize = 2 << 20;
    private const uint Unallocated = 0xFFFFFFFF;
    private static readonly DateTime Epoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private readonly SafeFileHandle _h;
    private readonly string _name;
    private readonly long _size;
    private readonly bool _dynamic;
    private readonly byte[] _footer;
    private readonly uint[] _bat = Array.Empty<uint>();
    private readonly long _batOffset;
    private readonly int _blockSize, _bitmapSize;
    private long _footerOffset;
    private long _fileLength;
    private int _batDirtyLo = int.MaxValue, _batDirtyHi = -1;

    private VhdDiskImage(string path, bool readOnly, SafeFileHandle h) : base(path, readOnly)
    {
        _h = h;
        _name = System.IO.Path.GetFileName(path);
        _fileLength = RandomAccess.GetLength(h);
        var f = ReadFooter(h, _fileLength, path, out _footerOffset);
        _footer = f.Raw;
        _size = f.Size;
        if (f.Type == TypeFixed)
        {
            if (_footerOffset < _size)
                throw Bad($"file is truncated: a fixed disk of {_size} bytes needs {_size + FooterSize} bytes, the file has {_fileLength}");
            return;
        }
        _dynamic = true;
        long hdrOff = f.DataOffset;
        if (hdrOff < 0 || hdrOff + 1024 > _fileLength) throw Bad($"dynamic disk header at offset {hdrOff} lies past the end of the file");
        var hdr = new byte[1024];
        ReadFile(h, hdrOff, hdr);
        if (!hdr.AsSpan(0, 8).SequenceEqual("cxsparse"u8)) throw Bad("dynamic disk header cookie \"cxsparse\" missing");
        if (Checksum(hdr, 36) != BinaryPrimitives.ReadUInt32BigEndian(hdr.AsSpan(36))) throw Bad("dynamic disk header checksum mismatch");
        _batOffset = (long)BinaryPrimitives.ReadUInt64BigEndian(hdr.AsSpan(16));
        uint entries = BinaryPrimitives.ReadUInt32BigEndian(hdr.AsSpan(28));
        uint bs = BinaryPrimitives.ReadUInt32BigEndian(hdr.AsSpan(32));
        if (bs < 4096 || bs > (256u << 20) || (bs & (bs - 1)) != 0) throw Bad($"block size {bs} is invalid (a power of two, 4 KiB..256 MiB)");
        _blockSize = (int)bs;
        _bitmapSize = ((_blockSize / 512 / 8) + 511) & ~511;
        long need = (_size + bs - 1) / bs;
        if (entries < need) throw Bad($"block table of {entries} entries is too small for {_size} bytes");
        if (entries > (Qcow2Header.MaxVirtualSize / bs) + 1) throw Bad($"block table of {entries} entries is larger than the supported maximum");
        if (_batOffset < 0 || _batOffset + entries * 4L > _fileLength) throw Bad($"block table at offset {_batOffset} lies past the end of the file");
        var raw = new byte[entries * 4L];
        ReadFile(h, _batOffset, raw);
        _bat = new uint[entries];
        for (int i = 0; i < entries; i++)
        {
            uint s = BinaryPrimitives.ReadUInt32BigEndian(raw.AsSpan(i * 4));
            if (s != Unallocated && (long)s * 512 + _bitmapSize > _fileLength)
                throw Bad($"block table entry {i} points to sector {s}, past the end of the file");
            _bat[i] = s;
        }
    }

    internal static VhdDiskImage Open(string path, bool readOnly)
    {
        var h = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, readOnly ? FileShare.Read : FileShare.None);
        try { return new VhdDiskImage(path, readOnly, h); }
        catch { h.Dispose(); throw; }
    }

    public override DiskFormat Format => DiskFormat.Vhd;
    public override long Length => _size;
    public bool IsDynamic => _dynamic;

    private InvalidDataException Bad(string what) => new($"{_name}: VHD {what}");

    internal readonly record struct Footer(byte[] Raw, uint Type, long Size, long DataOffset, long CurrentSize);

    /// <summary>Finds and checks the footer: at the end of the file, or (dynamic disks) the copy at offset 0.</summary>
    internal static Footer ReadFooter(SafeFileHandle h, long fileLength, string path, out long footerOffset)
    {
        string name = System.IO.Path.GetFileName(path);
        InvalidDataException Bad(string what) => new($"{name}: VHD {what}");
        if (fileLength < FooterSize) throw Bad($"file is truncated: {fileLength} bytes, shorter than the 512-byte footer");
        var f = new byte[FooterSize];
        footerOffset = fileLength - FooterSize;
        ReadFile(h, footerOffset, f);
        if (!f.AsSpan(0, 8).SequenceEqual("conectix"u8))
        {
            ReadFile(h, 0, f);
            if (!f.AsSpan(0, 8).SequenceEqual("conectix"u8)) throw Bad("footer cookie \"conectix\" missing");
            if (BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(60)) == TypeFixed) throw Bad("fixed disk is truncated (no footer at the end)");
            footerOffset = -1; // only the copy at 0: the end is missing (a dynamic disk cut short)
        }
        if (Checksum(f, 64) != BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(64))) throw Bad("footer checksum mismatch");
        uint type = BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(60));
        if (type == TypeDifferencing) throw Bad("differencing disks are not supported (convert it with its parent first)");
        if (type != TypeFixed && type != TypeDynamic) throw Bad($"disk type {type} is unknown (2 fixed, 3 dynamic)");
        ulong cur = BinaryPrimitives.ReadUInt64BigEndian(f.AsSpan(48));
        if (cur > (ulong)Qcow2Header.MaxVirtualSize) throw Bad($"disk size {cur} bytes is larger than the supported maximum of {Qcow2Header.MaxVirtualSize} bytes (4 TiB)");
        int cyl = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(56)), heads = f[58], spt = f[59];
        string creator = Encoding.ASCII.GetString(f, 28, 4);
        bool chsMax = cyl == 65535 && heads == 16 && spt == 255;
        long size = (creator == "vpc " || creator == "qemu") && !chsMax ? (long)cyl * heads * spt * 512 : (long)cur;
        if (size == 0) size = (long)cur;
        if (footerOffset < 0)
        {
            if (type == TypeFixed) throw Bad("fixed disk is truncated");
            footerOffset = fileLength; // new blocks go at the end; the footer is rewritten there
        }
        long dataOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(f.AsSpan(16)), long.MaxValue);
        return new Footer(f, type, size, dataOffset, (long)cur);
    }

    /// <summary>One's complement of the byte sum, skipping the 4-byte checksum field at <paramref name="checksumOffset"/>.</summary>
    public static uint Checksum(ReadOnlySpan<byte> b, int checksumOffset)
    {
        uint sum = 0;
        for (int i = 0; i < b.Length; i++)
            if (i < checksumOffset || i >= checksumOffset + 4) sum += b[i];
        return ~sum;
    }

    protected override void ReadCore(long offset, Span<byte> buffer)
    {
        if (!_dynamic)
        {
            ReadFile(_h, offset, buffer);
            return;
        }
        int pos = 0;
        while (pos < buffer.Length)
        {
            long vo = offset + pos;
            long blk = vo / _blockSize;
            int intra = (int)(vo % _blockSize);
            int n = Math.Min(_blockSize - intra, buffer.Length - pos);
            uint s = _bat[blk];
            if (s == Unallocated) buffer.Slice(pos, n).Clear();
            else ReadFile(_h, (long)s * 512 + _bitmapSize + intra, buffer.Slice(pos, n));
            pos += n;
        }
    }

    protected override void WriteCore(long offset, ReadOnlySpan<byte> buffer)
    {
        if (!_dynamic)
        {
            RandomAccess.Write(_h, buffer, offset);
            return;
        }
        int pos = 0;
        while (pos < buffer.Length)
        {
            long vo = offset + pos;
            long blk = vo / _blockSize;
            int intra = (int)(vo % _blockSize);
            int n = Math.Min(_blockSize - intra, buffer.Length - pos);
            if (_bat[blk] == Unallocated) AllocateBlock(blk);
            RandomAccess.Write(_h, buffer.Slice(pos, n), (long)_bat[blk] * 512 + _bitmapSize + intra);
            pos += n;
        }
    }

    private void AllocateBlock(long blk)
    {
        long at = (_footerOffset + 511) & ~511L;
        if (at / 512 >= Unallocated) throw Bad("file would grow past the 2 TiB the block table can address");
        long newFooter = at + _bitmapSize + _blockSize;
        RandomAccess.Write(_h, _footer, newFooter); // the footer moves first: the file always ends with one
        var bitmap = new byte[_bitmapSize];
        bitmap.AsSpan(0, _blockSize / 512 / 8).Fill(0xFF);
        RandomAccess.Write(_h, bitmap, at);
        _footerOffset = newFooter;
        _fileLength = newFooter + FooterSize;
        _bat[blk] = (uint)(at / 512);
        _batDirtyLo = (int)Math.Min(_batDirtyLo, blk);
        _batDirtyHi = (int)Math.Max(_batDirtyHi, blk);
    }

    public override void Flush()
    {
        if (IsDisposed || IsReadOnly) return;
        RandomAccess.FlushToDisk(_h); // blocks before the table entries naming them
        if (_batDirtyHi < 0) return;
        int lo = _batDirtyLo, n = _batDirtyHi - lo + 1;
        var raw = new byte[n * 4];
        for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt32BigEndian(raw.AsSpan(i * 4), _bat[lo + i]);
        RandomAccess.Write(_h, raw, _batOffset + lo * 4L);
        _batDirtyLo = int.MaxValue; _batDirtyHi = -1;
        RandomAccess.FlushToDisk(_h);
    }

    protected override void DisposeCore()
    {
        try { Flush(); }
        finally { _h.Dispose(); }
    }

    // ---------------- create / resize / check ----------------

    /// <summary>CHS geometry from the VHD specification's algorithm (appendix "CHS calculation").</summary>
    internal static (int Cyl, int Heads, int Spt) Geometry(long size)
    {
        long ts = Math.Min(size / 512, 65535L * 16 * 255);
        long spt, heads, cth;
        if (ts >= 65535L * 16 * 63) { spt = 255; heads = 16; cth = ts / spt; }
        else
        {
            spt = 17; cth = ts / spt;
            heads = Math.Max(4, (cth + 1023) / 1024);
            if (cth >= heads * 1024 || heads > 16) { spt = 31; heads = 16; cth = ts / spt; }
            if (cth >= heads * 1024) { spt = 63; heads = 16; cth = ts / spt; }
        }
        return ((int)(cth / heads), (int)heads, (int)spt);
    }

    /// <summary>
    /// The size a new disk gets: the smallest CHS capacity (C×H×S×512) at least <paramref name="size"/>, so that
    /// readers using the geometry (Virtual PC, QEMU) and readers using the footer's size see the same disk — as
    /// QEMU's own create does. Above the largest CHS capacity (about 127 GiB) the size is kept and the geometry
    /// is the maximum, which tells QEMU to use the footer's size.
    /// </summary>
    public static long RoundToGeometry(long size)
    {
        long sectors = (size + 511) / 512;
        if (sectors >= 65535L * 16 * 255) return sectors * 512;
        for (long s = sectors; ; s++)
        {
            var (c, h, spt) = Geometry(s * 512);
            long cap = (long)c * h * spt;
            if (cap >= sectors) return cap * 512;
        }
    }

    internal static byte[] BuildFooter(long size, bool dynamic, byte[]? uuid = null)
    {
        var f = new byte[FooterSize];
        "conectix"u8.CopyTo(f);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(8), 2); // features: reserved bit always set
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(12), 0x00010000);
        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(16), dynamic ? 512UL : ulong.MaxValue);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(24), (uint)(DateTime.UtcNow - Epoch).TotalSeconds);
        "vmpt"u8.CopyTo(f.AsSpan(28));
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(32), 0x00010000);
        "Wi2k"u8.CopyTo(f.AsSpan(36));
        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(40), (ulong)size);
        BinaryPrimitives.WriteUInt64BigEndian(f.AsSpan(48), (ulong)size);
        var (c, hh, s) = size / 512 >= 65535L * 16 * 255 ? (65535, 16, 255) : Geometry(size);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(56), (ushort)c);
        f[58] = (byte)hh;
        f[59] = (byte)s;
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(60), dynamic ? TypeDynamic : TypeFixed);
        (uuid ?? Guid.NewGuid().ToByteArray()).AsSpan(0, 16).CopyTo(f.AsSpan(68));
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(64), Checksum(f, 64));
        return f;
    }

    /// <summary>Creates an empty VHD of at least <paramref name="size"/> bytes (see <see cref="RoundToGeometry"/>): dynamic (sparse blocks) or fixed.</summary>
    internal static void Create(string path, long size, bool dynamic)
    {
        if (size <= 0 || size > Qcow2Header.MaxVirtualSize)
            throw new ArgumentOutOfRangeException(nameof(size), "Size must be positive and at most 4 TiB.");
        size = RoundToGeometry(size);
        var footer = BuildFooter(size, dynamic);
        try
        {
            using var h = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
            if (!dynamic)
            {
                RandomAccess.SetLength(h, size + FooterSize);
                RandomAccess.Write(h, footer, size);
            }
            else
            {
                long entries = (size + DefaultBlockSize - 1) / DefaultBlockSize;
                int batBytes = (int)((entries * 4 + 511) & ~511L);
                var hdr = new byte[1024];
                "cxsparse"u8.CopyTo(hdr);
                BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(8), ulong.MaxValue);
                BinaryPrimitives.WriteUInt64BigEndian(hdr.AsSpan(16), 1536);
                BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(24), 0x00010000);
                BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(28), (uint)entries);
                BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(32), DefaultBlockSize);
                BinaryPrimitives.WriteUInt32BigEndian(hdr.AsSpan(36), Checksum(hdr, 36));
                var bat = new byte[batBytes];
                bat.AsSpan().Fill(0xFF);
                RandomAccess.Write(h, footer, 0);
                RandomAccess.Write(h, hdr, 512);
                RandomAccess.Write(h, bat, 1536);
                RandomAccess.Write(h, footer, 1536 + batBytes);
            }
            RandomAccess.FlushToDisk(h);
        }
        catch
        {
            try { File.Delete(path); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Grows a fixed disk, or a dynamic one within the blocks its table can hold.</summary>
    internal static void Grow(string path, long newSize)
    {
        newSize = RoundToGeometry(newSize);
        long dataOffset, size;
        bool dynamic;
        byte[] uuid;
        using (var img = Open(path, readOnly: true))
        {
            size = img._size;
            dynamic = img._dynamic;
            uuid = img._footer.AsSpan(68, 16).ToArray();
            if (dynamic && (long)img._bat.Length * img._blockSize < newSize)
                throw new ArgumentOutOfRangeException(nameof(newSize), $"the block table of this dynamic VHD holds at most {(long)img._bat.Length * img._blockSize} bytes; convert it to qcow2 to grow it further");
            dataOffset = img._footerOffset;
        }
        if (newSize < size) throw new ArgumentOutOfRangeException(nameof(newSize), "Images only grow.");
        var footer = BuildFooter(newSize, dynamic, uuid);
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        if (!dynamic)
        {
            RandomAccess.Write(h, footer, newSize); // the new footer first, then the old one becomes zeros
            RandomAccess.FlushToDisk(h);
            RandomAccess.Write(h, new byte[FooterSize], size);
        }
        else
        {
            RandomAccess.Write(h, footer, dataOffset);
            RandomAccess.Write(h, footer, 0);
        }
        RandomAccess.FlushToDisk(h);
    }

    internal static List<string> Check(string path)
    {
        var problems = new List<string>();
        try
        {
            using var img = Open(path, readOnly: true);
            if (img._dynamic)
            {
                var starts = new SortedDictionary<long, int>();
                for (int i = 0; i < img._bat.Length; i++)
                {
                    if (img._bat[i] == Unallocated) continue;
                    long at = (long)img._bat[i] * 512;
                    if (!starts.TryAdd(at, i)) problems.Add($"blocks {starts[at]} and {i} share sector {img._bat[i]}");
                    if (at < img._batOffset + img._bat.Length * 4L) problems.Add($"block {i} overlaps the block table");
                }
                long prevEnd = -1; int prev = -1;
                foreach (var (at, i) in starts)
                {
                    if (at < prevEnd) problems.Add($"blocks {prev} and {i} overlap");
                    prevEnd = at + img._bitmapSize + img._blockSize; prev = i;
                }
            }
        }
        catch (InvalidDataException e) { problems.Add(e.Message); }
        return problems;
    }
}

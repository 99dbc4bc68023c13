using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// The fixed qcow2 header (version 2: 72 bytes, version 3: header_length bytes) and its extensions, parsed and
/// checked (QEMU's docs/interop/qcow2.txt). All integers are big endian. Every field that points into the file is
/// checked against the file's length, every count against a cap, so a damaged or hostile file is refused with an
/// <see cref="InvalidDataException"/> naming the problem before anything is allocated for it.
/// </summary>
internal sealed class Qcow2Header
{
    public const uint Magic = 0x514649FB; // "QFI\xfb"
    public const uint ExtEnd = 0, ExtBackingFormat = 0xE2792ACA, ExtFeatureNames = 0x6803F857, ExtBitmaps = 0x23852875;
    public const uint ExtEncryption = 0x0537BE77, ExtDataFile = 0x44415441;
    public const ulong IncompatDirty = 1, IncompatCorrupt = 2, IncompatDataFile = 4, IncompatCompression = 8, IncompatExtL2 = 16;
    /// <summary>Largest virtual size we accept (4 TiB): a header claiming more is refused, not allocated for.</summary>
    public const long MaxVirtualSize = 4L << 40;
    /// <summary>Largest L1 table we load (32 MiB, QEMU's limit too).</summary>
    public const long MaxL1Bytes = 32L << 20;
    /// <summary>Largest refcount table we load (8 MiB = 1 Mi entries).</summary>
    public const long MaxRefcountTableBytes = 8L << 20;

    // byte offsets of the fields we rewrite
    public const int OffSize = 24, OffL1Size = 36, OffL1Offset = 40, OffRcTableOffset = 48, OffRcTableClusters = 56, OffAutoclear = 88;

    public int Version;
    public long BackingFileOffset;
    public int BackingFileSize;
    public int ClusterBits;
    public long Size;
    public int L1Size;
    public long L1Offset;
    public long RcTableOffset;
    public int RcTableClusters;
    public int SnapshotCount;
    public long SnapshotsOffset;
    public ulong Incompatible, Compatible, Autoclear;
    public int RefcountOrder = 4;
    public int HeaderLength = 72;
    public byte CompressionType;
    public string? BackingFile;
    public string? BackingFormat;
    public readonly List<uint> ExtensionTypes = new();

    public int ClusterSize => 1 << ClusterBits;

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(head) == Magic;

    public static Qcow2Header Read(SafeFileHandle h, long fileLength, string path)
    {
        string name = System.IO.Path.GetFileName(path);
        InvalidDataException Bad(string what) => new($"{name}: qcow2 {what}");
        if (fileLength < 72) throw Bad($"file is truncated: {fileLength} bytes, shorter than the 72-byte header");
        var b = new byte[Math.Min(fileLength, 64 * 1024)];
        DiskImageBase.ReadFile(h, 0, b);
        var hd = new Qcow2Header();
        if (BinaryPrimitives.ReadUInt32BigEndian(b) != Magic) throw Bad("magic missing");
        hd.Version = (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(4));
        if (hd.Version != 2 && hd.Version != 3) throw Bad($"version {hd.Version} is not supported (only 2 and 3)");
        hd.BackingFileOffset = (long)BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(8));
        hd.BackingFileSize = (int)BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(16));
        uint cb = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(20));
        if (cb < 9 || cb > 21) throw Bad($"cluster_bits {cb} is out of range (9..21)");
        hd.ClusterBits = (int)cb;
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(24));
        if (size > MaxVirtualSize) throw Bad($"virtual size {size} bytes is larger than the supported maximum of {MaxVirtualSize} bytes (4 TiB)");
        hd.Size = (long)size;
        uint crypt = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(32));
        if (crypt != 0) throw Bad($"image is encrypted (crypt_method {crypt}); encrypted images are not supported");
        uint l1Size = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(36));
        hd.L1Offset = (long)BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(40));
        ulong rcOff = BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(48));
        uint rcClusters = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(56));
        hd.SnapshotCount = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(60)), int.MaxValue);
        hd.SnapshotsOffset = (long)BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(64));
        int cs = hd.ClusterSize;

        if (hd.Version == 3)
        {
            if (fileLength < 104) throw Bad($"file is truncated: {fileLength} bytes, shorter than the 104-byte version 3 header");
            hd.Incompatible = BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(72));
            hd.Compatible = BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(80));
            hd.Autoclear = BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(88));
            uint order = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(96));
            if (order > 6) throw Bad($"refcount_order {order} is out of range (0..6)");
            hd.RefcountOrder = (int)order;
            uint hl = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(100));
            if (hl < 104 || hl > cs || hl > b.Length) throw Bad($"header_length {hl} is invalid");
            hd.HeaderLength = (int)hl;
            if (hl > 104) hd.CompressionType = b[104];
        }

        // sizes and offsets, checked before anything is allocated for them
        long l2Entries = cs / 8;
        long needL1 = (hd.Size + (long)cs * l2Entries - 1) / ((long)cs * l2Entries);
        if ((long)l1Size * 8 > MaxL1Bytes) throw Bad($"L1 table of {l1Size} entries is larger than the supported maximum");
        if (l1Size < needL1) throw Bad($"L1 table of {l1Size} entries is too small for the virtual size {hd.Size}");
        hd.L1Size = (int)l1Size;
        CheckTable(hd.L1Offset, (long)l1Size * 8, cs, fileLength, "L1 table", Bad);
        if (rcClusters == 0) throw Bad("refcount table is empty (refcount_table_clusters = 0)");
        if ((long)rcClusters * cs > MaxRefcountTableBytes) throw Bad($"refcount table of {rcClusters} clusters is larger than the supported maximum");
        hd.RcTableClusters = (int)rcClusters;
        if (rcOff > long.MaxValue) throw Bad("refcount table offset is past the end of the file");
        hd.RcTableOffset = (long)rcOff;
        CheckTable(hd.RcTableOffset, (long)rcClusters * cs, cs, fileLength, "refcount table", Bad);
        if (hd.SnapshotCount > 65536) throw Bad($"snapshot count {hd.SnapshotCount} is larger than the supported maximum");

        // incompatible features: refuse what we cannot honour, by name
        ulong unknown = hd.Incompatible & ~(IncompatDirty | IncompatCorrupt | IncompatDataFile | IncompatCompression | IncompatExtL2);
        if (unknown != 0) throw Bad($"image uses unknown incompatible feature bits 0x{unknown:x}; it cannot be opened safely");
        if ((hd.Incompatible & IncompatDataFile) != 0) throw Bad("image uses an external data file, which is not supported");
        if ((hd.Incompatible & IncompatExtL2) != 0) throw Bad("image uses extended L2 entries (subclusters), which are not supported");
        if ((hd.Incompatible & IncompatCompression) != 0 && hd.CompressionType != 0)
            throw Bad($"image uses compression type {hd.CompressionType} (zstd); only deflate is supported");

        // header extensions (kept as they are in the file: we never rewrite this part of cluster 0)
        int pos = hd.Version == 2 ? 72 : hd.HeaderLength;
        pos = (pos + 7) & ~7;
        while (pos + 8 <= Math.Min(b.Length, cs))
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos));
            uint len = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(pos + 4));
            if (type == ExtEnd) break;
            if (pos + 8 + (long)len > Math.Min(b.Length, cs)) throw Bad($"header extension 0x{type:x8} runs past the first cluster");
            hd.ExtensionTypes.Add(type);
            var data = b.AsSpan(pos + 8, (int)len);
            if (type == ExtBackingFormat) hd.BackingFormat = Encoding.UTF8.GetString(data).TrimEnd('\0');
            else if (type == ExtEncryption) throw Bad("image has an encryption header, which is not supported");
            else if (type == ExtDataFile) throw Bad("image names an external data file, which is not supported");
            pos += 8 + (int)((len + 7) & ~7u);
        }

        if (hd.BackingFileOffset != 0)
        {
            if (hd.BackingFileSize <= 0 || hd.BackingFileSize > 1023) throw Bad($"backing file name length {hd.BackingFileSize} is invalid (1..1023)");
            if (hd.BackingFileOffset + hd.BackingFileSize > Math.Min(fileLength, b.Length))
                throw Bad("backing file name lies past the end of the header");
            hd.BackingFile = Encoding.UTF8.GetString(b, (int)hd.BackingFileOffset, hd.BackingFileSize);
            if (hd.BackingFile.Contains('\0')) throw Bad("backing file name contains a NUL byte");
        }
        return hd;
    }

    private static void CheckTable(long offset, long bytes, int cs, long fileLength, string what, Func<string, InvalidDataException> bad)
    {
        if (offset <= 0 || (offset & (cs - 1)) != 0) throw bad($"{what} offset {offset} is not a non-zero multiple of the cluster size");
        if (offset + bytes > fileLength) throw bad($"{what} at offset {offset} ({bytes} bytes) lies past the end of the file ({fileLength} bytes)");
    }

    /// <summary>Names the incompatible feature bits that make an image unsafe to write.</summary>
    public string? WriteRefusal()
    {
        if ((Incompatible & IncompatCorrupt) != 0) return "image is marked corrupt; repair it (qemu-img check -r all) or open it read-only";
        if ((Incompatible & IncompatDirty) != 0) return "image is marked dirty (lazy refcounts were not written back); repair it with qemu-img check -r all or open it read-only";
        if (SnapshotCount > 0) return $"image has {SnapshotCount} internal snapshot(s); writing such images is not supported (open read-only or convert it)";
        if (ExtensionTypes.Contains(ExtBitmaps)) return "image carries persistent dirty bitmaps, which are not supported for writing";
        return null;
    }

    /// <summary>The bytes of a new version 3 header (64 KiB clusters, 16-bit refcounts, deflate) with optional backing file.</summary>
    public static byte[] BuildV3(int clusterBits, long size, int l1Size, long l1Offset, long rcTableOffset, int rcTableClusters,
        string? backingFile, string? backingFormat)
    {
        int cs = 1 << clusterBits;
        var b = new byte[cs];
        BinaryPrimitives.WriteUInt32BigEndian(b, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 3);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), (uint)clusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(24), (ulong)size);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(36), (uint)l1Size);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(40), (ulong)l1Offset);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(48), (ulong)rcTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(56), (uint)rcTableClusters);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(96), 4); // refcount_order: 16-bit refcounts
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(100), 112); // header_length incl. compression type byte + padding
        int pos = 112;
        if (backingFormat != null)
        {
            var fmt = Encoding.UTF8.GetBytes(backingFormat);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(pos), ExtBackingFormat);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(pos + 4), (uint)fmt.Length);
            fmt.CopyTo(b, pos + 8);
            pos += 8 + ((fmt.Length + 7) & ~7);
        }
        pos += 8; // end-of-extensions marker (zeros)
        if (backingFile != null)
        {
            var name = Encoding.UTF8.GetBytes(backingFile);
            if (name.Length == 0 || name.Length > 1023) throw new ArgumentException("The backing file name must be 1..1023 bytes long.");
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(8), (ulong)pos);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), (uint)name.Length);
            name.CopyTo(b, pos);
        }
        return b;
    }

    public static string FormatName(DiskFormat f) => f switch
    {
        DiskFormat.Raw => "raw",
        DiskFormat.Qcow2 => "qcow2",
        DiskFormat.Vhd => "vpc",
        DiskFormat.Vmdk => "vmdk",
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    public static DiskFormat? ParseFormatName(string? name) => name?.ToLowerInvariant() switch
    {
        "raw" => DiskFormat.Raw,
        "qcow2" => DiskFormat.Qcow2,
        "vpc" or "vhd" => DiskFormat.Vhd,
        "vmdk" => DiskFormat.Vmdk,
        _ => null,
    };
}

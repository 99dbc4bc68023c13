using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// VMware's monolithic sparse VMDK ("Virtual Disk Format 5.0", hosted sparse extent), read only (import).
/// Little-endian header "KDMV" in sector 0: capacity and grain size in sectors, the embedded text descriptor,
/// and the grain directory (GD: u32 sector numbers of grain tables) → grain tables (numGTEsPerGT u32 sector
/// numbers of grains; 0 = not allocated → zeros, 1 = zero grain when header flag bit 2 is set).
/// Compressed (streamOptimized) and differencing (parent) disks are refused by name.
/// </summary>
public sealed class VmdkDiskImage : DiskImageBase
{
    public const uint Magic = 0x564D444B; // "KDMV" read as little endian
    private readonly SafeFileHandle _h;
    private readonly string _name;
    private readonly long _size, _fileLength;
    private readonly long _grainBytes;
    private readonly int _gtEntries;
    private readonly uint[] _gd;
    private readonly bool _zeroGrains;
    private readonly Dictionary<long, uint[]> _gtCache = new();

    private VmdkDiskImage(string path, SafeFileHandle h) : base(path, readOnly: true)
    {
        _h = h;
        _name = System.IO.Path.GetFileName(path);
        _fileLength = RandomAccess.GetLength(h);
        var hd = ReadHeader(h, _fileLength, path);
        _size = hd.Capacity * 512;
        _grainBytes = hd.GrainSectors * 512;
        _gtEntries = hd.GtEntries;
        _zeroGrains = (hd.Flags & 4) != 0;
        long gdEntries = (hd.Capacity + hd.GrainSectors * hd.GtEntries - 1) / (hd.GrainSectors * hd.GtEntries);
        long gdOff = hd.GdOffset * 512;
        if (gdOff <= 0 || gdOff + gdEntries * 4 > _fileLength) throw Bad($"grain directory at offset {gdOff} lies past the end of the file");
        var raw = new byte[gdEntries * 4];
        ReadFile(h, gdOff, raw);
        _gd = new uint[gdEntries];
        for (int i = 0; i < gdEntries; i++)
        {
            _gd[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 4));
            if (_gd[i] != 0 && (long)_gd[i] * 512 + _gtEntries * 4L > _fileLength)
                throw Bad($"grain directory entry {i} points to sector {_gd[i]}, past the end of the file");
        }
    }

    internal readonly record struct Header(uint Flags, long Capacity, long GrainSectors, int GtEntries, long GdOffset, string Descriptor);

    internal static Header ReadHeader(SafeFileHandle h, long fileLength, string path)
    {
        string name = System.IO.Path.GetFileName(path);
        InvalidDataException Bad(string what) => new($"{name}: VMDK {what}");
        if (fileLength < 512) throw Bad($"file is truncated: {fileLength} bytes, shorter than the 512-byte header");
        var b = new byte[512];
        ReadFile(h, 0, b);
        if (BinaryPrimitives.ReadUInt32LittleEndian(b) != Magic) throw Bad("magic \"KDMV\" missing");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4));
        if (version < 1 || version > 3) throw Bad($"version {version} is not supported (1..3)");
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(8));
        ulong capacity = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(12));
        ulong grain = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(20));
        ulong descOff = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(28));
        ulong descSize = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(36));
        uint gtes = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(44));
        ulong gdOff = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(56));
        ushort compress = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(77));
        if ((flags & 0x10000) != 0 || compress != 0) throw Bad("has compressed grains (streamOptimized), which are not supported; convert it with qemu-img first");
        if (gdOff == ulong.MaxValue) throw Bad("keeps its grain directory at the end (streamOptimized), which is not supported");
        if (capacity * 512 > (ulong)Qcow2Header.MaxVirtualSize) throw Bad($"capacity {capacity} sectors is larger than the supported maximum of 4 TiB");
        if (grain < 1 || grain > 131072 || (grain & (grain - 1)) != 0) throw Bad($"grain size {grain} sectors is invalid (a power of two up to 64 MiB)");
        if (gtes < 1 || gtes > 65536) throw Bad($"{gtes} grain table entries per table is invalid");
        if (gdOff > (ulong)fileLength / 512) throw Bad($"grain directory at sector {gdOff} lies past the end of the file");
        string descriptor = "";
        if (descOff != 0)
        {
            if (descSize > 2048 || (descOff + descSize) * 512 > (ulong)fileLength) throw Bad("embedded descriptor lies past the end of the file");
            var d = new byte[descSize * 512];
            ReadFile(h, (long)descOff * 512, d);
            descriptor = Encoding.ASCII.GetString(d).TrimEnd('\0');
            string? type = DescriptorValue(descriptor, "createType");
            if (type != null && type != "monolithicSparse") throw Bad($"createType \"{type}\" is not supported (only monolithicSparse)");
            string? parent = DescriptorValue(descriptor, "parentCID");
            if (parent != null && !parent.Equals("ffffffff", StringComparison.OrdinalIgnoreCase)) throw Bad("has a parent disk (differencing), which is not supported");
        }
        return new Header(flags, (long)capacity, (long)grain, (int)gtes, (long)gdOff, descriptor);
    }

    internal static string? DescriptorValue(string descriptor, string key)
    {
        foreach (var line in descriptor.Split('\n'))
        {
            var t = line.Trim();
            if (!t.StartsWith(key, StringComparison.Ordinal)) continue;
            int eq = t.IndexOf('=');
            if (eq < 0) continue;
            return t[(eq + 1)..].Trim().Trim('"');
        }
        return null;
    }

    internal static VmdkDiskImage Open(string path)
    {
        var h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try { return new VmdkDiskImage(path, h); }
        catch { h.Dispose(); throw; }
    }

    public override DiskFormat Format => DiskFormat.Vmdk;
    public override long Length => _size;

    private InvalidDataException Bad(string what) => new($"{_name}: VMDK {what}");

    private uint[] GrainTable(long gdIndex)
    {
        if (_gtCache.TryGetValue(gdIndex, out var t)) return t;
        if (_gtCache.Count > 4096) _gtCache.Clear();
        var raw = new byte[_gtEntries * 4];
        ReadFile(_h, (long)_gd[gdIndex] * 512, raw);
        t = new uint[_gtEntries];
        for (int i = 0; i < t.Length; i++) t[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 4));
        _gtCache[gdIndex] = t;
        return t;
    }

    /// <summary>Host offset of grain <paramref name="g"/>, or 0 when it reads as zeros.</summary>
    private long GrainOffset(long g)
    {
        long gdi = g / _gtEntries;
        if (_gd[gdi] == 0) return 0;
        uint s = GrainTable(gdi)[g % _gtEntries];
        if (s == 0 || (s == 1 && _zeroGrains)) return 0;
        long off = (long)s * 512;
        if (off >= _fileLength) throw Bad($"grain {g} points to sector {s}, past the end of the file");
        return off;
    }

    protected override void ReadCore(long offset, Span<byte> buffer)
    {
        int pos = 0;
        while (pos < buffer.Length)
        {
            long vo = offset + pos;
            long g = vo / _grainBytes;
            int intra = (int)(vo % _grainBytes);
            long host = GrainOffset(g);
            int n = (int)Math.Min(_grainBytes - intra, buffer.Length - pos);
            while (pos + n < buffer.Length)
            {
                long h2 = GrainOffset((offset + pos + n) / _grainBytes);
                if ((host == 0) != (h2 == 0) || (host != 0 && h2 != host + intra + n)) break;
                n += (int)Math.Min(_grainBytes, buffer.Length - pos - n);
            }
            if (host == 0) buffer.Slice(pos, n).Clear();
            else ReadFile(_h, host + intra, buffer.Slice(pos, n));
            pos += n;
        }
    }

    protected override void WriteCore(long offset, ReadOnlySpan<byte> buffer) =>
        throw new InvalidOperationException("VMDK images are read-only here.");

    public override void Flush() { }

    protected override void DisposeCore() => _h.Dispose();
}

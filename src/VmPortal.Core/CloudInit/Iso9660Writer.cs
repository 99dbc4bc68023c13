using System.Buffers.Binary;
using System.Text;

namespace VmPortal.Core.CloudInit;

/// <summary>
/// Writes a small ISO 9660 image (ECMA-119) with a Joliet supplementary volume: one root directory holding a
/// few files, enough for a cloud-init NoCloud seed ("cidata" with <c>meta-data</c> and <c>user-data</c>).
/// The primary volume names files in ISO 9660 level 2 d-characters (<c>META_DATA.;1</c>); the Joliet volume
/// keeps the exact names (<c>meta-data</c>), which Linux, blkid and isoinfo -J use.
/// Layout (2048-byte sectors): 0-15 system area, 16 primary volume descriptor, 17 Joliet descriptor,
/// 18 terminator, 19-22 path tables (L and M, primary and Joliet), 23-24 root directories, then file data.
/// </summary>
public static class Iso9660Writer
{
    private const int Sector = 2048;
    private const int PvdSector = 16, SvdSector = 17, TerminatorSector = 18;
    private const int PathTablesSector = 19, PrimaryRootSector = 23, JolietRootSector = 24, FirstFileSector = 25;
    private const int MaxFiles = 32;

    /// <summary>Builds the image. Volume label: 1-16 characters of A-Z a-z 0-9 _ (e.g. "cidata"; Joliet holds 16).</summary>
    public static byte[] Build(string volumeLabel, IReadOnlyList<(string Name, byte[] Content)> files, DateTimeOffset? timestamp = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (string.IsNullOrEmpty(volumeLabel) || volumeLabel.Length > 16 || !volumeLabel.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ArgumentException("volume label: 1-16 characters of A-Z a-z 0-9 _", nameof(volumeLabel));
        if (files.Count > MaxFiles) throw new ArgumentException($"at most {MaxFiles} files", nameof(files));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, content) in files)
        {
            ArgumentNullException.ThrowIfNull(content);
            if (string.IsNullOrEmpty(name) || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
                throw new ArgumentException($"file name '{name}': 1-64 characters of A-Z a-z 0-9 - _ .", nameof(files));
            if (!names.Add(PrimaryName(name))) throw new ArgumentException($"file name '{name}' collides with another one", nameof(files));
        }
        var when = (timestamp ?? DateTimeOffset.UtcNow).ToUniversalTime();

        // File data, in the given order, each from a sector boundary.
        var sorted = files.Select((f, i) => (f.Name, f.Content, Index: i)).ToList();
        var extent = new int[files.Count];
        int next = FirstFileSector;
        for (int i = 0; i < files.Count; i++) { extent[i] = next; next += Math.Max(1, Sectors(files[i].Content.Length)); }
        int totalSectors = next;
        var image = new byte[(long)totalSectors * Sector];
        for (int i = 0; i < files.Count; i++) files[i].Content.CopyTo(image, extent[i] * Sector);

        // Root directories: ".", "..", then the files sorted by their identifier (ECMA-119 9.3).
        var primary = sorted.OrderBy(f => PrimaryName(f.Name), StringComparer.Ordinal)
            .Select(f => (Id: Encoding.ASCII.GetBytes(PrimaryName(f.Name)), f.Index));
        var joliet = sorted.OrderBy(f => f.Name, StringComparer.Ordinal)
            .Select(f => (Id: Encoding.BigEndianUnicode.GetBytes(f.Name), f.Index));
        WriteDirectory(image, PrimaryRootSector, primary, extent, files, when);
        WriteDirectory(image, JolietRootSector, joliet, extent, files, when);

        // Path tables: the root alone (10 bytes each).
        WritePathTable(image, PathTablesSector + 0, PrimaryRootSector, bigEndian: false);
        WritePathTable(image, PathTablesSector + 1, PrimaryRootSector, bigEndian: true);
        WritePathTable(image, PathTablesSector + 2, JolietRootSector, bigEndian: false);
        WritePathTable(image, PathTablesSector + 3, JolietRootSector, bigEndian: true);

        WriteVolumeDescriptor(image, PvdSector, joliet: false, volumeLabel, totalSectors, PathTablesSector, PrimaryRootSector, when);
        WriteVolumeDescriptor(image, SvdSector, joliet: true, volumeLabel, totalSectors, PathTablesSector + 2, JolietRootSector, when);
        var term = image.AsSpan(TerminatorSector * Sector, Sector);
        term[0] = 255;
        Encoding.ASCII.GetBytes("CD001").CopyTo(term[1..]);
        term[6] = 1;
        return image;
    }

    /// <summary>"meta-data" → "META_DATA.;1": level 2 d-characters, a dot (required) and version 1.</summary>
    public static string PrimaryName(string name)
    {
        var upper = new string(name.ToUpperInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c == '.' ? c : '_').ToArray());
        int dot = upper.LastIndexOf('.');
        string stem = dot < 0 ? upper : upper[..dot].Replace('.', '_');
        string ext = dot < 0 ? "" : upper[(dot + 1)..];
        if (stem.Length + ext.Length > 30) stem = stem[..Math.Max(1, 30 - ext.Length)];
        return stem + "." + ext + ";1";
    }

    private static int Sectors(long bytes) => (int)((bytes + Sector - 1) / Sector);

    private static void WriteDirectory(byte[] image, int sector, IEnumerable<(byte[] Id, int Index)> entries, int[] extent,
        IReadOnlyList<(string Name, byte[] Content)> files, DateTimeOffset when)
    {
        var dir = image.AsSpan(sector * Sector, Sector);
        int pos = 0;
        pos += DirectoryRecord(dir[pos..], [0], sector, Sector, directory: true, when);
        pos += DirectoryRecord(dir[pos..], [1], sector, Sector, directory: true, when);
        foreach (var (id, index) in entries)
        {
            if (pos + 33 + id.Length + 1 > Sector) throw new ArgumentException("too many files for one directory sector");
            pos += DirectoryRecord(dir[pos..], id, extent[index], files[index].Content.Length, directory: false, when);
        }
    }

    private static int DirectoryRecord(Span<byte> r, byte[] id, int extent, int length, bool directory, DateTimeOffset when)
    {
        int len = 33 + id.Length + (id.Length % 2 == 0 ? 1 : 0);
        r[0] = (byte)len;
        r[1] = 0;
        Both32(r[2..], extent);
        Both32(r[10..], length);
        r[18] = (byte)(when.Year - 1900);
        r[19] = (byte)when.Month;
        r[20] = (byte)when.Day;
        r[21] = (byte)when.Hour;
        r[22] = (byte)when.Minute;
        r[23] = (byte)when.Second;
        r[24] = 0; // GMT offset in 15-minute units
        r[25] = (byte)(directory ? 2 : 0);
        Both16(r[28..], 1);
        r[32] = (byte)id.Length;
        id.CopyTo(r[33..]);
        return len;
    }

    private static void WritePathTable(byte[] image, int sector, int rootExtent, bool bigEndian)
    {
        var t = image.AsSpan(sector * Sector, 10);
        t[0] = 1; // length of the directory identifier (root: one 0x00 byte)
        if (bigEndian) { BinaryPrimitives.WriteInt32BigEndian(t[2..], rootExtent); BinaryPrimitives.WriteInt16BigEndian(t[6..], 1); }
        else { BinaryPrimitives.WriteInt32LittleEndian(t[2..], rootExtent); BinaryPrimitives.WriteInt16LittleEndian(t[6..], 1); }
    }

    private static void WriteVolumeDescriptor(byte[] image, int sector, bool joliet, string label, int totalSectors,
        int pathTableSector, int rootSector, DateTimeOffset when)
    {
        var d = image.AsSpan(sector * Sector, Sector);
        d[0] = (byte)(joliet ? 2 : 1);
        Encoding.ASCII.GetBytes("CD001").CopyTo(d[1..]);
        d[6] = 1;
        Text(d.Slice(8, 32), "LINUX", joliet);
        Text(d.Slice(40, 32), label, joliet);
        Both32(d[80..], totalSectors);
        if (joliet) { d[88] = 0x25; d[89] = 0x2F; d[90] = 0x45; } // UCS-2 level 3
        Both16(d[120..], 1);   // volume set size
        Both16(d[124..], 1);   // volume sequence number
        Both16(d[128..], Sector);
        Both32(d[132..], 10);  // path table size
        BinaryPrimitives.WriteInt32LittleEndian(d[140..], pathTableSector);
        BinaryPrimitives.WriteInt32BigEndian(d[148..], pathTableSector + 1);
        DirectoryRecord(d[156..], [0], rootSector, Sector, directory: true, when);
        Text(d.Slice(190, 128), "", joliet);  // volume set
        Text(d.Slice(318, 128), "", joliet);  // publisher
        Text(d.Slice(446, 128), "", joliet);  // data preparer
        Text(d.Slice(574, 128), "VMPORTAL", joliet);
        Text(d.Slice(702, 37), "", joliet);
        Text(d.Slice(739, 37), "", joliet);
        Text(d.Slice(776, 37), "", joliet);
        DecDateTime(d.Slice(813, 17), when);
        DecDateTime(d.Slice(830, 17), when);
        DecDateTime(d.Slice(847, 17), null);
        DecDateTime(d.Slice(864, 17), null);
        d[881] = 1; // file structure version
    }

    private static void Text(Span<byte> field, string value, bool ucs2)
    {
        if (ucs2)
        {
            for (int i = 0; i + 1 < field.Length; i += 2) { field[i] = 0; field[i + 1] = (byte)' '; }
            if (field.Length % 2 == 1) field[^1] = 0;
            Encoding.BigEndianUnicode.GetBytes(value).AsSpan(0, Math.Min(value.Length * 2, field.Length & ~1)).CopyTo(field);
        }
        else
        {
            field.Fill((byte)' ');
            Encoding.ASCII.GetBytes(value).AsSpan(0, Math.Min(value.Length, field.Length)).CopyTo(field);
        }
    }

    private static void DecDateTime(Span<byte> f, DateTimeOffset? when)
    {
        var s = when is { } w ? w.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "00" : "0000000000000000";
        Encoding.ASCII.GetBytes(s).CopyTo(f);
        f[16] = 0;
    }

    private static void Both16(Span<byte> f, int v)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(f, (ushort)v);
        BinaryPrimitives.WriteUInt16BigEndian(f[2..], (ushort)v);
    }

    private static void Both32(Span<byte> f, int v)
    {
        BinaryPrimitives.WriteInt32LittleEndian(f, v);
        BinaryPrimitives.WriteInt32BigEndian(f[4..], v);
    }
}

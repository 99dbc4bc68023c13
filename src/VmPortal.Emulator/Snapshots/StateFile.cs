using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace VmPortal.Emulator.Snapshots;

/// <summary>
/// The machine state file (format version 2, little-endian; version 1 — without the media table and page
/// references — is still read):
/// <code>
///  "VMPSTATE"  u32 format version  u64 file length (checksum included)  u32 component count
///  u16 media count, per medium: path (u16 length + UTF-8)  i64 length  SHA-256 (32 bytes)
///  per component: name (u16 length + UTF-8)  i32 version  i32 JSON length + JSON (the record's fields by name)
///                 u16 area count, per area: name  i64 length  i32 bitmap length + bitmap of non-zero 4 KiB pages
///                                           i32 reference count, per reference: i32 ordinal among the present
///                                               pages  u16 medium  i64 offset (a 4 KiB page equal to the medium there)
///                                           i64 stored bytes (the other present pages)  i32 chunk count, per chunk
///                                               (4 MiB of those bytes each, the last shorter): i32 length + zlib
///                                               (version 1: one i32 length + zlib of them all)
///  SHA-256 of everything before it (32 bytes)
/// </code>
/// Reading checks magic, format version, length and checksum before anything else, so a truncated or damaged file
/// is refused with a message naming the problem and nothing is applied.
/// </summary>
public static class StateFile
{
    public const int FormatVersion = 2;
    private const int OldestFormatVersion = 1;
    public static ReadOnlySpan<byte> Magic => "VMPSTATE"u8;
    private const int HeaderSize = 8 + 4 + 8 + 4;
    private const int ChecksumSize = 32;

    /// <summary>Writes the snapshot (areas compressed in parallel); returns the bytes written.</summary>
    public static long Write(Stream stream, MachineSnapshot snapshot)
    {
        var compressed = new byte[snapshot.Components.Count][][][];
        var refs = new List<MediaPages.PageRef>[snapshot.Components.Count][];
        var stored = new long[snapshot.Components.Count][];
        var media = MediaPages.Load(snapshot.ReferenceMedia);
        var index = new MediaPages.Index(media);
        // Compressing RAM is the slow part: do the areas in parallel (they are independent).
        var jobs = new List<(int C, int A, PageImage Image)>();
        for (int c = 0; c < snapshot.Components.Count; c++)
        {
            var areas = snapshot.Components[c].Areas;
            compressed[c] = new byte[areas.Count][][];
            refs[c] = new List<MediaPages.PageRef>[areas.Count];
            stored[c] = new long[areas.Count];
            for (int a = 0; a < areas.Count; a++) jobs.Add((c, a, areas[a].Image));
        }
        Parallel.ForEach(jobs, j =>
        {
            var (r, rest) = MediaPages.Split(j.Image, index);
            refs[j.C][j.A] = r;
            stored[j.C][j.A] = rest.Length;
            compressed[j.C][j.A] = PageImage.CompressChunks(rest);
        });

        using var body = new MemoryStream();
        var w = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write((uint)FormatVersion);
        w.Write(0UL); // file length, patched below
        w.Write((uint)snapshot.Components.Count);
        w.Write((ushort)media.Count);
        foreach (var m in media)
        {
            WriteString(w, m.Path);
            w.Write(m.Length);
            w.Write(m.Sha256);
        }
        for (int c = 0; c < snapshot.Components.Count; c++)
        {
            var comp = snapshot.Components[c];
            WriteString(w, comp.Name);
            w.Write(comp.Version);
            w.Write(comp.Json.Length);
            w.Write(comp.Json);
            w.Write((ushort)comp.Areas.Count);
            for (int a = 0; a < comp.Areas.Count; a++)
            {
                var (name, image) = comp.Areas[a];
                WriteString(w, name);
                w.Write(image.Length);
                w.Write(image.PresentBitmap.Length);
                w.Write(image.PresentBitmap);
                w.Write(refs[c][a].Count);
                foreach (var r in refs[c][a])
                {
                    w.Write(r.Ordinal);
                    w.Write(r.Medium);
                    w.Write(r.Offset);
                }
                w.Write(stored[c][a]);
                w.Write(compressed[c][a].Length);
                foreach (var chunk in compressed[c][a])
                {
                    w.Write(chunk.Length);
                    w.Write(chunk);
                }
            }
        }
        w.Flush();
        long total = body.Length + ChecksumSize;
        var buffer = body.GetBuffer();
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(12), (ulong)total);
        var hash = SHA256.HashData(buffer.AsSpan(0, (int)body.Length));
        stream.Write(buffer, 0, (int)body.Length);
        stream.Write(hash);
        stream.Flush();
        return total;
    }

    /// <summary>Reads and checks a whole state file. Throws <see cref="InvalidDataException"/> naming the problem.</summary>
    public static MachineSnapshot Read(Stream stream)
    {
        byte[] data;
        if (stream.CanSeek && stream.Length - stream.Position is var left and <= int.MaxValue)
        {
            // a file: read it in one array of its size (no growing buffer and no copy of ~15 MiB)
            data = GC.AllocateUninitializedArray<byte>((int)left);
            stream.ReadExactly(data);
        }
        else
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            data = ms.ToArray();
        }
        return Read(data);
    }

    public static MachineSnapshot Read(byte[] data)
    {
        if (data.Length < Magic.Length || !data.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Bad("this is not a VmPortal machine state file (no \"VMPSTATE\" magic)");
        if (data.Length < HeaderSize)
            throw Bad($"the file is truncated: {data.Length} bytes, shorter than its header");
        uint format = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(8));
        if (format is < OldestFormatVersion or > FormatVersion)
            throw Bad($"format version {format} is not supported (this build reads format versions {OldestFormatVersion} to {FormatVersion})");
        ulong total = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(12));
        if ((ulong)data.Length < total)
            throw Bad($"the file is truncated: {data.Length} of {total} bytes");
        if ((ulong)data.Length > total)
            throw Bad($"the file has {(ulong)data.Length - total} bytes after its end ({total} bytes)");
        int bodyLength = data.Length - ChecksumSize;
        if (bodyLength < HeaderSize) throw Bad("the file is truncated: no room for its checksum");
        var expected = SHA256.HashData(data.AsSpan(0, bodyLength));
        if (!expected.AsSpan().SequenceEqual(data.AsSpan(bodyLength, ChecksumSize)))
            throw Bad("checksum mismatch: the file is damaged (its SHA-256 does not match its contents)");

        var r = new Cursor(data, HeaderSize - 4, bodyLength);
        uint count = r.U32();
        var mediaTable = new List<(string Path, long Length, byte[] Sha)>();
        if (format >= 2)
            for (int m = r.U16(); m > 0; m--) mediaTable.Add((r.String(), r.I64(), r.Bytes(32)));
        var media = new MediaPages.Medium?[mediaTable.Count];
        MediaPages.Medium Medium(int m, string what)
        {
            if (media[m] is { } loaded) return loaded;
            var (path, length, sha) = mediaTable[m];
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Bad($"{what} holds pages of {path}, which cannot be read ({e.Message})");
            }
            if (bytes.Length != length || !SHA256.HashData(bytes).AsSpan().SequenceEqual(sha))
                throw Bad($"{what} holds pages of {path}, which has changed since the state was saved");
            return (media[m] = new MediaPages.Medium(path, length, sha, bytes));
        }
        var components = new List<ComponentState>();
        for (uint c = 0; c < count; c++)
        {
            string name = r.String();
            int version = r.I32();
            byte[] json = r.Bytes(r.Length("fields of " + name));
            int areaCount = r.U16();
            var areas = new List<(string, PageImage)>();
            for (int a = 0; a < areaCount; a++)
            {
                string areaName = r.String();
                long length = r.I64();
                if (length < 0 || length > int.MaxValue) throw Bad($"component '{name}' area '{areaName}' has an invalid length {length}");
                byte[] bitmap = r.Bytes(r.Length("page map"));
                var refs = new List<MediaPages.PageRef>();
                if (format >= 2)
                {
                    int refCount = r.I32();
                    if (refCount < 0 || refCount > bitmap.Length * 8) throw Bad($"component '{name}' area '{areaName}' has an invalid page reference count {refCount}");
                    for (int i = 0; i < refCount; i++)
                    {
                        var pr = new MediaPages.PageRef(r.I32(), r.U16(), r.I64());
                        if (pr.Medium >= mediaTable.Count || pr.Offset < 0 || pr.Offset + PageImage.PageSize > mediaTable[pr.Medium].Length
                            || pr.Ordinal < 0 || (refs.Count > 0 && pr.Ordinal <= refs[^1].Ordinal))
                            throw Bad($"component '{name}' area '{areaName}': page reference {i} is invalid");
                        refs.Add(pr);
                    }
                }
                long stored = r.I64();
                var chunks = new List<(int Offset, int Count)>();
                if (format >= 2)
                {
                    int chunkCount = r.I32();
                    if (chunkCount < 1 || chunkCount > PageImage.ChunkCount(int.MaxValue)) throw Bad($"component '{name}' area '{areaName}' has an invalid chunk count {chunkCount}");
                    for (int i = 0; i < chunkCount; i++)
                    {
                        int chunkLength = r.Length("compressed pages");
                        chunks.Add((r.Skip(chunkLength), chunkLength));
                    }
                }
                else
                {
                    int compressedLength = r.Length("compressed pages");
                    chunks.Add((r.Skip(compressedLength), compressedLength));
                }
                var probe = new PageImage(length, bitmap, Array.Empty<byte>());
                long present = probe.ExpectedStoredBytes();
                if (bitmap.Length != (probe.PageCount + 7) / 8 || stored != present - (long)refs.Count * PageImage.PageSize
                    || (refs.Count > 0 && (long)refs[^1].Ordinal * PageImage.PageSize + PageImage.PageSize > present))
                    throw Bad($"component '{name}' area '{areaName}': its page map does not match its size");
                string what = $"component '{name}' area '{areaName}'";
                byte[] pages;
                if (refs.Count == 0)
                    pages = format >= 2
                        ? PageImage.DecompressChunks(data, chunks, stored, $"machine state file: {what}")
                        : PageImage.Decompress(data, chunks[0].Offset, chunks[0].Count, stored, $"machine state file: {what}");
                else
                {
                    // (format 2) the stored pages inflate straight to their places between the referenced ones
                    foreach (var m in refs.Select(x => (int)x.Medium).Distinct()) Medium(m, what);
                    pages = GC.AllocateUninitializedArray<byte>(checked((int)present));
                    PageImage.DecompressChunks(data, chunks, stored, pages, MediaPages.StoredPageOffsets(present, refs), $"machine state file: {what}");
                    MediaPages.CopyReferenced(pages, refs, media!);
                }
                areas.Add((areaName, new PageImage(length, bitmap, pages)));
            }
            if (components.Any(x => x.Name == name)) throw Bad($"component '{name}' appears twice");
            components.Add(new ComponentState(name, version, json, areas));
        }
        if (r.Position != bodyLength) throw Bad($"{bodyLength - r.Position} unexplained bytes after the last component");
        return new MachineSnapshot(components) { ReferenceMedia = mediaTable.Select(m => m.Path).ToList() };
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ushort)bytes.Length);
        w.Write(bytes);
    }

    internal static InvalidDataException Bad(string problem) => new($"machine state file: {problem}");

    private sealed class Cursor(byte[] data, int position, int end)
    {
        public int Position { get; private set; } = position;

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || Position + n > end) throw Bad("the file is damaged: a field runs past the end");
            var s = data.AsSpan(Position, n);
            Position += n;
            return s;
        }

        public int Skip(int n) { int at = Position; Take(n); return at; }
        public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        public byte[] Bytes(int n) => Take(n).ToArray();
        public string String() => Encoding.UTF8.GetString(Take(U16()));

        public int Length(string what)
        {
            int n = I32();
            if (n < 0 || Position + n > end) throw Bad($"the file is damaged: the {what} run past the end");
            return n;
        }
    }
}

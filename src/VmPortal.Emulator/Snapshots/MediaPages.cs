using System.Buffers.Binary;
using System.Security.Cryptography;

namespace VmPortal.Emulator.Snapshots;

/// <summary>
/// Pages of a memory area that are byte for byte a 4 KiB window of a read-only file the machine booted from — the
/// kernel, the initrd, a CD image — are stored as a reference (file, offset) instead of their bytes. Linux leaves
/// its compressed kernel image in RAM it later treats as free (the rescue guest: ~9.5 MiB of such pages at its
/// prompt, incompressible, half of a state file); compressed data does not shrink with zlib, but it is already on
/// the host's disk. A reference names the file by path, length and SHA-256: a load whose file is missing or changed
/// is refused with a message naming it. Files above <see cref="MaxMediumBytes"/> are not indexed (a big installer ISO
/// costs more to read and hash than it saves).
/// </summary>
public static class MediaPages
{
    public const long MaxMediumBytes = 64L << 20;
    private const int Step = 512; // bzImage payloads and CD sectors sit at 512-byte multiples of their files

    /// <summary>A reference medium as the state file records it; <see cref="Bytes"/> when read.</summary>
    public sealed record Medium(string Path, long Length, byte[] Sha256, byte[] Bytes);

    /// <summary>One stored page taken from a medium: the page's ordinal among the area's present pages.</summary>
    public readonly record struct PageRef(int Ordinal, ushort Medium, long Offset);

    /// <summary>Reads the usable media (existing, readable, at most <see cref="MaxMediumBytes"/>), each once.</summary>
    public static List<Medium> Load(IEnumerable<string> paths)
    {
        var list = new List<Medium>();
        foreach (var p in paths.Select(System.IO.Path.GetFullPath).Distinct(StringComparer.Ordinal))
        {
            try
            {
                var fi = new FileInfo(p);
                if (!fi.Exists || fi.Length < PageImage.PageSize || fi.Length > MaxMediumBytes) continue;
                var bytes = File.ReadAllBytes(p);
                list.Add(new Medium(p, bytes.Length, SHA256.HashData(bytes), bytes));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (list.Count == ushort.MaxValue) break;
        }
        return list;
    }

    /// <summary>An index of every 4 KiB window at a 512-byte step of the media (first occurrence wins).</summary>
    public sealed class Index
    {
        private readonly List<Medium> _media;
        private readonly Dictionary<ulong, (ushort Medium, long Offset)> _windows = [];

        public Index(List<Medium> media)
        {
            _media = media;
            for (int m = 0; m < media.Count; m++)
            {
                var b = media[m].Bytes;
                for (long off = 0; off + PageImage.PageSize <= b.Length; off += Step)
                {
                    var w = b.AsSpan((int)off, PageImage.PageSize);
                    if (Uniformish(w)) continue; // padding, zero runs: zlib stores those for nothing anyway
                    _windows.TryAdd(Key(w), ((ushort)m, off));
                }
            }
        }

        public bool IsEmpty => _windows.Count == 0;

        /// <summary>The medium window equal to <paramref name="page"/>, if any.</summary>
        public bool TryFind(ReadOnlySpan<byte> page, out ushort medium, out long offset)
        {
            medium = 0; offset = 0;
            if (page.Length != PageImage.PageSize || !_windows.TryGetValue(Key(page), out var hit)) return false;
            if (!_media[hit.Medium].Bytes.AsSpan((int)hit.Offset, PageImage.PageSize).SequenceEqual(page)) return false;
            (medium, offset) = hit;
            return true;
        }
    }

    /// <summary>
    /// Splits an area's present pages into references (pages found in the media) and the bytes still to store.
    /// </summary>
    public static (List<PageRef> Refs, byte[] Remaining) Split(PageImage image, Index index)
    {
        var refs = new List<PageRef>();
        if (index.IsEmpty) return (refs, image.Pages);
        int count = (image.Pages.Length + PageImage.PageSize - 1) / PageImage.PageSize;
        for (int i = 0; i < count; i++)
        {
            int at = i * PageImage.PageSize;
            var page = image.Pages.AsSpan(at, Math.Min(PageImage.PageSize, image.Pages.Length - at));
            if (index.TryFind(page, out var m, out var off)) refs.Add(new PageRef(i, m, off));
        }
        if (refs.Count == 0) return (refs, image.Pages);
        var rest = GC.AllocateUninitializedArray<byte>(image.Pages.Length - refs.Count * PageImage.PageSize);
        int r = 0, w = 0;
        for (int i = 0; i < count; i++)
        {
            int at = i * PageImage.PageSize;
            int len = Math.Min(PageImage.PageSize, image.Pages.Length - at);
            if (r < refs.Count && refs[r].Ordinal == i) { r++; continue; }
            image.Pages.AsSpan(at, len).CopyTo(rest.AsSpan(w));
            w += len;
        }
        return (refs, rest);
    }

    /// <summary>
    /// Where the stored (not referenced) pages go among the area's <paramref name="presentBytes"/> of present pages:
    /// the byte offset of each, in order. A load inflates them straight there (<see cref="PageImage"/>).
    /// </summary>
    public static int[] StoredPageOffsets(long presentBytes, List<PageRef> refs)
    {
        int count = (int)((presentBytes + PageImage.PageSize - 1) / PageImage.PageSize);
        var offsets = new int[count - refs.Count];
        int r = 0, s = 0;
        for (int i = 0; i < count; i++)
        {
            if (r < refs.Count && refs[r].Ordinal == i) { r++; continue; }
            offsets[s++] = i * PageImage.PageSize;
        }
        return offsets;
    }

    /// <summary>Copies the referenced pages from the media to their places among the present pages.</summary>
    public static void CopyReferenced(byte[] pages, List<PageRef> refs, IReadOnlyList<Medium> media)
    {
        foreach (var (ordinal, m, off) in refs)
            media[m].Bytes.AsSpan((int)off, PageImage.PageSize).CopyTo(pages.AsSpan(ordinal * PageImage.PageSize));
    }

    private static ulong Key(ReadOnlySpan<byte> w) =>
        BinaryPrimitives.ReadUInt64LittleEndian(w) * 0x9E3779B97F4A7C15UL
        ^ BinaryPrimitives.ReadUInt64LittleEndian(w[1024..]) * 0xC2B2AE3D27D4EB4FUL
        ^ BinaryPrimitives.ReadUInt64LittleEndian(w[2048..]) * 0x165667B19E3779F9UL
        ^ BinaryPrimitives.ReadUInt64LittleEndian(w[4088..]);

    private static bool Uniformish(ReadOnlySpan<byte> w)
    {
        ulong a = BinaryPrimitives.ReadUInt64LittleEndian(w), b = BinaryPrimitives.ReadUInt64LittleEndian(w[2048..]),
              c = BinaryPrimitives.ReadUInt64LittleEndian(w[4088..]);
        return a == b && b == c;
    }
}

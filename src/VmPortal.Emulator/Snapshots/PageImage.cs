using System.IO.Compression;

namespace VmPortal.Emulator.Snapshots;

/// <summary>
/// A copy of a large memory area (RAM, VRAM) that keeps only its non-zero 4 KiB pages: a bitmap of present pages and
/// their bytes, back to back. Taken while the machine is paused (a copy of the used pages only); compressed later,
/// off the machine thread.
/// </summary>
public sealed class PageImage
{
    public const int PageSize = 4096;

    public PageImage(long length, byte[] presentBitmap, byte[] pages)
    {
        Length = length;
        PresentBitmap = presentBitmap;
        Pages = pages;
    }

    /// <summary>Bytes in the area (the last page may be partial).</summary>
    public long Length { get; }
    /// <summary>Bit i set: page i is stored (non-zero).</summary>
    public byte[] PresentBitmap { get; }
    /// <summary>The stored pages in ascending order, each <see cref="PageSize"/> bytes (the last may be shorter).</summary>
    public byte[] Pages { get; }

    public int PageCount => (int)((Length + PageSize - 1) / PageSize);

    public static PageImage Capture(ReadOnlySpan<byte> area)
    {
        int pages = (area.Length + PageSize - 1) / PageSize;
        var bitmap = new byte[(pages + 7) / 8];
        long stored = 0;
        for (int p = 0; p < pages; p++)
        {
            var page = area.Slice(p * PageSize, Math.Min(PageSize, area.Length - p * PageSize));
            if (page.IndexOfAnyExcept((byte)0) < 0) continue;
            bitmap[p >> 3] |= (byte)(1 << (p & 7));
            stored += page.Length;
        }
        var data = GC.AllocateUninitializedArray<byte>(checked((int)stored));
        int at = 0;
        for (int p = 0; p < pages; p++)
        {
            if ((bitmap[p >> 3] & (1 << (p & 7))) == 0) continue;
            var page = area.Slice(p * PageSize, Math.Min(PageSize, area.Length - p * PageSize));
            page.CopyTo(data.AsSpan(at));
            at += page.Length;
        }
        return new PageImage(area.Length, bitmap, data);
    }

    /// <summary>
    /// Writes the area into <paramref name="target"/> (exactly <see cref="Length"/> bytes; absent pages become zero).
    /// <paramref name="targetIsZero"/>: the target is known to be all zero (a freshly allocated array nothing wrote
    /// to), so absent pages are not even read — reading an untouched page of a fresh array costs a page fault.
    /// </summary>
    public void Expand(Span<byte> target, bool targetIsZero = false)
    {
        if (target.Length != Length) throw new InvalidDataException($"memory area of {Length} bytes does not fit {target.Length} bytes");
        int at = 0;
        for (int p = 0; p < PageCount; p++)
        {
            bool present = (PresentBitmap[p >> 3] & (1 << (p & 7))) != 0;
            if (!present && targetIsZero) continue;
            var page = target.Slice(p * PageSize, (int)Math.Min(PageSize, Length - (long)p * PageSize));
            if (!present)
            {
                // Clear only what is not zero: reading a page costs far less than writing it; a revert reuses the
                // running board's arrays, where most absent pages are zero already.
                if (page.ContainsAnyExcept((byte)0)) page.Clear();
                continue;
            }
            Pages.AsSpan(at, page.Length).CopyTo(page);
            at += page.Length;
        }
    }

    public byte[] ToArray()
    {
        var a = new byte[Length];
        Expand(a);
        return a;
    }

    /// <summary>Bytes the present pages must hold according to the bitmap (checks a file's consistency).</summary>
    internal long ExpectedStoredBytes()
    {
        long n = 0;
        for (int p = 0; p < PageCount; p++)
            if ((PresentBitmap[p >> 3] & (1 << (p & 7))) != 0) n += Math.Min(PageSize, Length - (long)p * PageSize);
        return n;
    }

    /// <summary>
    /// Stored bytes per independently compressed chunk (format 2): chunks compress and inflate in parallel, so a
    /// save or load of ~40 MiB of pages uses every core instead of one.
    /// </summary>
    internal const int ChunkBytes = 4 << 20;

    /// <summary>Chunks of <see cref="ChunkBytes"/> for <paramref name="length"/> stored bytes (at least one).</summary>
    internal static int ChunkCount(long length) => Math.Max(1, (int)((length + ChunkBytes - 1) / ChunkBytes));

    internal static byte[] Compress(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream(data.Length / 4 + 64);
        using (var z = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    /// <summary>Each <see cref="ChunkBytes"/> of <paramref name="data"/> compressed on its own, in parallel.</summary>
    internal static byte[][] CompressChunks(byte[] data)
    {
        var chunks = new byte[ChunkCount(data.Length)][];
        Parallel.For(0, chunks.Length, i =>
        {
            int at = i * ChunkBytes;
            chunks[i] = Compress(data.AsSpan(at, Math.Min(ChunkBytes, data.Length - at)));
        });
        return chunks;
    }

    /// <summary>The chunks (offset and length in <paramref name="buffer"/>) inflated in parallel into one array.</summary>
    internal static byte[] DecompressChunks(byte[] buffer, IReadOnlyList<(int Offset, int Count)> chunks, long expectedLength, string what)
    {
        var result = GC.AllocateUninitializedArray<byte>(checked((int)expectedLength));
        DecompressChunks(buffer, chunks, expectedLength, result, null, what);
        return result;
    }

    /// <summary>
    /// The chunks inflated in parallel into <paramref name="target"/>: stored byte i goes to
    /// <c>pageOffsets[i / PageSize] + i % PageSize</c> (or to i when <paramref name="pageOffsets"/> is null). Lets a load
    /// put the stored pages straight between the pages taken from boot files, with no array and copy in between.
    /// </summary>
    internal static void DecompressChunks(byte[] buffer, IReadOnlyList<(int Offset, int Count)> chunks, long expectedLength, byte[] target,
        int[]? pageOffsets, string what)
    {
        if (chunks.Count != ChunkCount(expectedLength))
            throw new InvalidDataException($"{what}: {chunks.Count} compressed chunks for {expectedLength} bytes, expected {ChunkCount(expectedLength)}");
        try
        {
            Parallel.For(0, chunks.Count, i =>
            {
                int at = i * ChunkBytes;
                Inflate(buffer, chunks[i].Offset, chunks[i].Count, target, at, (int)Math.Min(ChunkBytes, expectedLength - at), pageOffsets, what);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is InvalidDataException) is { } bad)
        {
            throw bad;
        }
    }

    internal static byte[] Decompress(byte[] buffer, int offset, int count, long expectedLength, string what)
    {
        var result = GC.AllocateUninitializedArray<byte>(checked((int)expectedLength));
        Inflate(buffer, offset, count, result, 0, result.Length, null, what);
        return result;
    }

    /// <summary>Inflates stored bytes [at, at + length) to their places in <paramref name="result"/> (see <see cref="DecompressChunks(byte[], IReadOnlyList{ValueTuple{int, int}}, long, byte[], int[], string)"/>).</summary>
    private static void Inflate(byte[] buffer, int offset, int count, byte[] result, int at, int length, int[]? pageOffsets, string what)
    {
        using var input = new MemoryStream(buffer, offset, count, writable: false);
        using var z = new ZLibStream(input, CompressionMode.Decompress);
        int read = 0;
        try
        {
            while (read < length)
            {
                int pos = at + read, run = length - read, dest = pos;
                if (pageOffsets != null)
                {
                    // the longest run of stored pages that lie back to back in the result
                    int page = pos / PageSize;
                    dest = pageOffsets[page] + pos % PageSize;
                    int end = (page + 1) * PageSize;
                    while (end < at + length && pageOffsets[page + 1] == pageOffsets[page] + PageSize) { page++; end += PageSize; }
                    run = Math.Min(run, end - pos);
                }
                int n = z.Read(result, dest, run);
                if (n == 0) break;
                read += n;
            }
            // a chunk must end where its bytes end
            if (read == length && z.ReadByte() >= 0) read++;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{what}: the compressed pages are corrupt ({e.Message})");
        }
        if (read != length) throw new InvalidDataException($"{what}: the compressed pages hold {(read > length ? "more than " : "")}{read} bytes, expected {length}");
    }
}

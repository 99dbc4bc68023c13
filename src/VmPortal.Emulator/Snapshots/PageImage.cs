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

    /// <summary>Writes the area into <paramref name="target"/> (exactly <see cref="Length"/> bytes; absent pages become zero).</summary>
    public void Expand(Span<byte> target)
    {
        if (target.Length != Length) throw new InvalidDataException($"memory area of {Length} bytes does not fit {target.Length} bytes");
        int at = 0;
        for (int p = 0; p < PageCount; p++)
        {
            var page = target.Slice(p * PageSize, (int)Math.Min(PageSize, Length - (long)p * PageSize));
            if ((PresentBitmap[p >> 3] & (1 << (p & 7))) == 0) { page.Clear(); continue; }
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

    internal static byte[] Compress(byte[] data)
    {
        using var output = new MemoryStream(data.Length / 4 + 64);
        using (var z = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(data);
        return output.ToArray();
    }

    internal static byte[] Decompress(byte[] buffer, int offset, int count, long expectedLength, string what)
    {
        var result = GC.AllocateUninitializedArray<byte>(checked((int)expectedLength));
        using var input = new MemoryStream(buffer, offset, count, writable: false);
        using var z = new ZLibStream(input, CompressionMode.Decompress);
        int read = 0;
        try
        {
            while (read < result.Length)
            {
                int n = z.Read(result, read, result.Length - read);
                if (n == 0) break;
                read += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{what}: the compressed pages are corrupt ({e.Message})");
        }
        if (read != result.Length) throw new InvalidDataException($"{what}: the compressed pages hold {read} bytes, expected {expectedLength}");
        return result;
    }
}

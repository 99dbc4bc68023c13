using System.Buffers.Binary;
using System.IO.Compression;

namespace VmPortal.Core.Console;

/// <summary>
/// Writes PNG files (RFC 2083 / ISO 15948) from 32-bit pixels: 8-bit indexed colour when the image has at most 256
/// colours (text modes, 256-colour modes), else 8-bit RGB. Used for screenshots and for PNG-encoded tiles.
/// </summary>
public static class PngWriter
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private const byte ColorTypeRgb = 2, ColorTypeIndexed = 3;
    private const byte FilterNone = 0, FilterSub = 1, FilterUp = 2;

    /// <summary>Encodes the whole image (<paramref name="stride"/> = pixels per source row).</summary>
    public static byte[] Encode(ReadOnlySpan<uint> pixels, int width, int height, PixelFormat format,
        CompressionLevel level = CompressionLevel.Optimal) =>
        Encode(pixels, width, height, width, format, level);

    /// <summary>Encodes a <paramref name="width"/>×<paramref name="height"/> window of a larger image.</summary>
    public static byte[] Encode(ReadOnlySpan<uint> pixels, int width, int height, int stride, PixelFormat format,
        CompressionLevel level)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), "Empty image.");
        if (stride < width || pixels.Length < (long)stride * (height - 1) + width)
            throw new ArgumentException("Pixel buffer too small for the image size.", nameof(pixels));

        var palette = new TilePalette();
        bool indexed = palette.TryBuild(pixels, width, height, stride);

        using var output = new MemoryStream();
        output.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = indexed ? ColorTypeIndexed : ColorTypeRgb;
        ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0; // deflate, adaptive filtering, no interlace
        WriteChunk(output, "IHDR"u8, ihdr);

        if (indexed)
        {
            var plte = new byte[palette.Count * 3];
            for (int i = 0; i < palette.Count; i++) PixelOps.WriteRgb(palette.Colors[i], format, plte.AsSpan(i * 3));
            WriteChunk(output, "PLTE"u8, plte);
        }

        int rowBytes = indexed ? width : width * 3;
        var raw = new byte[(rowBytes + 1) * height];
        var prev = new byte[rowBytes];
        var cur = new byte[rowBytes];
        var trial = new byte[rowBytes];
        for (int y = 0; y < height; y++)
        {
            var src = pixels.Slice(y * stride, width);
            var dst = raw.AsSpan(y * (rowBytes + 1), rowBytes + 1);
            if (indexed)
            {
                // Indexed images compress best unfiltered.
                dst[0] = FilterNone;
                for (int x = 0; x < width; x++) dst[1 + x] = palette.IndexOf(src[x]);
                continue;
            }
            for (int x = 0; x < width; x++) PixelOps.WriteRgb(src[x], format, cur.AsSpan(x * 3));
            // Pick the filter with the smallest sum of absolute values (the usual PNG heuristic) among None/Sub/Up.
            byte best = FilterNone;
            long bestScore = Score(cur);
            Filter(FilterSub, cur, prev, trial); long s = Score(trial);
            if (s < bestScore) { best = FilterSub; bestScore = s; }
            if (y > 0)
            {
                Filter(FilterUp, cur, prev, trial); s = Score(trial);
                if (s < bestScore) { best = FilterUp; }
            }
            dst[0] = best;
            if (best == FilterNone) cur.CopyTo(dst[1..]);
            else Filter(best, cur, prev, dst[1..]);
            (prev, cur) = (cur, prev);
        }

        using (var idat = new MemoryStream())
        {
            using (var z = new ZLibStream(idat, level, leaveOpen: true)) z.Write(raw);
            WriteChunk(output, "IDAT"u8, idat.GetBuffer().AsSpan(0, (int)idat.Length));
        }
        WriteChunk(output, "IEND"u8, []);
        return output.ToArray();
    }

    private static void Filter(byte filter, ReadOnlySpan<byte> cur, ReadOnlySpan<byte> prev, Span<byte> dst)
    {
        if (filter == FilterSub)
        {
            for (int i = 0; i < cur.Length; i++) dst[i] = (byte)(cur[i] - (i >= 3 ? cur[i - 3] : 0));
        }
        else
        {
            for (int i = 0; i < cur.Length; i++) dst[i] = (byte)(cur[i] - prev[i]);
        }
    }

    private static long Score(ReadOnlySpan<byte> row)
    {
        long s = 0;
        foreach (var b in row) s += b < 128 ? b : 256 - b;
        return s;
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        s.Write(type);
        s.Write(data);
        uint crc = Crc32.Update(Crc32.Update(0xFFFFFFFFu, type), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(len, crc);
        s.Write(len);
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as PNG chunks need it.</summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>Continues a CRC register (start with 0xFFFFFFFF, finish by XOR with 0xFFFFFFFF).</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    public static uint Compute(ReadOnlySpan<byte> data) => Update(0xFFFFFFFFu, data) ^ 0xFFFFFFFFu;

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}

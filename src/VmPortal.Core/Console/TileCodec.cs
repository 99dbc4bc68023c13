using System.IO.Compression;

namespace VmPortal.Core.Console;

/// <summary>Which encodings the tile encoder may choose from (Auto is the measured default; the rest for benchmarks).</summary>
public enum TileCodecMode
{
    /// <summary>Solid for one colour, Palette for ≤ 256 colours, else Rgb.</summary>
    Auto = 0,
    /// <summary>Solid for one colour, else Png.</summary>
    Png = 1,
    /// <summary>Solid for one colour, else Rgb (no palette).</summary>
    RgbOnly = 2,
}

/// <summary>Encoder settings. The defaults are the measured choice (docs/console.md).</summary>
public sealed record TileCodecOptions
{
    public TileCodecMode Mode { get; init; } = TileCodecMode.Auto;
    public CompressionLevel Level { get; init; } = CompressionLevel.Fastest;
    /// <summary>Pack palette indices at 1/2/4 bits per pixel when the palette is small enough (else 8 bits each;
    /// decoders tell the two apart by the inflated size).</summary>
    public bool PackIndices { get; init; } = true;
}

/// <summary>
/// Encodes one rectangle of a frame as a <see cref="ConsoleTile"/> and decodes it back. Not thread-safe: one
/// instance per encoder (it reuses buffers).
/// </summary>
public sealed class TileCodec(TileCodecOptions? options = null)
{
    private readonly TileCodecOptions options = options ?? new TileCodecOptions();
    private readonly TilePalette palette = new();
    private readonly MemoryStream buffer = new();
    private byte[] scratch = new byte[64 * 64 * 3];

    public TileCodecOptions Options => options;

    /// <summary>Encodes the <paramref name="w"/>×<paramref name="h"/> tile at (<paramref name="x"/>, <paramref name="y"/>)
    /// of a frame <paramref name="stride"/> pixels wide.</summary>
    public ConsoleTile Encode(ReadOnlySpan<uint> frame, int stride, int x, int y, int w, int h, PixelFormat format)
    {
        var src = frame[(y * stride + x)..];
        bool fits = palette.TryBuild(src, w, h, stride);
        if (fits && palette.Count == 1)
        {
            var rgb = new byte[3];
            PixelOps.WriteRgb(palette.Colors[0], format, rgb);
            return new ConsoleTile { X = x, Y = y, W = w, H = h, Encoding = TileEncoding.Solid, Bytes = rgb };
        }
        if (options.Mode == TileCodecMode.Png)
        {
            return new ConsoleTile
            {
                X = x, Y = y, W = w, H = h, Encoding = TileEncoding.Png,
                Bytes = PngWriter.Encode(src, w, h, stride, format, options.Level),
            };
        }
        if (fits && options.Mode == TileCodecMode.Auto)
            return new ConsoleTile { X = x, Y = y, W = w, H = h, Encoding = TileEncoding.Palette, Bytes = EncodePalette(src, stride, w, h, format) };
        return new ConsoleTile { X = x, Y = y, W = w, H = h, Encoding = TileEncoding.Rgb, Bytes = EncodeRgb(src, stride, w, h, format) };
    }

    /// <summary>Bits per palette index for a palette of <paramref name="count"/> colours.</summary>
    public static int BitsPerIndex(int count, bool pack = true) =>
        !pack ? 8 : count <= 2 ? 1 : count <= 4 ? 2 : count <= 16 ? 4 : 8;

    private byte[] EncodePalette(ReadOnlySpan<uint> src, int stride, int w, int h, PixelFormat format)
    {
        int n = palette.Count;
        // A 1-pixel-wide tile gains nothing from packing (and must stay distinguishable from 8-bit indices).
        int bits = w == 1 ? 8 : BitsPerIndex(n, options.PackIndices);
        int rowBytes = (w * bits + 7) / 8;
        var packed = Scratch(rowBytes * h);
        packed.AsSpan(0, rowBytes * h).Clear();
        int perByte = 8 / bits;
        for (int yy = 0; yy < h; yy++)
        {
            var row = src.Slice(yy * stride, w);
            int o = yy * rowBytes;
            if (bits == 8)
            {
                for (int xx = 0; xx < w; xx++) packed[o + xx] = palette.IndexOf(row[xx]);
                continue;
            }
            for (int xx = 0; xx < w; xx++)
            {
                int shift = 8 - bits * (xx % perByte + 1);
                packed[o + xx / perByte] |= (byte)(palette.IndexOf(row[xx]) << shift);
            }
        }
        buffer.SetLength(0);
        buffer.WriteByte((byte)(n - 1));
        Span<byte> rgb = stackalloc byte[3];
        for (int i = 0; i < n; i++)
        {
            PixelOps.WriteRgb(palette.Colors[i], format, rgb);
            buffer.Write(rgb);
        }
        using (var z = new ZLibStream(buffer, options.Level, leaveOpen: true)) z.Write(packed, 0, rowBytes * h);
        return buffer.ToArray();
    }

    private byte[] EncodeRgb(ReadOnlySpan<uint> src, int stride, int w, int h, PixelFormat format)
    {
        var rgb = Scratch(w * h * 3);
        int o = 0;
        for (int yy = 0; yy < h; yy++)
        {
            var row = src.Slice(yy * stride, w);
            for (int xx = 0; xx < w; xx++, o += 3) PixelOps.WriteRgb(row[xx], format, rgb.AsSpan(o, 3));
        }
        buffer.SetLength(0);
        using (var z = new ZLibStream(buffer, options.Level, leaveOpen: true)) z.Write(rgb, 0, o);
        return buffer.ToArray();
    }

    private byte[] Scratch(int size)
    {
        if (scratch.Length < size) scratch = new byte[size];
        return scratch;
    }

    /// <summary>
    /// Decodes a Solid, Rgb or Palette tile into <paramref name="dst"/> (a frame <paramref name="stride"/> pixels wide,
    /// at the tile's position), as the browser client does. Png tiles are decoded by the browser, not here.
    /// </summary>
    /// <exception cref="InvalidDataException">malformed tile bytes.</exception>
    public static void Decode(ConsoleTile tile, Span<uint> dst, int stride, PixelFormat format)
    {
        int w = tile.W, h = tile.H;
        var b = tile.Bytes;
        switch (tile.Encoding)
        {
            case TileEncoding.Solid:
            {
                if (b.Length != 3) throw new InvalidDataException("Solid tile must have 3 bytes.");
                uint p = PixelOps.FromRgb24((uint)(b[0] << 16 | b[1] << 8 | b[2]), format);
                for (int y = 0; y < h; y++) dst.Slice((tile.Y + y) * stride + tile.X, w).Fill(p);
                break;
            }
            case TileEncoding.Rgb:
            {
                var rgb = Inflate(b, 0, w * h * 3);
                for (int y = 0, o = 0; y < h; y++)
                    for (int x = 0; x < w; x++, o += 3)
                        dst[(tile.Y + y) * stride + tile.X + x] = PixelOps.FromRgb24((uint)(rgb[o] << 16 | rgb[o + 1] << 8 | rgb[o + 2]), format);
                break;
            }
            case TileEncoding.Palette:
            {
                if (b.Length < 1) throw new InvalidDataException("Empty palette tile.");
                int n = b[0] + 1;
                if (b.Length < 1 + n * 3) throw new InvalidDataException("Palette tile shorter than its palette.");
                var pal = new uint[n];
                for (int i = 0; i < n; i++)
                    pal[i] = PixelOps.FromRgb24((uint)(b[1 + i * 3] << 16 | b[2 + i * 3] << 8 | b[3 + i * 3]), format);
                // Indices are packed (1/2/4 bits for small palettes) or 8 bits each: the inflated size tells which.
                var idx = InflateUpTo(b, 1 + n * 3, w * h);
                int bits = idx.Length == w * h ? 8 : BitsPerIndex(n, pack: true);
                int rowBytes = (w * bits + 7) / 8;
                if (idx.Length != rowBytes * h)
                    throw new InvalidDataException($"Palette tile indices inflate to {idx.Length} bytes, expected {rowBytes * h}.");
                int perByte = 8 / bits, mask = (1 << bits) - 1;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int v = bits == 8 ? idx[y * rowBytes + x]
                            : (idx[y * rowBytes + x / perByte] >> (8 - bits * (x % perByte + 1))) & mask;
                        if (v >= n) throw new InvalidDataException("Palette index out of range.");
                        dst[(tile.Y + y) * stride + tile.X + x] = pal[v];
                    }
                break;
            }
            default:
                throw new InvalidDataException($"Tile encoding {tile.Encoding} is decoded by the browser.");
        }
    }

    private static byte[] Inflate(byte[] src, int offset, int expected)
    {
        var r = InflateUpTo(src, offset, expected);
        if (r.Length != expected)
            throw new InvalidDataException($"Tile data inflates to {r.Length} bytes, expected {expected}.");
        return r;
    }

    /// <summary>Inflates a zlib stream; more than <paramref name="max"/> bytes or a broken stream is invalid.</summary>
    private static byte[] InflateUpTo(byte[] src, int offset, int max)
    {
        using var z = new ZLibStream(new MemoryStream(src, offset, src.Length - offset), CompressionMode.Decompress);
        var outp = new byte[max + 1];
        int got = 0;
        while (got < outp.Length)
        {
            int r = z.Read(outp, got, outp.Length - got);
            if (r == 0) break;
            got += r;
        }
        if (got > max) throw new InvalidDataException($"Tile data inflates to more than {max} bytes.");
        return outp.AsSpan(0, got).ToArray();
    }
}

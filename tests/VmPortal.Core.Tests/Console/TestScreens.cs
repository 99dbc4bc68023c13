using System.Buffers.Binary;
using System.IO.Compression;
using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

/// <summary>Test frames: a text-mode-like screen (9×16 cells of a made-up font, 16 CGA colours) and noise.</summary>
internal static class TestScreens
{
    public static readonly uint[] Cga =
    [
        0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
        0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
    ];

    private static readonly byte[] Font = MakeFont();

    private static byte[] MakeFont()
    {
        var f = new byte[256 * 16];
        var r = new Random(3);
        for (int c = 33; c < 256; c++) for (int y = 3; y < 13; y++) f[c * 16 + y] = (byte)(r.Next(256) & 0x7E);
        return f;
    }

    /// <summary>Renders <paramref name="lines"/> (80×25 max) grey on black, ARGB.</summary>
    public static uint[] Text(string[] lines, int cols = 80, int rows = 25, byte attr = 0x07)
    {
        int w = cols * 9, h = rows * 16;
        var px = new uint[w * h];
        for (int row = 0; row < rows; row++)
            for (int col = 0; col < cols; col++)
            {
                char ch = row < lines.Length && col < lines[row].Length ? lines[row][col] : ' ';
                uint fg = 0xFF000000 | Cga[attr & 15], bg = 0xFF000000 | Cga[attr >> 4 & 7];
                for (int y = 0; y < 16; y++)
                {
                    byte bits = Font[(ch & 0xFF) * 16 + y];
                    for (int x = 0; x < 9; x++)
                        px[(row * 16 + y) * w + col * 9 + x] = x < 8 && (bits & 0x80 >> x) != 0 ? fg : bg;
                }
            }
        return px;
    }

    public static string[] Lines(int count, int seed = 1)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, count).Select(i => $"line {i:000} " + new string((char)('a' + r.Next(26)), r.Next(5, 60))).ToArray();
    }

    public static uint[] Noise(int w, int h, int seed)
    {
        var r = new Random(seed);
        var p = new uint[w * h];
        for (int i = 0; i < p.Length; i++) p[i] = 0xFF000000u | (uint)r.Next(0x1000000);
        return p;
    }

    public static uint[] Solid(int w, int h, uint argb) { var p = new uint[w * h]; Array.Fill(p, argb); return p; }

    /// <summary>Reconstructs a frame from tiles as the browser does (Png tiles via <see cref="PngReader"/>).</summary>
    public static void Apply(ConsoleFrame f, uint[] canvas, PixelFormat format)
    {
        foreach (var t in f.Tiles)
        {
            if (t.Encoding == TileEncoding.Png)
            {
                var (w, h, px) = PngReader.Read(t.Bytes);
                Assert.Equal((t.W, t.H), (w, h));
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        canvas[(t.Y + y) * f.Width + t.X + x] = PixelOps.FromRgb24(px[y * w + x], format);
            }
            else TileCodec.Decode(t, canvas, f.Width, format);
        }
    }

    public static uint[] Opaque(uint[] px) => px.Select(p => p | 0xFF000000u).ToArray();
}

/// <summary>A small independent PNG decoder for tests: checks CRCs, handles all five filters, RGB and indexed.</summary>
internal static class PngReader
{
    /// <summary>Returns pixels as 0xRRGGBB.</summary>
    public static (int W, int H, uint[] Rgb) Read(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        int pos = 8, w = 0, h = 0, colorType = -1;
        byte[]? plte = null;
        var idat = new MemoryStream();
        bool end = false;
        while (!end)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
            Assert.Equal(crc, BitwiseCrc32(png.AsSpan(pos + 4, len + 4)));
            switch (type)
            {
                case "IHDR":
                    w = BinaryPrimitives.ReadInt32BigEndian(data); h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    Assert.Equal(8, data[8]); colorType = data[9]; break;
                case "PLTE": plte = data.ToArray(); break;
                case "IDAT": idat.Write(data); break;
                case "IEND": end = true; break;
            }
            pos += 12 + len;
        }
        int bpp = colorType == 2 ? 3 : 1;
        Assert.True(colorType == 2 || (colorType == 3 && plte is not null));
        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(raw);
        var r = raw.ToArray();
        int stride = w * bpp;
        Assert.Equal((stride + 1) * h, r.Length);
        var img = new byte[stride * h];
        for (int y = 0; y < h; y++)
        {
            byte f = r[y * (stride + 1)];
            for (int i = 0; i < stride; i++)
            {
                int a = i >= bpp ? img[y * stride + i - bpp] : 0;
                int b = y > 0 ? img[(y - 1) * stride + i] : 0;
                int c = i >= bpp && y > 0 ? img[(y - 1) * stride + i - bpp] : 0;
                int x = r[y * (stride + 1) + 1 + i];
                int pred = f switch
                {
                    0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException("bad filter"),
                };
                img[y * stride + i] = (byte)(x + pred);
            }
        }
        var px = new uint[w * h];
        for (int i = 0; i < px.Length; i++)
        {
            if (bpp == 3) px[i] = (uint)(img[i * 3] << 16 | img[i * 3 + 1] << 8 | img[i * 3 + 2]);
            else { int k = img[i] * 3; px[i] = (uint)(plte![k] << 16 | plte[k + 1] << 8 | plte[k + 2]); }
        }
        return (w, h, px);
    }

    /// <summary>CRC-32 computed bit by bit (independent of the table-driven one under test).</summary>
    public static uint BitwiseCrc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
        }
        return ~c;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}

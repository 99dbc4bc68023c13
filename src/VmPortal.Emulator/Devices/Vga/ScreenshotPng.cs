using System.Buffers.Binary;
using System.IO.Compression;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// Minimal PNG writer for screenshots (CLI <c>--screenshot</c>, the portal's thumbnail): 8-bit RGB (colour
/// type 2, the alpha of screen pixels is always opaque), one IDAT compressed with zlib, filter type 1 (Sub) on
/// every row, which shrinks flat screen areas well. Input pixels are the <see cref="Screen"/> format (RGBA32,
/// R in the low byte).
/// </summary>
public static class ScreenshotPng
{
    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Encodes <paramref name="width"/> × <paramref name="height"/> RGBA32 pixels as a PNG file.</summary>
    public static byte[] Encode(int width, int height, ReadOnlySpan<uint> rgba)
    {
        if (width <= 0 || height <= 0 || rgba.Length < width * height) throw new ArgumentException("Pixel buffer does not match the size.");
        using var output = new MemoryStream();
        output.Write(Signature);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: RGB
        ihdr[10] = 0; // deflate
        ihdr[11] = 0; // adaptive filtering
        ihdr[12] = 0; // no interlace
        WriteChunk(output, "IHDR"u8, ihdr);

        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var row = new byte[1 + width * 3];
            for (int y = 0; y < height; y++)
            {
                row[0] = 1; // Sub filter: each byte minus the same channel of the pixel to its left
                var src = rgba.Slice(y * width, width);
                int pr = 0, pg = 0, pb = 0;
                for (int x = 0; x < width; x++)
                {
                    uint p = src[x];
                    int r = (int)(p & 0xFF), g = (int)((p >> 8) & 0xFF), b = (int)((p >> 16) & 0xFF);
                    row[1 + 3 * x] = (byte)(r - pr);
                    row[2 + 3 * x] = (byte)(g - pg);
                    row[3 + 3 * x] = (byte)(b - pb);
                    pr = r; pg = g; pb = b;
                }
                z.Write(row);
            }
        }
        WriteChunk(output, "IDAT"u8, compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        WriteChunk(output, "IEND"u8, ReadOnlySpan<byte>.Empty);
        return output.ToArray();
    }

    /// <summary>Refreshes <paramref name="screen"/> and encodes what it shows.</summary>
    public static byte[] Encode(Screen screen)
    {
        screen.Refresh();
        var pixels = new uint[screen.Width * screen.Height];
        screen.CopyPixels(pixels);
        return Encode(screen.Width, screen.Height, pixels);
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        s.Write(type);
        s.Write(data);
        uint crc = Crc32(Crc32(0xFFFF_FFFF, type), data) ^ 0xFFFF_FFFF;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        s.Write(word);
    }

    /// <summary>CRC-32 (ISO-HDLC, the PNG/zlib polynomial 0xEDB88320) continued from <paramref name="crc"/> (pre-inverted).</summary>
    internal static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] BuildCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB8_8320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}

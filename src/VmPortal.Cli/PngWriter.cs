using System.Buffers.Binary;
using System.IO.Compression;

namespace VmPortal.Cli;

/// <summary>Writes 24-bit RGB PNG files (one IDAT chunk, filter type 0), enough for screenshots.</summary>
public static class PngWriter
{
    /// <summary>Saves <paramref name="pixels"/> (0x00RRGGBB per pixel, row-major) as a PNG file.</summary>
    public static void Write(string path, int width, int height, ReadOnlySpan<uint> pixels)
    {
        using var file = File.Create(path);
        Write(file, width, height, pixels);
    }

    public static void Write(Stream output, int width, int height, ReadOnlySpan<uint> pixels)
    {
        if (width <= 0 || height <= 0 || pixels.Length < width * height) throw new ArgumentException("bad image size");
        output.Write(stackalloc byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;   // bit depth
        ihdr[9] = 2;   // colour type: RGB
        Chunk(output, "IHDR", ihdr);
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            var row = new byte[1 + width * 3];
            for (int y = 0; y < height; y++)
            {
                row[0] = 0; // filter: none
                for (int x = 0; x < width; x++)
                {
                    uint p = pixels[y * width + x];
                    row[1 + x * 3] = (byte)(p >> 16);
                    row[2 + x * 3] = (byte)(p >> 8);
                    row[3 + x * 3] = (byte)p;
                }
                z.Write(row);
            }
        }
        Chunk(output, "IDAT", raw.ToArray());
        Chunk(output, "IEND", Array.Empty<byte>());
    }

    private static void Chunk(Stream output, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        output.Write(len);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        output.Write(typeBytes);
        output.Write(data);
        uint crc = Crc32(Crc32(0xFFFF_FFFF, typeBytes), data) ^ 0xFFFF_FFFF;
        Span<byte> c = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, crc);
        output.Write(c);
    }

    private static readonly uint[] CrcTable = BuildCrcTable();

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }

    /// <summary>CRC-32 (ISO-HDLC, as PNG uses) without the final inversion.</summary>
    private static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }
}

using System.Buffers.Binary;
using System.IO.Compression;
using VmPortal.Emulator.Devices.Vga;

namespace VmPortal.Emulator.Tests.Devices.Vga;

public class ScreenshotPngTests
{
    [Fact]
    public void EncodesAValidPngWhosePixelsDecodeBack()
    {
        uint[] px = { 0xFF0000FF, 0xFF00FF00, 0xFFFF0000, 0xFF102030, 0xFFFFFFFF, 0xFF000000 }; // 3 × 2
        byte[] png = ScreenshotPng.Encode(3, 2, px);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        int pos = 8;
        var idat = new MemoryStream();
        var types = new List<string>();
        while (pos < png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len));
            Assert.Equal(BitwiseCrc(png.AsSpan(pos + 4, 4 + len)), crc);
            types.Add(type);
            if (type == "IHDR")
            {
                Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(data));
                Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(data[4..]));
                Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, data[8..].ToArray());
            }
            if (type == "IDAT") idat.Write(data);
            pos += 12 + len;
        }
        Assert.Equal(new[] { "IHDR", "IDAT", "IEND" }, types);
        idat.Position = 0;
        var raw = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(raw);
        var rows = raw.ToArray();
        Assert.Equal(2 * (1 + 9), rows.Length);
        for (int y = 0; y < 2; y++)
        {
            var row = rows.AsSpan(y * 10, 10);
            Assert.Equal(1, row[0]); // Sub filter
            int pr = 0, pg = 0, pb = 0;
            for (int x = 0; x < 3; x++)
            {
                int r = (byte)(row[1 + 3 * x] + pr), g = (byte)(row[2 + 3 * x] + pg), b = (byte)(row[3 + 3 * x] + pb);
                uint p = px[y * 3 + x];
                Assert.Equal(((int)(p & 0xFF), (int)((p >> 8) & 0xFF), (int)((p >> 16) & 0xFF)), (r, g, b));
                pr = r; pg = g; pb = b;
            }
        }
    }

    [Fact]
    public void ScreenshotOfTheTextScreenHasItsSize()
    {
        var rig = new VgaTestRig();
        rig.SetMode3();
        byte[] png = ScreenshotPng.Encode(rig.Vga.Screen);
        Assert.Equal(720, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(400, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
    }

    private static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFF_FFFF;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB8_8320u & (uint)-(int)(c & 1));
        }
        return ~c;
    }
}

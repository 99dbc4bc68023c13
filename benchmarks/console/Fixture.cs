using System.Security.Cryptography;
using System.Text.Json;
using VmPortal.Core.Console;

namespace VmPortal.Benchmarks.Console;

/// <summary>
/// Writes a frame encoded by the C# encoder, for the JavaScript client's tests (wwwroot-assets/test/fixtures):
/// a 129×90 screen with text-like, solid, many-colour and 1-pixel-wide tiles, in every encoding, with the SHA-256 of
/// the expected RGBA pixels. Regenerate: dotnet run -c Release --project benchmarks/console -- --write-fixture PATH
/// </summary>
internal static class Fixture
{
    public static void Write(string path)
    {
        const int w = 129, h = 90;
        var px = new uint[w * h];
        var r = new Random(12345);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                uint v;
                if (x < 64 && y < 64) v = ((x / 3 + y / 5) % 4 == 0) ? 0xAAAAAAu : 0x000000u;           // 2 colours
                else if (x >= 64 && x < 128 && y < 64) v = (uint)r.Next(0x1000000);                       // > 256 colours
                else if (y >= 64 && x < 64) v = 0x0000AAu;                                                 // solid
                else if (y >= 64) v = TextColours[(x * 7 + y * 3) % 16];                                   // 16 colours
                else v = TextColours[y % 5];                                                               // 1-px column
                px[y * w + x] = 0xFF000000u | v;
            }
        var frames = new Dictionary<string, object>();
        foreach (var (name, mode) in new[] { ("auto", TileCodecMode.Auto), ("png", TileCodecMode.Png), ("rgb", TileCodecMode.RgbOnly) })
        {
            var f = new ScreenEncoder(64, new TileCodecOptions { Mode = mode }).Encode(px, w, h, PixelFormat.Argb32)!;
            frames[name] = new
            {
                f.Width, f.Height, f.Seq, f.Full,
                Tiles = f.Tiles.Select(t => new { t.X, t.Y, t.W, t.H, Encoding = t.Encoding.ToString(), Bytes = Convert.ToBase64String(t.Bytes) }),
            };
        }
        var rgba = new byte[w * h * 4];
        for (int i = 0; i < px.Length; i++)
        {
            rgba[i * 4] = (byte)(px[i] >> 16); rgba[i * 4 + 1] = (byte)(px[i] >> 8); rgba[i * 4 + 2] = (byte)px[i]; rgba[i * 4 + 3] = 255;
        }
        var doc = new { width = w, height = h, rgbaSha256 = Convert.ToHexStringLower(SHA256.HashData(rgba)), frames };
        File.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = false }));
        System.Console.WriteLine($"fixture written to {path}");
    }

    private static readonly uint[] TextColours =
    [
        0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
        0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
    ];
}

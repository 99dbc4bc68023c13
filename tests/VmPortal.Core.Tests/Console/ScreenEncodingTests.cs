using VmPortal.Core.Console;

namespace VmPortal.Core.Tests.Console;

public class ScreenEncodingTests
{
    [Fact]
    public void Crc32_matches_the_standard_check_value()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        var data = TestScreens.Noise(37, 11, 5).SelectMany(BitConverter.GetBytes).ToArray();
        Assert.Equal(PngReader.BitwiseCrc32(data), Crc32.Compute(data));
    }

    [Theory]
    [InlineData(PixelFormat.Argb32)]
    [InlineData(PixelFormat.Abgr32)]
    public void Png_of_a_text_screen_is_indexed_and_decodes_to_the_same_pixels(PixelFormat format)
    {
        var px = TestScreens.Text(TestScreens.Lines(25));
        var png = PngWriter.Encode(px, 720, 400, format);
        Assert.Equal(3, png[8 + 8 + 9]); // IHDR colour type: indexed
        var (w, h, rgb) = PngReader.Read(png);
        Assert.Equal((720, 400), (w, h));
        for (int i = 0; i < px.Length; i++) Assert.Equal(PixelOps.ToRgb24(px[i], format), rgb[i]);
    }

    [Fact]
    public void Png_of_a_truecolour_image_uses_rgb_and_round_trips()
    {
        var px = TestScreens.Noise(70, 33, 9);
        // Add smooth areas so Sub/Up filters get picked too.
        for (int y = 10; y < 33; y++) for (int x = 0; x < 70; x++) px[y * 70 + x] = 0xFF000000u | (uint)(x * 3 << 16 | y * 5 << 8 | (x + y));
        var png = PngWriter.Encode(px, 70, 33, PixelFormat.Argb32);
        Assert.Equal(2, png[8 + 8 + 9]);
        var (_, _, rgb) = PngReader.Read(png);
        Assert.Equal(px.Select(p => p & 0xFFFFFF), rgb);
    }

    [Theory]
    [InlineData(1, TileEncoding.Solid)]
    [InlineData(2, TileEncoding.Palette)]
    [InlineData(3, TileEncoding.Palette)]
    [InlineData(16, TileEncoding.Palette)]
    [InlineData(17, TileEncoding.Palette)]
    [InlineData(256, TileEncoding.Palette)]
    [InlineData(257, TileEncoding.Rgb)]
    [InlineData(5000, TileEncoding.Rgb)]
    public void Tiles_pick_their_encoding_by_colour_count_and_round_trip(int colours, TileEncoding expected)
    {
        const int w = 64, h = 64, stride = 100;
        var frame = new uint[stride * 80];
        var r = new Random(colours);
        var pal = Enumerable.Range(0, colours).Select(i => 0xFF000000u | (uint)(i * 2654435761u >> 8)).ToArray();
        for (int i = 0; i < frame.Length; i++) frame[i] = pal[r.Next(colours)];
        // Make sure every colour is in the tile at (20, 10).
        for (int i = 0; i < Math.Min(colours, w * h); i++) frame[(10 + i / w) * stride + 20 + i % w] = pal[i];
        var codec = new TileCodec();
        var tile = codec.Encode(frame, stride, 20, 10, w, h, PixelFormat.Argb32);
        Assert.Equal(expected, tile.Encoding);
        var back = new uint[stride * 80];
        TileCodec.Decode(tile, back, stride, PixelFormat.Argb32);
        for (int y = 10; y < 10 + h; y++)
            for (int x = 20; x < 20 + w; x++)
                Assert.Equal(frame[y * stride + x] & 0xFFFFFF, back[y * stride + x] & 0xFFFFFF);
        Assert.Equal(0u, back[0]); // nothing outside the tile written
    }

    [Fact]
    public void Palette_indices_are_packed_to_the_smallest_width()
    {
        Assert.Equal(1, TileCodec.BitsPerIndex(2));
        Assert.Equal(2, TileCodec.BitsPerIndex(3));
        Assert.Equal(2, TileCodec.BitsPerIndex(4));
        Assert.Equal(4, TileCodec.BitsPerIndex(16));
        Assert.Equal(8, TileCodec.BitsPerIndex(17));
        // A two-colour 64×64 tile: 1 + 2×3 header bytes, and it compresses to well under its 512 packed bytes.
        var px = TestScreens.Text(["hello world"], cols: 8, rows: 4);
        var tile = new TileCodec().Encode(px, 72, 0, 0, 64, 64, PixelFormat.Argb32);
        Assert.Equal(TileEncoding.Palette, tile.Encoding);
        Assert.Equal(1, tile.Bytes[0]); // n − 1
        Assert.True(tile.Bytes.Length < 7 + 512, $"{tile.Bytes.Length} bytes");
    }

    [Fact]
    public void Solid_tiles_carry_rgb_in_either_pixel_format()
    {
        var argb = TestScreens.Solid(64, 64, 0xFF112233);
        var t1 = new TileCodec().Encode(argb, 64, 0, 0, 64, 64, PixelFormat.Argb32);
        Assert.Equal(new byte[] { 0x11, 0x22, 0x33 }, t1.Bytes);
        var t2 = new TileCodec().Encode(argb, 64, 0, 0, 64, 64, PixelFormat.Abgr32);
        Assert.Equal(new byte[] { 0x33, 0x22, 0x11 }, t2.Bytes);
    }

    [Fact]
    public void Corrupt_tiles_are_rejected_not_misdrawn()
    {
        var canvas = new uint[64 * 64];
        Assert.Throws<InvalidDataException>(() => TileCodec.Decode(
            new ConsoleTile { W = 64, H = 64, Encoding = TileEncoding.Rgb, Bytes = [1, 2, 3, 4] }, canvas, 64, PixelFormat.Argb32));
        var good = new TileCodec().Encode(TestScreens.Noise(64, 64, 1), 64, 0, 0, 64, 64, PixelFormat.Argb32);
        Assert.Throws<InvalidDataException>(() => TileCodec.Decode(
            new ConsoleTile { W = 64, H = 32, Encoding = good.Encoding, Bytes = good.Bytes }, canvas, 64, PixelFormat.Argb32));
        Assert.Throws<InvalidDataException>(() => TileCodec.Decode(
            new ConsoleTile { W = 64, H = 64, Encoding = TileEncoding.Palette, Bytes = [200, 1, 2] }, canvas, 64, PixelFormat.Argb32));
    }

    [Theory]
    [InlineData(TileCodecMode.Auto)]
    [InlineData(TileCodecMode.Png)]
    [InlineData(TileCodecMode.RgbOnly)]
    public void First_frame_is_full_and_reconstructs_the_screen(TileCodecMode mode)
    {
        var enc = new ScreenEncoder(64, new TileCodecOptions { Mode = mode });
        var px = TestScreens.Text(TestScreens.Lines(25));
        var f = enc.Encode(px, 720, 400, PixelFormat.Argb32)!;
        Assert.True(f.Full);
        Assert.Equal(12 * 7, f.Tiles.Length); // ceil(720/64) × ceil(400/64)
        Assert.Equal(1, f.Seq);
        var canvas = new uint[720 * 400];
        TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        Assert.Equal(px, canvas);
        // Edge tiles are clipped to the screen.
        Assert.Contains(f.Tiles, t => t is { X: 704, W: 16 });
        Assert.Contains(f.Tiles, t => t is { Y: 384, H: 16 });
    }

    [Fact]
    public void Unchanged_frame_gives_nothing_and_a_one_cell_change_gives_one_tile()
    {
        var enc = new ScreenEncoder();
        var lines = TestScreens.Lines(25);
        var a = TestScreens.Text(lines);
        enc.Encode(a, 720, 400, PixelFormat.Argb32);
        Assert.Null(enc.Encode((uint[])a.Clone(), 720, 400, PixelFormat.Argb32));
        Assert.Equal(1, enc.Seq);

        lines[3] = "X" + lines[3][1..]; // cell (0,3): pixels x 0..8, y 48..63 → tile (0,0)
        var b = TestScreens.Text(lines);
        var f = enc.Encode(b, 720, 400, PixelFormat.Argb32)!;
        Assert.False(f.Full);
        Assert.Equal(2, f.Seq);
        var t = Assert.Single(f.Tiles);
        Assert.Equal((0, 0, 64, 64), (t.X, t.Y, t.W, t.H));

        var canvas = new uint[720 * 400];
        TestScreens.Apply(enc.FullFrame()!, canvas, PixelFormat.Argb32);
        Assert.Equal(b, canvas);
    }

    [Fact]
    public void Deltas_applied_in_order_always_give_the_current_screen()
    {
        var enc = new ScreenEncoder(32);
        var canvas = new uint[720 * 400];
        var lines = TestScreens.Lines(25, seed: 7);
        var r = new Random(11);
        for (int step = 0; step < 20; step++)
        {
            if (step % 3 == 0) lines = [.. lines[1..], $"scrolled {step}"];
            else lines[r.Next(25)] = new string('#', r.Next(80));
            var px = TestScreens.Text(lines);
            var f = enc.Encode(px, 720, 400, PixelFormat.Abgr32);
            if (f is not null) TestScreens.Apply(f, canvas, PixelFormat.Abgr32);
            Assert.Equal(px, canvas);
        }
    }

    [Fact]
    public void Mode_change_gives_a_full_frame_of_the_new_size()
    {
        var enc = new ScreenEncoder();
        enc.Encode(TestScreens.Text(TestScreens.Lines(25)), 720, 400, PixelFormat.Argb32);
        var g = TestScreens.Noise(320, 200, 1);
        var f = enc.Encode(g, 320, 200, PixelFormat.Argb32)!;
        Assert.True(f.Full);
        Assert.Equal((320, 200), (f.Width, f.Height));
        Assert.Equal(5 * 4, f.Tiles.Length);
        var canvas = new uint[320 * 200];
        TestScreens.Apply(f, canvas, PixelFormat.Argb32);
        Assert.Equal(g, canvas);
    }

    [Theory]
    [InlineData(65, 17, 3)]
    [InlineData(129, 1, 2)]
    [InlineData(1, 70, 5)]
    [InlineData(100, 100, 17)]
    public void Odd_sizes_with_narrow_edge_tiles_round_trip(int w, int h, int colours)
    {
        var r = new Random(w * h);
        var px = Enumerable.Range(0, w * h).Select(_ => 0xFF000000u | (uint)(r.Next(colours) * 0x10305)).ToArray();
        foreach (var pack in new[] { true, false })
        {
            var f = new ScreenEncoder(64, new TileCodecOptions { PackIndices = pack }).Encode(px, w, h, PixelFormat.Argb32)!;
            var canvas = new uint[w * h];
            TestScreens.Apply(f, canvas, PixelFormat.Argb32);
            Assert.Equal(px, canvas);
        }
    }

    [Fact]
    public void Bad_frame_sizes_are_refused()
    {
        var enc = new ScreenEncoder();
        Assert.Throws<ArgumentException>(() => enc.Encode(new uint[10], 720, 400, PixelFormat.Argb32));
        Assert.Throws<ArgumentOutOfRangeException>(() => enc.Encode(new uint[10], 0, 400, PixelFormat.Argb32));
        Assert.Throws<ArgumentOutOfRangeException>(() => enc.Encode(new uint[10], 5000, 1, PixelFormat.Argb32));
        Assert.False(enc.HasFrame);
    }

    [Fact]
    public void A_text_screen_compresses_far_below_its_raw_size()
    {
        var enc = new ScreenEncoder();
        var f = enc.Encode(TestScreens.Text(TestScreens.Lines(25)), 720, 400, PixelFormat.Argb32)!;
        // Raw RGB is 864,000 bytes; a text screen with this (random, so worse than VGA's) font stays under 5 %.
        Assert.True(f.PayloadSize() < 720 * 400 * 3 / 20, $"{f.PayloadSize()} bytes");
    }
}

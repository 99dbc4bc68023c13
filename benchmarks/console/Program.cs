using System.Diagnostics;
using System.IO.Compression;
using MessagePack;
using MessagePack.Resolvers;
using VmPortal.Benchmarks.Console;
using VmPortal.Core.Console;

// Measures the console screen encoder: bytes (tile payload and MessagePack frame as SignalR would send it) and
// encode time per frame for text-mode and graphics scenarios, across tile sizes and encodings.
// Usage: dotnet run -c Release --project benchmarks/console [-- --quick]

bool quick = args.Contains("--quick");
int fixtureArg = Array.IndexOf(args, "--write-fixture");
if (fixtureArg >= 0)
{
    Fixture.Write(args[fixtureArg + 1]);
    return;
}
int iterations = quick ? 5 : 30;
var msgpack = MessagePackSerializerOptions.Standard.WithResolver(
    CompositeResolver.Create(DynamicEnumAsStringResolver.Instance, ContractlessStandardResolver.Instance));

var text = new TextScreen();
Console.WriteLine($"font: {text.FontSource}; iterations per figure: {iterations}; {Environment.ProcessorCount} cores");

// A realistic shell screen: `ls -l --color` output and a prompt.
var rnd = new Random(42);
string[] names = ["bin", "boot", "dev", "etc", "home", "lib", "media", "mnt", "opt", "proc", "root", "run", "sbin",
    "srv", "sys", "tmp", "usr", "var", "vmlinuz", "initrd.img", "busybox", "init", "linuxrc", "README"];
int lineNo = 0;
string NextLine(out byte attr)
{
    var n = names[rnd.Next(names.Length)];
    bool dir = rnd.Next(3) == 0;
    attr = dir ? (byte)0x09 : (byte)0x07;
    lineNo++;
    return $"{(dir ? 'd' : '-')}rwxr-xr-x {rnd.Next(1, 20),3} root root {rnd.Next(0, 999999),8} Nov 25 09:{lineNo % 60:00} {n}";
}
for (int r = 0; r < TextScreen.Rows - 1; r++)
{
    var s = NextLine(out var a);
    text.Put(0, r, s[..Math.Min(s.Length, 40)], 0x07);
    text.Put(Math.Min(s.Length, 40), r, s[Math.Min(s.Length, 40)..], a);
}
text.Put(0, TextScreen.Rows - 1, "root@vmportal:~# ", 0x07);
text.CursorX = 17; text.CursorY = TextScreen.Rows - 1;

var scenarios = new List<(string Name, int W, int H, Func<int, uint[]> Frame0, Func<int, uint[]> Frame1)>();

uint[] RenderText() { var p = new uint[TextScreen.Width * TextScreen.Height]; text.Render(p); return p; }
var textFull = RenderText();
text.CursorOn = false; var textBlink = RenderText(); text.CursorOn = true;
text.Put(17, 24, "l"); text.CursorX = 18; var textTyped = RenderText();
text.CursorX = 17; text.Put(17, 24, " ");
text.ScrollUp(); var l = NextLine(out var la); text.Put(0, 23, l, la); text.Put(0, 24, "root@vmportal:~# ");
var textScrolled = RenderText();
// ls -lR at full speed: ~10 lines per 33 ms tick.
for (int i = 0; i < 9; i++) { text.ScrollUp(); var m = NextLine(out var ma); text.Put(0, 23, m, ma); }
var textScrolled10 = RenderText();

// 640×480 256-colour (Mandelbrot with a VGA-like palette) and a 1024×768 true-colour desktop with a photo-ish area.
uint[] Mandel(int w, int h, int shift)
{
    var p = new uint[w * h];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            double cr = (x - w * 0.7) / (w * 0.35), ci = (y - h / 2.0) / (h * 0.45), zr = 0, zi = 0;
            int it = 0;
            while (it < 255 && zr * zr + zi * zi < 4) { (zr, zi) = (zr * zr - zi * zi + cr, 2 * zr * zi + ci); it++; }
            int c = (it + shift) & 255;
            p[y * w + x] = 0xFF000000u | (uint)((c * 7 & 255) << 16 | (c * 3 & 255) << 8 | (c * 13 & 255));
        }
    return p;
}
uint[] Desktop(int w, int h, int frame)
{
    var p = new uint[w * h];
    var r = new Random(7 + frame);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            uint v;
            if (y < 28) v = 0x303040;                                   // panel
            else if (x > 100 && x < 600 && y > 100 && y < 500) v = (x / 8 % 2 == 0 && y % 16 < 12) ? 0x202020u : 0xF0F0F0u; // window with text-ish stripes
            else if (x > 650 && x < 974 && y > 150 && y < 450)          // photo: smooth gradient + noise
                v = (uint)(((x * 255 / w + r.Next(8)) & 255) << 16 | ((y * 255 / h + r.Next(8)) & 255) << 8 | ((x + y) / 8 & 255));
            else v = 0x1060A0 + (uint)(y * 40 / h);                     // wallpaper gradient
            p[y * w + x] = 0xFF000000u | v;
        }
    return p;
}
var mandel0 = Mandel(640, 480, 0);
var mandel1 = Mandel(640, 480, 5); // palette cycling: everything changes
var desk0 = Desktop(1024, 768, 0);
var desk1 = (uint[])desk0.Clone();
var deskMouse = (uint[])desk0.Clone();
for (int y = 300; y < 316; y++) for (int x = 400; x < 410; x++) deskMouse[y * 1024 + x] = 0xFFFFFFFF;

var cases = new (string Name, int W, int H, uint[] Before, uint[] After)[]
{
    ("text: full frame (new viewer)", 720, 400, [], textFull),
    ("text: idle tick (no change)", 720, 400, textFull, textFull),
    ("text: cursor blink", 720, 400, textFull, textBlink),
    ("text: one key typed", 720, 400, textFull, textTyped),
    ("text: scroll 1 line", 720, 400, textFull, textScrolled),
    ("text: scroll 10 lines (ls -lR tick)", 720, 400, textFull, textScrolled10),
    ("vga 640x480x256: full frame", 640, 480, [], mandel0),
    ("vga 640x480x256: palette cycle (all change)", 640, 480, mandel0, mandel1),
    ("vbe 1024x768x32: full frame", 1024, 768, [], desk0),
    ("vbe 1024x768x32: mouse pointer moved", 1024, 768, desk0, deskMouse),
};

var configs = new List<(string Name, int Tile, TileCodecOptions Opt)>
{
    ("auto t64 fastest", 64, new TileCodecOptions()),
    ("auto t32 fastest", 32, new TileCodecOptions()),
    ("auto t16 fastest", 16, new TileCodecOptions()),
    ("auto t128 fastest", 128, new TileCodecOptions()),
    ("auto t64 optimal", 64, new TileCodecOptions { Level = CompressionLevel.Optimal }),
    ("auto t64 8bpp-idx", 64, new TileCodecOptions { PackIndices = false }),
    ("png t64 fastest", 64, new TileCodecOptions { Mode = TileCodecMode.Png }),
    ("png t64 optimal", 64, new TileCodecOptions { Mode = TileCodecMode.Png, Level = CompressionLevel.Optimal }),
    ("rgb t64 fastest", 64, new TileCodecOptions { Mode = TileCodecMode.RgbOnly }),
};
if (quick) configs = configs.Take(3).ToList();

Console.WriteLine();
Console.WriteLine($"| scenario | config | tiles | payload B | msgpack B | encode ms |");
Console.WriteLine($"|---|---|---:|---:|---:|---:|");
foreach (var c in cases)
{
    foreach (var cfg in configs)
    {
        ConsoleFrame? frame = null;
        var sw = new Stopwatch();
        for (int i = 0; i < iterations + 1; i++)
        {
            var enc = new ScreenEncoder(cfg.Tile, cfg.Opt);
            if (c.Before.Length > 0) enc.Encode(c.Before, c.W, c.H, PixelFormat.Argb32);
            if (i > 0) sw.Start(); // first round warms up
            frame = enc.Encode(c.After, c.W, c.H, PixelFormat.Argb32);
            sw.Stop();
        }
        int tiles = frame?.Tiles.Length ?? 0;
        int payload = frame?.PayloadSize() ?? 0;
        int wire = frame is null ? 0 : MessagePackSerializer.Serialize(frame, msgpack).Length;
        Console.WriteLine($"| {c.Name} | {cfg.Name} | {tiles} | {payload} | {wire} | {sw.Elapsed.TotalMilliseconds / iterations:F2} |");
    }
}

// Screenshot PNG of the text screen (what GET /console/screenshot returns).
var shot = PngWriter.Encode(textFull, 720, 400, PixelFormat.Argb32);
Console.WriteLine($"\nscreenshot PNG of the text screen: {shot.Length} B");

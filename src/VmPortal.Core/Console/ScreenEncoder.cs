namespace VmPortal.Core.Console;

/// <summary>
/// Turns successive screen frames into <see cref="ConsoleFrame"/> updates: the frame is cut into square tiles
/// (64×64 by default), each compared with the previous frame, and only changed tiles are encoded. The encoded
/// tiles are kept, so a full frame for a new viewer costs no encoding. Not thread-safe (one per VM, used by
/// <see cref="ConsoleStream"/> under its lock).
/// </summary>
public sealed class ScreenEncoder
{
    public const int DefaultTileSize = 64;
    public const int MaxDimension = 4096;

    private readonly TileCodec codec;
    private uint[] previous = [];
    private ConsoleTile[] tiles = [];
    private PixelFormat format;
    private int columns, rows;

    public ScreenEncoder(int tileSize = DefaultTileSize, TileCodecOptions? options = null)
    {
        if (tileSize < 8 || tileSize > 512) throw new ArgumentOutOfRangeException(nameof(tileSize), "Tile size must be 8…512.");
        TileSize = tileSize;
        codec = new TileCodec(options);
    }

    public int TileSize { get; }
    public int Width { get; private set; }
    public int Height { get; private set; }
    /// <summary>Sequence number of the last update produced (0 before the first).</summary>
    public long Seq { get; private set; }
    public bool HasFrame => Width > 0;

    /// <summary>
    /// Compares <paramref name="pixels"/> (row-major, <paramref name="width"/> per row) with the previous frame and
    /// encodes the changed tiles. Returns null when nothing changed. A size or format change (or the first frame)
    /// gives a full frame.
    /// </summary>
    public ConsoleFrame? Encode(ReadOnlySpan<uint> pixels, int width, int height, PixelFormat format)
    {
        if (width <= 0 || height <= 0 || width > MaxDimension || height > MaxDimension)
            throw new ArgumentOutOfRangeException(nameof(width), $"Screen size {width}x{height} is out of range.");
        if (pixels.Length < width * height)
            throw new ArgumentException($"Frame has {pixels.Length} pixels, {width}x{height} needs {width * height}.", nameof(pixels));

        bool full = width != Width || height != Height || format != this.format;
        if (full)
        {
            Width = width; Height = height; this.format = format;
            columns = (width + TileSize - 1) / TileSize;
            rows = (height + TileSize - 1) / TileSize;
            previous = new uint[width * height];
            tiles = new ConsoleTile[columns * rows];
        }

        List<ConsoleTile>? changed = null;
        for (int ty = 0; ty < rows; ty++)
        {
            int y0 = ty * TileSize, h = Math.Min(TileSize, height - y0);
            for (int tx = 0; tx < columns; tx++)
            {
                int x0 = tx * TileSize, w = Math.Min(TileSize, width - x0);
                if (!full && Same(pixels, x0, y0, w, h)) continue;
                for (int y = y0; y < y0 + h; y++)
                    pixels.Slice(y * width + x0, w).CopyTo(previous.AsSpan(y * width + x0, w));
                var tile = codec.Encode(pixels, width, x0, y0, w, h, format);
                tiles[ty * columns + tx] = tile;
                (changed ??= []).Add(tile);
            }
        }
        if (changed is null) return null;
        Seq++;
        return new ConsoleFrame { Width = width, Height = height, Seq = Seq, Full = full, Tiles = changed.ToArray() };
    }

    /// <summary>All tiles of the last encoded frame (no encoding work); null before the first frame.</summary>
    public ConsoleFrame? FullFrame() => HasFrame
        ? new ConsoleFrame { Width = Width, Height = Height, Seq = Seq, Full = true, Tiles = (ConsoleTile[])tiles.Clone() }
        : null;

    /// <summary>Index of the tile at a tile's (x, y) position in <see cref="FullFrame"/> order.</summary>
    public static int TileIndex(ConsoleTile t, int tileSize, int width) =>
        t.Y / tileSize * ((width + tileSize - 1) / tileSize) + t.X / tileSize;

    private bool Same(ReadOnlySpan<uint> pixels, int x0, int y0, int w, int h)
    {
        for (int y = y0; y < y0 + h; y++)
        {
            int o = y * Width + x0;
            if (!pixels.Slice(o, w).SequenceEqual(previous.AsSpan(o, w))) return false;
        }
        return true;
    }
}

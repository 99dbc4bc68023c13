namespace VmPortal.Core.Console;

/// <summary>How the 32-bit pixels of a frame are laid out. Alpha is ignored (the screen is opaque).</summary>
public enum PixelFormat
{
    /// <summary>Each <c>uint</c> is 0xAARRGGBB (bytes B, G, R, A in memory on little-endian; what VGA DACs usually give).</summary>
    Argb32 = 0,
    /// <summary>Each <c>uint</c> is 0xAABBGGRR (bytes R, G, B, A in memory: the order of a canvas ImageData).</summary>
    Abgr32 = 1,
}

/// <summary>How a tile's <see cref="ConsoleTile.Bytes"/> are encoded. Documented byte layouts in docs/console.md.</summary>
public enum TileEncoding
{
    /// <summary>3 bytes: R, G, B. The whole tile is this colour.</summary>
    Solid = 0,
    /// <summary>zlib stream (RFC 1950) of W×H pixels as R, G, B bytes, row by row.</summary>
    Rgb = 1,
    /// <summary>
    /// 1 byte n−1 (n = palette size, 2…256), n×3 bytes of R, G, B, then a zlib stream of the pixel indices: W×H
    /// bytes (8 bits each) when it inflates to W×H bytes, else packed at 1, 2 or 4 bits (the smallest that holds
    /// n−1; most significant bits first; each row starts on a byte boundary).
    /// </summary>
    Palette = 2,
    /// <summary>A complete PNG file of the tile.</summary>
    Png = 3,
}

/// <summary>One rectangle of the screen, compressed on its own.</summary>
public sealed class ConsoleTile
{
    public int X { get; init; }
    public int Y { get; init; }
    public int W { get; init; }
    public int H { get; init; }
    public TileEncoding Encoding { get; init; }
    public byte[] Bytes { get; init; } = [];

    public override string ToString() => $"{Encoding} {W}x{H}@{X},{Y} ({Bytes.Length} B)";
}

/// <summary>
/// Server → client <c>Frame</c>: the tiles that changed since the previous frame this viewer got (all of them when
/// <see cref="Full"/>). A client whose canvas is not <see cref="Width"/>×<see cref="Height"/> resizes it first.
/// </summary>
public sealed class ConsoleFrame
{
    public int Width { get; init; }
    public int Height { get; init; }
    /// <summary>Increases by one per encoded screen update; a viewer that skipped frames sees gaps.</summary>
    public long Seq { get; init; }
    /// <summary>True when the tiles cover the whole screen (new viewer, resize, <c>RequestFullFrame</c>).</summary>
    public bool Full { get; init; }
    public ConsoleTile[] Tiles { get; init; } = [];

    /// <summary>Sum of the tiles' encoded bytes (payload size on the wire, without framing).</summary>
    public int PayloadSize()
    {
        int n = 0;
        foreach (var t in Tiles) n += t.Bytes.Length;
        return n;
    }
}

/// <summary>Server → client <c>Resize</c>: the screen mode changed.</summary>
public sealed record ConsoleResize(int Width, int Height, bool TextMode = false, int Columns = 0, int Rows = 0);

/// <summary>Server → client <c>PowerState</c>: the VM's run state (and why it crashed).</summary>
public sealed record ConsolePowerState(VmRunState State, string? Reason = null);

/// <summary>Server → client <c>Bell</c>: the guest rang the bell (BEL in text mode / PC speaker beep).</summary>
public sealed record ConsoleBell(long AtMs = 0);

/// <summary>Server → client <c>SerialData</c>: bytes the guest wrote to COM1.</summary>
public sealed record ConsoleSerialData(byte[] Bytes);

/// <summary>Server → client <c>Closed</c>: this console ended for the viewer (why, for the user); do not rejoin.</summary>
public sealed record ConsoleClosed(string Reason);

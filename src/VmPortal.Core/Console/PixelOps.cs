namespace VmPortal.Core.Console;

/// <summary>Pixel format helpers.</summary>
public static class PixelOps
{
    /// <summary>Writes the pixel's R, G, B bytes.</summary>
    public static void WriteRgb(uint p, PixelFormat format, Span<byte> dst)
    {
        if (format == PixelFormat.Argb32)
        {
            dst[0] = (byte)(p >> 16); dst[1] = (byte)(p >> 8); dst[2] = (byte)p;
        }
        else
        {
            dst[0] = (byte)p; dst[1] = (byte)(p >> 8); dst[2] = (byte)(p >> 16);
        }
    }

    /// <summary>The pixel as 0xRRGGBB (alpha dropped).</summary>
    public static uint ToRgb24(uint p, PixelFormat format) => format == PixelFormat.Argb32
        ? p & 0xFFFFFF
        : ((p & 0xFF) << 16) | (p & 0xFF00) | ((p >> 16) & 0xFF);

    /// <summary>0xRRGGBB → a pixel in <paramref name="format"/> with alpha 0xFF.</summary>
    public static uint FromRgb24(uint rgb, PixelFormat format) => 0xFF000000u | (format == PixelFormat.Argb32
        ? rgb & 0xFFFFFF
        : ((rgb & 0xFF) << 16) | (rgb & 0xFF00) | ((rgb >> 16) & 0xFF));
}

/// <summary>
/// The distinct colours of a tile or image, up to 256, with a fast index lookup (last-hit cache, then a small
/// open-addressing hash). Reusable: <see cref="TryBuild"/> resets it.
/// </summary>
internal sealed class TilePalette
{
    public const int MaxColors = 256;
    private const int HashSize = 1024; // power of two, > 2 × MaxColors
    public readonly uint[] Colors = new uint[MaxColors];
    private readonly uint[] hashKeys = new uint[HashSize];
    private readonly short[] hashVals = new short[HashSize]; // index + 1; 0 = empty
    private uint lastColor;
    private byte lastIndex;
    public int Count { get; private set; }

    /// <summary>Collects the colours (alpha ignored); false when there are more than 256.</summary>
    public bool TryBuild(ReadOnlySpan<uint> pixels, int width, int height, int stride)
    {
        Count = 0;
        Array.Clear(hashVals);
        for (int y = 0; y < height; y++)
        {
            var row = pixels.Slice(y * stride, width);
            for (int x = 0; x < row.Length; x++)
            {
                uint c = row[x] & 0xFFFFFF;
                if (Count > 0 && c == lastColor) continue;
                if (Find(c) < 0)
                {
                    if (Count == MaxColors) return false;
                    Insert(c, Count);
                    Colors[Count++] = c;
                }
                lastColor = c;
            }
        }
        lastColor = Colors[0];
        lastIndex = 0;
        return true;
    }

    /// <summary>Index of a colour known to be in the palette.</summary>
    public byte IndexOf(uint pixel)
    {
        uint c = pixel & 0xFFFFFF;
        if (c == lastColor) return lastIndex;
        int i = Find(c);
        lastColor = c;
        lastIndex = (byte)i;
        return lastIndex;
    }

    private static int Hash(uint c) => (int)((c * 2654435761u) >> 22) & (HashSize - 1);

    private int Find(uint c)
    {
        int h = Hash(c);
        while (true)
        {
            int v = hashVals[h];
            if (v == 0) return -1;
            if (hashKeys[h] == c) return v - 1;
            h = (h + 1) & (HashSize - 1);
        }
    }

    private void Insert(uint c, int index)
    {
        int h = Hash(c);
        while (hashVals[h] != 0) h = (h + 1) & (HashSize - 1);
        hashKeys[h] = c;
        hashVals[h] = (short)(index + 1);
    }
}

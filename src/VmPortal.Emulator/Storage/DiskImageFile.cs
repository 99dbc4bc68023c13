using Microsoft.Win32.SafeHandles;

namespace VmPortal.Emulator.Storage;

/// <summary>
/// Disk image files of any supported format, recognised by their header (never their name): probe, open (with
/// the qcow2 backing chain), create, convert, grow and check — a small <c>qemu-img</c>. Bad input throws
/// <see cref="InvalidDataException"/> with a message that names the file and the problem.
/// </summary>
public static class DiskImageFile
{
    /// <summary>Longest backing chain followed (image + this many backing files).</summary>
    public const int MaxBackingChainDepth = 16;
    /// <summary>Largest virtual size of any image (4 TiB).</summary>
    public const long MaxVirtualSize = Qcow2Header.MaxVirtualSize;

    /// <summary>Reads the header only and says what the file is. Throws <see cref="InvalidDataException"/> naming the problem.</summary>
    public static DiskImageInfo Probe(string path)
    {
        using var h = OpenRead(path);
        long len = RandomAccess.GetLength(h);
        var fmt = Detect(h, len, path);
        switch (fmt)
        {
            case DiskFormat.Qcow2:
                var hd = Qcow2Header.Read(h, len, path);
                DiskFormat? bf = null;
                if (hd.BackingFormat != null)
                    bf = Qcow2Header.ParseFormatName(hd.BackingFormat)
                         ?? throw new InvalidDataException($"{Path.GetFileName(path)}: qcow2 backing format \"{hd.BackingFormat}\" is not supported");
                return new DiskImageInfo(fmt, hd.Size, len, hd.BackingFile, bf);
            case DiskFormat.Vhd:
                using (var v = VhdDiskImage.Open(path, readOnly: true)) return new DiskImageInfo(fmt, v.Length, len, null, null);
            case DiskFormat.Vmdk:
                using (var v = VmdkDiskImage.Open(path)) return new DiskImageInfo(fmt, v.Length, len, null, null);
            default:
                return new DiskImageInfo(DiskFormat.Raw, len, len, null, null);
        }
    }

    /// <summary>
    /// Opens an image of any format; a qcow2 image's backing chain is opened read-only behind it (relative names
    /// resolve against the directory of the image that names them; the recorded backing format is trusted, as
    /// QEMU does, otherwise it is probed). The caller disposes the result, which disposes the chain.
    /// </summary>
    public static IDiskImage Open(string path, bool readOnly) => OpenImage(path, readOnly);

    /// <summary><see cref="Open"/> with the concrete type (byte-granular <c>ReadAt</c>/<c>WriteAt</c>, format, backing).</summary>
    public static DiskImageBase OpenImage(string path, bool readOnly) =>
        OpenChain(path, readOnly, null, new HashSet<string>(StringComparer.Ordinal), 0, null);

    private static DiskImageBase OpenChain(string path, bool readOnly, DiskFormat? format, HashSet<string> seen, int depth, string? namedBy)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (namedBy != null) throw new InvalidDataException($"{Path.GetFileName(namedBy)}: backing file not found: {full}");
            throw new FileNotFoundException($"disk image not found: {full}", full);
        }
        if (!seen.Add(full)) throw new InvalidDataException($"{Path.GetFileName(namedBy ?? path)}: the backing chain loops back to {full}");
        if (depth > MaxBackingChainDepth) throw new InvalidDataException($"{Path.GetFileName(namedBy ?? path)}: the backing chain is longer than {MaxBackingChainDepth} images");
        DiskFormat fmt;
        if (format is { } f) fmt = f;
        else
            using (var h = OpenRead(full)) fmt = Detect(h, RandomAccess.GetLength(h), full);
        switch (fmt)
        {
            case DiskFormat.Raw: return new RawDiskImage(full, readOnly);
            case DiskFormat.Vhd: return VhdDiskImage.Open(full, readOnly);
            case DiskFormat.Vmdk:
                if (!readOnly) throw new InvalidDataException($"{Path.GetFileName(full)}: VMDK images are read-only here; attach it read-only, with a snapshot, or convert it to qcow2");
                return VmdkDiskImage.Open(full);
        }
        Qcow2Header hd;
        using (var h = OpenRead(full)) hd = Qcow2Header.Read(h, RandomAccess.GetLength(h), full);
        DiskImageBase? backing = null;
        if (hd.BackingFile != null)
        {
            DiskFormat? bf = null;
            if (hd.BackingFormat != null)
                bf = Qcow2Header.ParseFormatName(hd.BackingFormat)
                     ?? throw new InvalidDataException($"{Path.GetFileName(full)}: qcow2 backing format \"{hd.BackingFormat}\" is not supported");
            backing = OpenChain(ResolveBacking(full, hd.BackingFile), readOnly: true, bf, seen, depth + 1, full);
        }
        try { return Qcow2DiskImage.Open(full, readOnly, backing); }
        catch
        {
            backing?.Dispose();
            throw;
        }
    }

    /// <summary>A backing file name as stored in <paramref name="image"/>, resolved like QEMU: relative to the image's directory.</summary>
    public static string ResolveBacking(string image, string backingName)
    {
        if (backingName.Contains(':') && !Path.IsPathRooted(backingName) && backingName.IndexOf(':') > 1)
            throw new InvalidDataException($"{Path.GetFileName(image)}: backing file \"{backingName}\" uses a protocol prefix, which is not supported");
        return Path.IsPathRooted(backingName)
            ? backingName
            : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(image)) ?? ".", backingName));
    }

    /// <summary>
    /// Creates a qcow2 v3 image (64 KiB clusters): blank, or an overlay on <paramref name="backingPath"/> whose format is
    /// probed and recorded. The backing name is stored as given (a relative name is relative to the new image's
    /// directory, as in QEMU). With a backing file, a <paramref name="virtualSize"/> of 0 takes the backing's size.
    /// The cost does not depend on the backing's size (its header and tables only are read).
    /// </summary>
    public static void CreateQcow2(string path, long virtualSize, string? backingPath = null)
    {
        string? fmtName = null;
        if (backingPath != null)
        {
            string resolved = ResolveBacking(path, backingPath);
            if (Path.GetFullPath(resolved) == Path.GetFullPath(path)) throw new ArgumentException("An image cannot be its own backing file.");
            if (!File.Exists(resolved)) throw new InvalidDataException($"backing file not found: {resolved}");
            using (var chain = OpenImage(resolved, readOnly: true)) // validates the whole chain (missing files, loops)
            {
                fmtName = Qcow2Header.FormatName(chain.Format);
                if (virtualSize <= 0) virtualSize = chain.Length;
            }
        }
        if (virtualSize <= 0) throw new ArgumentOutOfRangeException(nameof(virtualSize), "The size must be positive.");
        if (virtualSize > MaxVirtualSize) throw new ArgumentOutOfRangeException(nameof(virtualSize), "The size must be at most 4 TiB.");
        Qcow2DiskImage.Create(path, virtualSize, backingPath, fmtName);
    }

    /// <summary>
    /// Records <paramref name="backingPath"/> (or no backing file) as the backing file of the qcow2 v3 image at
    /// <paramref name="path"/> without touching its data (<c>qemu-img rebase -u</c>): the caller guarantees the image
    /// reads the same over the new backing. The new backing's chain must open; its format is probed and recorded.
    /// </summary>
    public static void SetBackingFile(string path, string? backingPath)
    {
        string? fmtName = null;
        if (backingPath != null)
        {
            string resolved = ResolveBacking(path, backingPath);
            if (Path.GetFullPath(resolved) == Path.GetFullPath(path)) throw new ArgumentException("An image cannot be its own backing file.");
            using var chain = OpenImage(resolved, readOnly: true);
            fmtName = Qcow2Header.FormatName(chain.Format);
        }
        using (var h = OpenRead(path))
            if (Detect(h, RandomAccess.GetLength(h), path) != DiskFormat.Qcow2)
                throw new InvalidDataException($"{Path.GetFileName(path)}: only qcow2 images have a backing file");
        Qcow2DiskImage.SetBacking(path, backingPath, fmtName);
    }

    /// <summary>
    /// Merges the backing layer of the qcow2 image at <paramref name="path"/> into it: every cluster the layer itself
    /// holds and the image does not is copied into the image, which then records the layer's own backing file (or none).
    /// The image reads exactly the same before, during and after (a crash at any point leaves it readable over the old
    /// or the new backing); the layer is not changed — delete it when no other image uses it. This is how a snapshot in
    /// the middle of an overlay chain is deleted. Returns the bytes copied.
    /// </summary>
    public static long MergeBackingLayer(string path)
    {
        string? newBacking = null;
        long copied = 0;
        using (var img = OpenImage(path, readOnly: false))
        {
            if (img is not Qcow2DiskImage q) throw new InvalidDataException($"{Path.GetFileName(path)}: only qcow2 images have a backing layer to merge");
            if (q.Backing is not Qcow2DiskImage layer)
                throw new InvalidDataException($"{Path.GetFileName(path)}: its backing file is {(q.Backing == null ? "missing" : "not a qcow2 layer")}; nothing to merge");
            var layerInfo = Probe(layer.Path);
            if (layerInfo.BackingFile != null) newBacking = ResolveBacking(layer.Path, layerInfo.BackingFile);
            int cs = q.ClusterSize, lcs = layer.ClusterSize;
            var buf = new byte[cs];
            long lastChild = -1;
            for (long lc = 0; lc < layer.ClusterCount; lc++)
            {
                if (!layer.HoldsCluster(lc)) continue;
                long from = lc * lcs, to = Math.Min(from + lcs, q.Length);
                for (long cc = Math.Max(from / cs, lastChild + 1); cc * cs < to; cc++)
                {
                    lastChild = cc;
                    if (q.HoldsCluster(cc)) continue;
                    int n = (int)Math.Min(cs, q.Length - cc * cs);
                    q.ReadAt(cc * cs, buf.AsSpan(0, n)); // reads through to the layer: the image's own view
                    q.WriteAt(cc * cs, buf.AsSpan(0, n));
                    copied += n;
                }
            }
            q.Flush();
        }
        SetBackingFile(path, newBacking);
        return copied;
    }

    /// <summary>Creates an empty image: qcow2 (blank), raw (sparse) or VHD (dynamic, or fixed; its size is rounded up to a CHS capacity as QEMU does).</summary>
    public static void Create(string path, DiskFormat format, long virtualSize, bool vhdFixed = false)
    {
        switch (format)
        {
            case DiskFormat.Qcow2: CreateQcow2(path, virtualSize); break;
            case DiskFormat.Raw:
                if (virtualSize <= 0 || virtualSize > MaxVirtualSize) throw new ArgumentOutOfRangeException(nameof(virtualSize), "The size must be between 1 byte and 4 TiB.");
                using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None)) fs.SetLength(virtualSize);
                break;
            case DiskFormat.Vhd: VhdDiskImage.Create(path, virtualSize, dynamic: !vhdFixed); break; // rounded up to a CHS capacity
            default: throw new NotSupportedException($"Creating {format} images is not supported (VMDK is read only).");
        }
    }

    /// <summary>
    /// Copies what <paramref name="source"/> reads as (its whole chain, flattened) into a new image of
    /// <paramref name="format"/> at <paramref name="destination"/>. All-zero stretches are left unallocated.
    /// The output is written to a temporary file renamed into place at the end, so a failure leaves nothing.
    /// </summary>
    public static void Convert(string source, string destination, DiskFormat format, IProgress<long>? bytesDone = null)
    {
        if (Path.GetFullPath(source) == Path.GetFullPath(destination)) throw new ArgumentException("Source and destination are the same file.");
        if (format == DiskFormat.Vmdk) throw new NotSupportedException("Writing VMDK images is not supported; choose raw, qcow2 or vhd.");
        using var src = OpenImage(source, readOnly: true);
        long size = src.Length;
        string tmp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(destination)) ?? ".", $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Create(tmp, format, size);
            using (var dst = OpenChain(tmp, readOnly: false, format, new HashSet<string>(), 0, null))
            {
                // (a VHD may be a little larger than the source: its size is a CHS capacity; the rest reads as zeros)
                const int Chunk = 1 << 20;
                var buf = new byte[Chunk];
                for (long off = 0; off < size; off += Chunk)
                {
                    int n = (int)Math.Min(Chunk, size - off);
                    var span = buf.AsSpan(0, n);
                    src.ReadAt(off, span);
                    // skip zero 64 KiB pieces: they stay unallocated (sparse) in every output format
                    for (int p = 0; p < n; p += 65536)
                    {
                        var piece = span.Slice(p, Math.Min(65536, n - p));
                        if (piece.IndexOfAnyExcept((byte)0) >= 0) dst.WriteAt(off + p, piece);
                    }
                    bytesDone?.Report(off + n);
                }
                dst.Flush();
            }
            File.Move(tmp, destination, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Grows the virtual size (raw, qcow2, VHD fixed, VHD dynamic within its table). Shrinking is refused.</summary>
    public static void Resize(string path, long newVirtualSize)
    {
        var info = Probe(path);
        if (newVirtualSize < info.VirtualSize) throw new ArgumentOutOfRangeException(nameof(newVirtualSize), $"Images only grow: {newVirtualSize} is smaller than the current {info.VirtualSize} bytes.");
        if (newVirtualSize > MaxVirtualSize) throw new ArgumentOutOfRangeException(nameof(newVirtualSize), "The size must be at most 4 TiB.");
        switch (info.Format)
        {
            case DiskFormat.Raw:
                using (var raw = new RawDiskImage(path, readOnly: false)) { raw.Grow(newVirtualSize); raw.Flush(); }
                break;
            case DiskFormat.Qcow2:
                using (var q = Qcow2DiskImage.Open(path, readOnly: false, backing: null)) q.Grow(newVirtualSize);
                break;
            case DiskFormat.Vhd: VhdDiskImage.Grow(path, newVirtualSize); break;
            default: throw new NotSupportedException("VMDK images cannot be resized; convert them to qcow2 first.");
        }
    }

    /// <summary>Problems found in the image and its backing chain (empty = clean), for <c>vmportal img check</c>.</summary>
    public static IReadOnlyList<string> Check(string path)
    {
        var problems = new List<string>();
        try
        {
            DiskFormat fmt;
            using (var h = OpenRead(path)) fmt = Detect(h, RandomAccess.GetLength(h), path);
            if (fmt == DiskFormat.Qcow2) problems.AddRange(Qcow2DiskImage.Check(path));
            else if (fmt == DiskFormat.Vhd) problems.AddRange(VhdDiskImage.Check(path));
            using (OpenImage(path, readOnly: true)) { } // the whole chain opens: backing files exist, no loop, tables in range
        }
        catch (InvalidDataException e)
        {
            if (!problems.Contains(e.Message)) problems.Add(e.Message);
        }
        return problems;
    }

    private static SafeFileHandle OpenRead(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"disk image not found: {Path.GetFullPath(path)}", path);
        return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
    }

    /// <summary>The format named by the file's first bytes (or the VHD footer at its end); raw when none matches.</summary>
    internal static DiskFormat Detect(SafeFileHandle h, long len, string path)
    {
        string name = Path.GetFileName(path);
        if (len == 0) throw new InvalidDataException($"{name}: the file is empty");
        Span<byte> head = stackalloc byte[64];
        head = head[..(int)Math.Min(64, len)];
        DiskImageBase.ReadFile(h, 0, head);
        if (Qcow2Header.HasMagic(head)) return DiskFormat.Qcow2;
        if (head.Length >= 4 && head[..4].SequenceEqual("KDMV"u8)) return DiskFormat.Vmdk;
        if (head.StartsWith("# Disk DescriptorFile"u8))
            throw new InvalidDataException($"{name}: a VMDK descriptor with separate extent files is not supported; only monolithicSparse VMDK (one file)");
        if (head.Length >= 8 && head[..8].SequenceEqual("conectix"u8)) return DiskFormat.Vhd; // dynamic VHD: footer copy at 0
        if (len >= VhdDiskImage.FooterSize)
        {
            Span<byte> tail = stackalloc byte[8];
            DiskImageBase.ReadFile(h, len - VhdDiskImage.FooterSize, tail);
            if (tail.SequenceEqual("conectix"u8)) return DiskFormat.Vhd;
        }
        return DiskFormat.Raw;
    }
}

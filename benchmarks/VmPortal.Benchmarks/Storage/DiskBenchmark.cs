using System.Diagnostics;
using VmPortal.Emulator.Storage;

namespace VmPortal.Benchmarks.Storage;

/// <summary>
/// Disk image speed on the host (no guest): a sequential 64 MiB write in 256 KiB transfers (the ATA DMA staging size)
/// followed by Flush (fsync), then a sequential read, through a raw image and through a qcow2 overlay on a raw base;
/// a read through a fresh overlay (every cluster falls through to the base); and the time to create an overlay on
/// a 50 MiB and on a 2 GiB base (raw and qcow2 bases). Files go to DIR (default: the system temp directory).
/// Reads hit the host page cache (the data was just written), so they measure the format's own cost.
/// Usage: disk [DIR]
/// </summary>
public static class DiskBenchmark
{
    private const int Total = 64 << 20, Transfer = 256 << 10;

    public static int Run(string[] args)
    {
        string root = args.Length > 1 ? args[1] : Path.GetTempPath();
        string dir = Directory.CreateDirectory(Path.Combine(root, $"vmp-diskbench-{Guid.NewGuid():N}")).FullName;
        try
        {
            var data = new byte[Transfer];
            new Random(1).NextBytes(data);
            Console.WriteLine($"disk benchmark in {dir} ({Environment.ProcessorCount} cores)");
            Console.WriteLine("image                          write+flush MB/s   read MB/s");

            string raw = Path.Combine(dir, "disk.raw");
            DiskImageFile.Create(raw, DiskFormat.Raw, Total);
            Report("raw", raw, data);

            string baseRaw = Path.Combine(dir, "base.raw");
            DiskImageFile.Create(baseRaw, DiskFormat.Raw, Total);
            using (var b = DiskImageFile.OpenImage(baseRaw, readOnly: false))
                for (long off = 0; off < Total; off += Transfer) b.WriteAt(off, data);
            string ov = Path.Combine(dir, "overlay.qcow2");
            DiskImageFile.CreateQcow2(ov, 0, baseRaw);
            Console.WriteLine($"{"qcow2 overlay, base read",-30} {"",16}   {ReadMBps(ov):F0}");
            Report("qcow2 overlay (new clusters)", ov, data);
            Report("qcow2 overlay (rewrite)", ov, data);

            Console.WriteLine();
            Console.WriteLine("overlay creation (median of 21)   ms");
            foreach (long size in new[] { 50L << 20, 2L << 30 })
            {
                string br = Path.Combine(dir, $"base-{size >> 20}.raw");
                DiskImageFile.Create(br, DiskFormat.Raw, size);
                using (var b = DiskImageFile.OpenImage(br, readOnly: false))
                    for (long off = 0; off < size; off += size / 16) b.WriteAt(off, data); // some data, file mostly sparse
                string bq = Path.Combine(dir, $"base-{size >> 20}.qcow2");
                DiskImageFile.CreateQcow2(bq, size);
                using (var b = DiskImageFile.OpenImage(bq, readOnly: false))
                    for (long off = 0; off < size; off += size / 64) b.WriteAt(off, data);
                Console.WriteLine($"  on a {size >> 20,5} MiB raw base    {CreateMs(dir, br):F2}");
                Console.WriteLine($"  on a {size >> 20,5} MiB qcow2 base  {CreateMs(dir, bq):F2}");
            }
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static void Report(string name, string path, byte[] data)
    {
        double w = WriteMBps(path, data), r = ReadMBps(path);
        Console.WriteLine($"{name,-30} {w,16:F0}   {r,9:F0}");
    }

    private static double WriteMBps(string path, byte[] data)
    {
        using var img = DiskImageFile.OpenImage(path, readOnly: false);
        var sw = Stopwatch.StartNew();
        for (long off = 0; off < Total; off += data.Length) img.Write(off / 512, data);
        img.Flush();
        return Total / 1e6 / sw.Elapsed.TotalSeconds;
    }

    private static double ReadMBps(string path)
    {
        using var img = DiskImageFile.OpenImage(path, readOnly: true);
        var buf = new byte[Transfer];
        var sw = Stopwatch.StartNew();
        for (long off = 0; off < Total; off += buf.Length) img.Read(off / 512, buf);
        return Total / 1e6 / sw.Elapsed.TotalSeconds;
    }

    private static double CreateMs(string dir, string basePath)
    {
        var times = new List<double>();
        for (int i = 0; i < 21; i++)
        {
            string ov = Path.Combine(dir, $"ov-{i}.qcow2");
            var sw = Stopwatch.StartNew();
            DiskImageFile.CreateQcow2(ov, 0, basePath);
            times.Add(sw.Elapsed.TotalMilliseconds);
            File.Delete(ov);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}

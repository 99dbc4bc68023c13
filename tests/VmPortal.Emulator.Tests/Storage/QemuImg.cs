using System.Diagnostics;

namespace VmPortal.Emulator.Tests.Storage;

/// <summary>Runs QEMU's <c>qemu-img</c> / <c>qemu-io</c> (apt qemu-utils, installed by scripts/install-deps.sh test): the format oracle.</summary>
internal static class QemuImg
{
    public static (int Exit, string Out, string Err) Run(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is not installed (apt qemu-utils; scripts/install-deps.sh test): {e.Message}");
        }
        using (p)
        {
            var so = p.StandardOutput.ReadToEndAsync();
            var se = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            return (p.ExitCode, so.Result, se.Result);
        }
    }

    /// <summary>Runs qemu-img and asserts success.</summary>
    public static string Img(params string[] args)
    {
        var (exit, o, e) = Run("qemu-img", args);
        Assert.True(exit == 0, $"qemu-img {string.Join(' ', args)} exited {exit}: {o}{e}");
        return o;
    }

    /// <summary>Runs qemu-io commands on an image and asserts success.</summary>
    public static void Io(string image, string format, params string[] commands)
    {
        var args = new List<string> { "-f", format };
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(image);
        var (exit, o, e) = Run("qemu-io", args.ToArray());
        Assert.True(exit == 0 && !o.Contains("failed") && !e.Contains("failed"), $"qemu-io {string.Join(' ', args)} exited {exit}: {o}{e}");
    }

    /// <summary>qemu-img check: asserts a clean result (exit 0, no leaks, no errors).</summary>
    public static void AssertCheckClean(string image, string format = "qcow2")
    {
        var (exit, o, e) = Run("qemu-img", "check", "-f", format, image);
        Assert.True(exit == 0, $"qemu-img check {image} exited {exit}:\n{o}{e}");
        Assert.Contains("No errors were found", o);
    }

    /// <summary>qemu-img compare against a raw file of the expected bytes.</summary>
    public static void AssertSameAsRaw(string image, string format, byte[] expected, string scratchDir)
    {
        string raw = Path.Combine(scratchDir, $"expected-{Guid.NewGuid():N}.raw");
        File.WriteAllBytes(raw, expected);
        try
        {
            var (exit, o, e) = Run("qemu-img", "compare", "-f", format, "-F", "raw", image, raw);
            Assert.True(exit == 0, $"qemu-img compare {image} exited {exit}:\n{o}{e}");
        }
        finally { File.Delete(raw); }
    }

    /// <summary>What qemu-img reads the image as (its raw conversion).</summary>
    public static byte[] ToRaw(string image, string format, string scratchDir)
    {
        string raw = Path.Combine(scratchDir, $"raw-{Guid.NewGuid():N}.raw");
        Img("convert", "-f", format, "-O", "raw", image, raw);
        try { return File.ReadAllBytes(raw); }
        finally { File.Delete(raw); }
    }

    /// <summary>Test data: random clusters, zero stretches and short runs, seeded.</summary>
    public static byte[] SampleDisk(int size, int seed)
    {
        var b = new byte[size];
        var r = new Random(seed);
        for (int off = 0; off < size; off += 4096)
        {
            int kind = r.Next(4);
            var page = b.AsSpan(off, Math.Min(4096, size - off));
            if (kind == 0) r.NextBytes(page);
            else if (kind == 1) page[..Math.Min(page.Length, r.Next(1, 600))].Fill((byte)r.Next(1, 256));
            // kinds 2, 3: zeros
        }
        return b;
    }
}

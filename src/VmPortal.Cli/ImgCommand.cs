using System.Globalization;
using System.Text.Json;
using VmPortal.Emulator.Storage;

namespace VmPortal.Cli;

/// <summary><c>vmportal img</c>: a small qemu-img for our formats (create, info, convert, check, resize).</summary>
public static class ImgCommand
{
    public const int ExitOk = 0, ExitError = 1, ExitProblems = 2;

    public const string Usage = """
        Usage: vmportal img COMMAND ...
        Disk images for people without QEMU. Formats are recognised by their header: raw, qcow2, vpc (VHD), vmdk.

          create [-f qcow2|raw|vpc] [-b BACKING] [-o subformat=fixed] FILE [SIZE]
                                new blank image (qcow2 by default; vpc = dynamic VHD unless subformat=fixed);
                                with -b, a qcow2 overlay on BACKING (a relative name is relative to FILE's
                                directory); SIZE defaults to the backing's size
          info FILE [--json]    format, virtual size, file size, backing file
          convert [-O qcow2|raw|vpc] SRC DST
                                copies what SRC reads as (its backing chain flattened) into a new image
                                (qcow2 by default); zero areas stay unallocated
          check FILE            lists problems (refcounts, tables past the end, missing backing files);
                                exit code 2 when there are any
          resize FILE [+]SIZE   grows the virtual size (qcow2, raw, vpc); shrinking is refused

        SIZE: bytes, or with a suffix K, M, G, T (powers of 1024), e.g. 10G.
        Exit codes: 0 done, 1 usage or I/O error (message on stderr), 2 check found problems.
        """;

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.WriteLine(Usage);
            return args.Count == 0 ? ExitError : ExitOk;
        }
        string cmd = args[0];
        try
        {
            var (flags, positional) = Split(args.Skip(1).ToList(), cmd switch
            {
                "create" => new[] { "-f", "-b", "-o", "-F" },
                "convert" => new[] { "-O", "-f" },
                _ => Array.Empty<string>(),
            });
            switch (cmd)
            {
                case "create": return Create(flags, positional, stdout);
                case "info": return Info(flags, positional, stdout);
                case "convert": return Convert(flags, positional);
                case "check": return Check(positional, stdout);
                case "resize": return Resize(positional, stdout);
                default: throw new UsageException($"unknown command '{cmd}'");
            }
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"vmportal img: {e.Message}");
            stderr.WriteLine("Try 'vmportal img --help'.");
            return ExitError;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            // the message names the file and the problem
            stderr.WriteLine($"vmportal img {cmd}: {e.Message}");
            return ExitError;
        }
    }

    private static (Dictionary<string, string> Flags, List<string> Positional) Split(List<string> args, string[] valued)
    {
        var flags = new Dictionary<string, string>();
        var pos = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (valued.Contains(a))
            {
                if (i + 1 >= args.Count) throw new UsageException($"{a} needs a value");
                flags[a] = args[++i];
            }
            else if (a is "--json" or "-p" or "-q") flags[a] = "";
            else if (a.StartsWith('-') && a.Length > 1 && !char.IsDigit(a[1])) throw new UsageException($"unknown option '{a}'");
            else pos.Add(a);
        }
        return (flags, pos);
    }

    private static DiskFormat ParseFormat(string name, bool forWriting)
    {
        var f = name.ToLowerInvariant() switch
        {
            "qcow2" => DiskFormat.Qcow2,
            "raw" => DiskFormat.Raw,
            "vpc" or "vhd" => DiskFormat.Vhd,
            "vmdk" => DiskFormat.Vmdk,
            _ => throw new UsageException($"unknown format '{name}' (qcow2, raw, vpc, vmdk)"),
        };
        if (forWriting && f == DiskFormat.Vmdk) throw new UsageException("vmdk can be read, not written: choose qcow2, raw or vpc");
        return f;
    }

    /// <summary>Sizes as qemu-img takes them: bytes, or a number with K/M/G/T (also KiB…, powers of 1024).</summary>
    public static long ParseSize(string s)
    {
        string t = s.Trim();
        long mul = 1;
        string u = t.TrimEnd('B', 'b').TrimEnd('i');
        if (u.Length > 0 && char.IsLetter(u[^1]))
        {
            mul = char.ToUpperInvariant(u[^1]) switch
            {
                'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40,
                _ => throw new UsageException($"invalid size '{s}' (bytes, or a number with K, M, G or T)"),
            };
            u = u[..^1];
        }
        if (!decimal.TryParse(u, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal v) || v <= 0 || v * mul > DiskImageFile.MaxVirtualSize)
            throw new UsageException($"invalid size '{s}' (a positive size up to 4T)");
        return (long)(v * mul);
    }

    private static int Create(Dictionary<string, string> flags, List<string> pos, TextWriter stdout)
    {
        var fmt = ParseFormat(flags.GetValueOrDefault("-f", "qcow2"), forWriting: true);
        flags.TryGetValue("-b", out string? backing);
        if (pos.Count < 1 || pos.Count > 2) throw new UsageException("create takes FILE [SIZE]");
        string file = pos[0];
        long size = pos.Count > 1 ? ParseSize(pos[1]) : 0;
        if (backing == null && size == 0) throw new UsageException("create needs a SIZE (or -b BACKING)");
        if (backing != null && fmt != DiskFormat.Qcow2) throw new UsageException("-b (a backing file) needs -f qcow2");
        bool vhdFixed = flags.GetValueOrDefault("-o", "") switch
        {
            "" or "subformat=dynamic" => false,
            "subformat=fixed" => true,
            var o => throw new UsageException($"unknown -o '{o}' (subformat=fixed|dynamic, for vpc)"),
        };
        if (fmt == DiskFormat.Qcow2) DiskImageFile.CreateQcow2(file, size, backing);
        else DiskImageFile.Create(file, fmt, size, vhdFixed);
        var info = DiskImageFile.Probe(file);
        stdout.WriteLine($"Formatting '{file}', fmt={FormatName(info.Format)} size={info.VirtualSize}" +
                         (backing != null ? $" backing_file={backing} backing_fmt={FormatName(info.BackingFormat!.Value)}" : ""));
        return ExitOk;
    }

    private static int Info(Dictionary<string, string> flags, List<string> pos, TextWriter stdout)
    {
        if (pos.Count != 1) throw new UsageException("info takes FILE");
        var info = DiskImageFile.Probe(pos[0]);
        if (flags.ContainsKey("--json"))
        {
            var obj = new Dictionary<string, object?>
            {
                ["filename"] = pos[0],
                ["format"] = FormatName(info.Format),
                ["virtual-size"] = info.VirtualSize,
                ["file-size"] = info.FileSize,
            };
            if (info.BackingFile != null)
            {
                obj["backing-filename"] = info.BackingFile;
                obj["full-backing-filename"] = DiskImageFile.ResolveBacking(pos[0], info.BackingFile);
                if (info.BackingFormat is { } bf) obj["backing-filename-format"] = FormatName(bf);
            }
            stdout.WriteLine(JsonSerializer.Serialize(obj, new JsonSerializerOptions { WriteIndented = true }));
            return ExitOk;
        }
        stdout.WriteLine($"image: {pos[0]}");
        stdout.WriteLine($"file format: {FormatName(info.Format)}");
        stdout.WriteLine($"virtual size: {Human(info.VirtualSize)} ({info.VirtualSize} bytes)");
        stdout.WriteLine($"file size: {Human(info.FileSize)} ({info.FileSize} bytes)");
        if (info.BackingFile != null)
        {
            stdout.WriteLine($"backing file: {info.BackingFile}");
            if (info.BackingFormat is { } bf) stdout.WriteLine($"backing file format: {FormatName(bf)}");
        }
        return ExitOk;
    }

    private static int Convert(Dictionary<string, string> flags, List<string> pos)
    {
        if (pos.Count != 2) throw new UsageException("convert takes SRC DST");
        var fmt = ParseFormat(flags.GetValueOrDefault("-O", "qcow2"), forWriting: true);
        DiskImageFile.Convert(pos[0], pos[1], fmt);
        return ExitOk;
    }

    private static int Check(List<string> pos, TextWriter stdout)
    {
        if (pos.Count != 1) throw new UsageException("check takes FILE");
        var problems = DiskImageFile.Check(pos[0]);
        foreach (var p in problems) stdout.WriteLine(p);
        if (problems.Count == 0)
        {
            stdout.WriteLine("No errors were found on the image.");
            return ExitOk;
        }
        stdout.WriteLine($"{problems.Count} problem(s) found.");
        return ExitProblems;
    }

    private static int Resize(List<string> pos, TextWriter stdout)
    {
        if (pos.Count != 2) throw new UsageException("resize takes FILE [+]SIZE");
        long size = pos[1].StartsWith('+') ? DiskImageFile.Probe(pos[0]).VirtualSize + ParseSize(pos[1][1..]) : ParseSize(pos[1]);
        DiskImageFile.Resize(pos[0], size);
        stdout.WriteLine($"Image resized to {DiskImageFile.Probe(pos[0]).VirtualSize} bytes.");
        return ExitOk;
    }

    private static string FormatName(DiskFormat f) => f switch
    {
        DiskFormat.Qcow2 => "qcow2",
        DiskFormat.Vhd => "vpc",
        DiskFormat.Vmdk => "vmdk",
        _ => "raw",
    };

    private static string Human(long bytes)
    {
        string[] units = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{bytes} B" : v.ToString("0.##", CultureInfo.InvariantCulture) + " " + units[u];
    }
}

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VmPortal.Emulator;
using VmPortal.Network;

namespace VmPortal.Cli;

/// <summary>The options of <c>vmportal run</c>, parsed from the command line (qemu-system-i386 style).</summary>
public sealed class RunOptions
{
    public int MemoryMiB { get; set; } = 128;
    public string? CdRom { get; set; }
    /// <summary>Hard disk images by IDE slot (--hda, --hdb, --hdc).</summary>
    public SortedDictionary<IdeSlot, string> Disks { get; } = new();
    /// <summary>The hard disk paths in slot order.</summary>
    public IReadOnlyList<string> HardDisks => Disks.Values.ToList();
    /// <summary>--snapshot: guest writes go to temporary overlays; the disk images are only read.</summary>
    public bool Snapshot { get; set; }
    public string? Floppy { get; set; }
    public string? Kernel { get; set; }
    public string? Initrd { get; set; }
    public string? Append { get; set; }
    public List<BootDevice>? BootOrder { get; set; }
    public string? Bios { get; set; }
    public bool SerialStdio { get; set; }
    public bool DebugconStdio { get; set; }
    public Regex? Until { get; set; }
    public double? TimeoutSeconds { get; set; }
    public bool ScreenText { get; set; }
    public string? Screenshot { get; set; }
    public string? TypeText { get; set; }
    public Regex TypeAfter { get; set; } = DefaultPrompt;
    /// <summary>--type-after start: type before the machine starts or resumes, not after a prompt.</summary>
    public bool TypeAtStart { get; set; }
    public bool Deterministic { get; set; }
    public string? SaveState { get; set; }
    public string? LoadState { get; set; }
    public bool? Jit { get; set; }
    public int? JitThreshold { get; set; }
    public bool Help { get; set; }
    /// <summary>--nic: null = none; otherwise the card's model, MAC and host forwards on a user-mode (NAT) network.</summary>
    public NicOptions? Nic { get; set; }

    /// <summary>
    /// A shell prompt at the end of the output: "… # ", "… $ ", "… > ", also when busybox's line editor follows it
    /// with a cursor position query (ESC [ 6 n) on a serial line.
    /// </summary>
    public static readonly Regex DefaultPrompt = new(@"[#$>] ?(\x1b\[[0-9;]*n)?$", RegexOptions.Multiline);

    public const string Usage = """
        Usage: vmportal run [options]
        Runs one PC in this process (like qemu-system-i386), without the portal.

          --memory MiB          RAM size (default 128)
          --cdrom FILE          ISO image in the IDE CD-ROM drive
          --hda FILE, --hdb FILE, --hdc FILE
                                hard disk images, any of raw, qcow2 (with its backing chain), VHD, VMDK
                                (read-only): IDE primary master, primary slave, secondary slave
          --snapshot            write to temporary qcow2 overlays (deleted at exit); the disk files are only read
          --fda FILE            1.44 MB floppy image
          --kernel FILE         boot a Linux bzImage directly (also ipxe.lkrn, memtest86+ia32.bin)
          --initrd FILE         initial ramdisk for --kernel
          --append "ARGS"       kernel command line for --kernel
          --boot cd|hd|fd       first boot device; a list like cd,hd,fd or QEMU letters (d, c, a) also work
          --bios FILE           system firmware instead of SeaBIOS (mapped below 1 MiB and below 4 GiB)
          --serial stdio        COM1 to stdout, stdin to COM1
          --debugcon stdio      bytes written to port 0xE9 (and SeaBIOS's log port 0x402) to stdout
          --until REGEX         exit 0 as soon as REGEX appears on the serial output or the text screen
          --timeout SECONDS     give up after SECONDS (exit 2)
          --type TEXT           type TEXT on the PS/2 keyboard once a shell prompt appears (\n = Enter);
                                with --until, only output after the typing counts
          --type-after REGEX    what to wait for before --type (default: a shell prompt)
          --type-after start    type at once: the keys wait in the keyboard until the guest reads them (for a
                                state saved at a prompt that times out, such as memtest86+'s; to wait
                                for the text "start" itself, write the regex as [s]tart)
          --screen-text         print the text screen when the run ends
          --screenshot FILE.png save the screen when the run ends
          --deterministic       guest time follows executed instructions instead of the host clock
          --save-state FILE     when the run ends (--until, --timeout, Ctrl-C, SIGTERM) save the machine's
                                whole state (CPU, RAM, devices) to FILE; disk images are not included
          --load-state FILE     start from a state saved with --save-state instead of powering on; give the
                                same --memory, disks, --cdrom and --kernel as when it was saved
          --nic user[,model=e1000][,mac=52:54:00:12:34:56][,hostfwd=tcp:127.0.0.1:2222-:22]...
                                an Intel e1000 on a user-mode network like QEMU's: 10.0.2.0/24, DHCP from
                                10.0.2.15, gateway 10.0.2.2 = this host's 127.0.0.1, DNS 10.0.2.3 (names of
                                /etc/hosts only); guests reach nothing but the host's loopback
          --nic none            no network card (the default)
          --boot n              boot from the network card (iPXE), e.g. --boot n,cd
          --jit on|off          the CPU's JIT tier (compiles hot guest code to .NET IL); default: VMPORTAL_JIT
          --jit-threshold N     block executions before the JIT compiles a block (0 = every block at once)

        Exit codes: 0 matched or guest powered off, 2 timeout, 3 guest crashed, 1 usage or host error.
        """;

    /// <summary>Parses the arguments after "run". Returns null and sets <paramref name="error"/> on a usage error.</summary>
    public static RunOptions? Parse(IReadOnlyList<string> args, out string? error)
    {
        var o = new RunOptions();
        error = null;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains('='))
            {
                inline = arg[(arg.IndexOf('=') + 1)..];
                arg = arg[..arg.IndexOf('=')];
            }
            string Value()
            {
                if (inline != null) return inline;
                if (i + 1 >= args.Count) throw new UsageException($"{arg} needs a value");
                return args[++i];
            }
            try
            {
                switch (arg)
                {
                    case "-h": case "--help": o.Help = true; break;
                    case "--memory": case "-m": o.MemoryMiB = ParseMemory(Value()); break;
                    case "--cdrom": o.CdRom = Value(); break;
                    case "--hda": case "--hdb": case "--hdc":
                        var slot = arg switch { "--hda" => IdeSlot.PrimaryMaster, "--hdb" => IdeSlot.PrimarySlave, _ => IdeSlot.SecondarySlave };
                        if (!o.Disks.TryAdd(slot, Value())) throw new UsageException($"{arg} given twice");
                        break;
                    case "--snapshot": o.Snapshot = true; break;
                    case "--fda": o.Floppy = Value(); break;
                    case "--kernel": o.Kernel = Value(); break;
                    case "--initrd": o.Initrd = Value(); break;
                    case "--append": o.Append = Value(); break;
                    case "--boot": o.BootOrder = ParseBoot(Value()); break;
                    case "--bios": o.Bios = Value(); break;
                    case "--serial": o.SerialStdio = ParseStdio(arg, Value()); break;
                    case "--debugcon": o.DebugconStdio = ParseStdio(arg, Value()); break;
                    case "--until": o.Until = ParseRegex(arg, Value()); break;
                    case "--timeout": o.TimeoutSeconds = ParseTimeout(Value()); break;
                    case "--screen-text": o.ScreenText = true; break;
                    case "--screenshot": o.Screenshot = Value(); break;
                    case "--type": o.TypeText = Unescape(Value()); break;
                    case "--type-after":
                        string after = Value();
                        if (after == "start") o.TypeAtStart = true;
                        else o.TypeAfter = ParseRegex(arg, after);
                        break;
                    case "--deterministic": o.Deterministic = true; break;
                    case "--save-state": o.SaveState = Value(); break;
                    case "--load-state": o.LoadState = Value(); break;
                    case "--nic": case "-nic": o.Nic = NicOptions.Parse(Value()); break;
                    case "--jit": o.Jit = ParseOnOff(arg, Value()); break;
                    case "--jit-threshold": o.JitThreshold = ParseThreshold(arg, Value()); break;
                    default: throw new UsageException($"unknown option '{args[i]}'");
                }
            }
            catch (UsageException e)
            {
                error = e.Message;
                return null;
            }
        }
        if (o.Help) return o;
        if (o.Snapshot && o.Disks.Count == 0) { error = "--snapshot needs a hard disk (--hda, --hdb, --hdc)"; return null; }
        if (o.LoadState != null && !File.Exists(o.LoadState)) { error = $"--load-state: file not found: {o.LoadState}"; return null; }
        if (o.Kernel == null && (o.Initrd != null || o.Append != null)) { error = "--initrd and --append need --kernel"; return null; }
        if (o.Screenshot != null && !o.Screenshot.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            error = "--screenshot writes PNG: the file name must end in .png";
            return null;
        }
        return o;
    }

    /// <summary>The machine configuration these options describe.</summary>
    public MachineConfig ToMachineConfig(Emulator.Io.IFramePort? nicPort = null) => new()
    {
        Nic = Nic == null ? null : new NicConfig { Model = Nic.Model, MacAddress = Nic.Mac, Port = nicPort },
        Name = "cli",
        MemoryMiB = MemoryMiB,
        CdRomImage = CdRom,
        HardDisks = Disks.Select(d => new DiskConfig(d.Value, Snapshot: Snapshot) { Slot = d.Key }).ToList(),
        FloppyImage = Floppy,
        KernelPath = Kernel,
        InitrdPath = Initrd,
        KernelCommandLine = Kernel != null ? Append ?? "" : null,
        BootOrder = BootOrder ?? DefaultBootOrder(),
        BiosPath = Bios,
        SerialEnabled = true,
        DebugConsolePorts = DebugconStdio ? new ushort[] { 0xE9, 0x402 } : new ushort[] { 0xE9 },
        OnTripleFault = TripleFaultAction.PowerOff,
        DeterministicClock = Deterministic,
        Jit = Jit,
        JitThreshold = JitThreshold,
    };

    private List<BootDevice> DefaultBootOrder()
    {
        // Like QEMU: the first medium given decides, then the others.
        var order = new List<BootDevice>();
        if (CdRom != null) order.Add(BootDevice.CdRom);
        if (HardDisks.Count > 0) order.Add(BootDevice.HardDisk);
        if (Floppy != null) order.Add(BootDevice.Floppy);
        foreach (var d in new[] { BootDevice.CdRom, BootDevice.HardDisk, BootDevice.Floppy })
            if (!order.Contains(d)) order.Add(d);
        return order;
    }

    private static int ParseMemory(string v)
    {
        string s = v.Trim();
        if (s.EndsWith("M", StringComparison.OrdinalIgnoreCase)) s = s[..^1];
        else if (s.EndsWith("G", StringComparison.OrdinalIgnoreCase) && int.TryParse(s[..^1], out int g)) return g * 1024;
        if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int mib) || mib < MachineConfig.MinMemoryMiB || mib > MachineConfig.MaxMemoryMiB)
            throw new UsageException($"--memory must be a number of MiB between {MachineConfig.MinMemoryMiB} and {MachineConfig.MaxMemoryMiB} (got '{v}')");
        return mib;
    }

    private static List<BootDevice> ParseBoot(string v)
    {
        var order = new List<BootDevice>();
        var parts = v.Contains(',') ? v.Split(',') : v.Length > 1 && v.All(c => "acdn".Contains(c)) ? v.Select(c => c.ToString()).ToArray() : new[] { v };
        foreach (var raw in parts)
        {
            BootDevice d = raw.Trim().ToLowerInvariant() switch
            {
                "cd" or "cdrom" or "d" => BootDevice.CdRom,
                "hd" or "disk" or "c" => BootDevice.HardDisk,
                "fd" or "floppy" or "a" => BootDevice.Floppy,
                "n" or "net" or "network" => BootDevice.Network,
                _ => throw new UsageException($"--boot takes cd, hd, fd or n (got '{raw}')"),
            };
            if (!order.Contains(d)) order.Add(d);
        }
        foreach (var d in new[] { BootDevice.CdRom, BootDevice.HardDisk, BootDevice.Floppy })
            if (!order.Contains(d)) order.Add(d);
        return order;
    }

    private static bool ParseStdio(string option, string v) => v switch
    {
        "stdio" => true,
        "none" or "null" => false,
        _ => throw new UsageException($"{option} takes 'stdio' or 'none' (got '{v}')"),
    };

    private static Regex ParseRegex(string option, string v)
    {
        try { return new Regex(v, RegexOptions.Multiline | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException e) { throw new UsageException($"{option}: invalid regular expression '{v}': {e.Message}"); }
    }

    private static bool ParseOnOff(string option, string v) => v switch
    {
        "on" or "1" or "true" => true,
        "off" or "0" or "false" => false,
        _ => throw new UsageException($"{option} takes on or off (got '{v}')"),
    };

    private static int ParseThreshold(string option, string v) =>
        int.TryParse(v, out int n) && n >= 0 ? n : throw new UsageException($"{option} must be a whole number >= 0 (got '{v}')");

    private static double ParseTimeout(string v)
    {
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || s <= 0 || double.IsInfinity(s) || double.IsNaN(s))
            throw new UsageException($"--timeout must be a positive number of seconds (got '{v}')");
        return s;
    }

    /// <summary>Turns \n, \r, \t, \e and \\ in --type text into the characters they name.</summary>
    public static string Unescape(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\' || i + 1 == s.Length) { sb.Append(s[i]); continue; }
            char c = s[++i];
            sb.Append(c switch { 'n' => '\n', 'r' => '\n', 't' => '\t', 'e' => '\x1b', '\\' => '\\', _ => '\\' });
            if (c is not ('n' or 'r' or 't' or 'e' or '\\')) sb.Append(c);
        }
        return sb.ToString();
    }
}

/// <summary>A command-line mistake, reported with the usage hint and exit code 1.</summary>
public sealed class UsageException(string message) : Exception(message);

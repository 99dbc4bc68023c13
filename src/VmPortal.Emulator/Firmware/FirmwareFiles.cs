namespace VmPortal.Emulator.Firmware;

/// <summary>
/// Finds the firmware images at run time: SeaBIOS (<c>bios.bin</c>, 128 KiB, or <c>bios-256k.bin</c>) and the
/// Bochs-VBE standard VGA BIOS (<c>vgabios-stdvga.bin</c>) from Debian's <c>seabios</c> package, installed by
/// scripts/install-deps.sh under /usr/share/seabios. <c>VMPORTAL_FIRMWARE_DIR</c> names another directory
/// searched first (e.g. a self-built SeaBIOS).
/// </summary>
public static class FirmwareFiles
{
    public const string EnvironmentVariable = "VMPORTAL_FIRMWARE_DIR";
    public const string BiosFileName = "bios.bin";
    public const string Bios256kFileName = "bios-256k.bin";
    public const string VgaBiosFileName = "vgabios-stdvga.bin";

    private static readonly string[] DefaultDirectories = { "/usr/share/seabios", "/usr/share/qemu" };

    /// <summary>Directories searched, in order.</summary>
    public static IReadOnlyList<string> SearchDirectories
    {
        get
        {
            var dirs = new List<string>();
            string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(env)) dirs.Add(env);
            dirs.AddRange(DefaultDirectories);
            return dirs;
        }
    }

    /// <summary>Path of SeaBIOS's <c>bios.bin</c> (falling back to <c>bios-256k.bin</c>), or null when not installed.</summary>
    public static string? FindBios() => Find(BiosFileName) ?? Find(Bios256kFileName);

    /// <summary>Path of <c>vgabios-stdvga.bin</c>, or null when not installed.</summary>
    public static string? FindVgaBios() => Find(VgaBiosFileName);

    /// <summary>The first existing file called <paramref name="fileName"/> in <see cref="SearchDirectories"/>.</summary>
    public static string? Find(string fileName)
    {
        foreach (var dir in SearchDirectories)
        {
            string path = Path.Combine(dir, fileName);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    /// <summary>Message for a missing firmware file, naming where it was looked for and how to install it.</summary>
    public static string MissingMessage(string fileName) =>
        $"{fileName} not found in {string.Join(", ", SearchDirectories)}: install Debian's 'seabios' package " +
        $"(scripts/install-deps.sh) or set {EnvironmentVariable}.";
}

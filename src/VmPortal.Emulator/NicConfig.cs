using System.Globalization;
using VmPortal.Emulator.Io;

namespace VmPortal.Emulator;

/// <summary>
/// The machine's network card: model, MAC address, the link it is plugged into (a switch port from
/// VmPortal.Network, or a test's), and its PXE option ROM. The card sits at PCI 00:03.0 as on QEMU.
/// </summary>
public sealed class NicConfig
{
    /// <summary>Models the emulator has: the Intel 82540EM.</summary>
    public static readonly IReadOnlyList<string> Models = new[] { "e1000" };

    /// <summary>Debian's ipxe-qemu option ROM for the e1000 (8086:100E), put in the card's ROM BAR.</summary>
    public const string DefaultOptionRomPath = "/usr/lib/ipxe/qemu/pxe-e1000.rom";

    public string Model { get; init; } = "e1000";

    /// <summary>"52:54:00:12:34:56" style; a locally administered unicast address by default.</summary>
    public string MacAddress { get; init; } = "52:54:00:12:34:56";

    /// <summary>Where frames go; null = a card with no cable (link down).</summary>
    public IFramePort? Port { get; init; }

    /// <summary>
    /// The link at power-on when <see cref="Port"/> is set: false = plugged into the switch with the link down (the
    /// guest sees no carrier until <see cref="Machine.SetNicLink"/> brings it up).
    /// </summary>
    public bool LinkUp { get; init; } = true;

    /// <summary>Option ROM image (iPXE); null = <see cref="DefaultOptionRomPath"/> if installed, "" = none.</summary>
    public string? OptionRomPath { get; init; }

    /// <summary>Parses <paramref name="text"/> as six hex bytes separated by ':' or '-'; null if it is not one.</summary>
    public static byte[]? ParseMac(string? text)
    {
        if (text == null) return null;
        var parts = text.Split(':', '-');
        if (parts.Length != 6) return null;
        var mac = new byte[6];
        for (int i = 0; i < 6; i++)
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mac[i])) return null;
        return mac;
    }

    /// <summary>A random locally administered unicast MAC in QEMU's 52:54:00 range.</summary>
    public static string RandomMac()
    {
        Span<byte> b = stackalloc byte[3];
        Random.Shared.NextBytes(b);
        return $"52:54:00:{b[0]:x2}:{b[1]:x2}:{b[2]:x2}";
    }

    internal void Validate(List<string> problems)
    {
        if (!Models.Contains(Model)) problems.Add($"NIC model '{Model}' is not available (models: {string.Join(", ", Models)})");
        var mac = ParseMac(MacAddress);
        if (mac == null) problems.Add($"MAC address '{MacAddress}' is not six hex bytes like 52:54:00:12:34:56");
        else if ((mac[0] & 1) != 0) problems.Add($"MAC address '{MacAddress}' is a multicast address");
        if (!string.IsNullOrEmpty(OptionRomPath) && !File.Exists(OptionRomPath)) problems.Add($"NIC option ROM not found: {OptionRomPath}");
    }

    internal byte[] LoadOptionRom()
    {
        string? path = OptionRomPath ?? (File.Exists(DefaultOptionRomPath) ? DefaultOptionRomPath : null);
        return string.IsNullOrEmpty(path) ? Array.Empty<byte>() : File.ReadAllBytes(path);
    }
}

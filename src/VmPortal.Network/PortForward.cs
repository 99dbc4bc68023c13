namespace VmPortal.Network;

/// <summary>
/// A host TCP port forwarded to a guest port: connections to <see cref="HostAddress"/>:<see cref="HostPort"/>
/// reach the guest at <see cref="GuestAddress"/> (or the DHCP address of <see cref="GuestMac"/>, or the first
/// DHCP address) on <see cref="GuestPort"/>.
/// </summary>
public sealed record PortForward(string HostAddress, int HostPort, int GuestPort, string? GuestAddress = null, string? GuestMac = null)
{
    /// <summary>Parses QEMU's hostfwd syntax: "tcp:127.0.0.1:2222-:22", "tcp::2222-10.0.2.15:22".</summary>
    public static PortForward Parse(string text)
    {
        var s = text.Trim();
        if (s.StartsWith("tcp:", StringComparison.OrdinalIgnoreCase)) s = s[4..];
        else if (s.StartsWith("udp:", StringComparison.OrdinalIgnoreCase)) throw new FormatException("only TCP port forwards are supported");
        var halves = s.Split('-');
        if (halves.Length != 2) throw new FormatException($"'{text}' is not [tcp:]hostaddr:hostport-guestaddr:guestport");
        var (ha, hp) = Split(halves[0], text);
        var (ga, gp) = Split(halves[1], text);
        return new PortForward(ha.Length == 0 ? "127.0.0.1" : ha, hp, gp, ga.Length == 0 ? null : ga);
    }

    private static (string, int) Split(string part, string text)
    {
        int c = part.LastIndexOf(':');
        string addr = c < 0 ? "" : part[..c];
        string port = c < 0 ? part : part[(c + 1)..];
        if (!int.TryParse(port, out int p) || p < 1 || p > 65535) throw new FormatException($"bad port '{port}' in '{text}'");
        return (addr, p);
    }
}

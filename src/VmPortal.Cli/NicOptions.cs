using VmPortal.Emulator;
using VmPortal.Network;

namespace VmPortal.Cli;

/// <summary>
/// <c>--nic</c> as QEMU spells it: <c>none</c>, or <c>user</c> (and/or <c>model=</c>, <c>mac=</c>, any number of
/// <c>hostfwd=tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT</c>), comma-separated.
/// </summary>
public sealed class NicOptions
{
    public string Model { get; private set; } = "e1000";
    public string Mac { get; private set; } = "52:54:00:12:34:56";
    public List<PortForward> HostForwards { get; } = new();

    /// <summary>Null for "none".</summary>
    public static NicOptions? Parse(string value)
    {
        if (value.Trim() == "none") return null;
        var o = new NicOptions();
        foreach (var raw in value.Split(','))
        {
            string part = raw.Trim();
            if (part.Length == 0 || part == "user") continue;
            int eq = part.IndexOf('=');
            string key = eq < 0 ? part : part[..eq], val = eq < 0 ? "" : part[(eq + 1)..];
            switch (key)
            {
                case "model":
                    if (!NicConfig.Models.Contains(val)) throw new UsageException($"--nic model '{val}' is not available (models: {string.Join(", ", NicConfig.Models)})");
                    o.Model = val;
                    break;
                case "mac":
                    if (NicConfig.ParseMac(val) is not { } mac || (mac[0] & 1) != 0) throw new UsageException($"--nic mac '{val}' is not a unicast MAC like 52:54:00:12:34:56");
                    o.Mac = val;
                    break;
                case "hostfwd":
                    try { o.HostForwards.Add(PortForward.Parse(val)); }
                    catch (FormatException e) { throw new UsageException($"--nic hostfwd: {e.Message}"); }
                    break;
                default:
                    throw new UsageException($"--nic: unknown part '{part}' (use none, user, model=, mac=, hostfwd=)");
            }
        }
        return o;
    }
}

namespace VmPortal.Web.Hosting;

/// <summary>
/// Resolves the portal's data directory (<c>Portal:DataDirectory</c>, default <c>.data</c>): relative paths are
/// taken from the directory the portal was started in (run.sh starts it in the repository root).
/// </summary>
public sealed class PortalPaths(IConfiguration config)
{
    public string DataDirectory { get; } = Path.GetFullPath(config["Portal:DataDirectory"] is { Length: > 0 } d ? d : ".data");

    public string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(path);
}

namespace VmPortal.Web.Components.Shared;

/// <summary>Display helpers for sizes and dates.</summary>
public static class Format
{
    public static string MiB(long mib) => mib >= 1024 && mib % 1024 == 0 ? $"{mib / 1024} GiB" : mib >= 1024 ? $"{mib / 1024.0:0.#} GiB" : $"{mib} MiB";

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.##} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.#} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.#} KiB",
        _ => $"{bytes} B",
    };

    public static string When(DateTimeOffset t) => t.ToLocalTime().ToString("yyyy-MM-dd HH:mm");

    public static string Disks(VmPortal.Core.Vms.VmDto vm) =>
        vm.Disks.Count == 0 ? "none" : $"{vm.Disks.Count} × · {MiB(vm.TotalDiskMiB)}".Replace(" × · ", vm.Disks.Count == 1 ? " disk · " : " disks · ");
}

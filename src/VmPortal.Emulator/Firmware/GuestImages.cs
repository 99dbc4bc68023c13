namespace VmPortal.Emulator.Firmware;

/// <summary>
/// The built-in guest images made by scripts/build-guest-images.sh, and where they live:
/// <c>$VMPORTAL_IMAGE_CACHE</c> or <c>~/.cache/vmportal/images</c>. The rescue kernel's command line for direct boot is
/// <see cref="RescueCommandLine"/> (the ISO's ISOLINUX uses the same); its /init prints <see cref="ReadyLine"/> on
/// tty1 and ttyS0, then busybox runs a root shell on both.
/// </summary>
public static class GuestImages
{
    public const string CacheEnvironmentVariable = "VMPORTAL_IMAGE_CACHE";
    public const string RescueIso = "debian-i386-rescue.iso";
    public const string RescueKernel = "debian-i386-rescue.vmlinuz";
    public const string RescueInitrd = "debian-i386-rescue.initrd.gz";
    /// <summary>The same kernel and initramfs on a CD made by grub-mkrescue (GRUB 2 menu, 3 s countdown).</summary>
    public const string RescueGrubIso = "debian-i386-rescue-grub.iso";
    public const string MemtestIso = "memtest86plus.iso";
    public const string MemtestKernel = "memtest86plus.bin";
    public const string IpxeIso = "ipxe.iso";
    public const string IpxeKernel = "ipxe.lkrn";
    /// <summary>The Debian 12 system disk (scripts/build-debian-image.sh).</summary>
    public const string DebianSystemDisk = "debian-12-i386.img";
    public const string RescueCommandLine = "console=tty1 console=ttyS0,115200";
    public const string ReadyLine = "VMPORTAL-GUEST-READY";
    public const string BuildHint = "run scripts/build-guest-images.sh to build the guest images";

    /// <summary>The image cache directory.</summary>
    public static string Directory =>
        Environment.GetEnvironmentVariable(CacheEnvironmentVariable) is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "vmportal", "images");

    /// <summary>Full path of a built-in image (whether or not it exists).</summary>
    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    /// <summary>
    /// Why an image cannot be built on this host at all, when its build script said so in <c>FILE.unavailable</c>
    /// beside the missing image (build-debian-image.sh: no way to run i386 programs); null otherwise.
    /// </summary>
    public static string? UnbuildableReason(string fileName)
    {
        string path = PathOf(fileName), marker = path + ".unavailable";
        return !File.Exists(path) && File.Exists(marker) ? File.ReadAllText(marker).Trim() : null;
    }
}

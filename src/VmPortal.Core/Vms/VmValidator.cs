using System.Text.RegularExpressions;
using VmPortal.Core.Images;
using VmPortal.Data.Entities;

namespace VmPortal.Core.Vms;

/// <summary>
/// Validation rules for a VM spec, shared by the REST API and the UI dialog. Field keys are camelCase JSON paths
/// (<c>name</c>, <c>disks[0].sizeMiB</c>, <c>nic.macAddress</c>).
/// </summary>
public static partial class VmValidator
{
    /// <summary>NIC models the emulator has (<see cref="VmPortal.Emulator.NicConfig.Models"/>).</summary>
    public static readonly string[] NicModels = VmPortal.Emulator.NicConfig.Models.ToArray();
    public static readonly string[] DiskBuses = ["ide"];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
    private static partial Regex NameRegex();

    [GeneratedRegex("^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")]
    private static partial Regex MacRegex();

    /// <summary>Error for a VM or network name, or null when valid.</summary>
    public static string? NameError(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "Name is required.";
        if (name.Length > VirtualMachine.NameMaxLength) return $"Name must be at most {VirtualMachine.NameMaxLength} characters.";
        if (!NameRegex().IsMatch(name)) return "Name may contain letters, digits, '-', '_' and '.', and must start with a letter or digit.";
        return null;
    }

    public static string? MemoryError(int? memory)
    {
        if (memory is null) return "Memory is required.";
        if (memory < VirtualMachine.MinMemoryMiB || memory > VirtualMachine.MaxMemoryMiB)
            return $"Memory must be between {VirtualMachine.MinMemoryMiB} and {VirtualMachine.MaxMemoryMiB} MiB.";
        return null;
    }

    public static string? DescriptionError(string? description) =>
        description is { Length: > VirtualMachine.DescriptionMaxLength }
            ? $"Description must be at most {VirtualMachine.DescriptionMaxLength} characters." : null;

    public static string? DiskSizeError(long? size) =>
        size is null ? "Disk size is required."
        : size < VmDisk.MinSizeMiB || size > VmDisk.MaxSizeMiB ? $"Disk size must be between {VmDisk.MinSizeMiB} and {VmDisk.MaxSizeMiB} MiB."
        : null;

    public static string? MacError(string? mac)
    {
        if (string.IsNullOrEmpty(mac)) return null; // generated
        if (!MacRegex().IsMatch(mac)) return "MAC address must look like 52:54:00:12:34:56.";
        var first = Convert.ToByte(mac[..2], 16);
        if ((first & 1) != 0) return "MAC address must be unicast (first octet even).";
        return null;
    }

    /// <summary>Validates a spec; <paramref name="images"/> checks image ids when given.</summary>
    public static Dictionary<string, string[]> Validate(VmSpec spec, IReadOnlyList<ImageInfo>? images)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string key, string? message)
        {
            if (message is null) return;
            if (!errors.TryGetValue(key, out var list)) errors[key] = list = [];
            list.Add(message);
        }

        Add("name", NameError(spec.Name));
        Add("description", DescriptionError(spec.Description));
        Add("memoryMiB", MemoryError(spec.MemoryMiB));

        if (spec.Disks is { } disks)
        {
            if (disks.Count > VirtualMachine.MaxDisks) Add("disks", $"At most {VirtualMachine.MaxDisks} disks.");
            for (var i = 0; i < disks.Count; i++)
            {
                var d = disks[i];
                if (d is null) { Add($"disks[{i}]", "Disk is required."); continue; }
                Add($"disks[{i}].sizeMiB", DiskSizeError(d.SizeMiB));
                if (d.Bus is not null && !DiskBuses.Contains(d.Bus)) Add($"disks[{i}].bus", $"Bus must be one of: {string.Join(", ", DiskBuses)}.");
                if (!string.IsNullOrEmpty(d.BackingImageId) && images is not null)
                {
                    var img = images.FirstOrDefault(x => x.Id == d.BackingImageId);
                    if (img is null) Add($"disks[{i}].backingImageId", "Unknown image.");
                    else if (img.Kind != ImageKinds.Disk) Add($"disks[{i}].backingImageId", "A backing image must be a disk image.");
                    else if (img.Problem is { } problem) Add($"disks[{i}].backingImageId", $"The image cannot be used: {problem}");
                    else if (img.VirtualSizeBytes is long vs && d.SizeMiB is long size && size * 1024 * 1024 < vs)
                        Add($"disks[{i}].sizeMiB", $"The disk must be at least as large as its base image ({(vs + (1 << 20) - 1) >> 20} MiB).");
                }
            }
        }

        if (!string.IsNullOrEmpty(spec.CdromImageId) && images is not null)
        {
            var img = images.FirstOrDefault(x => x.Id == spec.CdromImageId);
            if (img is null) Add("cdromImageId", "Unknown image.");
            else if (img.Kind != ImageKinds.Iso) Add("cdromImageId", "The CD-ROM image must be an ISO image.");
        }

        if (spec.BootOrder is { } order)
        {
            if (order.Count == 0) Add("bootOrder", "Boot order needs at least one device.");
            if (order.Distinct().Count() != order.Count) Add("bootOrder", "Boot order lists a device twice.");
            if (order.Any(d => !Enum.IsDefined(d))) Add("bootOrder", "Unknown boot device.");
        }

        if (spec.Nic is { } nic)
        {
            if (nic.Model is not null && !NicModels.Contains(nic.Model)) Add("nic.model", $"NIC model must be one of: {string.Join(", ", NicModels)}.");
            Add("nic.macAddress", MacError(nic.MacAddress));
            if (nic.Network is not null && NameError(nic.Network) is { } ne) Add("nic.network", ne.Replace("Name", "Network name"));
        }

        if (spec.CloudInit is { } ci)
        {
            Add("cloudInit.hostname", HostnameError(ci.Hostname));
            if (ci.User is "root") Add("cloudInit.user", "Choose a user other than root (it gets sudo rights).");
            else if (!string.IsNullOrEmpty(ci.User) && !CloudInit.NoCloudSeed.IsValidUserName(ci.User))
                Add("cloudInit.user", "User name must be 1-32 characters: lower-case letters, digits, '-' and '_', starting with a letter.");
            if (string.IsNullOrEmpty(ci.User) && (ci.Password is { Length: > 0 } || ci.SshAuthorizedKeys is { Count: > 0 }))
                Add("cloudInit.user", "A password or SSH key needs a user name.");
            if (ci.Password is { } pw && (pw.Length > 256 || pw.Contains('\n') || pw.Contains('\0')))
                Add("cloudInit.password", "The password must be at most 256 characters on one line.");
            if (ci.SshAuthorizedKeys is { } keys)
            {
                if (keys.Count > VmCloudInit.MaxSshKeys) Add("cloudInit.sshAuthorizedKeys", $"At most {VmCloudInit.MaxSshKeys} keys.");
                for (var i = 0; i < keys.Count; i++)
                    if (SshKeyError(keys[i]) is { } ke) Add($"cloudInit.sshAuthorizedKeys[{i}]", ke);
            }
        }

        return errors.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
    }

    /// <summary>A guest hostname made from a VM name: '_' and '.' become '-', no '-' at either end.</summary>
    public static string HostnameFrom(string name)
    {
        var h = name.Replace('_', '-').Replace('.', '-').Trim('-');
        return h.Length > 63 ? h[..63].TrimEnd('-') : h;
    }

    /// <summary>Error for a guest hostname (one DNS label), or null when valid or empty (the VM's name is used).</summary>
    public static string? HostnameError(string? hostname) =>
        string.IsNullOrEmpty(hostname) || CloudInit.NoCloudSeed.IsValidHostname(hostname) ? null
        : "Hostname must be one DNS label: letters, digits and '-', at most 63 characters, not starting or ending with '-'.";

    public static string? SshKeyError(string? key) =>
        key is null || key.Length > VmCloudInit.SshKeyMaxLength || !CloudInit.NoCloudSeed.IsValidSshKey(key.Trim())
            ? "Not an OpenSSH public key (one line: type, base64 key, optional comment)." : null;
}

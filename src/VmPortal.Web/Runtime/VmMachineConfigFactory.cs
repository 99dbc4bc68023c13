using VmPortal.Core.CloudInit;
using VmPortal.Core.Disks;
using VmPortal.Core.Images;
using VmPortal.Core.Vms;
using VmPortal.Data.Entities;
using VmPortal.Emulator;
using EmuBoot = VmPortal.Emulator.BootDevice;

namespace VmPortal.Web.Runtime;

/// <summary>
/// Builds the emulator's <see cref="MachineConfig"/> from a VM definition: name, memory, the CD-ROM from its image id
/// (resolved through <see cref="ImageCatalog"/>, like <c>/api/images</c>), the hard disks (the VM's qcow2 files in
/// the <see cref="VmDiskStore"/>, IDE primary master/slave, then secondary slave), the cloud-init seed ISO (made
/// from the definition at every start, as a second CD-ROM at secondary slave) and the boot order.
/// </summary>
public sealed class VmMachineConfigFactory(ImageCatalog images, VmDiskStore disks, Core.Networks.NetworkHost networks)
{
    /// <summary>The config, or a user-facing reason why the VM cannot be built.</summary>
    public (MachineConfig? Config, string? Problem) Build(VirtualMachine vm)
    {
        string? cdrom = null;
        if (!string.IsNullOrEmpty(vm.CdromImageId))
        {
            var image = images.Find(vm.CdromImageId);
            if (image is null) return (null, $"The CD-ROM image '{vm.CdromImageId}' no longer exists.");
            cdrom = image.Path;
        }
        var order = new List<EmuBoot>();
        foreach (var d in vm.BootOrder)
        {
            EmuBoot? e = d switch
            {
                VmPortal.Data.Entities.BootDevice.Cdrom => EmuBoot.CdRom,
                VmPortal.Data.Entities.BootDevice.Disk => EmuBoot.HardDisk,
                VmPortal.Data.Entities.BootDevice.Floppy => EmuBoot.Floppy,
                VmPortal.Data.Entities.BootDevice.Network => EmuBoot.Network,
                _ => null,
            };
            if (e is { } b && !order.Contains(b)) order.Add(b);
        }
        if (order.Count == 0) order.AddRange([EmuBoot.CdRom, EmuBoot.HardDisk]);

        var hardDisks = new List<DiskConfig>();
        for (var i = 0; i < vm.Disks.Count; i++)
        {
            if (disks.Problem(vm.Id, vm.Disks[i], i) is { } problem) return (null, $"Cannot start '{vm.Name}': {problem}.");
            hardDisks.Add(new DiskConfig(disks.PathOf(vm.Id, vm.Disks[i])));
        }
        string? seed = null;
        if (vm.CloudInit is { } ci)
        {
            if (hardDisks.Count > 2)
                return (null, $"Cannot start '{vm.Name}': the first-boot seed needs the IDE slot of a third disk; remove one disk or the first-boot settings.");
            seed = disks.SeedPath(vm.Id);
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(seed)!);
                var hostname = string.IsNullOrEmpty(ci.Hostname) ? VmValidator.HostnameFrom(vm.Name) : ci.Hostname;
                NoCloudSeed.WriteIso(new NoCloudConfig(
                    InstanceId: vm.Id.ToString(),
                    Hostname: hostname,
                    User: string.IsNullOrEmpty(ci.User) ? null : ci.User,
                    PasswordHash: string.IsNullOrEmpty(ci.PasswordHash) ? null : ci.PasswordHash,
                    SshAuthorizedKeys: ci.SshAuthorizedKeys), seed);
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
                return (null, $"Cannot start '{vm.Name}': the first-boot seed could not be written ({e.Message}).");
            }
        }
        // the NIC: an Intel e1000 on its network's switch; a disabled NIC ("cable unplugged") is on the switch with its
        // link down, so the portal can plug it in while the VM runs (POST /api/vms/{id}/nic/link)
        NicConfig? nic = null;
        if (!string.IsNullOrEmpty(vm.Nic.MacAddress))
        {
            if (!NicConfig.Models.Contains(vm.Nic.Model))
                return (null, $"Cannot start '{vm.Name}': the NIC model '{vm.Nic.Model}' does not exist (models: {string.Join(", ", NicConfig.Models)}).");
            VmPortal.Emulator.Io.IFramePort? port;
            try
            {
                port = networks.ConnectVm(vm.Id, vm.Nic.Network, vm.Name, vm.Nic.MacAddress, Core.Networks.PortForwardRules.ToNetwork(vm.Nic.PortForwards),
                    linkUp: vm.Nic.Enabled);
            }
            catch (VmPortal.Network.PortForwardException e)
            {
                return (null, $"Cannot start '{vm.Name}': port forward: {e.Message}.");
            }
            if (port is null) return (null, $"Cannot start '{vm.Name}': the network '{vm.Nic.Network}' does not exist (networks: {string.Join(", ", networks.Names)}).");
            nic = new NicConfig { Model = vm.Nic.Model, MacAddress = vm.Nic.MacAddress, Port = port, LinkUp = vm.Nic.Enabled };
        }
        var config = new MachineConfig
        {
            Name = vm.Name,
            MemoryMiB = vm.MemoryMiB,
            CdRomImage = cdrom,
            HardDisks = hardDisks,
            SecondCdRomImage = seed,
            Nic = nic,
            BootOrder = order,
            StrictBootOrder = true, // the VM's boot order is exactly what it tries (issue 15 #21)
        };
        var problems = config.Validate();
        if (problems.Count > 0) networks.DisconnectVm(vm.Id);
        return problems.Count > 0 ? (null, $"Cannot start '{vm.Name}': {string.Join("; ", problems)}.") : (config, null);
    }
}

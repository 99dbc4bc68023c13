using VmPortal.Core.Images;
using VmPortal.Data.Entities;
using VmPortal.Emulator;
using EmuBoot = VmPortal.Emulator.BootDevice;

namespace VmPortal.Web.Runtime;

/// <summary>
/// Builds the emulator's <see cref="MachineConfig"/> from a VM definition: name, memory, the CD-ROM from its image id
/// (resolved through <see cref="ImageCatalog"/>, like <c>/api/images</c>) and the boot order.
/// Hard disks are not attached yet: there is no disk image format/overlay store in the portal (a later slice).
/// </summary>
public sealed class VmMachineConfigFactory(ImageCatalog images)
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
                _ => null, // network boot: no PXE ROM in the emulator yet
            };
            if (e is { } b && !order.Contains(b)) order.Add(b);
        }
        if (order.Count == 0) order.AddRange([EmuBoot.CdRom, EmuBoot.HardDisk]);
        var config = new MachineConfig
        {
            Name = vm.Name,
            MemoryMiB = vm.MemoryMiB,
            CdRomImage = cdrom,
            BootOrder = order,
        };
        var problems = config.Validate();
        return problems.Count > 0 ? (null, $"Cannot start '{vm.Name}': {string.Join("; ", problems)}.") : (config, null);
    }
}

using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Boot;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Network.Tests;

/// <summary>
/// PXE: SeaBIOS runs the e1000's option ROM (Debian's ipxe-qemu pxe-e1000.rom in the card's ROM BAR), the boot order
/// starts with Network, and iPXE drives the card to a DHCP lease from the network's services.
/// </summary>
public class PxeGuestTests
{
    [BootFact(TestGuests.CpuidFxsr, "iPXE", GuestImages.IpxeIso)]
    public async Task ANetworkBootShowsIpxeGettingALease()
    {
        Assert.True(File.Exists(NicConfig.DefaultOptionRomPath), $"{NicConfig.DefaultOptionRomPath} is missing: scripts/install-deps.sh installs ipxe-qemu");
        var sw = new VirtualSwitch("pxe");
        using var services = new UserNetwork(sw);
        var config = BootHarness.Config(memoryMiB: 64);
        using var h = new BootHarness(new MachineConfig
        {
            Name = "pxe",
            MemoryMiB = config.MemoryMiB,
            OnTripleFault = TripleFaultAction.PowerOff,
            DebugConsolePorts = config.DebugConsolePorts,
            BootOrder = new[] { BootDevice.Network, BootDevice.HardDisk },
            Nic = new NicConfig { MacAddress = "52:54:00:00:0b:01", Port = sw.Connect("vm") },
        });
        await h.Start();
        await h.WaitFor("iPXE", serial: false);
        await h.WaitFor(@"net0: 10\.0\.2\.15/255\.255\.255\.0 gw 10\.0\.2\.2", serial: false);
        var lease = Assert.Single(services.Leases);
        Assert.Equal("52:54:00:00:0b:01", lease.MacAddress);
        Assert.True(lease.Bound);
    }
}

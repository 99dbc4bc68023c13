using VmPortal.Emulator;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Boot;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Network.Tests;

/// <summary>
/// PXE: SeaBIOS runs the e1000's option ROM (Debian's ipxe-qemu pxe-e1000.rom in the card's ROM BAR), the boot order
/// starts with Network, iPXE drives the card to a DHCP lease, fetches the boot file (an iPXE script) over TFTP from
/// the gateway, and the script loads the rescue kernel and initrd over TFTP and boots it.
/// </summary>
public class PxeGuestTests
{
    [BootFact(TestGuests.CpuidFxsr | TestGuests.CpuidCmov, "iPXE and Linux", GuestImages.RescueKernel, GuestImages.RescueInitrd)]
    public async Task ANetworkBootGetsALeaseAndBootsTheKernelServedOverTftp()
    {
        Assert.True(File.Exists(NicConfig.DefaultOptionRomPath), $"{NicConfig.DefaultOptionRomPath} is missing: scripts/install-deps.sh installs ipxe-qemu");
        var root = Directory.CreateTempSubdirectory("pxe");
        try
        {
            File.CreateSymbolicLink(Path.Combine(root.FullName, "vmlinuz"), GuestImages.PathOf(GuestImages.RescueKernel));
            File.CreateSymbolicLink(Path.Combine(root.FullName, "initrd.gz"), GuestImages.PathOf(GuestImages.RescueInitrd));
            File.WriteAllText(Path.Combine(root.FullName, "boot.ipxe"),
                "#!ipxe\necho VMPORTAL-PXE-SCRIPT\nkernel tftp://10.0.2.2/vmlinuz console=ttyS0,115200\ninitrd tftp://10.0.2.2/initrd.gz\nboot\n");
            var sw = new VirtualSwitch("pxe");
            using var services = new UserNetwork(sw, new NetworkOptions { TftpRoot = root.FullName, BootFile = "boot.ipxe" });
            var config = BootHarness.Config(memoryMiB: 128);
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
            await h.WaitFor("VMPORTAL-PXE-SCRIPT", serial: false);
            // The kernel fetched over TFTP runs: its log on COM1, then the rescue system's /init.
            await h.WaitFor(@"Linux version \d", screen: false);
            await h.WaitFor(GuestImages.ReadyLine, screen: false);
        }
        finally { root.Delete(true); }
    }
}

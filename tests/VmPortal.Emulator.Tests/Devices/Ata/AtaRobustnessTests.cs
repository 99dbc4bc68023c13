using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Ata;

public class AtaRobustnessTests
{
    [Fact]
    public void GarbageCommandsAndPacketsNeverThrow()
    {
        var rig = new AtaTestRig();
        var disk = new MemoryDiskImage(256 * 512);
        rig.Ide.Primary.Attach(0, new AtaHardDisk(disk));
        rig.Ide.Primary.Attach(1, new AtapiCdrom(new MemoryDiskImage(new byte[64 * 2048], readOnly: true)));
        rig.Ide.WriteConfig(0x20, 4, 0xC000);
        rig.Ide.WriteConfig(0x04, 2, 0x05);
        var rnd = new Random(99);
        for (int round = 0; round < 3000; round++)
        {
            int op = rnd.Next(10);
            ushort port = (ushort)(op < 6 ? 0x1F0 + rnd.Next(8) : op < 8 ? 0x3F6 : 0xC000 + rnd.Next(16));
            if (rnd.Next(3) == 0) rig.Bus.Read(port, 1 << rnd.Next(3));
            else rig.Bus.Write(port, 1 << rnd.Next(3), (uint)rnd.Next());
            if (rnd.Next(50) == 0) rig.Memory.Write32((uint)rnd.Next(0x3F_0000), (uint)rnd.Next());
        }
        // Still works afterwards.
        rig.Bus.Out8(0x3F6, 0x04);
        rig.Bus.Out8(0x3F6, 0x00);
        rig.Bus.Out8(0xC000, 0);
        rig.Select(0);
        rig.Lba28(5, 1);
        rig.Command(AtaProtocol.CmdReadSectors);
        Assert.Equal(disk.Data.Slice(5 * 512, 512).ToArray(), rig.ReadBlock(512));
    }
}

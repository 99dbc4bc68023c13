using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Ata;

public class AtaStateTests
{
    [Fact]
    public void MidTransferStateMovesToAFreshController()
    {
        var data = new byte[64 * 512];
        new Random(5).NextBytes(data);
        var image = new MemoryDiskImage(data, readOnly: false);
        var iso = new MemoryDiskImage(new byte[16 * 2048], readOnly: true);
        var a = new AtaTestRig();
        var diskA = new AtaHardDisk(image);
        var cdA = new AtapiCdrom(iso);
        a.Ide.Primary.Attach(0, diskA);
        a.Ide.Secondary.Attach(0, cdA);
        a.Bus.Out8(AtaTestRig.Base + 2, 4);
        a.Command(AtaProtocol.CmdSetMultipleMode);
        a.Lba28(10, 3);
        a.Command(AtaProtocol.CmdReadSectors);
        var first = a.ReadBlock(512);
        var half = a.ReadBlock(256); // stop in the middle of the second sector

        var b = new AtaTestRig();
        var diskB = new AtaHardDisk(image);
        var cdB = new AtapiCdrom(iso);
        b.Ide.Primary.Attach(0, diskB);
        b.Ide.Secondary.Attach(0, cdB);
        b.Ide.Primary.LoadState(a.Ide.Primary.SaveState());
        b.Ide.PrimaryBusMaster.LoadState(a.Ide.PrimaryBusMaster.SaveState());
        diskB.LoadState(diskA.SaveState());
        cdB.LoadState(cdA.SaveState());

        var rest = b.ReadBlock(256).Concat(b.ReadBlock(512)).ToArray();
        Assert.Equal(data.AsSpan(10 * 512, 512).ToArray(), first);
        Assert.Equal(data.AsSpan(11 * 512, 1024).ToArray(), half.Concat(rest).ToArray());
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, b.Status);
        var id = b.Identify();
        Assert.Equal(0x104, id[59]); // multiple mode survived
        Assert.Throws<InvalidDataException>(() => diskB.LoadState(diskA.SaveState() with { Version = 2 }));
    }
}

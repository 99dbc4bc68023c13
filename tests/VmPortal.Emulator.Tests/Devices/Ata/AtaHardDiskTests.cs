using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Ata;

public class AtaHardDiskTests
{
    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static (AtaTestRig Rig, MemoryDiskImage Image) DiskRig(int sectors = 20160)
    {
        var rig = new AtaTestRig();
        var img = new MemoryDiskImage(Pattern(sectors * 512, 42), readOnly: false);
        rig.Ide.Primary.Attach(0, new AtaHardDisk(img, serial: "SN123"));
        return (rig, img);
    }

    [Fact]
    public void IdentifyDescribesTheDiskAndRaisesIrq14()
    {
        var (rig, _) = DiskRig(20160); // 20 cylinders of 16 heads × 63 sectors
        rig.Select(0);
        rig.Bus.Out8(AtaTestRig.Base + 7, AtaProtocol.CmdIdentify);
        Assert.True(rig.Irqs.Level[14]);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusDrq, rig.Status);
        Assert.False(rig.Irqs.Level[14]); // reading status acknowledges
        var raw = rig.ReadBlock(512);
        var w = new ushort[256];
        for (int i = 0; i < 256; i++) w[i] = BitConverter.ToUInt16(raw, 2 * i);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(0x0040, w[0]);
        Assert.Equal(20, w[1]);
        Assert.Equal(16, w[3]);
        Assert.Equal(63, w[6]);
        Assert.Equal("SN123", AtaTestRig.AtaString(w, 10, 10));
        Assert.Equal("VmPortal HARDDISK", AtaTestRig.AtaString(w, 27, 20));
        Assert.Equal(0x0200, w[49] & 0x0200); // LBA
        Assert.Equal(7, w[53] & 7);
        Assert.Equal(20160, w[60] | w[61] << 16);
        Assert.Equal(0x0400, w[83] & 0x0400); // 48-bit
        Assert.Equal(0x0400, w[86] & 0x0400);
        Assert.Equal(20160L, w[100] | (long)w[101] << 16 | (long)w[102] << 32 | (long)w[103] << 48);
    }

    [Fact]
    public void ReadSectorsTransfersOneBlockPerInterrupt()
    {
        var (rig, img) = DiskRig();
        rig.Lba28(1000, 3);
        rig.Command(AtaProtocol.CmdReadSectors);
        for (int s = 0; s < 3; s++)
        {
            Assert.True(rig.Irqs.Level[14]);
            Assert.Equal(AtaProtocol.StatusDrq, rig.Status & AtaProtocol.StatusDrq);
            var data = rig.ReadBlock(512, use32: s == 1); // 32-bit PIO works too
            Assert.Equal(img.Data.Slice((1000 + s) * 512, 512).ToArray(), data);
        }
        Assert.Equal(3, rig.Irqs.Raised[14]);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(1002, rig.Bus.In8(AtaTestRig.Base + 3) | rig.Bus.In8(AtaTestRig.Base + 4) << 8);
    }

    [Fact]
    public void ChsAddressingUsesTheCurrentGeometry()
    {
        var (rig, img) = DiskRig();
        // cylinder 2, head 3, sector 5 with 16 heads × 63 sectors → LBA (2×16+3)×63+4 = 2209
        rig.Bus.Out8(AtaTestRig.Base + 2, 1);
        rig.Bus.Out8(AtaTestRig.Base + 3, 5);
        rig.Bus.Out8(AtaTestRig.Base + 4, 2);
        rig.Bus.Out8(AtaTestRig.Base + 5, 0);
        rig.Bus.Out8(AtaTestRig.Base + 6, 0xA3);
        rig.Command(AtaProtocol.CmdReadSectors);
        Assert.Equal(img.Data.Slice(2209 * 512, 512).ToArray(), rig.ReadBlock(512));
    }

    [Fact]
    public void WriteMultipleNeedsMultipleModeAndWritesTheImage()
    {
        var (rig, img) = DiskRig();
        Assert.Equal(0x110, rig.Identify()[59]); // on at 16 sectors from power-on, like QEMU (libata: "multi 16")
        rig.Bus.Out8(AtaTestRig.Base + 2, 0);
        rig.Command(AtaProtocol.CmdSetMultipleMode); // count 0 turns multiple mode off
        rig.Lba28(10, 4);
        rig.Command(AtaProtocol.CmdWriteMultiple);
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr); // multiple mode is off
        Assert.Equal(AtaProtocol.ErrorAbrt, rig.Bus.In8(AtaTestRig.Base + 1));

        rig.Bus.Out8(AtaTestRig.Base + 2, 2);
        rig.Command(AtaProtocol.CmdSetMultipleMode);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        var data = Pattern(4 * 512, 7);
        int irqsBefore = rig.Irqs.Raised[14];
        rig.Lba28(10, 4);
        rig.Command(AtaProtocol.CmdWriteMultiple);
        Assert.Equal(irqsBefore, rig.Irqs.Raised[14]); // no interrupt before the first block
        Assert.Equal(AtaProtocol.StatusDrq, rig.AltStatus & AtaProtocol.StatusDrq);
        rig.WriteBlock(data.AsSpan(0, 1024));
        Assert.Equal(irqsBefore + 1, rig.Irqs.Raised[14]);
        rig.Status.ToString();
        rig.WriteBlock(data.AsSpan(1024, 1024));
        Assert.Equal(irqsBefore + 2, rig.Irqs.Raised[14]);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(data, img.Data.Slice(10 * 512, 4 * 512).ToArray());
        var id = rig.Identify();
        Assert.Equal(0x102, id[59]);
    }

    [Fact]
    public void OutOfRangeAndUnknownCommandsReportErrors()
    {
        var (rig, _) = DiskRig(1000);
        rig.Lba28(999, 2);
        rig.Command(AtaProtocol.CmdReadSectors);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusErr, rig.Status);
        Assert.Equal(AtaProtocol.ErrorIdnf, rig.Bus.In8(AtaTestRig.Base + 1));
        rig.Command(0xB0); // SMART: not supported
        Assert.Equal(AtaProtocol.ErrorAbrt, rig.Bus.In8(AtaTestRig.Base + 1));
        rig.Command(AtaProtocol.CmdIdentifyPacket);
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr);
    }

    [Fact]
    public void ReadOnlyImageRejectsWrites()
    {
        var rig = new AtaTestRig();
        rig.Ide.Primary.Attach(0, new AtaHardDisk(new MemoryDiskImage(new byte[64 * 512], readOnly: true)));
        rig.Lba28(0, 1);
        rig.Command(AtaProtocol.CmdWriteSectors);
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & (AtaProtocol.StatusErr | AtaProtocol.StatusDrq));
    }

    [Fact]
    public void Lba48AddressesBeyond128GiB()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vmp-lba48-{Guid.NewGuid():N}.img");
        try
        {
            const long sectors = (1L << 28) + 4096; // just over the 28-bit limit (sparse file)
            using var img = RawDiskImage.Create(path, sectors * 512);
            var sector = Pattern(512, 9);
            img.Write(sectors - 2, sector);
            var rig = new AtaTestRig();
            rig.Ide.Primary.Attach(0, new AtaHardDisk(img));
            rig.Select(0);
            var id = rig.Identify();
            Assert.Equal(0x0FFF_FFFF, id[60] | id[61] << 16);
            Assert.Equal(sectors, id[100] | (long)id[101] << 16 | (long)id[102] << 32);

            rig.Lba48(sectors - 2, 1);
            rig.Command(AtaProtocol.CmdReadSectorsExt);
            Assert.Equal(sector, rig.ReadBlock(512));
            // HOB reads back the high-order bytes of the last sector's address.
            rig.Bus.Out8(AtaTestRig.Control, AtaProtocol.ControlHob);
            Assert.Equal((byte)((sectors - 2) >> 24), rig.Bus.In8(AtaTestRig.Base + 3));
            rig.Bus.Out8(AtaTestRig.Control, 0);

            rig.Command(AtaProtocol.CmdReadNativeMaxExt);
            long max = rig.Bus.In8(AtaTestRig.Base + 3) | (long)rig.Bus.In8(AtaTestRig.Base + 4) << 8 | (long)rig.Bus.In8(AtaTestRig.Base + 5) << 16;
            rig.Bus.Out8(AtaTestRig.Control, AtaProtocol.ControlHob);
            max |= (long)rig.Bus.In8(AtaTestRig.Base + 3) << 24 | (long)rig.Bus.In8(AtaTestRig.Base + 4) << 32;
            Assert.Equal(sectors - 1, max);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void SoftResetLeavesSignaturesAndNienMasksTheInterrupt()
    {
        var rig = new AtaTestRig();
        rig.Ide.Primary.Attach(0, new AtaHardDisk(new MemoryDiskImage(64 * 512)));
        rig.Ide.Primary.Attach(1, new AtapiCdrom(new MemoryDiskImage(16 * 2048)));
        rig.Bus.Out8(AtaTestRig.Control, AtaProtocol.ControlSrst | AtaProtocol.ControlNien);
        Assert.Equal(AtaProtocol.StatusBsy, rig.AltStatus & AtaProtocol.StatusBsy);
        rig.Bus.Out8(AtaTestRig.Control, AtaProtocol.ControlNien);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.AltStatus);
        Assert.Equal(AtaProtocol.DiagnosticPassed, rig.Bus.In8(AtaTestRig.Base + 1));
        Assert.Equal((1, 1, 0, 0), (rig.Bus.In8(AtaTestRig.Base + 2), rig.Bus.In8(AtaTestRig.Base + 3), rig.Bus.In8(AtaTestRig.Base + 4), rig.Bus.In8(AtaTestRig.Base + 5)));
        rig.Select(1, 0);
        Assert.Equal(0, rig.AltStatus);
        Assert.Equal((0x14, 0xEB), (rig.Bus.In8(AtaTestRig.Base + 4), rig.Bus.In8(AtaTestRig.Base + 5)));

        // With nIEN set a command completes without asserting IRQ 14; clearing nIEN then raises the pending interrupt.
        rig.Select(0);
        rig.Command(AtaProtocol.CmdFlushCache);
        Assert.False(rig.Irqs.Level[14]);
        rig.Bus.Out8(AtaTestRig.Control, 0);
        Assert.True(rig.Irqs.Level[14]);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.False(rig.Irqs.Level[14]);

        // EXECUTE DEVICE DIAGNOSTIC: signatures again, device 0 selected, interrupt.
        rig.Select(1, 0);
        rig.Command(AtaProtocol.CmdExecuteDiagnostic);
        Assert.True(rig.Irqs.Level[14]);
        Assert.Equal(0, rig.Bus.In8(AtaTestRig.Base + 4));
        rig.Select(1, 0);
        Assert.Equal(0xEB, rig.Bus.In8(AtaTestRig.Base + 5));
    }

    [Fact]
    public void AbsentSlaveReadsStatusZeroButKeepsRegisterValues()
    {
        var (rig, _) = DiskRig();
        rig.Select(1, 0);
        rig.Bus.Out8(AtaTestRig.Base + 2, 0x55);
        rig.Bus.Out8(AtaTestRig.Base + 3, 0xAA);
        Assert.Equal(0x55, rig.Bus.In8(AtaTestRig.Base + 2));
        Assert.Equal(0xAA, rig.Bus.In8(AtaTestRig.Base + 3));
        Assert.Equal(0, rig.Status);
        rig.Command(AtaProtocol.CmdIdentify); // ignored
        Assert.Equal(0, rig.Status);
        Assert.False(rig.Irqs.Level[14]);
        // The secondary channel has no devices at all.
        Assert.Equal(0, rig.Bus.In8(0x177));
    }

    [Fact]
    public void BusMasterDmaReadsAndWritesThroughPrdTables()
    {
        var (rig, img) = DiskRig();
        rig.Ide.WriteConfig(0x20, 4, 0xC000); // BAR4
        rig.Ide.WriteConfig(0x04, 2, 0x01);   // I/O only: bus mastering still off
        const ushort bm = 0xC000;
        // PRD table at 0x1000: 1 KiB to 0x20000, then 1 KiB to 0x30000 (end of table).
        rig.Memory.Write32(0x1000, 0x20000); rig.Memory.Write32(0x1004, 1024);
        rig.Memory.Write32(0x1008, 0x30000); rig.Memory.Write32(0x100C, 0x8000_0000 | 1024);
        rig.Bus.Out32(bm + 4, 0x1000);
        rig.Lba28(100, 4);
        rig.Command(AtaProtocol.CmdReadDma);
        Assert.False(rig.Irqs.Level[14]); // waits for the engine
        rig.Bus.Out8(bm, IdeBusMaster.CommandStart | IdeBusMaster.CommandToMemory);
        rig.Ide.FinishDma();
        Assert.False(rig.Irqs.Level[14]); // the function may not master the bus yet
        rig.Ide.WriteConfig(0x04, 2, 0x05);
        // the data has moved, but the end is reported only when the machine says the guest ran on (not inside its
        // own port write): still active, no interrupt
        Assert.False(rig.Irqs.Level[14]);
        Assert.Equal(IdeBusMaster.StatusActive, rig.Bus.In8(bm + 2) & (IdeBusMaster.StatusInterrupt | IdeBusMaster.StatusActive));
        Assert.True(rig.Ide.DmaFinishPending);
        rig.Ide.FinishDma();
        Assert.False(rig.Ide.DmaFinishPending);
        Assert.True(rig.Irqs.Level[14]);
        Assert.Equal(IdeBusMaster.StatusInterrupt, rig.Bus.In8(bm + 2) & (IdeBusMaster.StatusInterrupt | IdeBusMaster.StatusActive | IdeBusMaster.StatusError));
        var got = new byte[2048];
        rig.Memory.ReadBytes(0x20000, got.AsSpan(0, 1024));
        rig.Memory.ReadBytes(0x30000, got.AsSpan(1024, 1024));
        Assert.Equal(img.Data.Slice(100 * 512, 2048).ToArray(), got);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        rig.Bus.Out8(bm, 0);
        rig.Bus.Out8(bm + 2, IdeBusMaster.StatusInterrupt);
        Assert.Equal(0, rig.Bus.In8(bm + 2) & IdeBusMaster.StatusInterrupt);

        // WRITE DMA: engine started first, then the command.
        var data = Pattern(2048, 11);
        rig.Memory.WriteBytes(0x20000, data.AsSpan(0, 1024));
        rig.Memory.WriteBytes(0x30000, data.AsSpan(1024));
        rig.Bus.Out8(bm, IdeBusMaster.CommandStart);
        rig.Lba28(200, 4);
        rig.Command(AtaProtocol.CmdWriteDma);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        Assert.Equal(data, img.Data.Slice(200 * 512, 2048).ToArray());
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
    }
}

using System.Buffers.Binary;
using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Ata;

public class AtapiCdromTests
{
    private const int Blocks = 40;

    private static (AtaTestRig Rig, MemoryDiskImage Iso, AtapiCdrom Cd) CdRig(bool media = true)
    {
        var rig = new AtaTestRig();
        var data = new byte[Blocks * 2048];
        for (int b = 0; b < Blocks; b++) data.AsSpan(b * 2048, 2048).Fill((byte)(b * 3 + 1));
        var iso = new MemoryDiskImage(data, readOnly: true);
        var cd = new AtapiCdrom(media ? iso : null);
        rig.Ide.Secondary.Attach(0, cd);
        // The CD is on the secondary channel: retarget the rig's port helpers by using a second rig view.
        return (rig, iso, cd);
    }

    private static AtaTestRig Primary(AtapiCdrom cd, out MemoryDiskImage iso)
    {
        var rig = new AtaTestRig();
        var data = new byte[Blocks * 2048];
        for (int b = 0; b < Blocks; b++) data.AsSpan(b * 2048, 2048).Fill((byte)(b * 3 + 1));
        iso = new MemoryDiskImage(data, readOnly: true);
        cd.InsertMedia(iso);
        rig.Ide.Primary.Attach(0, cd);
        return rig;
    }

    private static byte[] Cdb(params byte[] b) { var c = new byte[12]; b.CopyTo(c, 0); return c; }

    [Fact]
    public void IdentifyDeviceAbortsWithThePacketSignatureAndIdentifyPacketWorks()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out _);
        rig.Select(0, 0);
        rig.Command(AtaProtocol.CmdIdentify);
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr);
        Assert.Equal(AtaProtocol.ErrorAbrt, rig.Bus.In8(AtaTestRig.Base + 1));
        Assert.Equal((0x14, 0xEB), (rig.Bus.In8(AtaTestRig.Base + 4), rig.Bus.In8(AtaTestRig.Base + 5)));
        var w = rig.Identify(AtaProtocol.CmdIdentifyPacket);
        Assert.Equal(0x85C0, w[0]);
        Assert.Equal(0x05, (w[0] >> 8) & 0x1F); // CD-ROM device type
        Assert.Equal("VmPortal DVD-ROM", AtaTestRig.AtaString(w, 27, 20));
        Assert.Equal(0x0200, w[49] & 0x0200);
    }

    [Fact]
    public void MediaChangeThenTestUnitReadyAndRequestSense()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out _); // InsertMedia → unit attention once
        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady));
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr);
        Assert.Equal(AtapiCdrom.SenseUnitAttention << 4, rig.Bus.In8(AtaTestRig.Base + 1));
        Assert.Equal(AtaProtocol.ReasonIo | AtaProtocol.ReasonCoD, rig.Bus.In8(AtaTestRig.Base + 2));
        rig.Packet(Cdb(AtapiCdrom.ScsiRequestSense, 0, 0, 0, 18));
        var sense = rig.ReadPacketData();
        Assert.Equal(18, sense.Length);
        Assert.Equal(0x70, sense[0]);
        Assert.Equal(AtapiCdrom.SenseUnitAttention, sense[2]);
        Assert.Equal(AtapiCdrom.AscMediumChanged, sense[12]);
        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady));
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(AtaProtocol.ReasonIo | AtaProtocol.ReasonCoD, rig.Bus.In8(AtaTestRig.Base + 2));
    }

    [Fact]
    public void NoMediaIsNotReadyAndUnknownOpcodesAreIllegalRequests()
    {
        var (rig, _, _) = CdRig(media: false);
        const ushort b = 0x170;
        rig.Bus.Out8(b + 6, 0xA0);
        // Drive the secondary channel directly.
        void Packet(byte[] cdb)
        {
            rig.Bus.Out8(b + 4, 0xFE); rig.Bus.Out8(b + 5, 0xFF);
            rig.Bus.Out8(b + 7, AtaProtocol.CmdPacket);
            for (int i = 0; i < 12; i += 2) rig.Bus.Out16(b, (ushort)(cdb[i] | cdb[i + 1] << 8));
        }
        Packet(Cdb(AtapiCdrom.ScsiReadCapacity));
        Assert.True(rig.Irqs.Level[15]);
        Assert.Equal(AtaProtocol.StatusErr, rig.Bus.In8(b + 7) & AtaProtocol.StatusErr);
        Assert.Equal(AtapiCdrom.SenseNotReady << 4, rig.Bus.In8(b + 1));
        Packet(Cdb(AtapiCdrom.ScsiRequestSense, 0, 0, 0, 18));
        Assert.Equal(AtaProtocol.StatusDrq, rig.Bus.In8(b + 7) & AtaProtocol.StatusDrq);
        var sense = new byte[18];
        for (int i = 0; i < 18; i += 2) BinaryPrimitives.WriteUInt16LittleEndian(sense.AsSpan(i), rig.Bus.In16(b));
        Assert.Equal((AtapiCdrom.SenseNotReady, AtapiCdrom.AscMediumNotPresent), (sense[2], sense[12]));
        Packet(Cdb(0xD7));
        Assert.Equal(AtapiCdrom.SenseIllegalRequest << 4, rig.Bus.In8(b + 1));
    }

    [Fact]
    public void Read10HonoursTheByteCountLimit()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out var iso);
        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady)); // consume the unit attention
        rig.Status.ToString();
        int irqs = rig.Irqs.Raised[14];
        // READ(10) LBA 5, 3 blocks, with a byte count limit of 2048: three DRQ chunks of 2048 bytes.
        rig.Packet(Cdb(AtapiCdrom.ScsiRead10, 0, 0, 0, 0, 5, 0, 0, 3), byteCountLimit: 2048);
        var chunks = new List<int>();
        var data = rig.ReadPacketData(chunks);
        Assert.Equal(new[] { 2048, 2048, 2048 }, chunks);
        Assert.Equal(iso.Data.Slice(5 * 2048, 3 * 2048).ToArray(), data);
        Assert.Equal(irqs + 4, rig.Irqs.Raised[14]); // one per chunk + completion
        Assert.Equal(AtaProtocol.ReasonIo | AtaProtocol.ReasonCoD, rig.Bus.In8(AtaTestRig.Base + 2));
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.AltStatus);

        // An odd limit of 1001 is rounded down to 1000; the data still arrives whole.
        rig.Packet(Cdb(AtapiCdrom.ScsiRead10, 0, 0, 0, 0, 7, 0, 0, 1), byteCountLimit: 1001);
        chunks.Clear();
        data = rig.ReadPacketData(chunks);
        Assert.Equal(new[] { 1000, 1000, 48 }, chunks);
        Assert.Equal(iso.Data.Slice(7 * 2048, 2048).ToArray(), data);

        // READ(12) past the end: ILLEGAL REQUEST / LBA out of range.
        rig.Packet(Cdb(AtapiCdrom.ScsiRead12, 0, 0, 0, 0, Blocks - 1, 0, 0, 0, 2));
        Assert.Equal(AtapiCdrom.SenseIllegalRequest << 4, rig.Bus.In8(AtaTestRig.Base + 1));
    }

    [Fact]
    public void InquiryCapacityTocAndConfiguration()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out _);
        rig.Packet(Cdb(AtapiCdrom.ScsiInquiry, 0, 0, 0, 36));
        var inq = rig.ReadPacketData();
        Assert.Equal(36, inq.Length);
        Assert.Equal(0x05, inq[0]);
        Assert.Equal(0x80, inq[1]);
        Assert.Equal("VMPORTAL", System.Text.Encoding.ASCII.GetString(inq, 8, 8));

        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady));
        rig.Packet(Cdb(AtapiCdrom.ScsiReadCapacity));
        var cap = rig.ReadPacketData();
        Assert.Equal(Blocks - 1u, BinaryPrimitives.ReadUInt32BigEndian(cap));
        Assert.Equal(2048u, BinaryPrimitives.ReadUInt32BigEndian(cap.AsSpan(4)));

        rig.Packet(Cdb(AtapiCdrom.ScsiReadToc, 0, 0, 0, 0, 0, 0, 0, 100));
        var toc = rig.ReadPacketData();
        Assert.Equal(20, toc.Length);
        Assert.Equal(18, BinaryPrimitives.ReadUInt16BigEndian(toc));
        Assert.Equal((1, 1), (toc[2], toc[3]));
        Assert.Equal((0x14, 1), (toc[5], toc[6]));
        Assert.Equal(0xAA, toc[14]);
        Assert.Equal((uint)Blocks, BinaryPrimitives.ReadUInt32BigEndian(toc.AsSpan(16)));
        // MSF lead-out: 40 + 150 frames = 00:02:40.
        rig.Packet(Cdb(AtapiCdrom.ScsiReadToc, 2, 0, 0, 0, 0, 0xAA, 0, 100));
        toc = rig.ReadPacketData();
        Assert.Equal(new byte[] { 0, 0, 2, 40 }, toc.AsSpan(8, 4).ToArray());
        // Format 1: session info.
        rig.Packet(Cdb(AtapiCdrom.ScsiReadToc, 0, 1, 0, 0, 0, 0, 0, 12));
        toc = rig.ReadPacketData();
        Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(toc));

        rig.Packet(Cdb(AtapiCdrom.ScsiGetConfiguration, 0, 0, 0, 0, 0, 0, 0, 64));
        var conf = rig.ReadPacketData();
        Assert.Equal(0x0008, BinaryPrimitives.ReadUInt16BigEndian(conf.AsSpan(6))); // CD-ROM profile current
        Assert.Equal(conf.Length - 4, (int)BinaryPrimitives.ReadUInt32BigEndian(conf));

        rig.Packet(Cdb(AtapiCdrom.ScsiModeSense10, 0, AtapiCdrom.ScsiModeSense10 == 0x5A ? (byte)0x2A : (byte)0, 0, 0, 0, 0, 0, 64));
        var mode = rig.ReadPacketData();
        Assert.Equal(8 + 20, mode.Length);
        Assert.Equal(0x2A, mode[8]);

        rig.Packet(Cdb(AtapiCdrom.ScsiGetEventStatus, 1, 0, 0, 0x10, 0, 0, 0, 8));
        var ev = rig.ReadPacketData();
        Assert.Equal(2, ev[5] & 2); // media present

        rig.Packet(Cdb(AtapiCdrom.ScsiReadDiscInformation, 0, 0, 0, 0, 0, 0, 0, 34));
        Assert.Equal(34, rig.ReadPacketData().Length);
    }

    [Fact]
    public void LockedTrayRefusesEject()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out _);
        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady));
        rig.Packet(Cdb(AtapiCdrom.ScsiPreventAllow, 0, 0, 0, 1));
        rig.Packet(Cdb(AtapiCdrom.ScsiStartStopUnit, 0, 0, 0, 2));
        Assert.Equal(AtaProtocol.StatusErr, rig.Status & AtaProtocol.StatusErr);
        Assert.NotNull(cd.Media);
        rig.Packet(Cdb(AtapiCdrom.ScsiPreventAllow, 0, 0, 0, 0));
        rig.Packet(Cdb(AtapiCdrom.ScsiStartStopUnit, 0, 0, 0, 2));
        Assert.Equal(0, rig.Status & AtaProtocol.StatusErr);
        Assert.Null(cd.Media);
    }

    [Fact]
    public void PacketReadWithDmaFillsMemory()
    {
        var cd = new AtapiCdrom();
        var rig = Primary(cd, out var iso);
        rig.Packet(Cdb(AtapiCdrom.ScsiTestUnitReady));
        rig.Ide.WriteConfig(0x20, 4, 0xC000);
        rig.Ide.WriteConfig(0x04, 2, 0x05);
        rig.Memory.Write32(0x1000, 0x40000); rig.Memory.Write32(0x1004, 0x8000_0000 | 4096);
        rig.Bus.Out32(0xC004, 0x1000);
        rig.Packet(Cdb(AtapiCdrom.ScsiRead10, 0, 0, 0, 0, 2, 0, 0, 2), dma: true);
        rig.Bus.Out8(0xC000, IdeBusMaster.CommandStart | IdeBusMaster.CommandToMemory);
        rig.Ide.FinishDma(); // the machine reports the end once the guest has run on
        var got = new byte[4096];
        rig.Memory.ReadBytes(0x40000, got);
        Assert.Equal(iso.Data.Slice(2 * 2048, 4096).ToArray(), got);
        Assert.Equal(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc, rig.Status);
        Assert.Equal(0, rig.Bus.In8(0xC002) & IdeBusMaster.StatusActive); // PRD exactly consumed
    }
}

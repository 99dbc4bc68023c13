using VmPortal.Emulator.Devices.Dma;
using VmPortal.Emulator.Devices.Floppy;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Tests.Devices.Floppy;

public class FloppyControllerTests
{
    private readonly DeviceTestRig _rig = new();
    private readonly PhysicalMemory _memory = new(4 * 1024 * 1024);
    private readonly IsaDma _dma;
    private readonly FloppyController _fdc;
    private readonly byte[] _image = new byte[1440 * 1024];

    public FloppyControllerTests()
    {
        _dma = new IsaDma(_rig.Io, _memory);
        _fdc = new FloppyController(_rig.Io, _rig.Pic, _rig.Scheduler, _dma);
        for (int lba = 0; lba < 2880; lba++)
            for (int i = 0; i < 512; i++) _image[lba * 512 + i] = (byte)(lba + i * 7);
    }

    private byte Msr() => _rig.Io.In8(0x3F4);

    private void Send(params byte[] bytes)
    {
        foreach (var b in bytes)
        {
            Assert.Equal(0x80, Msr() & 0xC0); // RQM, CPU → FDC
            _rig.Io.Out8(0x3F5, b);
        }
    }

    private byte[] Results()
    {
        var r = new List<byte>();
        while ((Msr() & 0xC0) == 0xC0) r.Add(_rig.Io.In8(0x3F5));
        return r.ToArray();
    }

    private void WaitIrq()
    {
        Assert.Equal(-1, _rig.TakeInterrupt()); // not inside the OUT
        _rig.Advance(_fdc.ExecutionDelayNs);
        Assert.Equal(0x0E, _rig.TakeInterrupt()); // IRQ 6
    }

    // Channel 2 programmed the way SeaBIOS does it.
    private void SetupDma(uint address, int bytes, bool toMemory)
    {
        _rig.Io.Out8(0x0A, 0x06);
        _rig.Io.Out8(0x0C, 0);
        _rig.Io.Out8(0x04, (byte)address); _rig.Io.Out8(0x04, (byte)(address >> 8));
        _rig.Io.Out8(0x0C, 0);
        _rig.Io.Out8(0x05, (byte)(bytes - 1)); _rig.Io.Out8(0x05, (byte)((bytes - 1) >> 8));
        _rig.Io.Out8(0x0B, toMemory ? (byte)0x46 : (byte)0x4A);
        _rig.Io.Out8(0x81, (byte)(address >> 16));
        _rig.Io.Out8(0x0A, 0x02);
    }

    private void ResetController()
    {
        _rig.Io.Out8(0x3F2, 0x08);
        _rig.Io.Out8(0x3F2, 0x0C);
        WaitIrq();
        Send(0x08);
        Assert.Equal(new byte[] { 0xC0, 0x00 }, Results());
    }

    [Fact]
    public void ResetRaisesIrqWithReadyChangedStatuses()
    {
        ResetController();
        Send(0x08); Assert.Equal(new byte[] { 0xC1, 0x00 }, Results());
        Send(0x08); Assert.Equal(new byte[] { 0xC2, 0x00 }, Results());
        Send(0x08); Assert.Equal(new byte[] { 0xC3, 0x00 }, Results());
        Send(0x08); Assert.Equal(new byte[] { 0x80 }, Results()); // nothing left
        Assert.Equal(0x0C, _rig.Io.In8(0x3F2));
        Assert.Equal(0x80, Msr());
    }

    [Fact]
    public void VersionConfigureAndInvalidCommands()
    {
        Send(0x10); Assert.Equal(new byte[] { 0x90 }, Results());
        Send(0x13, 0x00, 0x57, 0x00); Assert.Empty(Results());
        Send(0x03, 0xAF, 0x02); Assert.Empty(Results()); // SPECIFY, DMA mode
        Send(0x0E);
        var dump = Results();
        Assert.Equal(10, dump.Length);
        Assert.Equal(0xAF, dump[4]);
        Assert.Equal(0x57, dump[8]);
        Send(0x94); Assert.Equal(new byte[] { 0x10 }, Results());
        Send(0x1F); Assert.Equal(new byte[] { 0x80 }, Results());
    }

    [Fact]
    public void RecalibrateSeekAndSenseDriveStatus()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        Assert.Equal(0x80, _rig.Io.In8(0x3F7) & 0x80); // disk changed since power-on
        Send(0x07, 0x00);
        WaitIrq();
        Send(0x08); Assert.Equal(new byte[] { 0x20, 0x00 }, Results());
        Send(0x0F, 0x04, 0x05); // seek head 1 to cylinder 5
        Assert.Equal(0x11, Msr() & 0x11); // busy, drive 0 seeking
        WaitIrq();
        Send(0x08); Assert.Equal(new byte[] { 0x24, 0x05 }, Results());
        Assert.Equal(0, _rig.Io.In8(0x3F7) & 0x80); // change line cleared by the step
        Send(0x04, 0x00);
        Assert.Equal(new byte[] { 0x68 }, Results()); // write protected, ready, two-sided
        Send(0x07, 0x03); // drive 3 does not exist
        WaitIrq();
        Send(0x08); Assert.Equal(0x73, Results()[0]);
    }

    [Fact]
    public void ReadDataByDmaAcrossHeadsWithMultiTrack()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: false));
        ResetController();
        SetupDma(0x12000, 3 * 512, toMemory: true);
        Send(0xE6, 0x00, 1, 0, 17, 2, 18, 0x1B, 0xFF); // C1 H0 S17, EOT 18, MT: continues on head 1
        WaitIrq();
        Assert.Equal(new byte[] { 0x04, 0x00, 0x00, 1, 1, 2, 2 }, Results()); // ends after C1 H1 S1
        var got = new byte[3 * 512];
        _memory.ReadBytes(0x12000, got);
        int firstLba = (1 * 2 + 0) * 18 + 16;
        Assert.Equal(_image.AsSpan(firstLba * 512, 3 * 512).ToArray(), got);
        Assert.True(_dma.Channel(2).TerminalCount);
        Assert.Equal(0x04, _rig.Io.In8(0x08) & 0x04); // DMA status: channel 2 reached TC
    }

    [Fact]
    public void ReadOfWholeTrackEndsAtEotOnNextCylinder()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: false));
        SetupDma(0x20000, 18 * 512, toMemory: true);
        Send(0x66, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF); // no MT
        WaitIrq();
        Assert.Equal(new byte[] { 0x00, 0x00, 0x00, 1, 0, 1, 2 }, Results());
        Assert.Equal(_image[17 * 512 + 100], _memory.Read8(0x20000 + 17 * 512 + 100));
    }

    [Fact]
    public void WriteDataGoesToTheImageUnlessWriteProtected()
    {
        var media = new MemoryDiskImage(new byte[1440 * 1024], readOnly: false);
        _fdc.Drive(1).Insert(media);
        for (int i = 0; i < 1024; i++) _memory.Write8(0x30000 + (uint)i, (byte)(i ^ 0x5A));
        SetupDma(0x30000, 1024, toMemory: false);
        Send(0xC5, 0x01, 0, 0, 1, 2, 2, 0x1B, 0xFF);
        WaitIrq();
        Assert.Equal(new byte[] { 0x05, 0x00, 0x00, 0, 1, 1, 2 }, Results()); // MT: EOT of head 0 continues on head 1
        Assert.Equal(0x5A, media.Data[0]);
        Assert.Equal(unchecked((byte)(1023 ^ 0x5A)), media.Data[1023]);

        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        SetupDma(0x30000, 512, toMemory: false);
        Send(0xC5, 0x00, 0, 0, 1, 2, 1, 0x1B, 0xFF);
        WaitIrq();
        var r = Results();
        Assert.Equal(0x40, r[0] & 0xC0);
        Assert.Equal(0x02, r[1]); // not writable
    }

    [Fact]
    public void ReadIdFailsWithoutMediaAndSucceedsWithIt()
    {
        Send(0x4A, 0x00);
        WaitIrq();
        Assert.Equal(0x40, Results()[0] & 0xC0);
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        Send(0x4A, 0x04);
        WaitIrq();
        Assert.Equal(new byte[] { 0x04, 0, 0, 0, 1, 1, 2 }, Results());
    }

    [Fact]
    public void SectorOutsideTheMediumReportsNoData()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        SetupDma(0x12000, 512, toMemory: true);
        Send(0xE6, 0x00, 85, 0, 1, 2, 1, 0x1B, 0xFF);
        WaitIrq();
        var r = Results();
        Assert.Equal(0x40, r[0] & 0xC0);
        Assert.Equal(0x04, r[1]);
    }

    [Fact]
    public void FormatTrackFillsSectorsFromDmaIds()
    {
        var media = new MemoryDiskImage(new byte[1440 * 1024], readOnly: false);
        _fdc.Drive(0).Insert(media);
        Send(0x0F, 0x00, 2);
        WaitIrq();
        Send(0x08); Results();
        for (int s = 0; s < 18; s++)
        {
            _memory.Write8(0x40000 + (uint)s * 4, 2);
            _memory.Write8(0x40000 + (uint)s * 4 + 1, 1);
            _memory.Write8(0x40000 + (uint)s * 4 + 2, (byte)(s + 1));
            _memory.Write8(0x40000 + (uint)s * 4 + 3, 2);
        }
        SetupDma(0x40000, 18 * 4, toMemory: false);
        Send(0x4D, 0x04, 2, 18, 0x6C, 0xF6);
        WaitIrq();
        Assert.Equal(0x00, Results()[0] & 0xC0);
        int lba = (2 * 2 + 1) * 18;
        Assert.Equal(0xF6, media.Data[lba * 512]);
        Assert.Equal(0xF6, media.Data[(lba + 17) * 512 + 511]);
        Assert.Equal(0x00, media.Data[(lba + 18) * 512]);
    }

    [Fact]
    public void MachineResetLeavesControllerReadyWithDmaEnabled()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        Send(0x0F, 0x00, 9);
        _fdc.Reset();
        Assert.Equal(0x0C, _rig.Io.In8(0x3F2));
        Assert.Equal(0x80, Msr());
        Assert.Equal(0, _fdc.Drive(0).Cylinder);
        Assert.True(_fdc.Drive(0).HasMedia);
    }

    [Fact]
    public void StateRoundTripsDuringExecution()
    {
        _fdc.Drive(0).Insert(new MemoryDiskImage(_image, readOnly: true));
        Send(0x0F, 0x00, 7); // seek in progress
        var state = _fdc.SaveState();
        var rig = new DeviceTestRig();
        rig.Clock.Advance(_rig.Clock.NowNs);
        var copy = new FloppyController(rig.Io, rig.Pic, rig.Scheduler, new IsaDma(rig.Io, _memory));
        copy.LoadState(state);
        Assert.Equal(0x11, rig.Io.In8(0x3F4) & 0x11);
        rig.Advance(copy.ExecutionDelayNs);
        Assert.Equal(0x0E, rig.TakeInterrupt());
        rig.Io.Out8(0x3F5, 0x08);
        Assert.Equal(0x20, rig.Io.In8(0x3F5));
        Assert.Equal(7, rig.Io.In8(0x3F5));
    }
}

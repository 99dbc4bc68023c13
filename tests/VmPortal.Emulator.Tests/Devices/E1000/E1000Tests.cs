using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using VmPortal.Emulator.Devices.E1000;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Timing;
using static VmPortal.Emulator.Devices.E1000.E1000Registers;

namespace VmPortal.Emulator.Tests.Devices.E1000Nic;

/// <summary>The 82540EM against real guest memory, programmed the way Linux's e1000 and iPXE program it.</summary>
public class E1000Tests
{
    private const uint MmioBase = 0xFEBC_0000, RxRing = 0x10_0000, TxRing = 0x11_0000, Buffers = 0x20_0000;
    private static readonly byte[] MacBytes = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

    /// <summary>The other end of the cable: what the card sent, and frames queued for it.</summary>
    private sealed class TestPort : IFramePort
    {
        public readonly List<byte[]> Sent = new();
        public readonly Queue<byte[]> Incoming = new();
        public void Send(ReadOnlySpan<byte> frame) => Sent.Add(frame.ToArray());
        public bool TryReceive([NotNullWhen(true)] out byte[]? frame) => Incoming.TryDequeue(out frame);
        public Action? FrameQueued { get; set; }
    }

    private sealed class Rig
    {
        public readonly PhysicalMemory Memory = new(16 << 20);
        public readonly IoBus Io = new();
        public readonly MachineClock Clock = new(manual: true);
        public readonly TimerScheduler Scheduler;
        public readonly TestPort Port = new();
        public readonly E1000 Nic;

        public Rig()
        {
            Scheduler = new TimerScheduler(Clock);
            Nic = new E1000(Io, Memory, Scheduler, MacBytes, Port, ReadOnlySpan<byte>.Empty);
            Nic.WriteConfig(PciFunction.Bar0Offset, 4, MmioBase);
            Nic.WriteConfig(PciFunction.Bar0Offset + 4, 4, 0xC000);
            Nic.WriteConfig(PciFunction.CommandOffset, 2, PciFunction.CommandIo | PciFunction.CommandMemory | PciFunction.CommandBusMaster);
        }

        public uint Read(int reg) => Memory.Read32(MmioBase + (uint)reg);
        public void Write(int reg, uint v) => Memory.Write32(MmioBase + (uint)reg, v);

        public void Advance(long ns)
        {
            Clock.Advance(ns);
            Scheduler.RunDue(Clock.NowNs);
        }

        /// <summary>Linux's e1000_read_eeprom for a Microwire part: request, select, opcode 110 + 6 address bits, 16 data bits.</summary>
        public ushort ReadEepromByBitBanging(int word)
        {
            uint eecd = Read(Eecd) | EecdRequest;
            Write(Eecd, eecd);
            Assert.NotEqual(0u, Read(Eecd) & EecdGrant);
            eecd = (eecd & ~(EecdDi | EecdSk)) | EecdCs;
            Write(Eecd, eecd);
            void Out(uint bits, int count)
            {
                for (int i = count - 1; i >= 0; i--)
                {
                    eecd = ((bits >> i) & 1) != 0 ? eecd | EecdDi : eecd & ~EecdDi;
                    Write(Eecd, eecd);
                    Write(Eecd, eecd | EecdSk);
                    Write(Eecd, eecd);
                }
            }
            Out(0b110, 3);
            Out((uint)word, 6);
            eecd &= ~EecdDi;
            int data = 0;
            for (int i = 0; i < 16; i++)
            {
                Write(Eecd, eecd | EecdSk);
                data = data << 1 | ((Read(Eecd) & EecdDo) != 0 ? 1 : 0);
                Write(Eecd, eecd);
            }
            Write(Eecd, eecd & ~(EecdCs | EecdRequest));
            return (ushort)data;
        }

        public void SetUpRx(int descriptors, uint rctl)
        {
            for (int i = 0; i < descriptors; i++)
            {
                Memory.Write32(RxRing + (uint)i * 16, Buffers + (uint)i * 2048);
                Memory.Write32(RxRing + (uint)i * 16 + 4, 0);
                Memory.Write32(RxRing + (uint)i * 16 + 12, 0xFFFF_FFFF); // status garbage that must be overwritten
            }
            Write(Rdbal, RxRing); Write(Rdbah, 0); Write(Rdlen, (uint)descriptors * 16);
            Write(Rdh, 0); Write(Rdt, 0);
            Write(Rctl, rctl);
        }
    }

    [Fact]
    public void PciIdentityAndBothRegisterWindows()
    {
        var r = new Rig();
        Assert.Equal(0x100E_8086u, r.Nic.ReadConfig(0, 4));
        Assert.Equal(0x0200_0000u, r.Nic.ReadConfig(0x08, 4) & 0xFFFF_FF00);
        Assert.Equal(1, r.Nic.InterruptPin);
        r.Nic.WriteConfig(PciFunction.Bar0Offset, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFFFE_0000u, r.Nic.ReadConfig(PciFunction.Bar0Offset, 4)); // 128 KiB memory BAR
        r.Nic.WriteConfig(PciFunction.Bar0Offset, 4, MmioBase);
        uint status = r.Read(Status);
        Assert.NotEqual(0u, status & StatusLinkUp);
        Assert.NotEqual(0u, status & StatusSpeed1000);
        // The I/O window: IOADDR selects the register, IODATA reads it.
        r.Io.Out32(0xC000, (uint)Status);
        Assert.Equal(status, r.Io.In32(0xC004));
        r.Io.Out32(0xC000, (uint)Ims);
        r.Io.Out32(0xC004, IntRxt0);
        Assert.Equal(IntRxt0, r.Read(Ims));
    }

    [Fact]
    public void TheEepromHoldsTheMacAndTheDriversChecksumByEitherInterface()
    {
        var r = new Rig();
        ushort sum = 0;
        var words = new ushort[64];
        for (int i = 0; i < 64; i++) { words[i] = r.ReadEepromByBitBanging(i); sum += words[i]; }
        Assert.Equal(0xBABA, sum);
        Assert.Equal(new ushort[] { 0x5452, 0x1200, 0x5634 }, words[..3]);
        Assert.Equal(0x100E, words[0x0D]);
        for (int i = 0; i < 64; i += 7)
        {
            r.Write(Eerd, (uint)i << 8 | EerdStart);
            uint v = r.Read(Eerd);
            Assert.NotEqual(0u, v & EerdDone);
            Assert.Equal(words[i], (ushort)(v >> 16));
        }
        // The receive address registers come loaded from the EEPROM.
        Assert.Equal(0x1200_5452u, r.Read(Ral0));
        Assert.Equal(0x5634u | RahAddressValid, r.Read(Rah0));
    }

    [Fact]
    public void ThePhyAnswersOverMdicWithAMarvellIdAndLink()
    {
        var r = new Rig();
        ushort Phy(int reg)
        {
            r.Write(Mdic, (uint)reg << 16 | 1u << 21 | MdicOpRead);
            uint v = r.Read(Mdic);
            Assert.NotEqual(0u, v & MdicReady);
            Assert.Equal(0u, v & MdicError);
            return (ushort)v;
        }
        Assert.Equal(0x0141, Phy(2));
        Assert.Equal(0x0C20, Phy(3) & 0xFFF0);
        Assert.NotEqual(0, Phy(1) & 0x0024); // link and autonegotiation complete
        r.Write(Mdic, 0u << 16 | 1u << 21 | MdicOpWrite | 0x9140); // reset + restart autonegotiation
        Assert.Equal(0x1140, Phy(0));
        r.Write(Mdic, 1u << 16 | 2u << 21 | MdicOpRead); // no PHY at address 2
        Assert.NotEqual(0u, r.Read(Mdic) & MdicError);
        r.Nic.LinkUp = false;
        Assert.Equal(0, Phy(1) & 0x0004);
        Assert.Equal(0u, r.Read(Status) & StatusLinkUp);
        Assert.NotEqual(0u, r.Read(Icr) & IntLsc);
    }

    [Fact]
    public void InterruptCausesAreMaskedAndClearedByReadingIcr()
    {
        var r = new Rig();
        r.Write(Ics, IntTxdw);
        Assert.False(r.Nic.InterruptAsserted); // masked
        r.Write(Ims, IntTxdw | IntRxt0);
        Assert.True(r.Nic.InterruptAsserted);
        Assert.NotEqual(0u, r.Nic.ReadConfig(PciFunction.StatusOffset, 2) & PciFunction.StatusInterrupt);
        Assert.Equal(IntTxdw, r.Read(Icr));
        Assert.False(r.Nic.InterruptAsserted);
        Assert.Equal(0u, r.Read(Icr));
        r.Write(Ics, IntRxt0);
        Assert.True(r.Nic.InterruptAsserted);
        r.Write(Imc, IntRxt0);
        Assert.False(r.Nic.InterruptAsserted);
        Assert.Equal(long.MaxValue, r.Scheduler.NextDeadlineNs); // no timer without throttling
    }

    [Fact]
    public void ThrottlingDelaysTheNextInterruptAndAnIdleCardArmsNoTimer()
    {
        var r = new Rig();
        r.Write(Itr, 1000); // 256 µs between interrupts
        r.Write(Ims, IntRxt0);
        r.Write(Ics, IntRxt0);
        Assert.True(r.Nic.InterruptAsserted);
        r.Read(Icr);
        r.Advance(100_000);
        r.Write(Ics, IntRxt0);
        Assert.False(r.Nic.InterruptAsserted); // too soon
        Assert.Equal(256_000, r.Scheduler.NextDeadlineNs);
        r.Advance(155_000);
        Assert.False(r.Nic.InterruptAsserted);
        r.Advance(1_000);
        Assert.True(r.Nic.InterruptAsserted);
        r.Read(Icr);
        Assert.Equal(long.MaxValue, r.Scheduler.NextDeadlineNs);
        r.Advance(10_000_000);
        Assert.Equal(long.MaxValue, r.Scheduler.NextDeadlineNs);
    }

    [Fact]
    public void AThrottledInterruptIsRaisedAtOnceWhenTheCpuIdles()
    {
        var r = new Rig();
        bool idle = false;
        r.Nic.CpuIdle = () => idle;
        r.Write(Itr, 1000); // 256 µs between interrupts
        r.Write(Ims, IntRxt0);
        r.Write(Ics, IntRxt0);
        r.Read(Icr);
        r.Advance(100_000);
        r.Write(Ics, IntRxt0);
        Assert.False(r.Nic.InterruptAsserted); // the CPU is busy: throttled, a timer waits out the interval
        Assert.Equal(256_000, r.Scheduler.NextDeadlineNs);
        idle = true; // the guest halts: the next pump raises it without waiting
        r.Nic.PumpReceive();
        Assert.True(r.Nic.InterruptAsserted);
        Assert.Equal(long.MaxValue, r.Scheduler.NextDeadlineNs);
        r.Read(Icr);
        r.Write(Ics, IntRxt0); // and while idle, new causes are not throttled at all
        Assert.True(r.Nic.InterruptAsserted);
    }

    [Fact]
    public void LegacyTransmitDescriptorsSendFramesAndReportDone()
    {
        var r = new Rig();
        var frame = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        r.Memory.WriteBytes(Buffers, frame.AsSpan(0, 40));
        r.Memory.WriteBytes(Buffers + 0x1000, frame.AsSpan(40));
        WriteTxDescriptor(r, 0, Buffers, 40, cmd: 0);
        WriteTxDescriptor(r, 1, Buffers + 0x1000, 60, cmd: TxCmdEop | TxCmdRs);
        r.Write(Tdbal, TxRing); r.Write(Tdlen, 8 * 16); r.Write(Tdh, 0); r.Write(Tdt, 0);
        r.Write(Tctl, TctlEnable);
        r.Write(Ims, IntTxdw);
        r.Nic.RegisterAccessCounts = new long[E1000.MmioSize / 4 * 2];
        long kicks = r.Nic.TransmitKicks; // TDT = 0 above was a kick with nothing to send
        r.Write(Tdt, 2);
        Assert.Equal(frame, Assert.Single(r.Port.Sent));
        // the diagnostics the network benchmark prints: one kick, two descriptors, one packet, one interrupt
        Assert.Equal((1L, 2L, 1L, 0L, 1L), (r.Nic.TransmitKicks - kicks, r.Nic.TransmitDescriptors, r.Nic.Transmitter.Packets, r.Nic.Transmitter.TsoPackets, r.Nic.InterruptsRaised));
        Assert.Equal(1L, r.Nic.RegisterAccessCounts[Tdt / 4 * 2 + 1]);
        Assert.Equal(0L, r.Nic.RegisterAccessCounts[Tdt / 4 * 2]);
        Assert.Equal(2u, r.Read(Tdh));
        Assert.Equal(TxStatusDd, r.Memory.Read8(TxRing + 16 + 12) & TxStatusDd);
        Assert.True(r.Nic.InterruptAsserted);
        Assert.Equal(1u, r.Read(Gptc));
        Assert.Equal(0u, r.Read(Gptc)); // statistics clear on read
    }

    [Fact]
    public void TsoCutsATcpPacketIntoMssSizedFramesWithCorrectHeadersAndChecksums()
    {
        var r = new Rig();
        const int mss = 1000, payloadLength = 2500, hdr = 14 + 20 + 20;
        var packet = new byte[hdr + payloadLength];
        MacBytes.CopyTo(packet, 6);
        packet[12] = 0x08;
        packet[14] = 0x45; packet[14 + 8] = 64; packet[14 + 9] = 6;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(14 + 4), 0x1234);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(14 + 12), 0x0A00_020F);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(14 + 16), 0x0A00_0202);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(34 + 4), 1_000_000);
        packet[34 + 12] = 0x50;
        packet[34 + 13] = 0x19; // FIN PSH ACK
        for (int i = 0; i < payloadLength; i++) packet[hdr + i] = (byte)(i * 7);
        // Linux's convention: the TCP checksum field holds the pseudo-header sum without the length.
        uint pseudo = 0x0A00 + 0x020F + 0x0A00 + 0x0202 + 6;
        while (pseudo > 0xFFFF) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(34 + 16), (ushort)pseudo);
        r.Memory.WriteBytes(Buffers, packet);
        // Context: IPCSS 14, IPCSO 24, IPCSE 33, TUCSS 34, TUCSO 50, TUCMD = DEXT | TSE | IP | TCP, HDRLEN, MSS.
        var ctx = new byte[16];
        ctx[0] = 14; ctx[1] = 24; BinaryPrimitives.WriteUInt16LittleEndian(ctx.AsSpan(2), 33);
        ctx[4] = 34; ctx[5] = 50;
        BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(8), (uint)payloadLength | 0u << 20 | (uint)(TxCmdDext | TxCmdTse | TuCmdIp | TuCmdTcp) << 24);
        ctx[13] = hdr;
        BinaryPrimitives.WriteUInt16LittleEndian(ctx.AsSpan(14), mss);
        r.Memory.WriteBytes(TxRing, ctx);
        // One data descriptor with the whole packet, TSE, IXSM|TXSM.
        var d = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(d, Buffers);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), (uint)packet.Length | 1u << 20 | (uint)(TxCmdDext | TxCmdTse | TxCmdEop | TxCmdRs) << 24);
        d[13] = TxPoptsIxsm | TxPoptsTxsm;
        r.Memory.WriteBytes(TxRing + 16, d);
        r.Write(Tdbal, TxRing); r.Write(Tdlen, 8 * 16); r.Write(Tctl, TctlEnable);
        r.Write(Tdt, 2);

        Assert.Equal(3, r.Port.Sent.Count);
        Assert.Equal((1L, 1L), (r.Nic.Transmitter.Packets, r.Nic.Transmitter.TsoPackets));
        int offset = 0;
        for (int s = 0; s < 3; s++)
        {
            var f = r.Port.Sent[s];
            int n = Math.Min(mss, payloadLength - offset);
            Assert.Equal(hdr + n, f.Length);
            Assert.Equal(20 + 20 + n, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 2)));
            Assert.Equal(0x1234 + s, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 4)));
            Assert.Equal(0, Fold(Sum(f.AsSpan(14, 20))) ^ 0xFFFF); // IP header checksum verifies
            Assert.Equal(1_000_000u + (uint)offset, BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(34 + 4)));
            Assert.Equal(s == 2 ? 0x19 : 0x10, f[34 + 13]);
            uint sum = 0x0A00 + 0x020F + 0x0A00 + 0x0202 + 6 + (uint)(20 + n) + Sum(f.AsSpan(34));
            Assert.Equal(0xFFFF, Fold(sum)); // TCP checksum verifies
            Assert.Equal(packet.AsSpan(hdr + offset, n).ToArray(), f.AsSpan(hdr).ToArray());
            offset += n;
        }
    }

    [Fact]
    public void ChecksumOffloadFillsInTheUdpChecksumLinuxLeavesOpen()
    {
        var r = new Rig();
        var packet = new byte[14 + 20 + 8 + 5];
        packet[12] = 0x08; packet[14] = 0x45; packet[14 + 9] = 17;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(14 + 2), 33);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(14 + 12), 0x0A00_020F);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(14 + 16), 0x0A00_0203);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(34 + 4), 13);
        "hello"u8.CopyTo(packet.AsSpan(42));
        uint pseudo = 0x0A00 + 0x020F + 0x0A00 + 0x0203 + 17 + 13;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(34 + 6), Fold(pseudo));
        r.Memory.WriteBytes(Buffers, packet);
        var ctx = new byte[16];
        ctx[4] = 34; ctx[5] = 40;
        BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(8), (uint)TxCmdDext << 24);
        r.Memory.WriteBytes(TxRing, ctx);
        var d = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(d, Buffers);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(8), (uint)packet.Length | 1u << 20 | (uint)(TxCmdDext | TxCmdEop) << 24);
        d[13] = TxPoptsTxsm;
        r.Memory.WriteBytes(TxRing + 16, d);
        r.Write(Tdbal, TxRing); r.Write(Tdlen, 8 * 16); r.Write(Tctl, TctlEnable); r.Write(Tdt, 2);
        var f = Assert.Single(r.Port.Sent);
        Assert.Equal(0xFFFF, Fold(0x0A00 + 0x020F + 0x0A00 + 0x0203 + 17 + 13 + Sum(f.AsSpan(34))));
    }

    [Fact]
    public void ReceivedFramesLandInTheGuestsBuffersAndWaitWhileTheRingIsFull()
    {
        var r = new Rig();
        r.SetUpRx(8, RctlEnable | RctlBroadcastAccept); // 2048-byte buffers, CRC kept (Linux strips it itself)
        r.Write(Ims, IntRxt0);
        var frames = Enumerable.Range(0, 5).Select(i =>
        {
            var f = new byte[100 + i];
            MacBytes.CopyTo(f, 0);
            f[6] = 0x52; f[11] = 9;
            f[20] = (byte)i;
            return f;
        }).ToList();
        var other = (byte[])frames[0].Clone();
        other[5] = 0x99; // not for us: filtered
        r.Port.Incoming.Enqueue(other);
        foreach (var f in frames) r.Port.Incoming.Enqueue(f);
        r.Write(Rdt, 3); // three buffers handed over (one slot stays empty, as drivers keep it)
        Assert.Equal(3u, r.Read(Rdh));
        for (int i = 0; i < 3; i++)
        {
            uint desc = RxRing + (uint)i * 16;
            Assert.Equal(100 + i + 4, r.Memory.Read16(desc + 8));
            Assert.Equal(RxStatusDd | RxStatusEop, r.Memory.Read8(desc + 12) & (RxStatusDd | RxStatusEop));
            Assert.Equal(0, r.Memory.Read8(desc + 13));
            var got = new byte[100 + i];
            r.Memory.ReadBytes(Buffers + (uint)i * 2048, got);
            Assert.Equal(frames[i], got);
        }
        Assert.True(r.Nic.InterruptAsserted);
        Assert.NotEqual(0u, r.Read(Icr) & IntRxt0);
        Assert.Equal(3u, r.Read(Gprc));
        // Frames 3 and 4 wait (one taken and held, one still in the port) until buffers come back.
        Assert.Single(r.Port.Incoming);
        r.Write(Rdt, 5);
        Assert.Equal(5u, r.Read(Rdh));
        Assert.Empty(r.Port.Incoming);
        var fifth = new byte[104];
        r.Memory.ReadBytes(Buffers + 4 * 2048, fifth);
        Assert.Equal(frames[4], fifth);
        // Runt frames on the receive side are dropped and counted; short ones are padded to 60 bytes.
        r.Write(Rctl, RctlEnable | RctlBroadcastAccept | RctlStripCrc);
        r.Write(Rdt, 7);
        r.Nic.Receive(new byte[5]);
        Assert.Equal(1, r.Nic.FramesDropped);
        var small = new byte[20];
        for (int i = 0; i < 6; i++) small[i] = 0xFF;
        small[6] = 0x52; small[11] = 1;
        Assert.True(r.Nic.Receive(small));
        Assert.Equal(60, r.Memory.Read16(RxRing + 5 * 16 + 8));
    }

    [Fact]
    public void TheMulticastTableAndPromiscuousModesDecideWhatIsAccepted()
    {
        var r = new Rig();
        r.SetUpRx(8, RctlEnable);
        r.Write(Rdt, 7);
        var mcast = new byte[60];
        mcast[0] = 0x33; mcast[1] = 0x33; mcast[4] = 0x12; mcast[5] = 0x34; mcast[6] = 0x52; mcast[11] = 1;
        var bcast = Enumerable.Repeat((byte)0xFF, 6).Concat(new byte[54]).ToArray();
        Assert.True(r.Nic.Receive(bcast));
        Assert.True(r.Nic.Receive(mcast));
        Assert.Equal(0u, r.Read(Rdh)); // neither accepted
        int hash = ((mcast[4] >> 4) | (mcast[5] << 4)) & 0xFFF; // MO = 0
        r.Write(Mta + 4 * (hash >> 5), 1u << (hash & 31));
        r.Nic.Receive(mcast);
        Assert.Equal(1u, r.Read(Rdh));
        r.Write(Rctl, RctlEnable | RctlBroadcastAccept);
        r.Nic.Receive(bcast);
        Assert.Equal(2u, r.Read(Rdh));
        var stranger = (byte[])mcast.Clone();
        stranger[0] = 0x02;
        r.Nic.Receive(stranger);
        Assert.Equal(2u, r.Read(Rdh));
        r.Write(Rctl, RctlEnable | RctlUnicastPromisc);
        r.Nic.Receive(stranger);
        Assert.Equal(3u, r.Read(Rdh));
    }

    [Fact]
    public void AResetRestoresDefaultsAndAPulledCableStopsTraffic()
    {
        var r = new Rig();
        r.Write(Ral0, 0); r.Write(Ims, 0xFF); r.Write(Rctl, RctlEnable);
        r.Write(Ctrl, CtrlReset);
        Assert.Equal(0x1200_5452u, r.Read(Ral0));
        Assert.Equal(0u, r.Read(Ims));
        Assert.Equal(0u, r.Read(Rctl));
        Assert.Equal(0u, r.Read(Ctrl) & CtrlReset);

        r.SetUpRx(8, RctlEnable | RctlBroadcastAccept);
        r.Write(Rdt, 3);
        r.Nic.LinkUp = false;
        r.Port.Incoming.Enqueue(Enumerable.Repeat((byte)0xFF, 60).ToArray());
        r.Nic.PumpReceive();
        Assert.Equal(0u, r.Read(Rdh));
        Assert.Empty(r.Port.Incoming); // lost on the wire, as with a pulled cable
        var state = r.Nic.SaveState();
        Assert.False(state.Link);
        Assert.Equal(E1000.State.CurrentVersion, state.Version);
    }

    /// <summary>An IPv4 frame to our MAC with correct header and TCP/UDP checksums (computed here, independently of the card).</summary>
    private static byte[] Ipv4Frame(byte proto, int payload, ushort fragment = 0)
    {
        int l4 = (proto == 6 ? 20 : 8) + payload;
        var f = new byte[14 + 20 + l4];
        MacBytes.CopyTo(f, 0);
        f[6] = 0x52; f[11] = 2;
        f[12] = 0x08;
        var ip = f.AsSpan(14);
        ip[0] = 0x45; ip[8] = 64; ip[9] = proto;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + l4));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], fragment);
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], 0x0A00_0202);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], 0x0A00_020F);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~Fold(Sum(ip[..20])));
        var t = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(t, 80);
        BinaryPrimitives.WriteUInt16BigEndian(t[2..], 40000);
        if (proto == 6) t[12] = 0x50; else BinaryPrimitives.WriteUInt16BigEndian(t[4..], (ushort)l4);
        for (int i = 0; i < payload; i++) t[l4 - payload + i] = (byte)(i * 7 + 1);
        int cso = proto == 6 ? 16 : 6;
        ushort c = (ushort)~Fold(0x0A00u + 0x0202 + 0x0A00 + 0x020F + proto + (uint)l4 + Sum(t));
        BinaryPrimitives.WriteUInt16BigEndian(t[cso..], proto == 17 && c == 0 ? (ushort)0xFFFF : c);
        return f;
    }

    /// <summary>Linux's e1000_rx_checksum: the stack skips verifying a segment only with TCPCS, without IXSM or TCPE.</summary>
    private static bool LinuxTrusts(byte status, byte errors) =>
        (status & RxStatusIxsm) == 0 && (errors & RxErrorTcpe) == 0 && (status & RxStatusTcpcs) != 0;

    [Fact]
    public void ReceiveChecksumOffloadReportsWhatLinuxMayTrustAndFlagsBadChecksums()
    {
        var r = new Rig();
        Assert.Equal(RxcsumIpofl | RxcsumTuofl, r.Read(Rxcsum)); // the reset value
        r.Write(Rxcsum, r.Read(Rxcsum) | RxcsumTuofl); // what e1000_configure_rx does with rx checksumming on
        r.SetUpRx(16, RctlEnable | RctlBroadcastAccept | RctlStripCrc);
        r.Write(Rdt, 15);
        var badTcp = Ipv4Frame(6, 1000);
        badTcp[^1] ^= 0x40; // corrupted on the way
        var badIp = Ipv4Frame(17, 10);
        badIp[14 + 8] = 1; // TTL changed, header checksum not updated
        var noUdpSum = Ipv4Frame(17, 10);
        noUdpSum[34 + 6] = 0; noUdpSum[34 + 7] = 0; // UDP without a checksum
        var arp = Ipv4Frame(17, 10);
        arp[12] = 0x08; arp[13] = 0x06;
        var cases = new (string Name, byte[] Frame, byte Status, byte Errors)[]
        {
            ("TCP", Ipv4Frame(6, 1460), RxStatusIpcs | RxStatusTcpcs, 0),
            ("UDP", Ipv4Frame(17, 300), RxStatusIpcs | RxStatusTcpcs, 0),
            ("bad TCP", badTcp, RxStatusIpcs | RxStatusTcpcs, RxErrorTcpe),
            ("bad IP header", badIp, RxStatusIpcs | RxStatusTcpcs, RxErrorIpe),
            ("UDP without checksum", noUdpSum, RxStatusIpcs | RxStatusTcpcs, 0),
            ("IP fragment", Ipv4Frame(17, 10, fragment: 0x2000), RxStatusIpcs, 0),
            ("ICMP", Ipv4Frame(1, 0), RxStatusIpcs, 0),
            ("ARP", arp, 0, 0),
        };
        for (int i = 0; i < cases.Length; i++)
        {
            Assert.True(r.Nic.Receive(cases[i].Frame), cases[i].Name);
            uint desc = RxRing + (uint)i * 16;
            byte status = r.Memory.Read8(desc + 12), errors = r.Memory.Read8(desc + 13);
            Assert.Equal((cases[i].Name, RxStatusDd | RxStatusEop | cases[i].Status, cases[i].Errors), (cases[i].Name, (int)status, errors));
            // the TCP/UDP checksum verdict; Linux's ip_rcv checks the IP header itself, whatever IPE says
            bool good = cases[i].Name is "TCP" or "UDP" or "UDP without checksum" or "bad IP header";
            Assert.Equal((cases[i].Name, good), (cases[i].Name, LinuxTrusts(status, errors)));
        }

        // Offload off (RXCSUM 0): IXSM, nothing checked, Linux verifies every segment itself.
        r.Write(Rxcsum, 0);
        Assert.True(r.Nic.Receive(Ipv4Frame(6, 100)));
        byte s0 = r.Memory.Read8(RxRing + (uint)cases.Length * 16 + 12);
        Assert.Equal(RxStatusDd | RxStatusEop | RxStatusIxsm, s0);
        Assert.False(LinuxTrusts(s0, 0));
    }

    private static void WriteTxDescriptor(Rig r, int index, uint buffer, int length, byte cmd)
    {
        uint at = TxRing + (uint)index * 16;
        r.Memory.Write32(at, buffer);
        r.Memory.Write32(at + 4, 0);
        r.Memory.Write32(at + 8, (uint)length | (uint)cmd << 24);
        r.Memory.Write32(at + 12, 0);
    }

    private static uint Sum(ReadOnlySpan<byte> d)
    {
        uint s = 0;
        int i = 0;
        for (; i + 1 < d.Length; i += 2) s += (uint)(d[i] << 8 | d[i + 1]);
        if (i < d.Length) s += (uint)d[i] << 8;
        return s;
    }

    private static ushort Fold(uint s)
    {
        while (s > 0xFFFF) s = (s & 0xFFFF) + (s >> 16);
        return (ushort)s;
    }
}

using System.Buffers.Binary;
using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// ATAPI CD/DVD-ROM drive (ATA PACKET feature set + SCSI MMC commands) on an <see cref="AtaChannel"/>.
/// ATA commands: IDENTIFY PACKET DEVICE (0xA1), PACKET (0xA0, PIO or bus-master DMA), DEVICE RESET, SET FEATURES,
/// power commands; IDENTIFY DEVICE aborts leaving the 0x14/0xEB signature. Packet commands: TEST UNIT READY,
/// REQUEST SENSE, INQUIRY, READ CAPACITY, READ(10)/(12), MODE SENSE(6/10), START STOP UNIT, PREVENT ALLOW MEDIUM
/// REMOVAL, READ TOC (formats 0, 1, 2), GET CONFIGURATION, GET EVENT STATUS NOTIFICATION, READ DISC INFORMATION,
/// SEEK, SET CD SPEED, MECHANISM STATUS; others end in CHECK CONDITION / ILLEGAL REQUEST / invalid opcode.
/// Data phases honour the byte count limit in the cylinder registers and report the interrupt reason.
/// Guests: SeaBIOS (El Torito boot through READ(10) of 2048-byte blocks), Linux ata_piix + sr_mod, GRUB, ISOLINUX.
/// </summary>
public sealed class AtapiCdrom : AtaDevice
{
    public const int BlockSize = 2048;
    private const int SectorsPerBlock = BlockSize / IDiskImage.SectorSize;

    // SCSI/MMC operation codes.
    public const byte ScsiTestUnitReady = 0x00, ScsiRequestSense = 0x03, ScsiInquiry = 0x12, ScsiModeSelect6 = 0x15;
    public const byte ScsiModeSense6 = 0x1A, ScsiStartStopUnit = 0x1B, ScsiPreventAllow = 0x1E, ScsiReadCapacity = 0x25;
    public const byte ScsiRead10 = 0x28, ScsiSeek10 = 0x2B, ScsiReadSubchannel = 0x42, ScsiReadToc = 0x43;
    public const byte ScsiGetConfiguration = 0x46, ScsiGetEventStatus = 0x4A, ScsiReadDiscInformation = 0x51;
    public const byte ScsiModeSense10 = 0x5A, ScsiRead12 = 0xA8, ScsiSetCdSpeed = 0xBB, ScsiMechanismStatus = 0xBD;

    // Sense keys and additional sense codes.
    public const byte SenseNone = 0, SenseNotReady = 2, SenseIllegalRequest = 5, SenseUnitAttention = 6;
    public const byte AscInvalidOpcode = 0x20, AscLbaOutOfRange = 0x21, AscInvalidField = 0x24, AscMediumChanged = 0x28;
    public const byte AscMediumNotPresent = 0x3A, AscMediumRemovalPrevented = 0x53;

    // MMC profiles and mode pages.
    private const ushort ProfileCdRom = 0x0008, ProfileDvdRom = 0x0010;
    private const byte PageErrorRecovery = 0x01, PageCapabilities = 0x2A, PageAll = 0x3F;
    private const long CdMaxBlocks = 80 * 60 * 75; // 80-minute CD; larger images report the DVD-ROM profile

    private IDiskImage? _media;
    private readonly string _model, _serial;
    private readonly byte[] _packet = new byte[12];
    private bool _packetPhase, _dataPhase, _dma, _locked;
    private byte _senseKey, _asc, _ascq;
    private bool _unitAttention, _mediaEvent;
    private int _byteCountLimit;

    // Data-in phase source: the response buffer, or media blocks read on demand.
    private readonly byte[] _response = new byte[4096];
    private int _responsePos;
    private long _remaining;
    private bool _fromMedia;
    private long _mediaBlock;
    private readonly byte[] _block = new byte[BlockSize];
    private int _blockPos = BlockSize;

    public AtapiCdrom(IDiskImage? media = null, string model = "VmPortal DVD-ROM", string serial = "VMP0000000002")
    {
        _media = media;
        _model = model;
        _serial = serial;
        SetSignature();
    }

    public override bool IsAtapi => true;
    public IDiskImage? Media => _media;
    public bool IsLocked => _locked;
    private long Blocks => _media == null ? 0 : (_media.Length + BlockSize - 1) / BlockSize;

    /// <summary>Inserts a disc (host side): the guest sees UNIT ATTENTION / medium changed once, and a media event.</summary>
    public void InsertMedia(IDiskImage media)
    {
        _media = media;
        _unitAttention = true;
        _mediaEvent = true;
    }

    /// <summary>Removes the disc (host side), even if the guest locked the tray.</summary>
    public void EjectMedia()
    {
        _media = null;
        _mediaEvent = true;
    }

    internal override void ExecuteCommand(byte command)
    {
        switch (command)
        {
            case AtaProtocol.CmdPacket:
                _dma = (Features & 1) != 0;
                _byteCountLimit = LbaMid | LbaHigh << 8;
                _packetPhase = true;
                _dataPhase = false;
                SectorCount = AtaProtocol.ReasonCoD;
                StartDataOut(12, interrupt: false);
                break;
            case AtaProtocol.CmdIdentifyPacket: IdentifyPacket(); break;
            case AtaProtocol.CmdDeviceReset:
                SetSignature();
                _packetPhase = _dataPhase = false;
                break;
            case AtaProtocol.CmdSetFeatures:
                if (Features == AtaProtocol.FeatureSetTransferMode || Features == AtaProtocol.FeatureEnableReadLookAhead || Features == AtaProtocol.FeatureDisableReadLookAhead
                    || Features == AtaProtocol.FeatureEnableRevertingToDefaults || Features == AtaProtocol.FeatureDisableRevertingToDefaults)
                    CompleteOk();
                else Abort();
                break;
            case AtaProtocol.CmdCheckPowerMode: case AtaProtocol.CmdCheckPowerModeOld:
                SectorCount = 0xFF;
                CompleteOk();
                break;
            case AtaProtocol.CmdIdleImmediate: case AtaProtocol.CmdStandbyImmediate: case AtaProtocol.CmdSleep:
                CompleteOk();
                break;
            default:
                // IDENTIFY DEVICE and the disk commands abort, with the packet signature in the task file.
                SetSignature();
                Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusErr;
                Error = AtaProtocol.ErrorAbrt;
                RaiseIrq();
                break;
        }
    }

    private void IdentifyPacket()
    {
        Span<ushort> w = stackalloc ushort[256];
        w.Clear();
        w[0] = 0x85C0; // ATAPI, CD-ROM, removable, DRQ within 50 µs, 12-byte packets
        AtaProtocol.PutString(w, 10, 10, _serial);
        AtaProtocol.PutString(w, 23, 4, "1.0");
        AtaProtocol.PutString(w, 27, 20, _model);
        w[49] = (1 << 11) | (1 << 9) | (1 << 8); // IORDY, LBA, DMA
        w[53] = 0x0007;
        w[63] = 0x0007;
        w[64] = 0x0003;
        w[65] = 0xB4; w[66] = 0xB4; w[67] = 0x12C; w[68] = 0xB4;
        w[71] = 30; w[72] = 30;
        w[80] = 0x001E; // ATA/ATAPI-1 … 4
        w[82] = 1 << 4; // PACKET feature set
        w[83] = 1 << 14;
        w[84] = 1 << 14;
        w[85] = 1 << 4;
        w[87] = 1 << 14;
        w[88] = 0x3F | (1 << 10); // UDMA 0–5, mode 2 selected
        w[93] = (1 << 14) | (1 << 13) | 1;
        StoreWords(Buffer, w);
        _packetPhase = _dataPhase = false;
        StartDataIn(512, interrupt: true);
    }

    protected override void OnBlockTransferred()
    {
        if (_packetPhase)
        {
            _packetPhase = false;
            Buffer.AsSpan(0, 12).CopyTo(_packet);
            ExecutePacket();
            return;
        }
        if (_dataPhase) { NextChunk(); return; }
        CompleteOk(interrupt: false); // IDENTIFY PACKET data read
    }

    // ---- packet execution ----

    private void ExecutePacket()
    {
        byte op = _packet[0];
        if (_unitAttention && op != ScsiRequestSense && op != ScsiInquiry && op != ScsiGetEventStatus && op != ScsiGetConfiguration)
        {
            _unitAttention = false;
            CheckCondition(SenseUnitAttention, AscMediumChanged);
            return;
        }
        switch (op)
        {
            case ScsiTestUnitReady:
                if (NeedMedia()) Complete();
                break;
            case ScsiRequestSense:
            {
                var r = _response.AsSpan(0, 18);
                r.Clear();
                r[0] = 0x70; r[2] = _senseKey; r[7] = 10; r[12] = _asc; r[13] = _ascq;
                if (_senseKey == SenseUnitAttention) _unitAttention = false;
                _senseKey = 0; _asc = 0; _ascq = 0;
                SendResponse(18, _packet[4]);
                break;
            }
            case ScsiInquiry:
            {
                var r = _response.AsSpan(0, 36);
                r.Clear();
                r[0] = 0x05; // CD/DVD device
                r[1] = 0x80; // removable
                r[2] = 0x00;
                r[3] = 0x21; // ATAPI, response data format 1
                r[4] = 31;
                WriteAscii(r[8..16], "VMPORTAL");
                WriteAscii(r[16..32], "VIRTUAL DVD-ROM");
                WriteAscii(r[32..36], "1.0");
                SendResponse(36, _packet[3] << 8 | _packet[4]);
                break;
            }
            case ScsiReadCapacity:
                if (!NeedMedia()) break;
                BinaryPrimitives.WriteUInt32BigEndian(_response, (uint)(Blocks - 1));
                BinaryPrimitives.WriteUInt32BigEndian(_response.AsSpan(4), BlockSize);
                SendResponse(8, 8);
                break;
            case ScsiRead10:
                ReadBlocks(BinaryPrimitives.ReadUInt32BigEndian(_packet.AsSpan(2)), BinaryPrimitives.ReadUInt16BigEndian(_packet.AsSpan(7)));
                break;
            case ScsiRead12:
                ReadBlocks(BinaryPrimitives.ReadUInt32BigEndian(_packet.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(_packet.AsSpan(6)));
                break;
            case ScsiModeSense6: ModeSense(false); break;
            case ScsiModeSense10: ModeSense(true); break;
            case ScsiStartStopUnit:
            {
                bool loej = (_packet[4] & 2) != 0, start = (_packet[4] & 1) != 0;
                if (loej && !start)
                {
                    if (_locked) { CheckCondition(SenseIllegalRequest, AscMediumRemovalPrevented, 0x02); break; }
                    if (_media != null) { _media = null; _mediaEvent = true; }
                }
                Complete();
                break;
            }
            case ScsiPreventAllow:
                _locked = (_packet[4] & 1) != 0;
                Complete();
                break;
            case ScsiSeek10: case ScsiSetCdSpeed:
                if (op == ScsiSetCdSpeed || NeedMedia()) Complete();
                break;
            case ScsiReadToc: ReadToc(); break;
            case ScsiGetConfiguration: GetConfiguration(); break;
            case ScsiGetEventStatus: GetEventStatus(); break;
            case ScsiReadDiscInformation:
            {
                if ((_packet[1] & 7) != 0) { CheckCondition(SenseIllegalRequest, AscInvalidField); break; }
                if (!NeedMedia()) break;
                var r = _response.AsSpan(0, 34);
                r.Clear();
                r[1] = 32;
                r[2] = 0x0E; // last session complete, disc complete
                r[3] = 1; r[4] = 1; r[5] = 1; r[6] = 1;
                r[7] = 0x20; // unrestricted use
                SendResponse(34, _packet[7] << 8 | _packet[8]);
                break;
            }
            case ScsiMechanismStatus:
            {
                var r = _response.AsSpan(0, 8);
                r.Clear();
                r[5] = 1; // one slot
                SendResponse(8, _packet[8] << 8 | _packet[9]);
                break;
            }
            default:
                CheckCondition(SenseIllegalRequest, AscInvalidOpcode);
                break;
        }
    }

    private bool NeedMedia()
    {
        if (_media != null) return true;
        CheckCondition(SenseNotReady, AscMediumNotPresent);
        return false;
    }

    private void ReadBlocks(uint lba, uint count)
    {
        if (!NeedMedia()) return;
        if (lba + (long)count > Blocks) { CheckCondition(SenseIllegalRequest, AscLbaOutOfRange); return; }
        if (count == 0) { Complete(); return; }
        _fromMedia = true;
        _mediaBlock = lba;
        _blockPos = BlockSize;
        StartDataPhase((long)count * BlockSize);
    }

    private void ModeSense(bool ten)
    {
        int page = _packet[2] & 0x3F, control = _packet[2] >> 6;
        int alloc = ten ? _packet[7] << 8 | _packet[8] : _packet[4];
        if (control == 3) { CheckCondition(SenseIllegalRequest, 0x39); return; } // saving parameters not supported
        int header = ten ? 8 : 4;
        var r = _response.AsSpan();
        r[..64].Clear();
        int p = header;
        if (page == PageErrorRecovery || page == PageAll)
        {
            r[p] = PageErrorRecovery; r[p + 1] = 6; r[p + 3] = 5; // read retry count
            p += 8;
        }
        if (page == PageCapabilities || page == PageAll)
        {
            r[p] = PageCapabilities; r[p + 1] = 0x12;
            r[p + 2] = 0x00; r[p + 3] = 0x00;            // reads CD-ROM; writes nothing
            r[p + 4] = 0x71;                             // audio play, composite, digital ports, multisession
            r[p + 5] = 0x00;
            r[p + 6] = (byte)(0x29 | (_locked ? 2 : 0)); // tray loader, eject, lock (state)
            r[p + 7] = 0x00;
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 8)..], 706);  // max speed kB/s (4×)
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 10)..], 2);   // volume levels
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 12)..], 512); // buffer kB
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 14)..], 706); // current speed
            p += 20;
        }
        if (p == header) { CheckCondition(SenseIllegalRequest, AscInvalidField); return; }
        byte mediumType = _media == null ? (byte)0x70 : (byte)0x01; // 0x70: no disc; 0x01: 120 mm data disc
        if (ten)
        {
            BinaryPrimitives.WriteUInt16BigEndian(r, (ushort)(p - 2));
            r[2] = mediumType;
        }
        else
        {
            r[0] = (byte)(p - 1);
            r[1] = mediumType;
        }
        SendResponse(p, alloc);
    }

    private void ReadToc()
    {
        if (!NeedMedia()) return;
        bool msf = (_packet[1] & 2) != 0;
        int format = _packet[2] & 0x0F;
        if (format == 0 && (_packet[9] >> 6) != 0) format = _packet[9] >> 6; // pre-MMC format field
        int track = _packet[6];
        int alloc = _packet[7] << 8 | _packet[8];
        var r = _response.AsSpan();
        r[..64].Clear();
        int p = 4;
        switch (format)
        {
            case 0:
                if (track > 1 && track != 0xAA) { CheckCondition(SenseIllegalRequest, AscInvalidField); return; }
                r[2] = 1; r[3] = 1;
                if (track <= 1)
                {
                    r[p + 1] = 0x14; r[p + 2] = 1; // ADR 1, data track; track 1
                    PutAddress(r[(p + 4)..], 0, msf);
                    p += 8;
                }
                r[p + 1] = 0x14; r[p + 2] = 0xAA; // lead-out
                PutAddress(r[(p + 4)..], Blocks, msf);
                p += 8;
                break;
            case 1: // session information
                r[2] = 1; r[3] = 1;
                r[p + 1] = 0x14; r[p + 2] = 1;
                PutAddress(r[(p + 4)..], 0, msf);
                p += 8;
                break;
            case 2: // full (raw) TOC, one session with one data track
                r[2] = 1; r[3] = 1;
                p = RawTocEntry(r, p, 0xA0, 1, 0x00, 0);      // first track 1, disc type CD-ROM
                p = RawTocEntry(r, p, 0xA1, 1, 0x00, 0);      // last track 1
                p = RawTocEntry(r, p, 0xA2, 0, 0, 0, Blocks); // lead-out start
                p = RawTocEntry(r, p, 1, 0, 0, 0, 0);         // track 1 at 0
                break;
            default:
                CheckCondition(SenseIllegalRequest, AscInvalidField);
                return;
        }
        BinaryPrimitives.WriteUInt16BigEndian(r, (ushort)(p - 2));
        SendResponse(p, alloc);
    }

    private static int RawTocEntry(Span<byte> r, int p, byte point, byte pmin, byte psec, byte pframe, long lba = -1)
    {
        r[p] = 1; r[p + 1] = 0x14; r[p + 3] = point;
        if (lba >= 0)
        {
            long f = lba + 150;
            pmin = (byte)(f / (60 * 75)); psec = (byte)(f / 75 % 60); pframe = (byte)(f % 75);
        }
        r[p + 8] = pmin; r[p + 9] = psec; r[p + 10] = pframe;
        return p + 11;
    }

    private static void PutAddress(Span<byte> dest, long lba, bool msf)
    {
        if (!msf) { BinaryPrimitives.WriteUInt32BigEndian(dest, (uint)lba); return; }
        long f = lba + 150;
        dest[0] = 0;
        dest[1] = (byte)(f / (60 * 75));
        dest[2] = (byte)(f / 75 % 60);
        dest[3] = (byte)(f % 75);
    }

    private void GetConfiguration()
    {
        int rt = _packet[1] & 3;
        int start = _packet[2] << 8 | _packet[3];
        int alloc = _packet[7] << 8 | _packet[8];
        if (rt == 3) { CheckCondition(SenseIllegalRequest, AscInvalidField); return; }
        var r = _response.AsSpan();
        r[..128].Clear();
        ushort current = _media == null ? (ushort)0 : Blocks > CdMaxBlocks ? ProfileDvdRom : ProfileCdRom;
        BinaryPrimitives.WriteUInt16BigEndian(r[6..], current);
        int p = 8;
        // Feature 0: profile list (DVD-ROM, CD-ROM).
        if (Wanted(0x0000, rt, start))
        {
            r[p + 1] = 0x00; r[p + 2] = 0x03; r[p + 3] = 8;
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 4)..], ProfileDvdRom); r[p + 6] = (byte)(current == ProfileDvdRom ? 1 : 0);
            BinaryPrimitives.WriteUInt16BigEndian(r[(p + 8)..], ProfileCdRom); r[p + 10] = (byte)(current == ProfileCdRom ? 1 : 0);
            p += 12;
        }
        // Feature 1: core (ATAPI physical interface).
        if (Wanted(0x0001, rt, start))
        {
            r[p + 1] = 0x01; r[p + 2] = 0x0B; r[p + 3] = 8;
            BinaryPrimitives.WriteUInt32BigEndian(r[(p + 4)..], 2);
            r[p + 8] = 1; // DBE
            p += 12;
        }
        // Feature 3: removable medium (tray, eject, lock).
        if (Wanted(0x0003, rt, start))
        {
            r[p + 1] = 0x03; r[p + 2] = 0x03; r[p + 3] = 4;
            r[p + 4] = (byte)(0x29 | (_locked ? 4 : 0));
            p += 8;
        }
        BinaryPrimitives.WriteUInt32BigEndian(r, (uint)(p - 4));
        SendResponse(p, alloc);
    }

    private static bool Wanted(int feature, int rt, int start) => rt == 2 ? feature == start : feature >= start;

    private void GetEventStatus()
    {
        if ((_packet[1] & 1) == 0) { CheckCondition(SenseIllegalRequest, AscInvalidField); return; } // asynchronous mode unsupported
        int classes = _packet[4];
        int alloc = _packet[7] << 8 | _packet[8];
        var r = _response.AsSpan();
        r[..8].Clear();
        r[3] = 0x10; // supported: media class
        int length;
        if ((classes & 0x10) != 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(r, 6);
            r[2] = 0x04; // media class
            if (_mediaEvent)
            {
                r[4] = (byte)(_media != null ? 2 : 3); // new media / media removal
                _mediaEvent = false;
            }
            r[5] = (byte)(_media != null ? 2 : 0); // media present
            length = 8;
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(r, 2);
            r[2] = 0x80; // no event available
            length = 4;
        }
        SendResponse(length, alloc);
    }

    // ---- data phase and completion ----

    private void SendResponse(int length, int allocationLength)
    {
        _fromMedia = false;
        _responsePos = 0;
        int n = Math.Min(length, allocationLength);
        if (n <= 0) { Complete(); return; }
        StartDataPhase(n);
    }

    private void StartDataPhase(long bytes)
    {
        _remaining = bytes;
        _dataPhase = true;
        if (_dma)
        {
            SectorCount = AtaProtocol.ReasonIo;
            RequestDma(toMemory: true, bytes);
            return;
        }
        NextChunk();
    }

    private void NextChunk()
    {
        if (_remaining == 0) { Complete(); return; }
        int limit = _byteCountLimit;
        if (limit == 0 || limit == 0xFFFF) limit = 0xFFFE;
        limit &= ~1;
        if (limit == 0) limit = 2;
        int chunk = (int)Math.Min(_remaining, Math.Min(limit, BufferSize));
        if (chunk < _remaining && (chunk & 1) != 0) chunk--;
        Produce(Buffer.AsSpan(0, chunk));
        _remaining -= chunk;
        LbaMid = (byte)chunk;
        LbaHigh = (byte)(chunk >> 8);
        SectorCount = AtaProtocol.ReasonIo;
        StartDataIn(chunk, interrupt: true);
    }

    private void Produce(Span<byte> dest)
    {
        if (!_fromMedia)
        {
            int n = Math.Min(dest.Length, _response.Length - _responsePos);
            _response.AsSpan(_responsePos, n).CopyTo(dest);
            dest[n..].Clear();
            _responsePos += n;
            return;
        }
        int done = 0;
        while (done < dest.Length)
        {
            if (_blockPos == BlockSize)
            {
                try { _media!.Read(_mediaBlock * SectorsPerBlock, _block); }
                catch (Exception) { _block.AsSpan().Clear(); }
                _mediaBlock++;
                _blockPos = 0;
            }
            int n = Math.Min(dest.Length - done, BlockSize - _blockPos);
            _block.AsSpan(_blockPos, n).CopyTo(dest[done..]);
            _blockPos += n; done += n;
        }
    }

    private void Complete()
    {
        _dataPhase = false;
        SectorCount = AtaProtocol.ReasonIo | AtaProtocol.ReasonCoD;
        CompleteOk();
    }

    private void CheckCondition(byte key, byte asc, byte ascq = 0)
    {
        _senseKey = key; _asc = asc; _ascq = ascq;
        _dataPhase = false;
        DmaRequested = false;
        BufferPos = BufferLength = 0;
        SectorCount = AtaProtocol.ReasonIo | AtaProtocol.ReasonCoD;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusErr;
        Error = (byte)(key << 4);
        RaiseIrq();
    }

    internal override int DmaProduce(Span<byte> dest)
    {
        int n = (int)Math.Min(dest.Length, DmaRemaining);
        Produce(dest[..n]);
        DmaRemaining -= n;
        _remaining -= n;
        return n;
    }

    internal override void DmaFinished(bool ok)
    {
        DmaRequested = false;
        if (ok) Complete();
        else CheckCondition(SenseIllegalRequest, AscInvalidField);
    }

    internal override void Reset()
    {
        base.Reset();
        _packetPhase = _dataPhase = false;
    }

    private static void WriteAscii(Span<byte> dest, string s)
    {
        for (int i = 0; i < dest.Length; i++) dest[i] = i < s.Length ? (byte)s[i] : (byte)' ';
    }
}

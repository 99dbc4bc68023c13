using VmPortal.Emulator.Storage;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// ATA hard disk (ATA/ATAPI-7 general feature set + 48-bit address feature set) on an <see cref="AtaChannel"/>.
/// Commands: IDENTIFY DEVICE, READ/WRITE SECTORS (+EXT), READ/WRITE MULTIPLE (+EXT), READ/WRITE DMA (+EXT)
/// through the PIIX bus master, WRITE DMA FUA EXT / WRITE MULTIPLE FUA EXT, READ VERIFY (+EXT), SET MULTIPLE
/// MODE, SET FEATURES, INITIALIZE DEVICE PARAMETERS, FLUSH CACHE (+EXT), READ NATIVE MAX ADDRESS (+EXT), SEEK,
/// RECALIBRATE and the power commands; anything else is aborted. CHS, LBA28 and LBA48 addressing.
/// Durability: FLUSH CACHE (+EXT) completes only after <see cref="IDiskImage.Flush"/> (data and metadata on
/// stable storage); FUA writes, and every write while the guest has turned the write cache off, flush before
/// they complete. Transfers reach the image as one call per command (DMA: per 256 KiB), never per sector.
/// Guests: SeaBIOS (int 13h disks, LBA28 PIO), DOS (CHS), Linux ata_piix/libata (IDENTIFY, LBA48, DMA).
/// </summary>
public sealed class AtaHardDisk : AtaDevice
{
    public const int MaxMultipleSectors = 16;
    private const int DefaultHeads = 16, DefaultSectorsPerTrack = 63, MaxCylinders = 16383;
    private const long Lba28Limit = 0x0FFF_FFFF;

    private IDiskImage _image;
    private readonly string _model, _serial;
    private readonly long _sectors;
    private readonly int _cylinders;
    private int _curHeads = DefaultHeads, _curSpt = DefaultSectorsPerTrack;
    private int _multiple = MaxMultipleSectors; // sectors per DRQ block for READ/WRITE MULTIPLE (0 = disabled); on at 16 from power-on like QEMU, so libata reports "multi 16"
    private byte _pioMode = 4, _mwdmaMode = 0xFF, _udmaMode = 2; // selected modes; 0xFF = none
    private bool _writeCache = true;
    private bool _fua; // the current write must be durable before it completes

    // Current PIO/DMA transfer.
    private long _lba, _remaining;
    private int _blockSectors;
    private bool _lba48;

    public AtaHardDisk(IDiskImage image, string model = "VmPortal HARDDISK", string serial = "VMP0000000001")
    {
        _image = image;
        _model = model;
        _serial = serial;
        _sectors = image.SectorCount;
        _cylinders = (int)Math.Clamp(_sectors / (DefaultHeads * DefaultSectorsPerTrack), 1, MaxCylinders);
        SetSignature();
    }

    public override bool IsAtapi => false;
    public IDiskImage Image => _image;

    /// <summary>
    /// Puts another image of the same size behind this drive (the machine does it between CPU slices when the portal
    /// freezes a disk for a snapshot and continues on a new overlay). Transfer state is kept: the guest notices nothing.
    /// </summary>
    internal void ReplaceImage(IDiskImage image)
    {
        if (image.SectorCount != _sectors)
            throw new InvalidOperationException($"the new disk image has {image.SectorCount} sectors, the drive {_sectors}");
        _image = image;
    }
    public long Sectors => _sectors;

    /// <summary>Default CHS geometry reported by IDENTIFY words 1/3/6.</summary>
    public (int Cylinders, int Heads, int SectorsPerTrack) Geometry => (_cylinders, DefaultHeads, DefaultSectorsPerTrack);

    internal override void ExecuteCommand(byte command)
    {
        switch (command)
        {
            case AtaProtocol.CmdIdentify: Identify(); break;
            case AtaProtocol.CmdReadSectors: case AtaProtocol.CmdReadSectorsNoRetry: StartRead(false, 1); break;
            case AtaProtocol.CmdReadSectorsExt: StartRead(true, 1); break;
            case AtaProtocol.CmdReadMultiple: if (_multiple == 0) Abort(); else StartRead(false, _multiple); break;
            case AtaProtocol.CmdReadMultipleExt: if (_multiple == 0) Abort(); else StartRead(true, _multiple); break;
            case AtaProtocol.CmdWriteSectors: case AtaProtocol.CmdWriteSectorsNoRetry: StartWrite(false, 1); break;
            case AtaProtocol.CmdWriteSectorsExt: StartWrite(true, 1); break;
            case AtaProtocol.CmdWriteMultiple: if (_multiple == 0) Abort(); else StartWrite(false, _multiple); break;
            case AtaProtocol.CmdWriteMultipleExt: if (_multiple == 0) Abort(); else StartWrite(true, _multiple); break;
            case AtaProtocol.CmdWriteMultipleFuaExt: if (_multiple == 0) Abort(); else StartWrite(true, _multiple, fua: true); break;
            case AtaProtocol.CmdReadDma: case AtaProtocol.CmdReadDmaNoRetry: StartDma(false, toMemory: true); break;
            case AtaProtocol.CmdReadDmaExt: StartDma(true, toMemory: true); break;
            case AtaProtocol.CmdWriteDma: case AtaProtocol.CmdWriteDmaNoRetry: StartDma(false, toMemory: false); break;
            case AtaProtocol.CmdWriteDmaExt: StartDma(true, toMemory: false); break;
            case AtaProtocol.CmdWriteDmaFuaExt: StartDma(true, toMemory: false, fua: true); break;
            case AtaProtocol.CmdReadVerify: case AtaProtocol.CmdReadVerifyNoRetry: Verify(false); break;
            case AtaProtocol.CmdReadVerifyExt: Verify(true); break;
            case AtaProtocol.CmdSetMultipleMode:
                int n = SectorCount;
                if (n == 0) _multiple = 0;
                else if (n <= MaxMultipleSectors && (n & (n - 1)) == 0) _multiple = n;
                else { Abort(); break; }
                CompleteOk();
                break;
            case AtaProtocol.CmdSetFeatures: SetFeatures(); break;
            case AtaProtocol.CmdInitializeDeviceParameters:
                if (SectorCount == 0) { Abort(); break; }
                _curHeads = (Device & 0x0F) + 1;
                _curSpt = SectorCount;
                CompleteOk();
                break;
            case AtaProtocol.CmdFlushCache: case AtaProtocol.CmdFlushCacheExt:
                try { _image.Flush(); CompleteOk(); }
                catch (Exception) { CompleteError(AtaProtocol.ErrorAbrt); }
                break;
            case AtaProtocol.CmdReadNativeMax: ReportAddress(Math.Min(_sectors, Lba28Limit + 1) - 1, false); break;
            case AtaProtocol.CmdReadNativeMaxExt: ReportAddress(_sectors - 1, true); break;
            case AtaProtocol.CmdSeek: case >= AtaProtocol.CmdRecalibrate and <= 0x1F:
            case AtaProtocol.CmdStandbyImmediate: case AtaProtocol.CmdIdleImmediate: case AtaProtocol.CmdStandby: case AtaProtocol.CmdIdle: case AtaProtocol.CmdSleep:
            case AtaProtocol.CmdStandbyImmediateOld: case AtaProtocol.CmdIdleImmediateOld: case AtaProtocol.CmdStandbyOld: case AtaProtocol.CmdIdleOld: case AtaProtocol.CmdSleepOld:
                CompleteOk();
                break;
            case AtaProtocol.CmdCheckPowerMode: case AtaProtocol.CmdCheckPowerModeOld:
                SectorCount = 0xFF; // active or idle
                CompleteOk();
                break;
            default:
                Abort(); // includes IDENTIFY PACKET, PACKET, DEVICE RESET, NOP, SMART
                break;
        }
    }

    private void Identify()
    {
        Span<ushort> w = stackalloc ushort[256];
        w.Clear();
        long lba28 = Math.Min(_sectors, Lba28Limit);
        w[0] = 0x0040; // fixed device, not removable
        w[1] = (ushort)_cylinders;
        w[3] = DefaultHeads;
        w[4] = (ushort)(512 * DefaultSectorsPerTrack); // obsolete: unformatted bytes per track
        w[5] = 512;
        w[6] = DefaultSectorsPerTrack;
        AtaProtocol.PutString(w, 10, 10, _serial);
        w[20] = 3; w[21] = 512; // obsolete buffer type/size
        AtaProtocol.PutString(w, 23, 4, "1.0");
        AtaProtocol.PutString(w, 27, 20, _model);
        w[47] = 0x8000 | MaxMultipleSectors;
        w[48] = 1; // 32-bit PIO allowed (obsolete "can perform doubleword I/O")
        w[49] = (1 << 11) | (1 << 9) | (1 << 8); // IORDY, LBA, DMA
        w[50] = 0x4000;
        w[51] = 0x200; w[52] = 0x200; // PIO/DMA timing (obsolete)
        w[53] = 0x0007; // words 54–58, 64–70 and 88 are valid
        long chs = (long)_cylinders * _curHeads * _curSpt;
        w[54] = (ushort)Math.Min(chs / Math.Max(1, _curHeads * _curSpt), 65535);
        w[55] = (ushort)_curHeads;
        w[56] = (ushort)_curSpt;
        long chsCap = Math.Min(chs, _sectors);
        w[57] = (ushort)chsCap; w[58] = (ushort)(chsCap >> 16);
        w[59] = (ushort)(_multiple != 0 ? 0x100 | _multiple : 0);
        w[60] = (ushort)lba28; w[61] = (ushort)(lba28 >> 16);
        w[63] = (ushort)(0x07 | (_mwdmaMode <= 2 ? 0x100 << _mwdmaMode : 0)); // MWDMA 0–2 supported
        w[64] = 0x03; // PIO 3 and 4
        w[65] = 120; w[66] = 120; w[67] = 120; w[68] = 120;
        w[80] = 0x00F0; // ATA/ATAPI-4 … 7
        w[81] = 0;
        w[82] = (1 << 14) | (1 << 5); // NOP, write cache
        w[83] = (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10); // FLUSH CACHE EXT, FLUSH CACHE, 48-bit
        w[84] = (1 << 14) | (1 << 6); // WRITE DMA FUA EXT, WRITE MULTIPLE FUA EXT
        w[85] = (ushort)((1 << 14) | (_writeCache ? 1 << 5 : 0));
        w[86] = (1 << 13) | (1 << 12) | (1 << 10);
        w[87] = (1 << 14) | (1 << 6);
        w[88] = (ushort)(0x3F | (_udmaMode <= 5 ? 0x100 << _udmaMode : 0)); // UDMA 0–5 supported
        w[93] = (1 << 14) | (1 << 13) | 1; // 80-conductor cable detected
        w[100] = (ushort)_sectors; w[101] = (ushort)(_sectors >> 16);
        w[102] = (ushort)(_sectors >> 32); w[103] = (ushort)(_sectors >> 48);
        StoreWords(Buffer, w);
        StartDataIn(512, interrupt: true);
        _remaining = 0;
        _blockSectors = 0;
    }

    private void SetFeatures()
    {
        switch (Features)
        {
            case AtaProtocol.FeatureSetTransferMode:
                int mode = SectorCount & 0x07;
                switch (SectorCount >> 3)
                {
                    case 0: case 1: _pioMode = (byte)mode; break; // PIO default / flow control
                    case 4: if (mode > 2) { Abort(); return; } _mwdmaMode = (byte)mode; _udmaMode = 0xFF; break;
                    case 8: if (mode > 5) { Abort(); return; } _udmaMode = (byte)mode; _mwdmaMode = 0xFF; break;
                    default: Abort(); return;
                }
                CompleteOk();
                return;
            case AtaProtocol.FeatureEnableWriteCache: _writeCache = true; CompleteOk(); return;
            case AtaProtocol.FeatureDisableWriteCache: _writeCache = false; CompleteOk(); return;
            case AtaProtocol.FeatureEnableReadLookAhead: case AtaProtocol.FeatureDisableReadLookAhead:
            case AtaProtocol.FeatureEnableRevertingToDefaults: case AtaProtocol.FeatureDisableRevertingToDefaults:
                CompleteOk();
                return;
            default:
                Abort();
                return;
        }
    }

    /// <summary>Decodes the start address and count of a read/write; false (and an error) if out of range.</summary>
    private bool DecodeRange(bool lba48, out long lba, out long count)
    {
        if (lba48)
        {
            lba = (long)HobLbaHigh << 40 | (long)HobLbaMid << 32 | (long)HobLbaLow << 24 | (long)LbaHigh << 16 | (long)LbaMid << 8 | LbaLow;
            count = HobSectorCount << 8 | SectorCount;
            if (count == 0) count = 65536;
        }
        else
        {
            count = SectorCount == 0 ? 256 : SectorCount;
            if ((Device & AtaProtocol.DeviceLba) != 0)
            {
                lba = (long)(Device & 0x0F) << 24 | (long)LbaHigh << 16 | (long)LbaMid << 8 | LbaLow;
            }
            else
            {
                int cyl = LbaHigh << 8 | LbaMid, head = Device & 0x0F, sector = LbaLow;
                if (sector == 0 || sector > _curSpt || head >= _curHeads) { lba = 0; CompleteError(AtaProtocol.ErrorIdnf | AtaProtocol.ErrorAbrt); return false; }
                lba = ((long)cyl * _curHeads + head) * _curSpt + sector - 1;
            }
        }
        if (lba + count > _sectors) { CompleteError(AtaProtocol.ErrorIdnf); return false; }
        return true;
    }

    private void StartRead(bool lba48, int blockSectors)
    {
        if (!DecodeRange(lba48, out long lba, out long count)) return;
        _lba = lba; _remaining = count; _blockSectors = blockSectors; _lba48 = lba48;
        LoadReadBlock();
    }

    private void LoadReadBlock()
    {
        int n = (int)Math.Min(_blockSectors, _remaining);
        try { _image.Read(_lba, Buffer.AsSpan(0, n * IDiskImage.SectorSize)); }
        catch (Exception) { CompleteError(AtaProtocol.ErrorUnc); return; }
        StartDataIn(n * IDiskImage.SectorSize, interrupt: true);
    }

    private void StartWrite(bool lba48, int blockSectors, bool fua = false)
    {
        if (_image.IsReadOnly) { Abort(); return; }
        if (!DecodeRange(lba48, out long lba, out long count)) return;
        _lba = lba; _remaining = count; _blockSectors = blockSectors; _lba48 = lba48; _fua = fua;
        StartDataOut((int)Math.Min(_blockSectors, _remaining) * IDiskImage.SectorSize, interrupt: false);
    }

    protected override void OnBlockTransferred()
    {
        int n = BufferLength / IDiskImage.SectorSize;
        if (_remaining == 0 || n == 0) { CompleteOk(interrupt: false); return; } // IDENTIFY data read
        if (HostToDevice)
        {
            try { _image.Write(_lba, Buffer.AsSpan(0, n * IDiskImage.SectorSize)); }
            catch (Exception) { CompleteError(AtaProtocol.ErrorUnc); return; }
            _lba += n; _remaining -= n;
            if (_remaining > 0) StartDataOut((int)Math.Min(_blockSectors, _remaining) * IDiskImage.SectorSize, interrupt: true);
            else if (!FlushIfRequired()) CompleteError(AtaProtocol.ErrorAbrt);
            else { SetLastAddress(); CompleteOk(); }
        }
        else
        {
            _lba += n; _remaining -= n;
            if (_remaining > 0) LoadReadBlock();
            else { SetLastAddress(); CompleteOk(interrupt: false); }
        }
    }

    /// <summary>After a write: makes it durable if it was a FUA write or the write cache is off. False if that failed.</summary>
    private bool FlushIfRequired()
    {
        bool need = _fua || !_writeCache;
        _fua = false;
        if (!need) return true;
        try { _image.Flush(); return true; }
        catch (Exception) { return false; }
    }

    private void Verify(bool lba48)
    {
        if (!DecodeRange(lba48, out long lba, out long count)) return;
        _lba = lba + count; _lba48 = lba48;
        SetLastAddress();
        CompleteOk();
    }

    private void ReportAddress(long lba, bool lba48)
    {
        LbaLow = (byte)lba; LbaMid = (byte)(lba >> 8); LbaHigh = (byte)(lba >> 16);
        if (lba48) { HobLbaLow = (byte)(lba >> 24); HobLbaMid = (byte)(lba >> 32); HobLbaHigh = (byte)(lba >> 40); }
        else Device = (byte)((Device & 0xF0) | (int)((lba >> 24) & 0x0F));
        CompleteOk();
    }

    /// <summary>After a transfer the LBA registers hold the address of the last sector moved (ATA-7 normal outputs).</summary>
    private void SetLastAddress()
    {
        if ((Device & AtaProtocol.DeviceLba) == 0 && !_lba48) return;
        long last = _lba - 1;
        if (last < 0) return;
        LbaLow = (byte)last; LbaMid = (byte)(last >> 8); LbaHigh = (byte)(last >> 16);
        if (_lba48) { HobLbaLow = (byte)(last >> 24); HobLbaMid = (byte)(last >> 32); HobLbaHigh = (byte)(last >> 40); }
        else Device = (byte)((Device & 0xF0) | (int)((last >> 24) & 0x0F));
    }

    // ---- snapshots ----

    /// <summary>Device state for machine snapshots (the image itself is reattached by the machine).</summary>
    public sealed record State(int Version, TaskFileState TaskFile, int CurrentHeads, int CurrentSectorsPerTrack, int Multiple,
        byte PioMode, byte MwdmaMode, byte UdmaMode, bool WriteCache, long Lba, long Remaining, int BlockSectors, bool Lba48,
        int DmaSectorPos, byte[] DmaSector)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, SaveTaskFile(), _curHeads, _curSpt, _multiple, _pioMode, _mwdmaMode,
        _udmaMode, _writeCache, _lba, _remaining, _blockSectors, _lba48, _dmaSectorPos, (byte[])_dmaSector.Clone());

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"ATA disk state version {s.Version} is not supported.");
        if (s.DmaSector.Length != IDiskImage.SectorSize || s.DmaSectorPos < 0 || s.DmaSectorPos > IDiskImage.SectorSize)
            throw new InvalidDataException("ATA disk state has an invalid DMA sector.");
        LoadTaskFile(s.TaskFile);
        _curHeads = Math.Clamp(s.CurrentHeads, 1, 16); _curSpt = Math.Clamp(s.CurrentSectorsPerTrack, 1, 255);
        _multiple = s.Multiple; _pioMode = s.PioMode; _mwdmaMode = s.MwdmaMode; _udmaMode = s.UdmaMode; _writeCache = s.WriteCache;
        _lba = s.Lba; _remaining = s.Remaining; _blockSectors = s.BlockSectors; _lba48 = s.Lba48;
        _dmaSectorPos = s.DmaSectorPos;
        s.DmaSector.CopyTo(_dmaSector, 0);
    }

    // ---- DMA ----
    // The bus master moves guest memory in small chunks; the image is read or written through a staging buffer
    // of up to 256 KiB, so a DMA command costs one image call per 256 KiB, not one per sector.

    private const int DmaStagingBytes = 256 * 1024;
    private int _dmaSectorPos = IDiskImage.SectorSize; // kept for the snapshot record; transfers finish inside one OUT
    private readonly byte[] _dmaSector = new byte[IDiskImage.SectorSize];
    private byte[]? _dmaBuf;
    private int _dmaBufPos, _dmaBufLen;
    private long _dmaLba; // next sector to stage (reads) or first staged sector (writes)
    private bool _dmaFailed;

    private void StartDma(bool lba48, bool toMemory, bool fua = false)
    {
        if (!toMemory && _image.IsReadOnly) { Abort(); return; }
        if (!DecodeRange(lba48, out long lba, out long count)) return;
        _lba = lba; _remaining = count; _lba48 = lba48; _fua = fua;
        _dmaLba = lba;
        _dmaBuf ??= new byte[DmaStagingBytes];
        _dmaBufPos = _dmaBufLen = 0;
        _dmaFailed = false;
        RequestDma(toMemory, count * IDiskImage.SectorSize);
    }

    internal override int DmaProduce(Span<byte> dest)
    {
        var buf = _dmaBuf!;
        int done = 0;
        while (done < dest.Length && DmaRemaining > 0)
        {
            if (_dmaBufPos == _dmaBufLen)
            {
                int n = (int)Math.Min(DmaRemaining, buf.Length);
                n = (n + IDiskImage.SectorSize - 1) / IDiskImage.SectorSize * IDiskImage.SectorSize;
                try { _image.Read(_dmaLba, buf.AsSpan(0, n)); }
                catch (Exception) { buf.AsSpan(0, n).Clear(); _dmaFailed = true; }
                _dmaLba += n / IDiskImage.SectorSize;
                _dmaBufPos = 0; _dmaBufLen = n;
            }
            int c = (int)Math.Min(Math.Min(dest.Length - done, _dmaBufLen - _dmaBufPos), DmaRemaining);
            buf.AsSpan(_dmaBufPos, c).CopyTo(dest[done..]);
            _dmaBufPos += c; done += c; DmaRemaining -= c;
        }
        return done;
    }

    internal override int DmaConsume(ReadOnlySpan<byte> src)
    {
        var buf = _dmaBuf!;
        int done = 0;
        while (done < src.Length && DmaRemaining > 0)
        {
            int c = (int)Math.Min(Math.Min(src.Length - done, buf.Length - _dmaBufLen), DmaRemaining);
            src.Slice(done, c).CopyTo(buf.AsSpan(_dmaBufLen));
            _dmaBufLen += c; done += c; DmaRemaining -= c;
            if (_dmaBufLen == buf.Length || DmaRemaining == 0) WriteStaged();
        }
        return done;
    }

    /// <summary>Writes the whole sectors staged so far in one call.</summary>
    private void WriteStaged()
    {
        int sectors = _dmaBufLen / IDiskImage.SectorSize;
        if (sectors == 0) return;
        try { _image.Write(_dmaLba, _dmaBuf.AsSpan(0, sectors * IDiskImage.SectorSize)); }
        catch (Exception) { _dmaFailed = true; }
        _dmaLba += sectors;
        int rest = _dmaBufLen - sectors * IDiskImage.SectorSize;
        if (rest > 0) _dmaBuf.AsSpan(sectors * IDiskImage.SectorSize, rest).CopyTo(_dmaBuf);
        _dmaBufLen = rest;
    }

    internal override void DmaFinished(bool ok)
    {
        if (!DmaToMemory)
        {
            WriteStaged();
            if (ok && !FlushIfRequired()) _dmaFailed = true;
        }
        _fua = false;
        if (ok && _dmaFailed)
        {
            // the bus master finished, but the image did not take (or give) the data: report a media error
            _remaining = 0;
            CompleteError(AtaProtocol.ErrorUnc); // also ends the DMA request
            return;
        }
        if (ok) { _remaining = 0; _lba = _dmaLba; SetLastAddress(); }
        base.DmaFinished(ok);
    }
}

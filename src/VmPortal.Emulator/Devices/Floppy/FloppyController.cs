using VmPortal.Emulator.Devices.Dma;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Devices.Floppy;

/// <summary>
/// Intel 82077AA floppy disk controller at 0x3F0–0x3F5 and 0x3F7 (0x3F6 belongs to the IDE controller), IRQ 6,
/// ISA DMA channel 2, with two drives (<see cref="FloppyDrive"/>).
/// Registers: 0x3F0 SRA, 0x3F1 SRB, 0x3F2 DOR (drive select, /RESET, DMA gate, motors; readable), 0x3F3 TDR,
/// 0x3F4 MSR (read: RQM, DIO, NDMA, CB, drive busy) / DSR (write: data rate, software reset), 0x3F5 FIFO
/// (command, result bytes), 0x3F7 DIR (read: bit 7 disk change) / CCR (write: data rate).
/// Commands: SPECIFY, SENSE DRIVE STATUS, RECALIBRATE, SEEK, SENSE INTERRUPT STATUS, READ DATA, WRITE DATA
/// (multi-sector, multi-track, DMA only; 512-byte sectors), READ ID, FORMAT TRACK, VERSION (0x90), CONFIGURE,
/// PERPENDICULAR MODE, LOCK/UNLOCK, DUMPREG; anything else answers ST0 = 0x80 (invalid). Leaving reset raises IRQ 6
/// with four "ready changed" statuses for SENSE INTERRUPT. Data moves when the command is accepted; the result phase
/// and the interrupt follow after <see cref="ExecutionDelayNs"/> of guest time (so the IRQ never lands inside the OUT).
/// The data rate is accepted and ignored: any rate reads any medium.
/// Guests: SeaBIOS (drive detection via CMOS 0x10, media sense with READ ID, INT 13h, booting a floppy image),
/// Linux floppy driver (module), DOS.
/// </summary>
public sealed class FloppyController
{
    public const ushort DefaultBasePort = 0x3F0;
    public const int DefaultIrq = 6, DefaultDmaChannel = 2, DriveCount = 2;
    public const int RegSra = 0, RegSrb = 1, RegDor = 2, RegTdr = 3, RegMsrDsr = 4, RegFifo = 5, RegDirCcr = 7;

    public const byte DorDriveMask = 0x03, DorNotReset = 0x04, DorDmaGate = 0x08;
    public const byte MsrRqm = 0x80, MsrDio = 0x40, MsrNonDma = 0x20, MsrBusy = 0x10;
    public const byte DsrSoftwareReset = 0x80;
    public const byte DirDiskChanged = 0x80;

    public const byte CmdReadTrack = 0x02, CmdSpecify = 0x03, CmdSenseDrive = 0x04, CmdWriteData = 0x05, CmdReadData = 0x06;
    public const byte CmdRecalibrate = 0x07, CmdSenseInterrupt = 0x08, CmdWriteDeleted = 0x09, CmdReadId = 0x0A;
    public const byte CmdReadDeleted = 0x0C, CmdFormatTrack = 0x0D, CmdDumpRegisters = 0x0E, CmdSeek = 0x0F;
    public const byte CmdVersion = 0x10, CmdPerpendicular = 0x12, CmdConfigure = 0x13, CmdLock = 0x14, CmdVerify = 0x16;
    public const byte FlagMultiTrack = 0x80, FlagMfm = 0x40, FlagSkip = 0x20;

    public const byte St0AbnormalTermination = 0x40, St0InvalidCommand = 0x80, St0ReadyChanged = 0xC0;
    public const byte St0SeekEnd = 0x20, St0EquipmentCheck = 0x10, St0NotReady = 0x08;
    public const byte St1EndOfCylinder = 0x80, St1Overrun = 0x10, St1NoData = 0x04, St1NotWritable = 0x02, St1MissingAddressMark = 0x01;
    public const byte St3WriteProtected = 0x40, St3Ready = 0x20, St3Track0 = 0x10, St3TwoSided = 0x08;
    public const byte VersionEnhanced = 0x90;
    public const int SectorSize = 512;

    private enum Phase { Idle, Command, Execution, Result }

    private readonly ushort _base;
    private readonly IIrqSink _irq;
    private readonly int _irqLine;
    private readonly DmaChannel _dma;
    private readonly MachineClock _clock;
    private readonly GuestTimer _timer;
    private readonly FloppyDrive[] _drives = { new(0), new(1) };
    private readonly byte[] _command = new byte[9];
    private readonly byte[] _result = new byte[10];
    private readonly byte[] _sector = new byte[SectorSize];
    private readonly Queue<(byte St0, byte Pcn)> _senses = new();
    private Phase _phase = Phase.Idle;
    private int _commandLength, _commandPos, _resultLength, _resultPos;
    private byte _dor = DorNotReset | DorDmaGate;
    private byte _tdr, _dataRate, _srt = 0x0C, _hlt = 0x01, _config = 0x20, _pretrack, _perpendicular;
    private bool _nonDma, _locked, _irqLevel;
    private bool _completionRaisesIrq;
    private byte _busyDrives;

    public FloppyController(IoBus io, IIrqSink irq, TimerScheduler scheduler, IsaDma dma,
        ushort basePort = DefaultBasePort, int irqLine = DefaultIrq, int dmaChannel = DefaultDmaChannel)
    {
        _base = basePort;
        _irq = irq;
        _irqLine = irqLine;
        _dma = dma.Channel(dmaChannel);
        _clock = scheduler.Clock;
        _timer = scheduler.CreateTimer("fdc-execution", OnExecutionDone);
        io.Register(basePort, 6, Read, Write);
        io.Register((ushort)(basePort + RegDirCcr), 1, Read, Write);
    }

    /// <summary>Guest time from accepting a command with an execution phase to its result/interrupt.</summary>
    public long ExecutionDelayNs { get; set; } = 20_000;

    public FloppyDrive Drive(int unit) => _drives[unit];

    /// <summary>Machine reset: the controller leaves reset with DMA enabled (DOR 0x0C) and drives at cylinder 0; media stay inserted.</summary>
    public void Reset()
    {
        EnterReset();
        _dor = DorNotReset | DorDmaGate;
        _nonDma = _locked = false;
        _config = 0x20;
        _pretrack = _perpendicular = 0;
        foreach (var d in _drives) d.Cylinder = 0;
    }

    public byte DigitalOutput => _dor;

    private bool InReset => (_dor & DorNotReset) == 0;

    /// <summary>
    /// Named, versioned snapshot of the controller and the drives' head positions and change lines (media are part
    /// of the machine configuration, not of this state). A pending execution phase keeps its absolute deadline.
    /// </summary>
    public sealed record State(int Version, int Phase, byte[] Command, int CommandLength, int CommandPos, byte[] Result, int ResultLength,
        int ResultPos, byte[] SenseSt0, byte[] SensePcn, byte Dor, byte Tdr, byte DataRate, byte Srt, byte Hlt, byte Config,
        byte Pretrack, byte Perpendicular, bool NonDma, bool Locked, bool IrqLevel, bool CompletionRaisesIrq, byte BusyDrives,
        long PendingDeadlineNs, int[] Cylinders, bool[] DiskChanged)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        var senses = _senses.ToArray();
        return new State(State.CurrentVersion, (int)_phase, (byte[])_command.Clone(), _commandLength, _commandPos, (byte[])_result.Clone(),
            _resultLength, _resultPos, senses.Select(x => x.St0).ToArray(), senses.Select(x => x.Pcn).ToArray(), _dor, _tdr, _dataRate,
            _srt, _hlt, _config, _pretrack, _perpendicular, _nonDma, _locked, _irqLevel, _completionRaisesIrq, _busyDrives,
            _timer.Armed ? _timer.DeadlineNs : -1, _drives.Select(d => d.Cylinder).ToArray(), _drives.Select(d => d.DiskChanged).ToArray());
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"FDC state version {s.Version} is not supported.");
        _phase = (Phase)s.Phase;
        s.Command.AsSpan(0, _command.Length).CopyTo(_command);
        s.Result.AsSpan(0, _result.Length).CopyTo(_result);
        (_commandLength, _commandPos, _resultLength, _resultPos) = (s.CommandLength, s.CommandPos, s.ResultLength, s.ResultPos);
        _senses.Clear();
        for (int i = 0; i < s.SenseSt0.Length; i++) _senses.Enqueue((s.SenseSt0[i], s.SensePcn[i]));
        (_dor, _tdr, _dataRate, _srt, _hlt, _config, _pretrack, _perpendicular) = (s.Dor, s.Tdr, s.DataRate, s.Srt, s.Hlt, s.Config, s.Pretrack, s.Perpendicular);
        (_nonDma, _locked, _completionRaisesIrq, _busyDrives) = (s.NonDma, s.Locked, s.CompletionRaisesIrq, s.BusyDrives);
        for (int i = 0; i < DriveCount; i++) { _drives[i].Cylinder = s.Cylinders[i]; _drives[i].DiskChanged = s.DiskChanged[i]; }
        if (s.PendingDeadlineNs >= 0) _timer.Schedule(s.PendingDeadlineNs); else _timer.Cancel();
        SetIrq(s.IrqLevel);
    }

    private uint Read(ushort port, int size)
    {
        switch (port - _base)
        {
            case RegSra: return _irqLevel ? 0x80u : 0x00u;
            case RegSrb: return 0xC0u | (uint)(_dor & 1) << 5;
            case RegDor: return _dor;
            case RegTdr: return _tdr;
            case RegMsrDsr: return MainStatus();
            case RegFifo: return ReadFifo();
            case RegDirCcr: return _drives[_dor & 1].DiskChanged ? DirDiskChanged : (byte)0;
            default: return 0xFF;
        }
    }

    private void Write(ushort port, int size, uint value)
    {
        byte b = (byte)value;
        switch (port - _base)
        {
            case RegDor: WriteDor(b); break;
            case RegTdr: _tdr = (byte)(b & 3); break;
            case RegMsrDsr:
                _dataRate = (byte)(b & 3);
                if ((b & DsrSoftwareReset) != 0) { EnterReset(); LeaveReset(); }
                break;
            case RegFifo: WriteFifo(b); break;
            case RegDirCcr: _dataRate = (byte)(b & 3); break;
        }
    }

    private byte MainStatus()
    {
        if (InReset) return 0;
        byte busy = _busyDrives;
        return _phase switch
        {
            Phase.Idle => (byte)(MsrRqm | busy),
            Phase.Command => (byte)(MsrRqm | MsrBusy | busy),
            Phase.Execution => (byte)(MsrBusy | busy | (_nonDma ? MsrNonDma : 0)),
            _ => (byte)(MsrRqm | MsrDio | MsrBusy | busy),
        };
    }

    private void WriteDor(byte value)
    {
        bool wasReset = InReset;
        _dor = value;
        if (!wasReset && InReset) EnterReset();
        else if (wasReset && !InReset) LeaveReset();
    }

    private void EnterReset()
    {
        _timer.Cancel();
        _phase = Phase.Idle;
        _commandPos = _resultPos = _resultLength = 0;
        _senses.Clear();
        _busyDrives = 0;
        SetIrq(false);
    }

    private void LeaveReset()
    {
        // After reset the controller reports a "ready changed" status for each of the four drive selects.
        for (int i = 0; i < 4; i++) _senses.Enqueue(((byte)(St0ReadyChanged | i), 0));
        _phase = Phase.Execution;
        _completionRaisesIrq = true;
        _resultLength = 0;
        _timer.Schedule(_clock.NowNs + ExecutionDelayNs);
    }

    private void SetIrq(bool level)
    {
        if (level == _irqLevel) return;
        _irqLevel = level;
        _irq.SetIrq(_irqLine, level);
    }

    private byte ReadFifo()
    {
        if (_phase != Phase.Result) return 0;
        SetIrq(false);
        byte v = _result[_resultPos++];
        if (_resultPos >= _resultLength) _phase = Phase.Idle;
        return v;
    }

    private void WriteFifo(byte value)
    {
        if (InReset) return;
        if (_phase == Phase.Result || _phase == Phase.Execution) return; // not accepting bytes now
        if (_phase == Phase.Idle)
        {
            if ((value & 0x1F) != CmdSenseInterrupt) SetIrq(false);
            _commandLength = CommandLength(value);
            _commandPos = 0;
            _phase = Phase.Command;
        }
        _command[_commandPos++] = value;
        if (_commandPos >= _commandLength) Execute();
    }

    private static int CommandLength(byte cmd) => (cmd & 0x1F) switch
    {
        CmdReadTrack or CmdWriteData or CmdReadData or CmdWriteDeleted or CmdReadDeleted or CmdVerify or 0x11 or 0x19 or 0x1D => 9,
        CmdSpecify or CmdSeek => 3,
        CmdSenseDrive or CmdRecalibrate or CmdReadId or CmdPerpendicular => 2,
        CmdFormatTrack => 6,
        CmdConfigure => 4,
        _ => 1,
    };

    private void Result(params byte[] bytes) => Result(bytes.AsSpan());

    private void Result(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_result);
        _resultLength = bytes.Length;
        _resultPos = 0;
        _phase = bytes.Length > 0 ? Phase.Result : Phase.Idle;
    }

    /// <summary>Enters the execution phase; the prepared result (or none) appears after the delay with IRQ 6.</summary>
    private void CompleteLater(ReadOnlySpan<byte> result)
    {
        result.CopyTo(_result);
        _resultLength = result.Length;
        _resultPos = 0;
        _phase = Phase.Execution;
        _completionRaisesIrq = true;
        _timer.Schedule(_clock.NowNs + ExecutionDelayNs);
    }

    private void OnExecutionDone(long deadline)
    {
        _busyDrives = 0;
        _phase = _resultLength > 0 ? Phase.Result : Phase.Idle;
        if (_completionRaisesIrq) SetIrq(true);
    }

    private void Execute()
    {
        byte cmd = _command[0];
        int unit = _command.Length > 1 ? _command[1] & 3 : 0;
        int head = (_command[1] >> 2) & 1;
        switch (cmd & 0x1F)
        {
            case CmdSpecify:
                _srt = _command[1];
                _hlt = (byte)(_command[2] & 0xFE);
                _nonDma = (_command[2] & 1) != 0;
                _phase = Phase.Idle;
                break;
            case CmdSenseDrive:
                {
                    var d = unit < DriveCount ? _drives[unit] : null;
                    byte st3 = (byte)(unit | head << 2 | St3Ready);
                    if (d != null)
                    {
                        if (d.WriteProtected) st3 |= St3WriteProtected;
                        if (d.Cylinder == 0) st3 |= St3Track0;
                        if (d.Heads == 2) st3 |= St3TwoSided;
                    }
                    Result(st3);
                    break;
                }
            case CmdRecalibrate:
            case CmdSeek:
                {
                    int target = (cmd & 0x1F) == CmdSeek ? _command[2] : 0;
                    byte st0 = (byte)(St0SeekEnd | head << 2 | unit);
                    if (unit >= DriveCount) st0 |= St0AbnormalTermination | St0EquipmentCheck;
                    else
                    {
                        var d = _drives[unit];
                        d.Cylinder = target;
                        if (d.HasMedia) d.DiskChanged = false;
                    }
                    _senses.Enqueue((st0, (byte)target));
                    _busyDrives |= (byte)(1 << unit);
                    CompleteLater(ReadOnlySpan<byte>.Empty);
                    break;
                }
            case CmdSenseInterrupt:
                SetIrq(false);
                if (_senses.Count > 0)
                {
                    var (st0, pcn) = _senses.Dequeue();
                    if ((st0 & St0ReadyChanged) != St0ReadyChanged && (st0 & 3) < DriveCount) pcn = (byte)_drives[st0 & 3].Cylinder;
                    Result(st0, pcn);
                }
                else Result(St0InvalidCommand);
                break;
            case CmdReadData:
            case CmdWriteData:
                Transfer(write: (cmd & 0x1F) == CmdWriteData, unit, head);
                break;
            case CmdReadId:
                {
                    var d = unit < DriveCount ? _drives[unit] : null;
                    Span<byte> r = stackalloc byte[7];
                    if (d == null || !d.HasMedia || head >= d.Heads)
                    {
                        r[0] = (byte)(St0AbnormalTermination | head << 2 | unit | (d == null ? St0NotReady : 0));
                        r[1] = St1MissingAddressMark;
                        r[2] = 0; r[3] = (byte)(d?.Cylinder ?? 0); r[4] = (byte)head; r[5] = 1; r[6] = 2;
                    }
                    else
                    {
                        r[0] = (byte)(head << 2 | unit);
                        r[1] = 0; r[2] = 0; r[3] = (byte)d.Cylinder; r[4] = (byte)head; r[5] = 1; r[6] = 2;
                    }
                    CompleteLater(r);
                    break;
                }
            case CmdFormatTrack:
                Format(unit, head);
                break;
            case CmdVersion:
                Result(VersionEnhanced);
                break;
            case CmdConfigure:
                _config = _command[2];
                _pretrack = _command[3];
                _phase = Phase.Idle;
                break;
            case CmdPerpendicular:
                _perpendicular = _command[1];
                _phase = Phase.Idle;
                break;
            case CmdLock:
                _locked = (cmd & 0x80) != 0;
                Result((byte)(_locked ? 0x10 : 0));
                break;
            case CmdDumpRegisters:
                Result((byte)_drives[0].Cylinder, (byte)_drives[1].Cylinder, 0, 0, _srt, (byte)(_hlt | (_nonDma ? 1 : 0)),
                    0, (byte)((_locked ? 0x80 : 0) | (_perpendicular & 0x7F)), _config, _pretrack);
                break;
            default:
                Result(St0InvalidCommand);
                break;
        }
    }

    private void Transfer(bool write, int unit, int head)
    {
        bool multiTrack = (_command[0] & FlagMultiTrack) != 0;
        int c = _command[2], h = _command[3], r = _command[4], n = _command[5], eot = _command[6];
        byte st0 = (byte)(head << 2 | unit), st1 = 0, st2 = 0;
        var d = unit < DriveCount ? _drives[unit] : null;
        if (d == null || !d.HasMedia)
        {
            st0 |= St0AbnormalTermination | St0NotReady;
            st1 = St1MissingAddressMark;
        }
        else if (n != 2)
        {
            st0 |= St0AbnormalTermination;
            st1 = St1NoData;
        }
        else if (write && d.WriteProtected)
        {
            st0 |= St0AbnormalTermination;
            st1 = St1NotWritable;
        }
        else if (_nonDma || !_dma.Ready)
        {
            st0 |= St0AbnormalTermination; // PIO transfers are not supported; a masked channel overruns
            st1 = St1Overrun;
        }
        else
        {
            while (true)
            {
                long lba = d.Lba(c, h, r);
                if (lba < 0)
                {
                    st0 |= St0AbnormalTermination;
                    st1 = St1NoData;
                    break;
                }
                int moved;
                if (write)
                {
                    moved = _dma.ReadFromMemory(_sector);
                    if (moved < SectorSize) _sector.AsSpan(moved).Clear();
                    d.Media!.Write(lba, _sector);
                }
                else
                {
                    d.Media!.Read(lba, _sector);
                    moved = _dma.WriteToMemory(_sector);
                }
                bool terminal = !_dma.Ready || moved < SectorSize;
                // Advance to the next sector (the result names the sector after the last one transferred).
                if (r >= eot)
                {
                    r = 1;
                    if (multiTrack && h == 0) { h = 1; if (terminal) break; continue; }
                    if (multiTrack) h = 0;
                    c++;
                    break;
                }
                r++;
                if (terminal) break;
            }
            st0 = (byte)((st0 & ~0x04) | h << 2 | (st0 & St0AbnormalTermination));
        }
        Span<byte> res = [st0, st1, st2, (byte)c, (byte)h, (byte)r, (byte)n];
        CompleteLater(res);
    }

    private void Format(int unit, int head)
    {
        int n = _command[2], sectors = _command[3];
        byte fill = _command[5];
        byte st0 = (byte)(head << 2 | unit), st1 = 0;
        var d = unit < DriveCount ? _drives[unit] : null;
        int c = d?.Cylinder ?? 0, r = 1;
        if (d == null || !d.HasMedia) { st0 |= St0AbnormalTermination | St0NotReady; st1 = St1MissingAddressMark; }
        else if (d.WriteProtected) { st0 |= St0AbnormalTermination; st1 = St1NotWritable; }
        else if (n != 2 || !_dma.Ready) { st0 |= St0AbnormalTermination; st1 = St1Overrun; }
        else
        {
            Span<byte> id = stackalloc byte[4];
            _sector.AsSpan().Fill(fill);
            for (int i = 0; i < sectors; i++)
            {
                if (_dma.ReadFromMemory(id) < 4) { st0 |= St0AbnormalTermination; st1 = St1Overrun; break; }
                c = id[0]; r = id[2];
                long lba = d.Lba(id[0], id[1], id[2]);
                if (lba >= 0) d.Media!.Write(lba, _sector);
            }
        }
        Span<byte> res = [st0, st1, 0, (byte)c, (byte)head, (byte)r, (byte)n];
        CompleteLater(res);
    }
}

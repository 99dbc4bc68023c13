using VmPortal.Emulator.Io;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Devices.Rtc;

/// <summary>
/// Motorola MC146818 real-time clock with 128 bytes of CMOS RAM, at 0x70 (index; bit 7 = NMI mask) and 0x71 (data).
/// Registers: 00 seconds, 01 alarm seconds, 02 minutes, 03 alarm minutes, 04 hours, 05 alarm hours, 06 day of week,
/// 07 day of month, 08 month, 09 year, 0A register A (UIP, divider, periodic rate), 0B register B (SET, PIE, AIE,
/// UIE, SQWE, DM binary, 24/12, DSE), 0C register C (IRQF, PF, AF, UF; cleared by reading), 0D register D (VRT),
/// 32 century; the rest is battery-backed RAM (see <see cref="CmosLayout"/> for what the BIOS reads there).
/// The time runs from <see cref="MachineClock.HostTimeAtStart"/> (UTC) plus guest elapsed time, so guest and host
/// clocks agree; a guest that sets the clock moves only its own RTC. IRQ 8 carries the periodic, alarm and
/// update-ended interrupts, armed as guest timers only while enabled.
/// Guests: SeaBIOS (memory size, boot order, INT 1Ah time, periodic interrupt for waits), Linux (rtc_cmos,
/// boot time via mc146818_get_time polling UIP), memtest86+, DOS.
/// </summary>
public sealed class Mc146818Rtc
{
    public const ushort DefaultBasePort = 0x70;
    public const int IndexPort = 0, DataPort = 1;
    public const byte NmiDisableBit = 0x80;

    public const int RegSeconds = 0x00, RegSecondsAlarm = 0x01, RegMinutes = 0x02, RegMinutesAlarm = 0x03;
    public const int RegHours = 0x04, RegHoursAlarm = 0x05, RegDayOfWeek = 0x06, RegDayOfMonth = 0x07;
    public const int RegMonth = 0x08, RegYear = 0x09, RegA = 0x0A, RegB = 0x0B, RegC = 0x0C, RegD = 0x0D;
    public const int RegCentury = 0x32;

    public const byte AUpdateInProgress = 0x80, ADividerMask = 0x70, ADividerNormal = 0x20, ARateMask = 0x0F;
    public const byte BSet = 0x80, BPeriodicEnable = 0x40, BAlarmEnable = 0x20, BUpdateEnable = 0x10;
    public const byte BSquareWave = 0x08, BBinary = 0x04, B24Hour = 0x02, BDaylightSaving = 0x01;
    public const byte CIrqFlag = 0x80, CPeriodic = 0x40, CAlarm = 0x20, CUpdate = 0x10;
    public const byte DValidRam = 0x80;
    public const byte AlarmDontCare = 0xC0;

    /// <summary>How long before each second's update UIP reads as set (244 µs on the real chip).</summary>
    public const long UpdateInProgressNs = 244_000;
    private const long NsPerSecond = 1_000_000_000;

    private readonly byte[] _cmos = new byte[128];
    private readonly IIrqSink _irq;
    private readonly int _irqLine;
    private readonly MachineClock _clock;
    private readonly GuestTimer _periodicTimer;
    private readonly GuestTimer _secondTimer;
    private int _index;
    private bool _timeSet;        // guest or host chose a time; otherwise HostTimeAtStart is used
    private DateTime _baseTime;   // RTC time at guest time _baseNs
    private long _baseNs;
    private long _lastSecondSeen; // for update-ended flags noticed lazily when C is read
    private bool _irqLevel;

    public Mc146818Rtc(IoBus io, IIrqSink irq, TimerScheduler scheduler, ushort basePort = DefaultBasePort, int irqLine = 8)
    {
        _irq = irq;
        _irqLine = irqLine;
        _clock = scheduler.Clock;
        _periodicTimer = scheduler.CreateTimer("rtc-periodic", OnPeriodic);
        _secondTimer = scheduler.CreateTimer("rtc-update", OnSecond);
        _cmos[RegA] = ADividerNormal | 0x06; // 32.768 kHz time base, 1024 Hz periodic rate
        _cmos[RegB] = B24Hour;               // BCD, 24-hour
        _cmos[RegD] = DValidRam;
        io.Register(basePort, 2, (p, s) => p == basePort ? 0xFFu : ReadData(), (p, s, v) =>
        {
            if (p == basePort) WriteIndex((byte)v); else WriteData((byte)v);
        });
    }

    /// <summary>True when bit 7 of the last write to port 0x70 disabled NMIs.</summary>
    public bool NmiMasked { get; private set; }

    /// <summary>Raised when the NMI mask bit changes (the machine gates NMI delivery with it).</summary>
    public event Action<bool>? NmiMaskChanged;

    /// <summary>Host-side access to the CMOS bytes (setup before power-on, tests). Does not run side effects.</summary>
    public byte this[int index]
    {
        get => _cmos[index & 0x7F];
        set => _cmos[index & 0x7F] = value;
    }

    /// <summary>
    /// The chip's RESET# input (machine reset): clears PIE, AIE, UIE, SQWE and the interrupt flags. Time and CMOS RAM
    /// are battery-backed and survive.
    /// </summary>
    public void Reset()
    {
        _cmos[RegB] &= unchecked((byte)~(BPeriodicEnable | BAlarmEnable | BUpdateEnable | BSquareWave));
        _cmos[RegC] = 0;
        UpdateIrq();
        RearmTimers(_clock.NowNs);
    }

    /// <summary>Sets the RTC's current time (host side; the guest does the same through register B's SET bit).</summary>
    public void SetTime(DateTime time)
    {
        _baseTime = time;
        _baseNs = _clock.NowNs;
        _timeSet = true;
        _lastSecondSeen = SecondIndex(_baseNs);
    }

    /// <summary>The RTC's idea of now.</summary>
    public DateTime Now => TimeAt(_clock.NowNs);

    private DateTime TimeAt(long ns)
    {
        if (!_timeSet)
        {
            var start = _clock.HostTimeAtStart;
            _baseTime = start == default ? new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc) : start.UtcDateTime;
            _baseNs = 0;
            _timeSet = true;
        }
        return _baseTime.AddTicks((ns - _baseNs) / 100);
    }

    private bool ClockRunning => (_cmos[RegA] & ADividerMask) == ADividerNormal && (_cmos[RegB] & BSet) == 0;

    /// <summary>Nanoseconds into the current RTC second.</summary>
    private long NsIntoSecond(long ns)
    {
        TimeAt(ns);
        long fraction = _baseTime.Ticks % TimeSpan.TicksPerSecond * 100;
        long v = (fraction + (ns - _baseNs)) % NsPerSecond;
        return v < 0 ? v + NsPerSecond : v;
    }

    private long SecondIndex(long ns)
    {
        TimeAt(ns);
        long fraction = _baseTime.Ticks % TimeSpan.TicksPerSecond * 100;
        return (fraction + (ns - _baseNs)) / NsPerSecond;
    }

    private void WriteIndex(byte value)
    {
        _index = value & 0x7F;
        bool masked = (value & NmiDisableBit) != 0;
        if (masked != NmiMasked)
        {
            NmiMasked = masked;
            NmiMaskChanged?.Invoke(masked);
        }
    }

    private uint ReadData()
    {
        long now = _clock.NowNs;
        switch (_index)
        {
            case RegSeconds: case RegMinutes: case RegHours: case RegDayOfWeek:
            case RegDayOfMonth: case RegMonth: case RegYear: case RegCentury:
                if (ClockRunning) StoreTime(TimeAt(now));
                return _cmos[_index];
            case RegA:
                {
                    byte a = (byte)(_cmos[RegA] & ~AUpdateInProgress);
                    if (ClockRunning && NsIntoSecond(now) >= NsPerSecond - UpdateInProgressNs) a |= AUpdateInProgress;
                    return a;
                }
            case RegC:
                {
                    NoticeUpdates(now);
                    byte c = _cmos[RegC];
                    _cmos[RegC] = 0;
                    UpdateIrq();
                    return c;
                }
            case RegD:
                return DValidRam;
            default:
                return _cmos[_index];
        }
    }

    private void WriteData(byte value)
    {
        long now = _clock.NowNs;
        switch (_index)
        {
            case RegSeconds: case RegMinutes: case RegHours: case RegDayOfWeek:
            case RegDayOfMonth: case RegMonth: case RegYear: case RegCentury:
                if (ClockRunning) StoreTime(TimeAt(now));
                _cmos[_index] = value;
                if (ClockRunning) LoadTimeFromRegisters(now);
                return;
            case RegA:
                {
                    bool wasRunning = ClockRunning;
                    if (wasRunning) StoreTime(TimeAt(now));
                    _cmos[RegA] = (byte)(value & ~AUpdateInProgress);
                    if (!wasRunning && ClockRunning) LoadTimeFromRegisters(now);
                    RearmTimers(now);
                    return;
                }
            case RegB:
                {
                    bool wasRunning = ClockRunning;
                    if (wasRunning) StoreTime(TimeAt(now));
                    if ((value & BSet) != 0) value &= unchecked((byte)~BUpdateEnable); // SET clears UIE
                    _cmos[RegB] = value;
                    if (!wasRunning && ClockRunning) LoadTimeFromRegisters(now);
                    else if (wasRunning && ClockRunning) StoreTime(TimeAt(now)); // format may have changed
                    UpdateIrq();
                    RearmTimers(now);
                    return;
                }
            case RegC: case RegD:
                return; // read-only
            default:
                _cmos[_index] = value;
                return;
        }
    }

    private int Encode(int v) => (_cmos[RegB] & BBinary) != 0 ? v : (v / 10) << 4 | v % 10;

    private int Decode(int v) => (_cmos[RegB] & BBinary) != 0 ? v : (v >> 4) * 10 + (v & 0x0F);

    private byte EncodeHour(int hour)
    {
        if ((_cmos[RegB] & B24Hour) != 0) return (byte)Encode(hour);
        int h12 = hour % 12 == 0 ? 12 : hour % 12;
        return (byte)(Encode(h12) | (hour >= 12 ? 0x80 : 0));
    }

    private int DecodeHour(byte reg)
    {
        if ((_cmos[RegB] & B24Hour) != 0) return Decode(reg);
        int h = Decode(reg & 0x7F) % 12;
        return (reg & 0x80) != 0 ? h + 12 : h;
    }

    private void StoreTime(DateTime t)
    {
        _cmos[RegSeconds] = (byte)Encode(t.Second);
        _cmos[RegMinutes] = (byte)Encode(t.Minute);
        _cmos[RegHours] = EncodeHour(t.Hour);
        _cmos[RegDayOfWeek] = (byte)Encode((int)t.DayOfWeek + 1);
        _cmos[RegDayOfMonth] = (byte)Encode(t.Day);
        _cmos[RegMonth] = (byte)Encode(t.Month);
        _cmos[RegYear] = (byte)Encode(t.Year % 100);
        _cmos[RegCentury] = (byte)Encode(t.Year / 100);
    }

    /// <summary>Takes the time the guest wrote into the registers. Impossible dates are ignored.</summary>
    private void LoadTimeFromRegisters(long now)
    {
        int sec = Decode(_cmos[RegSeconds]), min = Decode(_cmos[RegMinutes]), hour = DecodeHour(_cmos[RegHours]);
        int day = Decode(_cmos[RegDayOfMonth]), month = Decode(_cmos[RegMonth]);
        int year = Decode(_cmos[RegCentury]) * 100 + Decode(_cmos[RegYear]);
        if (sec > 59 || min > 59 || hour > 23 || month < 1 || month > 12 || year < 1 || year > 9999) return;
        if (day < 1 || day > DateTime.DaysInMonth(year, month)) return;
        // Keep the sub-second phase so a guest that sets the clock does not shift the update cycle.
        long phase = NsIntoSecond(now);
        _baseTime = new DateTime(year, month, day, hour, min, sec, DateTimeKind.Utc);
        _baseNs = now - phase;
        _lastSecondSeen = SecondIndex(now);
    }

    private void NoticeUpdates(long now)
    {
        if (!ClockRunning) return;
        long second = SecondIndex(now);
        if (second != _lastSecondSeen)
        {
            _lastSecondSeen = second;
            _cmos[RegC] |= CUpdate;
        }
    }

    private void UpdateIrq()
    {
        byte b = _cmos[RegB];
        byte c = _cmos[RegC];
        bool irq = ((c & CPeriodic) != 0 && (b & BPeriodicEnable) != 0)
                || ((c & CAlarm) != 0 && (b & BAlarmEnable) != 0)
                || ((c & CUpdate) != 0 && (b & BUpdateEnable) != 0);
        if (irq) _cmos[RegC] |= CIrqFlag; else _cmos[RegC] &= unchecked((byte)~CIrqFlag);
        if (irq != _irqLevel)
        {
            _irqLevel = irq;
            _irq.SetIrq(_irqLine, irq);
        }
    }

    /// <summary>Periodic interrupt period for rate select bits 1–15 (32.768 kHz time base), 0 when off.</summary>
    public static long PeriodicRateNs(int rate)
    {
        if (rate == 0) return 0;
        if (rate < 3) rate += 7; // rates 1 and 2 repeat 8 and 9 with a 32.768 kHz base
        return (1L << (rate - 1)) * NsPerSecond / 32768;
    }

    private void RearmTimers(long now)
    {
        long period = PeriodicRateNs(_cmos[RegA] & ARateMask);
        bool divider = (_cmos[RegA] & ADividerMask) == ADividerNormal;
        if (period > 0 && divider && (_cmos[RegB] & BPeriodicEnable) != 0)
        {
            if (!_periodicTimer.Armed) _periodicTimer.Schedule(now + period);
        }
        else _periodicTimer.Cancel();

        if (ClockRunning && (_cmos[RegB] & (BUpdateEnable | BAlarmEnable)) != 0)
        {
            if (!_secondTimer.Armed) _secondTimer.Schedule(now + NsPerSecond - NsIntoSecond(now));
        }
        else _secondTimer.Cancel();
    }

    private void OnPeriodic(long deadline)
    {
        _cmos[RegC] |= CPeriodic;
        UpdateIrq();
        long period = PeriodicRateNs(_cmos[RegA] & ARateMask);
        if (period <= 0) return;
        long now = _clock.NowNs;
        long next = deadline + period;
        if (next <= now) next = now + period - (now - deadline) % period; // behind: skip missed periods
        _periodicTimer.Schedule(next);
    }

    private void OnSecond(long deadline)
    {
        long now = Math.Max(deadline, _clock.NowNs);
        if (!ClockRunning) return;
        _lastSecondSeen = SecondIndex(now);
        _cmos[RegC] |= CUpdate;
        var t = TimeAt(now);
        if (AlarmMatches(_cmos[RegSecondsAlarm], (byte)Encode(t.Second))
            && AlarmMatches(_cmos[RegMinutesAlarm], (byte)Encode(t.Minute))
            && AlarmMatches(_cmos[RegHoursAlarm], EncodeHour(t.Hour)))
            _cmos[RegC] |= CAlarm;
        UpdateIrq();
        _secondTimer.Schedule(now + NsPerSecond - NsIntoSecond(now));
    }

    private static bool AlarmMatches(byte alarm, byte value) => (alarm & AlarmDontCare) == AlarmDontCare || alarm == value;

    /// <summary>Recomputes the standard checksum at 0x2E/0x2F over bytes 0x10–0x2D.</summary>
    public void UpdateChecksum()
    {
        int sum = 0;
        for (int i = CmosLayout.ChecksumStart; i <= CmosLayout.ChecksumEnd; i++) sum += _cmos[i];
        _cmos[CmosLayout.ChecksumHigh] = (byte)(sum >> 8);
        _cmos[CmosLayout.ChecksumLow] = (byte)sum;
    }

    /// <summary>Named, versioned snapshot: CMOS bytes, selected index, NMI mask and the time base.</summary>
    public sealed record State(int Version, byte[] Cmos, int Index, bool NmiMasked, DateTime BaseTime, long BaseNs, long LastSecondSeen)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        TimeAt(_clock.NowNs);
        return new State(State.CurrentVersion, (byte[])_cmos.Clone(), _index, NmiMasked, _baseTime, _baseNs, _lastSecondSeen);
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"RTC state version {s.Version} is not supported.");
        s.Cmos.AsSpan(0, 128).CopyTo(_cmos);
        (_index, NmiMasked, _baseTime, _baseNs, _timeSet) = (s.Index, s.NmiMasked, s.BaseTime, s.BaseNs, true);
        _lastSecondSeen = s.LastSecondSeen;
        UpdateIrq();
        RearmTimers(_clock.NowNs);
    }
}

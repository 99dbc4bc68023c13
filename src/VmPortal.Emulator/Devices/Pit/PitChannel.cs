namespace VmPortal.Emulator.Devices.Pit;

/// <summary>
/// One 8254 counter. Its count is not decremented tick by tick: it is computed from guest time
/// (1.193182 MHz since the moment counting started), so reading it or its OUT pin costs nothing while idle.
/// Modes 0–5 (6 and 7 alias 2 and 3), binary or BCD counting, latch and read-back, lo/hi/lo-hi access,
/// and the GATE input (modes 0/4 pause, 1/5 trigger, 2/3 stop and restart). Owned by <see cref="Pit8254"/>.
/// </summary>
public sealed class PitChannel
{
    public const int AccessLatch = 0, AccessLow = 1, AccessHigh = 2, AccessLowHigh = 3;

    private bool _counting;        // counting from _startCount at _startNs
    private long _startNs;
    private int _startCount;       // 1..modulus
    private int _frozenCount;      // shown while not counting
    private bool _staticOut;       // OUT while not counting
    private bool _terminalSeen;    // mode 0: terminal count reached before a gate pause
    private bool _writeHighNext, _readHighNext, _latchHighNext;
    private byte _writeLow;
    private int _latchedCount = -1;
    private int _latchedStatus = -1;
    private bool _nullCount = true;

    internal PitChannel(int index, bool gate)
    {
        Index = index;
        Gate = gate;
        Mode = 0;
        Access = AccessLowHigh;
        Reload = 0x10000;
        _frozenCount = 0;
        _staticOut = true;
    }

    public int Index { get; }
    public int Mode { get; private set; }
    public int Access { get; private set; }
    public bool Bcd { get; private set; }
    /// <summary>Period / initial count in input clock ticks (1–65536, or 1–10000 in BCD).</summary>
    public int Reload { get; private set; }
    public bool Gate { get; private set; }
    /// <summary>True between a control word and the first complete count write.</summary>
    public bool WaitingForCount { get; private set; } = true;
    public bool Counting => _counting;
    public long StartNs => _startNs;
    public int StartCount => _startCount;

    private int Modulus => Bcd ? 10000 : 0x10000;

    /// <summary>Control word for this counter (not latch or read-back).</summary>
    internal void SetControl(int access, int mode, bool bcd)
    {
        Access = access;
        Mode = mode > 5 ? mode - 4 : mode;
        Bcd = bcd;
        _writeHighNext = _readHighNext = _latchHighNext = false;
        _latchedCount = -1;
        _latchedStatus = -1;
        _counting = false;
        _terminalSeen = false;
        _nullCount = true;
        WaitingForCount = true;
        _staticOut = Mode != 0;
    }

    internal void LatchCount(long nowNs)
    {
        if (_latchedCount >= 0) return; // a second latch before the read is ignored
        _latchedCount = CountAt(nowNs);
        _latchHighNext = false;
    }

    internal void LatchStatus(long nowNs)
    {
        if (_latchedStatus >= 0) return;
        _latchedStatus = (OutAt(nowNs) ? 0x80 : 0) | (_nullCount ? 0x40 : 0) | (Access << 4) | (Mode << 1) | (Bcd ? 1 : 0);
    }

    internal byte Read(long nowNs)
    {
        if (_latchedStatus >= 0)
        {
            byte s = (byte)_latchedStatus;
            _latchedStatus = -1;
            return s;
        }
        int value;
        bool high;
        if (_latchedCount >= 0)
        {
            value = _latchedCount;
            high = Access == AccessHigh || (Access == AccessLowHigh && _latchHighNext);
            if (Access == AccessLowHigh && !_latchHighNext) _latchHighNext = true;
            else { _latchedCount = -1; _latchHighNext = false; }
        }
        else
        {
            value = CountAt(nowNs);
            high = Access == AccessHigh || (Access == AccessLowHigh && _readHighNext);
            if (Access == AccessLowHigh) _readHighNext = !_readHighNext;
        }
        int encoded = Bcd ? ToBcd(value) : value;
        return (byte)(high ? encoded >> 8 : encoded);
    }

    /// <summary>Writes one count byte. Returns true when a complete new count was loaded.</summary>
    internal bool Write(byte value, long nowNs)
    {
        int raw;
        switch (Access)
        {
            case AccessLow: raw = value; break;
            case AccessHigh: raw = value << 8; break;
            default:
                if (!_writeHighNext)
                {
                    _writeLow = value;
                    _writeHighNext = true;
                    if (Mode == 0)
                    {
                        // Writing the first byte of a mode-0 count stops counting and drops OUT.
                        _frozenCount = CountAt(nowNs);
                        _counting = false;
                        _terminalSeen = false;
                        _staticOut = false;
                    }
                    return false;
                }
                _writeHighNext = false;
                raw = _writeLow | value << 8;
                break;
        }
        Load(raw, nowNs);
        return true;
    }

    private void Load(int raw, long nowNs)
    {
        int count = Bcd ? FromBcd(raw) : raw;
        if (count == 0) count = Modulus;
        Reload = count;
        _nullCount = false;
        bool first = WaitingForCount;
        WaitingForCount = false;
        switch (Mode)
        {
            case 0:
                _terminalSeen = false;
                _staticOut = false;
                if (Gate) Start(nowNs, count);
                else { _counting = false; _frozenCount = count; }
                break;
            case 4:
                _staticOut = true;
                if (Gate) Start(nowNs, count);
                else { _counting = false; _frozenCount = count; }
                break;
            case 2:
            case 3:
                if (Gate) Start(nowNs, count);
                else { _counting = false; _frozenCount = count; _staticOut = true; }
                break;
            default: // 1 and 5 wait for a gate trigger; a new count is used at the next trigger
                if (first) { _frozenCount = count; _staticOut = true; }
                break;
        }
    }

    private void Start(long nowNs, int count)
    {
        _counting = true;
        _startNs = nowNs;
        _startCount = count;
    }

    internal void SetGate(bool gate, long nowNs)
    {
        if (gate == Gate) return;
        if (WaitingForCount) { Gate = gate; return; }
        switch (Mode)
        {
            case 0:
            case 4:
                if (!gate)
                {
                    bool outNow = OutAt(nowNs);
                    _frozenCount = CountAt(nowNs);
                    _terminalSeen = Mode == 0 && outNow;
                    _staticOut = outNow || Mode == 4;
                    _counting = false;
                }
                else
                {
                    int from = _frozenCount == 0 ? Modulus : _frozenCount;
                    Start(nowNs, from);
                }
                break;
            case 1:
            case 5:
                if (gate) Start(nowNs, Reload); // rising edge triggers
                break;
            default: // 2, 3
                if (!gate)
                {
                    _frozenCount = CountAt(nowNs);
                    _counting = false;
                    _staticOut = true;
                }
                else Start(nowNs, Reload);
                break;
        }
        Gate = gate;
    }

    /// <summary>Elapsed input-clock ticks since counting started.</summary>
    private long Elapsed(long nowNs) => nowNs <= _startNs ? 0 : Pit8254.NsToTicks(nowNs - _startNs);

    public int CountAt(long nowNs)
    {
        if (!_counting) return _frozenCount % Modulus;
        long e = Elapsed(nowNs);
        int n = _startCount;
        switch (Mode)
        {
            case 2:
                return (int)(n - e % n) % Modulus;
            case 3:
                {
                    long phase = e % n;
                    long highLen = (n + 1) / 2;
                    long inHalf = phase < highLen ? phase : phase - highLen;
                    long c = n - 2 * inHalf;
                    if ((n & 1) != 0 && phase < highLen) c -= 1; // odd counts: first step goes N-1
                    if (c <= 0) c += 2;
                    return (int)(c % Modulus) & ~1;
                }
            default:
                {
                    long c = (n - e) % Modulus;
                    if (c < 0) c += Modulus;
                    return (int)c;
                }
        }
    }

    public bool OutAt(long nowNs)
    {
        if (!_counting) return _staticOut;
        long e = Elapsed(nowNs);
        int n = _startCount;
        switch (Mode)
        {
            case 0: return _terminalSeen || e >= n;
            case 1: return e >= n;
            case 2: return n == 1 || e % n != n - 1;
            case 3: return e % n < (n + 1) / 2;
            default: return e != n; // 4, 5: one tick low at terminal count
        }
    }

    /// <summary>Guest time of the next rising edge of OUT after <paramref name="afterNs"/>, or -1 if none will come.</summary>
    public long NextRisingEdgeNs(long afterNs)
    {
        if (!_counting) return -1;
        long e = Elapsed(afterNs);
        int n = _startCount;
        long tick;
        switch (Mode)
        {
            case 0:
            case 1:
                if (_terminalSeen || e >= n) return -1;
                tick = n;
                break;
            case 2:
            case 3:
                tick = (e / n + 1) * n;
                break;
            default:
                if (e > n) return -1;
                tick = n + 1;
                break;
        }
        long ns = _startNs + Pit8254.TicksToNs(tick);
        return ns <= afterNs ? afterNs + 1 : ns;
    }

    /// <summary>Named, versioned snapshot of one counter (times are absolute guest nanoseconds).</summary>
    public sealed record State(int Version, int Mode, int Access, bool Bcd, int Reload, bool Gate, bool WaitingForCount,
        bool Counting, long StartNs, int StartCount, int FrozenCount, bool StaticOut, bool TerminalSeen,
        bool WriteHighNext, bool ReadHighNext, bool LatchHighNext, byte WriteLow, int LatchedCount, int LatchedStatus, bool NullCount)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, Mode, Access, Bcd, Reload, Gate, WaitingForCount, _counting, _startNs,
        _startCount, _frozenCount, _staticOut, _terminalSeen, _writeHighNext, _readHighNext, _latchHighNext, _writeLow,
        _latchedCount, _latchedStatus, _nullCount);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"PIT counter state version {s.Version} is not supported.");
        (Mode, Access, Bcd, Reload, Gate, WaitingForCount) = (s.Mode, s.Access, s.Bcd, s.Reload, s.Gate, s.WaitingForCount);
        (_counting, _startNs, _startCount, _frozenCount, _staticOut, _terminalSeen) = (s.Counting, s.StartNs, s.StartCount, s.FrozenCount, s.StaticOut, s.TerminalSeen);
        (_writeHighNext, _readHighNext, _latchHighNext, _writeLow) = (s.WriteHighNext, s.ReadHighNext, s.LatchHighNext, s.WriteLow);
        (_latchedCount, _latchedStatus, _nullCount) = (s.LatchedCount, s.LatchedStatus, s.NullCount);
    }

    private static int ToBcd(int v)
    {
        v %= 10000;
        return (v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10;
    }

    private static int FromBcd(int v) =>
        Math.Min((v >> 12 & 0xF), 9) * 1000 + Math.Min((v >> 8 & 0xF), 9) * 100 + Math.Min((v >> 4 & 0xF), 9) * 10 + Math.Min(v & 0xF, 9);
}

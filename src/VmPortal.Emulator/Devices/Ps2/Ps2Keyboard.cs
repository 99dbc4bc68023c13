namespace VmPortal.Emulator.Devices.Ps2;

/// <summary>
/// A PS/2 (MF2) keyboard behind the i8042's first port. It speaks scancode set 2 (set 1 on request with F0 01;
/// set 3 is accepted and served as set 2); the controller translates to set 1 when its command byte says so.
/// Commands: FF reset (FA, AA), FE resend, F6 defaults, F5 disable, F4 enable, F3 typematic (+rate; typematic
/// repeat itself is not generated), F2 identify (FA AB 83), F0 scancode set (+0 query / 1–3), EE echo, ED LEDs (+mask).
/// Unknown commands answer FE.
///
/// Input API (any thread; bytes wait in a locked queue the controller drains on the machine thread):
/// <list type="bullet">
/// <item><see cref="KeySet1"/>(code, down): a set 1 make code, 0x01–0x7F, or 0xE0nn for extended keys
/// (e.g. 0xE048 Up, 0xE01D Right Ctrl, 0xE038 AltGr, 0xE05B Left Windows). <see cref="PrintScreenSet1"/> (0xE037)
/// and <see cref="PauseSet1"/> (0xE11D) produce the full multi-byte sequences.</item>
/// <item><see cref="KeyDown"/>/<see cref="KeyUp"/>(code): the same as <see cref="KeySet1"/> with down = true/false.</item>
/// <item><see cref="KeySet2"/>(code, down): the same with set 2 codes (0xE075 Up, <see cref="PrintScreenSet2"/> 0xE07C,
/// <see cref="PauseSet2"/> 0xE114).</item>
/// <item><see cref="InjectScancodes"/>(bytes, set2): raw byte sequences as produced by VmPortal.Core's KeyboardMap.</item>
/// </list>
/// Keys pressed while scanning is disabled (F5, or before the guest enables it after a reset) are dropped.
/// Guests: SeaBIOS (INT 16h keyboard, boot menu), Linux atkbd, memtest86+, iPXE.
/// </summary>
public sealed class Ps2Keyboard : IPs2Device
{
    public const byte CmdSetLeds = 0xED, CmdEcho = 0xEE, CmdScancodeSet = 0xF0, CmdIdentify = 0xF2, CmdTypematic = 0xF3;
    public const byte CmdEnable = 0xF4, CmdDisable = 0xF5, CmdDefaults = 0xF6, CmdResend = 0xFE, CmdReset = 0xFF;
    public const byte Ack = 0xFA, Resend = 0xFE, SelfTestPassed = 0xAA, EchoReply = 0xEE, IdByte1 = 0xAB, IdByte2 = 0x83;
    public const byte ExtendedPrefix = 0xE0, PausePrefix = 0xE1, BreakPrefix = 0xF0;
    public const ushort PrintScreenSet1 = 0xE037, PauseSet1 = 0xE11D, PrintScreenSet2 = 0xE07C, PauseSet2 = 0xE114;
    public const int QueueCapacity = 256;

    private readonly object _lock = new();
    private readonly Queue<byte> _queue = new();
    private byte _pendingCommand;
    private byte _lastSent = Ack;
    private bool _scanning = true;
    private int _scancodeSet = 2;

    public event Action? DataQueued;

    /// <summary>LED state from the last ED command: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock.</summary>
    public byte Leds { get; private set; }

    public bool ScanningEnabled => _scanning;
    public int ScancodeSet => _scancodeSet;
    public byte TypematicRate { get; private set; } = 0x2B;

    /// <summary>Presses a key given by its set 1 code (0xE0nn for extended keys, <see cref="PrintScreenSet1"/>, <see cref="PauseSet1"/>). Thread-safe.</summary>
    public void KeyDown(ushort set1Code) => KeySet1(set1Code, true);

    /// <summary>Releases a key given by its set 1 code. Thread-safe.</summary>
    public void KeyUp(ushort set1Code) => KeySet1(set1Code, false);

    /// <summary>
    /// Queues a raw scancode byte sequence as the console produced it (make or break bytes of one or more keys,
    /// including E0/E1 prefixes) in set 1 (<paramref name="set2"/> false) or set 2. The bytes are converted to what
    /// this keyboard emits in its current set, so the guest reads the same set 1 bytes back through the translating
    /// controller. Unknown codes are dropped. Thread-safe.
    /// </summary>
    public void InjectScancodes(ReadOnlySpan<byte> bytes, bool set2)
    {
        if (bytes.IsEmpty) return;
        lock (_lock)
        {
            if (!_scanning) return;
            bool native1 = _scancodeSet == 1;
            if (_queue.Count + 2 * bytes.Length > QueueCapacity) return;
            bool breakNext = false;
            foreach (byte b in bytes)
            {
                if (b is ExtendedPrefix or PausePrefix) { _queue.Enqueue(b); continue; }
                if (set2 == !native1) { _queue.Enqueue(b); continue; } // already in the keyboard's set
                if (set2)
                {
                    // set 2 → native set 1
                    if (b == BreakPrefix) { breakNext = true; continue; }
                    byte s1 = ScancodeTables.TranslateToSet1(b);
                    _queue.Enqueue(breakNext ? (byte)(s1 | 0x80) : s1);
                    breakNext = false;
                }
                else
                {
                    // set 1 → set 2
                    byte s2 = ScancodeTables.Set1ToSet2((byte)(b & 0x7F));
                    if (s2 == 0) continue;
                    if ((b & 0x80) != 0) _queue.Enqueue(BreakPrefix);
                    _queue.Enqueue(s2);
                }
            }
        }
        DataQueued?.Invoke();
    }

    /// <summary>Presses or releases a key given by its set 1 code (0xE0nn for extended keys). Thread-safe.</summary>
    public void KeySet1(ushort code, bool down)
    {
        if (code == PauseSet1) { KeySet2(PauseSet2, down); return; }
        byte set2 = ScancodeTables.Set1ToSet2((byte)(code & 0x7F));
        if (set2 == 0) return;
        bool extended = (code >> 8) == ExtendedPrefix;
        KeySet2((ushort)(extended ? 0xE000 | set2 : set2), down);
    }

    /// <summary>Presses or releases a key given by its set 2 code (0xE0nn for extended keys). Thread-safe.</summary>
    public void KeySet2(ushort code, bool down)
    {
        Span<byte> seq = stackalloc byte[8];
        int n = 0;
        bool extended = (code >> 8) == ExtendedPrefix;
        byte baseCode = (byte)code;
        lock (_lock)
        {
            if (!_scanning) return;
            if (_scancodeSet == 1)
            {
                n = Set1Sequence(code, down, seq);
            }
            else if (code == PauseSet2)
            {
                if (!down) return; // Pause has no break sequence
                ReadOnlySpan<byte> pause = [PausePrefix, 0x14, 0x77, PausePrefix, BreakPrefix, 0x14, BreakPrefix, 0x77];
                pause.CopyTo(seq);
                n = pause.Length;
            }
            else if (code == PrintScreenSet2)
            {
                ReadOnlySpan<byte> seqBytes = down
                    ? [ExtendedPrefix, 0x12, ExtendedPrefix, 0x7C]
                    : [ExtendedPrefix, BreakPrefix, 0x7C, ExtendedPrefix, BreakPrefix, 0x12];
                seqBytes.CopyTo(seq);
                n = seqBytes.Length;
            }
            else
            {
                if (extended) seq[n++] = ExtendedPrefix;
                if (!down) seq[n++] = BreakPrefix;
                seq[n++] = baseCode;
            }
            if (_queue.Count + n > QueueCapacity) return; // buffer full: the key is lost, as on hardware
            for (int i = 0; i < n; i++) _queue.Enqueue(seq[i]);
        }
        if (n > 0) DataQueued?.Invoke();
    }

    // Native set 1 output (keyboard switched to set 1 with translation off).
    private static int Set1Sequence(ushort set2Code, bool down, Span<byte> seq)
    {
        int n = 0;
        if (set2Code == PauseSet2)
        {
            if (!down) return 0;
            ReadOnlySpan<byte> pause = [PausePrefix, 0x1D, 0x45, PausePrefix, 0x9D, 0xC5];
            pause.CopyTo(seq);
            return pause.Length;
        }
        if (set2Code == PrintScreenSet2)
        {
            ReadOnlySpan<byte> s = down ? [ExtendedPrefix, 0x2A, ExtendedPrefix, 0x37] : [ExtendedPrefix, 0xB7, ExtendedPrefix, 0xAA];
            s.CopyTo(seq);
            return s.Length;
        }
        if ((set2Code >> 8) == ExtendedPrefix) seq[n++] = ExtendedPrefix;
        byte b = ScancodeTables.TranslateToSet1((byte)set2Code);
        seq[n++] = (byte)(down ? b : b | 0x80);
        return n;
    }

    public bool TryDequeue(out byte value)
    {
        lock (_lock)
        {
            if (_queue.Count == 0) { value = 0; return false; }
            value = _queue.Dequeue();
            return true;
        }
    }

    /// <summary>Bytes waiting to be sent to the controller.</summary>
    public int QueuedBytes
    {
        get { lock (_lock) return _queue.Count; }
    }

    /// <summary>Machine reset: defaults, empty buffer, scanning on.</summary>
    public void Reset()
    {
        lock (_lock) { _queue.Clear(); Defaults(); Leds = 0; }
    }

    public void Receive(byte value)
    {
        lock (_lock)
        {
            if (_pendingCommand != 0)
            {
                byte cmd = _pendingCommand;
                _pendingCommand = 0;
                switch (cmd)
                {
                    case CmdSetLeds: Leds = (byte)(value & 7); Send(Ack); goto done;
                    case CmdTypematic: TypematicRate = (byte)(value & 0x7F); Send(Ack); goto done;
                    case CmdScancodeSet:
                        if (value == 0) { Send(Ack); Send((byte)_scancodeSet); }
                        else if (value <= 3) { _scancodeSet = value == 1 ? 1 : 2; Send(Ack); }
                        else Send(Resend);
                        goto done;
                }
            }
            switch (value)
            {
                case CmdReset:
                    _queue.Clear();
                    Defaults();
                    Send(Ack);
                    Send(SelfTestPassed);
                    break;
                case CmdResend:
                    Send(_lastSent);
                    break;
                case CmdDefaults:
                    Defaults();
                    Send(Ack);
                    break;
                case CmdDisable:
                    Defaults();
                    _scanning = false;
                    Send(Ack);
                    break;
                case CmdEnable:
                    _queue.Clear();
                    _scanning = true;
                    Send(Ack);
                    break;
                case CmdIdentify:
                    Send(Ack); Send(IdByte1); Send(IdByte2);
                    break;
                case CmdEcho:
                    Send(EchoReply);
                    break;
                case CmdSetLeds: case CmdTypematic: case CmdScancodeSet:
                    _pendingCommand = value;
                    Send(Ack);
                    break;
                default:
                    // Set-3-only and unknown commands.
                    Send(value is >= 0xF7 and <= 0xFD ? Ack : Resend);
                    break;
            }
        done:;
        }
        DataQueued?.Invoke();
    }

    /// <summary>Named, versioned snapshot of the keyboard.</summary>
    public sealed record State(int Version, byte[] Queue, byte PendingCommand, byte LastSent, bool Scanning, int ScancodeSet, byte Leds, byte TypematicRate)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        lock (_lock) return new State(State.CurrentVersion, _queue.ToArray(), _pendingCommand, _lastSent, _scanning, _scancodeSet, Leds, TypematicRate);
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"Keyboard state version {s.Version} is not supported.");
        lock (_lock)
        {
            _queue.Clear();
            foreach (byte b in s.Queue) _queue.Enqueue(b);
            (_pendingCommand, _lastSent, _scanning, _scancodeSet, Leds, TypematicRate) = (s.PendingCommand, s.LastSent, s.Scanning, s.ScancodeSet, s.Leds, s.TypematicRate);
        }
    }

    private void Defaults()
    {
        _scanning = true;
        _scancodeSet = 2;
        TypematicRate = 0x2B;
        _pendingCommand = 0;
    }

    private void Send(byte b)
    {
        if (_queue.Count < QueueCapacity) _queue.Enqueue(b);
        _lastSent = b;
    }
}

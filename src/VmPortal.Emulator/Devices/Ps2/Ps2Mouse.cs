namespace VmPortal.Emulator.Devices.Ps2;

/// <summary>
/// A standard PS/2 mouse (ID 00) on the i8042 auxiliary port: stream and remote modes, 3-byte packets.
/// Commands: FF reset (FA AA 00), FE resend, F6 defaults, F5 disable reporting, F4 enable reporting,
/// F3 sample rate (+rate), F2 get ID (FA 00), F0 remote mode, EE/EC wrap mode on/off (wrap echo not modelled),
/// EB read data (FA + packet), EA stream mode, E9 status request (FA + 3 bytes), E8 resolution (+0–3), E7/E6 scaling.
/// Packet: byte 0 = Y overflow, X overflow, Y sign, X sign, 1, middle, right, left; bytes 1–2 = X and Y movement
/// (9-bit two's complement with the sign bits; Y grows upwards).
/// Input API (any thread): <see cref="MouseMove"/>(dx, dy, buttons) with dx to the right and dy downwards (screen
/// convention), buttons bit 0 left, bit 1 right, bit 2 middle. Large moves are split into several packets.
/// Guests: Linux psmouse, SeaBIOS (INT 15h C2 pointing device services).
/// </summary>
public sealed class Ps2Mouse : IPs2Device
{
    public const byte CmdSetScaling11 = 0xE6, CmdSetScaling21 = 0xE7, CmdSetResolution = 0xE8, CmdStatus = 0xE9;
    public const byte CmdStreamMode = 0xEA, CmdReadData = 0xEB, CmdResetWrap = 0xEC, CmdWrapMode = 0xEE, CmdRemoteMode = 0xF0;
    public const byte CmdGetId = 0xF2, CmdSampleRate = 0xF3, CmdEnable = 0xF4, CmdDisable = 0xF5, CmdDefaults = 0xF6;
    public const byte CmdResend = 0xFE, CmdReset = 0xFF;
    public const byte Ack = 0xFA, Resend = 0xFE, SelfTestPassed = 0xAA, DeviceId = 0x00;
    public const int QueueCapacity = 256;

    private readonly object _lock = new();
    private readonly Queue<byte> _queue = new();
    private byte _pendingCommand;
    private byte _lastSent = Ack;
    private bool _reporting;
    private bool _remote;
    private bool _scaling21;
    private int _dx, _dy, _buttons;

    public event Action? DataQueued;

    public bool ReportingEnabled => _reporting;
    public byte SampleRate { get; private set; } = 100;
    public byte Resolution { get; private set; } = 2;

    /// <summary>Reports motion and button state. Thread-safe. Ignored unless the guest enabled streaming.</summary>
    public void MouseMove(int dx, int dy, int buttons)
    {
        lock (_lock)
        {
            _buttons = buttons & 7;
            if (!_reporting || _remote)
            {
                _dx += dx; _dy -= dy; // remote mode: accumulate for EB
                return;
            }
            int x = dx, y = -dy;
            do
            {
                int px = Math.Clamp(x, -255, 255), py = Math.Clamp(y, -255, 255);
                if (_queue.Count + 3 > QueueCapacity) break;
                QueuePacket(px, py, false, false);
                x -= px; y -= py;
            } while (x != 0 || y != 0);
        }
        DataQueued?.Invoke();
    }

    private void QueuePacket(int x, int y, bool xOverflow, bool yOverflow)
    {
        byte b0 = (byte)(0x08 | _buttons);
        if (x < 0) b0 |= 0x10;
        if (y < 0) b0 |= 0x20;
        if (xOverflow) b0 |= 0x40;
        if (yOverflow) b0 |= 0x80;
        Send(b0);
        Send((byte)x);
        Send((byte)y);
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

    /// <summary>Machine reset: defaults (stream mode, reporting off), empty buffer.</summary>
    public void Reset()
    {
        lock (_lock) { _queue.Clear(); Defaults(); _remote = false; _buttons = 0; }
    }

    public void Receive(byte value)
    {
        lock (_lock)
        {
            if (_pendingCommand != 0)
            {
                byte cmd = _pendingCommand;
                _pendingCommand = 0;
                if (cmd == CmdSampleRate) { SampleRate = value; Send(Ack); goto done; }
                if (cmd == CmdSetResolution) { Resolution = (byte)(value & 3); Send(Ack); goto done; }
            }
            switch (value)
            {
                case CmdReset:
                    _queue.Clear();
                    Defaults();
                    _remote = false;
                    Send(Ack); Send(SelfTestPassed); Send(DeviceId);
                    break;
                case CmdResend: Send(_lastSent); break;
                case CmdDefaults: Defaults(); Send(Ack); break;
                case CmdDisable: _reporting = false; Send(Ack); break;
                case CmdEnable: _reporting = true; Send(Ack); break;
                case CmdGetId: Send(Ack); Send(DeviceId); break;
                case CmdSampleRate: case CmdSetResolution: _pendingCommand = value; Send(Ack); break;
                case CmdRemoteMode: _remote = true; Send(Ack); break;
                case CmdStreamMode: _remote = false; Send(Ack); break;
                case CmdReadData:
                    Send(Ack);
                    QueuePacket(Math.Clamp(_dx, -255, 255), Math.Clamp(_dy, -255, 255), _dx is > 255 or < -255, _dy is > 255 or < -255);
                    _dx = _dy = 0;
                    break;
                case CmdStatus:
                    Send(Ack);
                    Send((byte)((_remote ? 0x40 : 0) | (_reporting ? 0x20 : 0) | (_scaling21 ? 0x10 : 0)
                        | (_buttons & 1) << 2 | (_buttons & 4) >> 1 | (_buttons & 2) >> 1));
                    Send(Resolution);
                    Send(SampleRate);
                    break;
                case CmdSetScaling11: _scaling21 = false; Send(Ack); break;
                case CmdSetScaling21: _scaling21 = true; Send(Ack); break;
                case CmdWrapMode: case CmdResetWrap: Send(Ack); break;
                default: Send(Resend); break;
            }
        done:;
        }
        DataQueued?.Invoke();
    }

    /// <summary>Named, versioned snapshot of the mouse.</summary>
    public sealed record State(int Version, byte[] Queue, byte PendingCommand, byte LastSent, bool Reporting, bool Remote, bool Scaling21,
        int Dx, int Dy, int Buttons, byte SampleRate, byte Resolution)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        lock (_lock) return new State(State.CurrentVersion, _queue.ToArray(), _pendingCommand, _lastSent, _reporting, _remote, _scaling21, _dx, _dy, _buttons, SampleRate, Resolution);
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"Mouse state version {s.Version} is not supported.");
        lock (_lock)
        {
            _queue.Clear();
            foreach (byte b in s.Queue) _queue.Enqueue(b);
            (_pendingCommand, _lastSent, _reporting, _remote, _scaling21) = (s.PendingCommand, s.LastSent, s.Reporting, s.Remote, s.Scaling21);
            (_dx, _dy, _buttons, SampleRate, Resolution) = (s.Dx, s.Dy, s.Buttons, s.SampleRate, s.Resolution);
        }
    }

    private void Defaults()
    {
        _reporting = false;
        SampleRate = 100;
        Resolution = 2;
        _scaling21 = false;
        _pendingCommand = 0;
        _dx = _dy = 0;
    }

    private void Send(byte b)
    {
        if (_queue.Count < QueueCapacity) _queue.Enqueue(b);
        _lastSent = b;
    }
}

namespace VmPortal.Emulator.Devices.Ps2;

/// <summary>
/// A PS/2 mouse on the i8042 auxiliary port: a standard mouse (ID 00) that becomes an IntelliMouse (ID 03, wheel)
/// after the sample-rate knock 200, 100, 80, and an IntelliMouse Explorer (ID 04, wheel + buttons 4/5) after a
/// further 200, 200, 80 — the sequences Linux psmouse, Windows and X servers send to find a wheel.
/// Commands: FF reset (FA AA 00, back to ID 00), FE resend, F6 defaults, F5 disable reporting, F4 enable reporting,
/// F3 sample rate (+rate), F2 get ID (FA + ID), F0 remote mode, EE wrap mode (every byte echoed except EC/FF),
/// EC leave wrap mode, EB read data (FA + packet, remote mode), EA stream mode, E9 status request (FA + 3 bytes),
/// E8 resolution (+0–3), E7/E6 scaling 2:1 / 1:1 (2:1 maps stream-mode counts 1..5 to 1 1 3 6 9, else doubles).
/// Packet: byte 0 = Y overflow, X overflow, Y sign, X sign, 1, middle, right, left; bytes 1–2 = X and Y movement
/// (9-bit two's complement with the sign bits; Y grows upwards); with ID 03 a 4th byte, the wheel (−8..7, positive
/// = towards the user), with ID 04 bits 0–3 wheel, 4 button 4, 5 button 5.
/// Input API (any thread): <see cref="MouseMove(int, int, int, int)"/> with dx to the right, dy downwards and wheel
/// positive downwards (screen/browser conventions), buttons bit 0 left, 1 right, 2 middle, 3 back (4), 4 forward (5).
/// In stream mode large moves are split into several packets (nothing is lost); in remote mode the counts add up
/// and EB reports them with the overflow bits set beyond ±255.
/// Guests: Linux psmouse/mousedev (/dev/input/mice, /dev/psaux), X/Wayland, Windows i8042prt, SeaBIOS (INT 15h C2).
/// </summary>
public sealed class Ps2Mouse : IPs2Device
{
    public const byte CmdSetScaling11 = 0xE6, CmdSetScaling21 = 0xE7, CmdSetResolution = 0xE8, CmdStatus = 0xE9;
    public const byte CmdStreamMode = 0xEA, CmdReadData = 0xEB, CmdResetWrap = 0xEC, CmdWrapMode = 0xEE, CmdRemoteMode = 0xF0;
    public const byte CmdGetId = 0xF2, CmdSampleRate = 0xF3, CmdEnable = 0xF4, CmdDisable = 0xF5, CmdDefaults = 0xF6;
    public const byte CmdResend = 0xFE, CmdReset = 0xFF;
    public const byte Ack = 0xFA, Resend = 0xFE, SelfTestPassed = 0xAA, DeviceId = 0x00;
    public const byte IdStandard = 0x00, IdIntelliMouse = 0x03, IdExplorer = 0x04;
    public const int QueueCapacity = 256;

    private readonly object _lock = new();
    private readonly Queue<byte> _queue = new();
    private byte _pendingCommand;
    private byte _lastSent = Ack;
    private bool _reporting;
    private bool _remote;
    private bool _wrap;
    private bool _scaling21;
    private byte _id;
    private byte _rate1, _rate2; // the two sample rates set before the last one (for the IntelliMouse knocks)
    private int _dx, _dy, _buttons;
    private long _eventsReceived, _packetsSent;

    public event Action? DataQueued;

    public bool ReportingEnabled => _reporting;
    public byte SampleRate { get; private set; } = 100;
    public byte Resolution { get; private set; } = 2;
    /// <summary>The ID F2 answers: 00 standard, 03 IntelliMouse (4-byte packets, wheel), 04 IntelliMouse Explorer.</summary>
    public byte Id { get { lock (_lock) return _id; } }
    /// <summary>Host input events received since power-on (<see cref="MouseMove(int, int, int, int)"/> calls). Any thread.</summary>
    public long EventsReceived => Interlocked.Read(ref _eventsReceived);
    /// <summary>Movement/button packets queued for the guest since power-on (stream mode and EB). Any thread.</summary>
    public long PacketsSent => Interlocked.Read(ref _packetsSent);
    /// <summary>Bytes waiting for the controller. Any thread.</summary>
    public int QueuedBytes { get { lock (_lock) return _queue.Count; } }

    /// <summary>Reports motion and button state (no wheel). Thread-safe.</summary>
    public void MouseMove(int dx, int dy, int buttons) => MouseMove(dx, dy, buttons, 0);

    /// <summary>
    /// Reports relative motion (dx right, dy down), the buttons held and wheel steps (positive = towards the user).
    /// Thread-safe. In stream mode with reporting on, queues as many packets as the motion needs (each axis at
    /// most ±255, the wheel at most ±7/−8 per packet); otherwise the motion is kept for a remote-mode read.
    /// </summary>
    public void MouseMove(int dx, int dy, int buttons, int wheel)
    {
        bool queued = false;
        lock (_lock)
        {
            Interlocked.Increment(ref _eventsReceived);
            bool buttonsChanged = (buttons & 0x1F) != _buttons;
            _buttons = buttons & 0x1F;
            if (!_reporting || _remote || _wrap)
            {
                _dx = Math.Clamp(_dx + dx, -4096, 4096);
                _dy = Math.Clamp(_dy - dy, -4096, 4096); // remote mode: accumulate for EB
                return;
            }
            if (dx == 0 && dy == 0 && wheel == 0 && !buttonsChanged) return;
            int x = Scale(dx), y = Scale(-dy), z = _id != IdStandard ? wheel : 0;
            do
            {
                int px = Math.Clamp(x, -255, 255), py = Math.Clamp(y, -255, 255), pz = Math.Clamp(z, -8, 7);
                if (_queue.Count + PacketSize > QueueCapacity) break;
                QueuePacket(px, py, pz, false, false);
                queued = true;
                x -= px; y -= py; z -= pz;
            } while (x != 0 || y != 0 || z != 0);
        }
        if (queued) DataQueued?.Invoke();
    }

    private int PacketSize => _id == IdStandard ? 3 : 4;

    /// <summary>Scaling 2:1 (stream mode only): 1..5 → 1 1 3 6 9, larger counts doubled.</summary>
    private int Scale(int v)
    {
        if (!_scaling21) return v;
        int a = Math.Abs(v);
        int s = a switch { 0 => 0, 1 => 1, 2 => 1, 3 => 3, 4 => 6, 5 => 9, _ => 2 * a };
        return v < 0 ? -s : s;
    }

    private void QueuePacket(int x, int y, int z, bool xOverflow, bool yOverflow)
    {
        byte b0 = (byte)(0x08 | (_buttons & 7));
        if (x < 0) b0 |= 0x10;
        if (y < 0) b0 |= 0x20;
        if (xOverflow) b0 |= 0x40;
        if (yOverflow) b0 |= 0x80;
        Send(b0);
        Send((byte)x);
        Send((byte)y);
        if (_id == IdIntelliMouse) Send((byte)z);
        else if (_id == IdExplorer) Send((byte)((z & 0x0F) | (_buttons & 0x18) << 1));
        Interlocked.Increment(ref _packetsSent);
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

    /// <summary>Machine reset: defaults (stream mode, reporting off, ID 00), empty buffer.</summary>
    public void Reset()
    {
        lock (_lock) { _queue.Clear(); Defaults(); _remote = _wrap = false; _id = IdStandard; _rate1 = _rate2 = 0; _buttons = 0; }
    }

    public void Receive(byte value)
    {
        lock (_lock)
        {
            if (_wrap && value != CmdResetWrap && value != CmdReset)
            {
                Send(value); // wrap (echo) mode: every byte comes back, commands included
                goto done;
            }
            if (_pendingCommand != 0)
            {
                byte cmd = _pendingCommand;
                _pendingCommand = 0;
                if (cmd == CmdSampleRate) { SetSampleRate(value); Send(Ack); goto done; }
                if (cmd == CmdSetResolution) { Resolution = (byte)(value & 3); Send(Ack); goto done; }
            }
            switch (value)
            {
                case CmdReset:
                    _queue.Clear();
                    Defaults();
                    _remote = _wrap = false;
                    _id = IdStandard;
                    Send(Ack); Send(SelfTestPassed); Send(DeviceId);
                    break;
                case CmdResend: Send(_lastSent); break;
                case CmdDefaults: Defaults(); Send(Ack); break;
                case CmdDisable: _reporting = false; Send(Ack); break;
                case CmdEnable: _reporting = true; _dx = _dy = 0; Send(Ack); break;
                case CmdGetId: Send(Ack); Send(_id); break;
                case CmdSampleRate: case CmdSetResolution: _pendingCommand = value; Send(Ack); break;
                case CmdRemoteMode: _remote = true; _dx = _dy = 0; Send(Ack); break;
                case CmdStreamMode: _remote = false; _dx = _dy = 0; Send(Ack); break;
                case CmdReadData:
                    Send(Ack);
                    QueuePacket(Math.Clamp(_dx, -255, 255), Math.Clamp(_dy, -255, 255), 0, _dx is > 255 or < -255, _dy is > 255 or < -255);
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
                case CmdWrapMode: _wrap = true; _dx = _dy = 0; Send(Ack); break;
                case CmdResetWrap: _wrap = false; _dx = _dy = 0; Send(Ack); break;
                default: Send(Resend); break;
            }
        done:;
        }
        DataQueued?.Invoke();
    }

    /// <summary>Sample rate; the last three rates 200, 100, 80 turn on the wheel (ID 03), then 200, 200, 80 buttons 4/5 (ID 04).</summary>
    private void SetSampleRate(byte rate)
    {
        SampleRate = rate;
        if (_rate1 == 200 && _rate2 == 100 && rate == 80 && _id == IdStandard) _id = IdIntelliMouse;
        else if (_rate1 == 200 && _rate2 == 200 && rate == 80 && _id == IdIntelliMouse) _id = IdExplorer;
        _rate1 = _rate2;
        _rate2 = rate;
    }

    /// <summary>Named, versioned snapshot of the mouse.</summary>
    public sealed record State(int Version, byte[] Queue, byte PendingCommand, byte LastSent, bool Reporting, bool Remote, bool Scaling21,
        int Dx, int Dy, int Buttons, byte SampleRate, byte Resolution, bool Wrap = false, byte Id = 0, byte Rate1 = 0, byte Rate2 = 0)
    {
        /// <summary>2: wrap mode, ID and the sample-rate history (version 1 states load with them cleared).</summary>
        public const int CurrentVersion = 2;
    }

    public State SaveState()
    {
        lock (_lock) return new State(State.CurrentVersion, _queue.ToArray(), _pendingCommand, _lastSent, _reporting, _remote, _scaling21,
            _dx, _dy, _buttons, SampleRate, Resolution, _wrap, _id, _rate1, _rate2);
    }

    public void LoadState(State s)
    {
        if (s.Version is not (1 or State.CurrentVersion)) throw new InvalidDataException($"Mouse state version {s.Version} is not supported.");
        lock (_lock)
        {
            _queue.Clear();
            foreach (byte b in s.Queue) _queue.Enqueue(b);
            (_pendingCommand, _lastSent, _reporting, _remote, _scaling21) = (s.PendingCommand, s.LastSent, s.Reporting, s.Remote, s.Scaling21);
            (_dx, _dy, _buttons, SampleRate, Resolution) = (s.Dx, s.Dy, s.Buttons, s.SampleRate, s.Resolution);
            (_wrap, _id, _rate1, _rate2) = (s.Wrap, s.Id, s.Rate1, s.Rate2);
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

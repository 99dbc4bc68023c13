using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Ps2;

/// <summary>
/// Intel 8042 keyboard controller (PS/2 style, as in the PIIX3/SuperIO): data port 0x60, status/command port 0x64,
/// keyboard on IRQ 1 and the auxiliary (mouse) port on IRQ 12, each raised while the output buffer holds a byte
/// from that port and the command byte enables it.
/// Status (0x64 read): bit 0 output buffer full, 1 input buffer full (always 0: commands complete at once),
/// 2 system flag, 3 last write was a command, 4 keyboard not inhibited, 5 output byte is from the aux port.
/// Command byte: bit 0 keyboard IRQ, 1 aux IRQ, 2 system flag, 4 keyboard disabled, 5 aux disabled, 6 translate
/// set 2 → set 1. Commands: 20–3F read RAM (20 = command byte), 60–7F write RAM, A7/A8 aux disable/enable,
/// A9 aux test (00), AA self-test (55), AB keyboard test (00), AD/AE keyboard disable/enable, C0 input port,
/// D0/D1 read/write output port (bit 0 reset line, bit 1 A20), D2/D3 write keyboard/aux output buffer,
/// D4 next byte to the aux device, DD/DF A20 off/on, E0 test inputs, F0–FF pulse output lines (FE = reset).
/// Host input is queued by the devices (any thread); the controller moves it into its output buffer on the machine
/// thread when the guest touches a port or the machine calls <see cref="PumpHostInput"/> after
/// <see cref="HostInputAvailable"/>.
/// Guests: SeaBIOS (ps2port.c: self-test, keyboard reset, translation on), Linux i8042 + atkbd + psmouse,
/// Linux's boot A20 code (D1 DF), memtest86+, reboot via FE.
/// </summary>
public sealed class I8042Controller
{
    public const ushort DataPort = 0x60, CommandPort = 0x64;
    public const int KeyboardIrq = 1, AuxIrq = 12;

    public const byte StatusOutputFull = 0x01, StatusInputFull = 0x02, StatusSystem = 0x04, StatusCommand = 0x08;
    public const byte StatusNotInhibited = 0x10, StatusAuxData = 0x20;
    public const byte CbKeyboardIrq = 0x01, CbAuxIrq = 0x02, CbSystem = 0x04, CbKeyboardDisabled = 0x10;
    public const byte CbAuxDisabled = 0x20, CbTranslate = 0x40;
    public const byte OutResetLine = 0x01, OutA20 = 0x02, OutKeyboardFull = 0x10, OutAuxFull = 0x20;

    public const byte CmdReadRam = 0x20, CmdWriteRam = 0x60, CmdAuxDisable = 0xA7, CmdAuxEnable = 0xA8;
    public const byte CmdAuxTest = 0xA9, CmdSelfTest = 0xAA, CmdKeyboardTest = 0xAB, CmdKeyboardDisable = 0xAD;
    public const byte CmdKeyboardEnable = 0xAE, CmdReadInputPort = 0xC0, CmdReadOutputPort = 0xD0, CmdWriteOutputPort = 0xD1;
    public const byte CmdWriteKeyboardBuffer = 0xD2, CmdWriteAuxBuffer = 0xD3, CmdWriteAux = 0xD4;
    public const byte CmdA20Off = 0xDD, CmdA20On = 0xDF, CmdReadTestInputs = 0xE0, CmdPulseBase = 0xF0;
    public const byte SelfTestOk = 0x55, InterfaceTestOk = 0x00;

    private readonly IIrqSink _irq;
    private readonly PhysicalMemory _memory;
    private readonly byte[] _ram = new byte[32];
    private readonly Queue<(byte Value, bool Aux)> _controllerQueue = new();
    private byte _output;
    private bool _outputFull, _outputAux;
    private bool _lastWasCommand;
    private byte _pendingCommand;
    private bool _breakPending;
    private bool _irq1, _irq12;
    private volatile bool _hostPending;

    public I8042Controller(IoBus io, IIrqSink irq, PhysicalMemory memory, Ps2Keyboard keyboard, Ps2Mouse mouse)
    {
        _irq = irq;
        _memory = memory;
        Keyboard = keyboard;
        Mouse = mouse;
        _ram[0] = CbKeyboardIrq | CbSystem | CbTranslate;
        keyboard.DataQueued += OnDeviceData;
        mouse.DataQueued += OnDeviceData;
        io.Register(DataPort, 1, ReadData, WriteData);
        io.Register(CommandPort, 1, ReadStatus, WriteCommand);
    }

    public Ps2Keyboard Keyboard { get; }
    public Ps2Mouse Mouse { get; }
    public byte CommandByte => _ram[0];

    /// <summary>True when host input was queued since the last <see cref="PumpHostInput"/> (the machine loop may poll this instead of the event).</summary>
    public bool HostInputPending => _hostPending;

    /// <summary>Raised when the guest pulses the reset line (command FE, or output port bit 0 cleared).</summary>
    public event Action? ResetRequested;

    /// <summary>Raised (on the input thread) when a device queued host input: call <see cref="PumpHostInput"/> on the machine thread.</summary>
    public event Action? HostInputAvailable;

    /// <summary>Machine reset: controller, keyboard and mouse to power-on state.</summary>
    public void Reset()
    {
        Array.Clear(_ram);
        _ram[0] = CbKeyboardIrq | CbSystem | CbTranslate;
        _controllerQueue.Clear();
        _outputFull = _outputAux = _lastWasCommand = _breakPending = false;
        _pendingCommand = 0;
        Keyboard.Reset();
        Mouse.Reset();
        UpdateIrq();
    }

    /// <summary>Moves pending device bytes into the output buffer and updates IRQ 1/12. Machine thread.</summary>
    public void PumpHostInput()
    {
        _hostPending = false;
        Fill();
    }

    /// <summary>Named, versioned snapshot of the controller and both devices.</summary>
    public sealed record State(int Version, byte[] Ram, byte[] QueueBytes, bool[] QueueAux, byte Output, bool OutputFull, bool OutputAux,
        bool LastWasCommand, byte PendingCommand, bool BreakPending, Ps2Keyboard.State Keyboard, Ps2Mouse.State Mouse)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        var items = _controllerQueue.ToArray();
        return new State(State.CurrentVersion, (byte[])_ram.Clone(), items.Select(i => i.Value).ToArray(), items.Select(i => i.Aux).ToArray(),
            _output, _outputFull, _outputAux, _lastWasCommand, _pendingCommand, _breakPending, Keyboard.SaveState(), Mouse.SaveState());
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"i8042 state version {s.Version} is not supported.");
        s.Ram.AsSpan(0, _ram.Length).CopyTo(_ram);
        _controllerQueue.Clear();
        for (int i = 0; i < s.QueueBytes.Length; i++) _controllerQueue.Enqueue((s.QueueBytes[i], s.QueueAux[i]));
        (_output, _outputFull, _outputAux, _lastWasCommand, _pendingCommand, _breakPending) =
            (s.Output, s.OutputFull, s.OutputAux, s.LastWasCommand, s.PendingCommand, s.BreakPending);
        Keyboard.LoadState(s.Keyboard);
        Mouse.LoadState(s.Mouse);
        UpdateIrq();
    }

    private void OnDeviceData()
    {
        _hostPending = true;
        HostInputAvailable?.Invoke();
    }

    private void Fill()
    {
        while (!_outputFull)
        {
            if (_controllerQueue.Count > 0)
            {
                var (v, aux) = _controllerQueue.Dequeue();
                Put(v, aux);
                break;
            }
            if ((_ram[0] & CbKeyboardDisabled) == 0 && Keyboard.TryDequeue(out byte k))
            {
                if ((_ram[0] & CbTranslate) != 0)
                {
                    if (k == Ps2Keyboard.BreakPrefix) { _breakPending = true; continue; }
                    k = ScancodeTables.TranslateToSet1(k);
                    if (_breakPending) { k |= 0x80; _breakPending = false; }
                }
                Put(k, false);
                break;
            }
            if ((_ram[0] & CbAuxDisabled) == 0 && Mouse.TryDequeue(out byte m))
            {
                Put(m, true);
                break;
            }
            break;
        }
        UpdateIrq();
    }

    private void Put(byte value, bool aux)
    {
        _output = value;
        _outputFull = true;
        _outputAux = aux;
    }

    private void UpdateIrq()
    {
        bool irq1 = _outputFull && !_outputAux && (_ram[0] & CbKeyboardIrq) != 0;
        bool irq12 = _outputFull && _outputAux && (_ram[0] & CbAuxIrq) != 0;
        if (irq1 != _irq1) { _irq1 = irq1; _irq.SetIrq(KeyboardIrq, irq1); }
        if (irq12 != _irq12) { _irq12 = irq12; _irq.SetIrq(AuxIrq, irq12); }
    }

    private void Respond(byte value, bool aux = false) => _controllerQueue.Enqueue((value, aux));

    private byte OutputPort =>
        (byte)(OutResetLine | (_memory.A20Enabled ? OutA20 : 0)
            | (_outputFull && !_outputAux ? OutKeyboardFull : 0) | (_outputFull && _outputAux ? OutAuxFull : 0));

    private uint ReadStatus(ushort port, int size)
    {
        if (!_outputFull) Fill();
        int s = StatusNotInhibited | (_ram[0] & CbSystem);
        if (_outputFull) s |= StatusOutputFull | (_outputAux ? StatusAuxData : 0);
        if (_lastWasCommand) s |= StatusCommand;
        return (uint)s;
    }

    private uint ReadData(ushort port, int size)
    {
        if (!_outputFull) Fill();
        byte v = _output;
        _outputFull = false;
        UpdateIrq();   // drop the line so the next byte makes a fresh edge
        Fill();
        return v;
    }

    private void WriteCommand(ushort port, int size, uint value)
    {
        byte cmd = (byte)value;
        _lastWasCommand = true;
        _pendingCommand = 0;
        switch (cmd)
        {
            case >= CmdReadRam and < CmdReadRam + 0x20: Respond(_ram[cmd & 0x1F]); break;
            case >= CmdWriteRam and < CmdWriteRam + 0x20: _pendingCommand = cmd; break;
            case CmdAuxDisable: _ram[0] |= CbAuxDisabled; break;
            case CmdAuxEnable: _ram[0] &= unchecked((byte)~CbAuxDisabled); break;
            case CmdAuxTest: Respond(InterfaceTestOk); break;
            case CmdSelfTest:
                _ram[0] |= CbSystem;
                Respond(SelfTestOk);
                break;
            case CmdKeyboardTest: Respond(InterfaceTestOk); break;
            case CmdKeyboardDisable: _ram[0] |= CbKeyboardDisabled; break;
            case CmdKeyboardEnable: _ram[0] &= unchecked((byte)~CbKeyboardDisabled); break;
            case CmdReadInputPort: Respond(0x80); break; // keyboard not inhibited
            case CmdReadOutputPort: Respond(OutputPort); break;
            case CmdWriteOutputPort: case CmdWriteKeyboardBuffer: case CmdWriteAuxBuffer: case CmdWriteAux:
                _pendingCommand = cmd;
                break;
            case CmdA20Off: _memory.A20Enabled = false; break;
            case CmdA20On: _memory.A20Enabled = true; break;
            case CmdReadTestInputs: Respond(0x00); break;
            case >= CmdPulseBase:
                if ((cmd & OutResetLine) == 0) ResetRequested?.Invoke();
                break;
            default: break; // unknown commands are ignored
        }
        Fill();
    }

    private void WriteData(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        _lastWasCommand = false;
        byte pending = _pendingCommand;
        _pendingCommand = 0;
        switch (pending)
        {
            case >= CmdWriteRam and < CmdWriteRam + 0x20:
                _ram[pending & 0x1F] = v;
                break;
            case CmdWriteOutputPort:
                _memory.A20Enabled = (v & OutA20) != 0;
                if ((v & OutResetLine) == 0) ResetRequested?.Invoke();
                break;
            case CmdWriteKeyboardBuffer: Respond(v, aux: false); break;
            case CmdWriteAuxBuffer: Respond(v, aux: true); break;
            case CmdWriteAux: Mouse.Receive(v); break;
            default:
                // Data for the keyboard; sending it re-enables the keyboard interface.
                _ram[0] &= unchecked((byte)~CbKeyboardDisabled);
                Keyboard.Receive(v);
                break;
        }
        Fill();
    }
}

using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Serial;

/// <summary>
/// National Semiconductor 16550A UART: COM1 at 0x3F8 (IRQ 4), COM2 at 0x2F8 (IRQ 3).
/// Registers (offset from the base): 0 RBR/THR (DLL with LCR.DLAB), 1 IER (DLM with DLAB), 2 IIR (read) / FCR (write),
/// 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR. 16-byte receive and transmit FIFOs with trigger levels 1/4/8/14,
/// interrupts with the chip's priorities (line status > received data / character timeout > THR empty > modem status),
/// loopback (MCR bit 4) and the modem control/status lines. The IRQ line is gated by MCR.OUT2 as on PC boards.
/// Transmission is instant (no baud-rate delay): every byte written to THR goes to <see cref="Transmit"/> at once.
/// Host side: <see cref="Receive"/> may be called from any thread; bytes wait in a locked host queue and move into
/// the receive FIFO on the machine thread, when the guest reads RBR/LSR/IIR or the machine calls
/// <see cref="PumpHostInput"/> (do that when <see cref="HostInputAvailable"/> fires). The host queue applies flow
/// control: bytes are never dropped by overrun.
/// Guests: SeaBIOS (detects COM ports, optional serial console), Linux 8250 driver (console=ttyS0), memtest86+, iPXE.
/// </summary>
public sealed class Uart16550
{
    public const ushort Com1Port = 0x3F8, Com2Port = 0x2F8;
    public const int Com1Irq = 4, Com2Irq = 3;
    public const int RegData = 0, RegIer = 1, RegIirFcr = 2, RegLcr = 3, RegMcr = 4, RegLsr = 5, RegMsr = 6, RegScratch = 7;
    public const byte IerReceived = 0x01, IerThrEmpty = 0x02, IerLineStatus = 0x04, IerModemStatus = 0x08;
    public const byte IirNoInterrupt = 0x01, IirModemStatus = 0x00, IirThrEmpty = 0x02, IirReceived = 0x04;
    public const byte IirLineStatus = 0x06, IirCharTimeout = 0x0C, IirFifoEnabled = 0xC0;
    public const byte FcrEnable = 0x01, FcrClearRx = 0x02, FcrClearTx = 0x04, FcrTriggerMask = 0xC0;
    public const byte LcrDlab = 0x80;
    public const byte McrDtr = 0x01, McrRts = 0x02, McrOut1 = 0x04, McrOut2 = 0x08, McrLoop = 0x10;
    public const byte LsrDataReady = 0x01, LsrOverrun = 0x02, LsrParity = 0x04, LsrFraming = 0x08, LsrBreak = 0x10;
    public const byte LsrThrEmpty = 0x20, LsrTransmitterEmpty = 0x40, LsrFifoError = 0x80;
    public const byte MsrDeltaCts = 0x01, MsrDeltaDsr = 0x02, MsrTrailingRi = 0x04, MsrDeltaDcd = 0x08;
    public const byte MsrCts = 0x10, MsrDsr = 0x20, MsrRi = 0x40, MsrDcd = 0x80;
    public const int FifoSize = 16;

    private static readonly int[] TriggerLevels = { 1, 4, 8, 14 };

    private readonly ushort _base;
    private readonly IIrqSink _irq;
    private readonly int _irqLine;
    private readonly byte[] _rx = new byte[FifoSize];
    private int _rxHead, _rxCount;
    private readonly Queue<byte> _hostQueue = new();
    private readonly object _hostLock = new();
    private volatile bool _hostPending;
    private byte _ier, _lcr, _mcr, _lsrErrors, _msrDeltas, _scratch, _fcr;
    private ushort _divisor = 12; // 9600 baud
    private bool _thrInterrupt;   // THR-empty interrupt pending (cleared by IIR read or THR write)
    private byte _hostModemInputs = MsrCts | MsrDsr | MsrDcd; // a connected null-modem peer
    private bool _irqLevel;

    public Uart16550(IoBus io, IIrqSink irq, ushort basePort = Com1Port, int irqLine = Com1Irq)
    {
        _base = basePort;
        _irq = irq;
        _irqLine = irqLine;
        io.Register(basePort, 8, Read, Write);
    }

    /// <summary>Raised on the machine thread for each byte the guest transmits (not in loopback).</summary>
    public event Action<byte>? Transmit;

    /// <summary>Raised on the caller's thread after <see cref="Receive"/> queued bytes: the machine should call <see cref="PumpHostInput"/> on its thread.</summary>
    public event Action? HostInputAvailable;

    public ushort BasePort => _base;
    public ushort Divisor => _divisor;
    public byte LineControl => _lcr;
    public byte ModemControl => _mcr;
    public bool FifoEnabled => (_fcr & FcrEnable) != 0;

    /// <summary>Machine reset (MR pin): registers to their reset values, FIFOs emptied. Queued host input stays queued.</summary>
    public void Reset()
    {
        _ier = _lcr = _mcr = _lsrErrors = _msrDeltas = _fcr = 0;
        _rxHead = _rxCount = 0;
        _thrInterrupt = false;
        UpdateIrq();
    }

    /// <summary>Queues bytes for the guest to receive. Thread-safe.</summary>
    public void Receive(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        lock (_hostLock)
        {
            foreach (byte b in data) _hostQueue.Enqueue(b);
            _hostPending = true;
        }
        HostInputAvailable?.Invoke();
    }

    /// <summary>Number of received bytes not yet read by the guest (FIFO plus host queue).</summary>
    public int PendingInput
    {
        get { lock (_hostLock) return _rxCount + _hostQueue.Count; }
    }

    /// <summary>Moves queued host bytes into the receive FIFO (machine thread) and updates the interrupt line.</summary>
    public void PumpHostInput()
    {
        if (_hostPending) Pull();
        UpdateIrq();
    }

    private int RxCapacity => FifoEnabled ? FifoSize : 1;

    private void Pull()
    {
        if ((_mcr & McrLoop) != 0) return; // the receiver is connected to the transmitter in loopback
        lock (_hostLock)
        {
            while (_rxCount < RxCapacity && _hostQueue.Count > 0) PushRx(_hostQueue.Dequeue());
            _hostPending = _hostQueue.Count > 0;
        }
    }

    private void PushRx(byte b)
    {
        if (_rxCount >= RxCapacity)
        {
            _lsrErrors |= LsrOverrun;
            return;
        }
        _rx[(_rxHead + _rxCount) % FifoSize] = b;
        _rxCount++;
    }

    private byte PopRx()
    {
        if (_rxCount == 0) return 0;
        byte b = _rx[_rxHead];
        _rxHead = (_rxHead + 1) % FifoSize;
        _rxCount--;
        return b;
    }

    /// <summary>The interrupt the IIR would report now, by priority.</summary>
    private byte CurrentInterrupt()
    {
        if ((_ier & IerLineStatus) != 0 && (_lsrErrors & (LsrOverrun | LsrParity | LsrFraming | LsrBreak)) != 0) return IirLineStatus;
        if ((_ier & IerReceived) != 0 && _rxCount > 0)
        {
            if (!FifoEnabled || _rxCount >= TriggerLevels[_fcr >> 6]) return IirReceived;
            // Below the trigger level with nothing more arriving: the character timeout fires.
            if (!_hostPending || (_mcr & McrLoop) != 0) return IirCharTimeout;
        }
        if ((_ier & IerThrEmpty) != 0 && _thrInterrupt) return IirThrEmpty;
        if ((_ier & IerModemStatus) != 0 && (_msrDeltas & 0x0F) != 0) return IirModemStatus;
        return IirNoInterrupt;
    }

    private void UpdateIrq()
    {
        bool level = CurrentInterrupt() != IirNoInterrupt && (_mcr & McrOut2) != 0;
        if (level == _irqLevel) return;
        _irqLevel = level;
        _irq.SetIrq(_irqLine, level);
    }

    private byte ModemInputs()
    {
        if ((_mcr & McrLoop) == 0) return _hostModemInputs;
        byte v = 0;
        if ((_mcr & McrRts) != 0) v |= MsrCts;
        if ((_mcr & McrDtr) != 0) v |= MsrDsr;
        if ((_mcr & McrOut1) != 0) v |= MsrRi;
        if ((_mcr & McrOut2) != 0) v |= MsrDcd;
        return v;
    }

    private void ModemInputsChanged(byte before, byte after)
    {
        byte changed = (byte)(before ^ after);
        if ((changed & MsrCts) != 0) _msrDeltas |= MsrDeltaCts;
        if ((changed & MsrDsr) != 0) _msrDeltas |= MsrDeltaDsr;
        if ((changed & MsrDcd) != 0) _msrDeltas |= MsrDeltaDcd;
        if ((before & MsrRi) != 0 && (after & MsrRi) == 0) _msrDeltas |= MsrTrailingRi;
    }

    /// <summary>Sets the modem status inputs (CTS, DSR, RI, DCD bits of MSR) seen outside loopback. Machine thread.</summary>
    public void SetHostModemInputs(byte msrBits)
    {
        byte before = ModemInputs();
        _hostModemInputs = (byte)(msrBits & 0xF0);
        ModemInputsChanged(before, ModemInputs());
        UpdateIrq();
    }

    private uint Read(ushort port, int size)
    {
        int reg = port - _base;
        byte result;
        switch (reg)
        {
            case RegData:
                if ((_lcr & LcrDlab) != 0) return (byte)_divisor;
                if (_hostPending) Pull();
                result = PopRx();
                if (_hostPending) Pull();
                break;
            case RegIer:
                return (_lcr & LcrDlab) != 0 ? (uint)(_divisor >> 8) : _ier;
            case RegIirFcr:
                {
                    if (_hostPending) Pull();
                    byte id = CurrentInterrupt();
                    if (id == IirThrEmpty) _thrInterrupt = false; // reading IIR acknowledges THRE
                    result = (byte)(id | (FifoEnabled ? IirFifoEnabled : 0));
                    break;
                }
            case RegLcr: return _lcr;
            case RegMcr: return _mcr;
            case RegLsr:
                {
                    if (_hostPending) Pull();
                    result = (byte)(LsrThrEmpty | LsrTransmitterEmpty | _lsrErrors);
                    if (_rxCount > 0) result |= LsrDataReady;
                    if (FifoEnabled && (_lsrErrors & (LsrParity | LsrFraming | LsrBreak)) != 0) result |= LsrFifoError;
                    _lsrErrors = 0;
                    break;
                }
            case RegMsr:
                result = (byte)(ModemInputs() | _msrDeltas);
                _msrDeltas = 0;
                break;
            default:
                return _scratch;
        }
        UpdateIrq();
        return result;
    }

    private void Write(ushort port, int size, uint value)
    {
        int reg = port - _base;
        byte b = (byte)value;
        switch (reg)
        {
            case RegData:
                if ((_lcr & LcrDlab) != 0) { _divisor = (ushort)(_divisor & 0xFF00 | b); return; }
                if ((_mcr & McrLoop) != 0) PushRx(b);
                else Transmit?.Invoke(b);
                // The byte left at once: THR (and the shifter) are empty again, which raises THRE.
                _thrInterrupt = true;
                break;
            case RegIer:
                if ((_lcr & LcrDlab) != 0) { _divisor = (ushort)(_divisor & 0x00FF | b << 8); return; }
                {
                    bool thrWasOff = (_ier & IerThrEmpty) == 0;
                    _ier = (byte)(b & 0x0F);
                    if (thrWasOff && (_ier & IerThrEmpty) != 0) _thrInterrupt = true; // enabling THRE with THR empty interrupts
                }
                break;
            case RegIirFcr:
                {
                    bool wasEnabled = FifoEnabled;
                    _fcr = (byte)(b & (FcrEnable | FcrTriggerMask));
                    if ((b & FcrClearRx) != 0 || wasEnabled != FifoEnabled) { _rxHead = 0; _rxCount = 0; }
                    if (_hostPending) Pull();
                    break;
                }
            case RegLcr: _lcr = b; return;
            case RegMcr:
                {
                    byte before = ModemInputs();
                    bool wasLoop = (_mcr & McrLoop) != 0;
                    _mcr = (byte)(b & 0x1F);
                    ModemInputsChanged(before, ModemInputs());
                    if (wasLoop && (_mcr & McrLoop) == 0 && _hostPending) Pull();
                    break;
                }
            case RegLsr: case RegMsr:
                return; // read-only (factory test writes ignored)
            default:
                _scratch = b;
                return;
        }
        UpdateIrq();
    }

    /// <summary>Named, versioned snapshot (the host queue is not part of the machine state).</summary>
    public sealed record State(int Version, byte[] RxFifo, byte Ier, byte Lcr, byte Mcr, byte LsrErrors, byte MsrDeltas, byte Scratch,
        byte Fcr, ushort Divisor, bool ThrInterrupt)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState()
    {
        var rx = new byte[_rxCount];
        for (int i = 0; i < _rxCount; i++) rx[i] = _rx[(_rxHead + i) % FifoSize];
        return new State(State.CurrentVersion, rx, _ier, _lcr, _mcr, _lsrErrors, _msrDeltas, _scratch, _fcr, _divisor, _thrInterrupt);
    }

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"UART state version {s.Version} is not supported.");
        _rxHead = 0;
        _rxCount = Math.Min(s.RxFifo.Length, FifoSize);
        s.RxFifo.AsSpan(0, _rxCount).CopyTo(_rx);
        (_ier, _lcr, _mcr, _lsrErrors, _msrDeltas, _scratch, _fcr, _divisor, _thrInterrupt) =
            (s.Ier, s.Lcr, s.Mcr, s.LsrErrors, s.MsrDeltas, s.Scratch, s.Fcr, s.Divisor, s.ThrInterrupt);
        UpdateIrq();
    }
}

namespace VmPortal.Emulator.Devices.Pic;

/// <summary>
/// One Intel 8259A programmable interrupt controller: eight request lines, IRR/ISR/IMR, the ICW1–ICW4
/// initialisation sequence and the OCW1–OCW3 operation words (specific and non-specific EOI, rotation,
/// auto-EOI, special mask mode, poll mode, register read select), edge or level triggering per line
/// (ICW1.LTIM or the PIIX ELCR). Ports and the master/slave cascade live in <see cref="DualPic"/>,
/// which owns two of these. Guests: SeaBIOS, Linux (i8259 driver), memtest86+, iPXE, every real-mode DOS path.
/// </summary>
public sealed class Pic8259
{
    // ICW1 (command port write with bit 4 set)
    public const byte Icw1Select = 0x10, Icw1NeedIcw4 = 0x01, Icw1Single = 0x02, Icw1LevelTriggered = 0x08;
    // ICW4
    public const byte Icw4AutoEoi = 0x02, Icw4SpecialFullyNested = 0x10;
    // OCW3 (command port write with bits 4:3 = 01)
    public const byte Ocw3Select = 0x08, Ocw3ReadRegister = 0x02, Ocw3ReadIsr = 0x01, Ocw3Poll = 0x04;
    public const byte Ocw3SetSpecialMask = 0x20, Ocw3SpecialMaskValid = 0x40;
    // OCW2 command field (bits 7:5)
    public const int Ocw2RotateAeoiClear = 0, Ocw2NonSpecificEoi = 1, Ocw2Nop = 2, Ocw2SpecificEoi = 3;
    public const int Ocw2RotateAeoiSet = 4, Ocw2RotateNonSpecificEoi = 5, Ocw2SetPriority = 6, Ocw2RotateSpecificEoi = 7;

    private readonly bool _isMaster;
    private byte _irr, _isr, _imr, _lines, _elcr;
    private readonly byte _elcrWritableMask;
    private readonly byte _alwaysLevel;
    private byte _vectorBase;
    private int _initStep;            // 0 = operating; 2, 3, 4 = expecting ICW2/3/4
    private bool _needIcw4, _single, _ltim, _autoEoi, _rotateOnAutoEoi, _specialFullyNested, _specialMask;
    private bool _readIsr, _pollPending;
    private int _lowestPriority = 7;

    /// <param name="isMaster">Master chip (vectors 08h at reset) or slave (70h).</param>
    /// <param name="elcrWritableMask">ELCR bits the guest may set (lines that can be level triggered).</param>
    /// <param name="alwaysLevelMask">Lines that always follow their input level (the master's cascade input).</param>
    public Pic8259(bool isMaster, byte elcrWritableMask, byte alwaysLevelMask = 0)
    {
        _isMaster = isMaster;
        _elcrWritableMask = elcrWritableMask;
        _alwaysLevel = alwaysLevelMask;
        _vectorBase = isMaster ? (byte)0x08 : (byte)0x70;
    }

    /// <summary>Interrupt request register (cascade input of the master included once computed by <see cref="DualPic"/>).</summary>
    public byte Irr => _irr;
    public byte Isr => _isr;
    public byte Imr => _imr;
    public byte VectorBase => _vectorBase;
    public bool AutoEoi => _autoEoi;
    public bool SpecialMaskMode => _specialMask;
    public bool InInitialization => _initStep != 0;

    /// <summary>Edge/level control register (ELCR, PIIX port 0x4D0/0x4D1): bit set = level triggered.</summary>
    public byte Elcr
    {
        get => _elcr;
        set => _elcr = (byte)(value & _elcrWritableMask);
    }

    private byte LevelMask => (byte)((_ltim ? 0xFF : _elcr) | _alwaysLevel);

    /// <summary>Power-on state (the input lines keep their levels: devices still drive them).</summary>
    public void Reset()
    {
        _irr = _isr = _imr = _elcr = 0;
        _vectorBase = _isMaster ? (byte)0x08 : (byte)0x70;
        _initStep = 0;
        _needIcw4 = _single = _ltim = _autoEoi = _rotateOnAutoEoi = _specialFullyNested = _specialMask = false;
        _readIsr = _pollPending = false;
        _lowestPriority = 7;
    }

    /// <summary>Drives input line <paramref name="irq"/> (0–7).</summary>
    public void SetLine(int irq, bool level)
    {
        byte mask = (byte)(1 << irq);
        if ((LevelMask & mask) != 0)
        {
            if (level) _irr |= mask; else _irr &= (byte)~mask;
        }
        else if (level && (_lines & mask) == 0)
        {
            _irr |= mask; // rising edge latched
        }
        if (level) _lines |= mask; else _lines &= (byte)~mask;
    }

    /// <summary>Current level of input line <paramref name="irq"/>.</summary>
    public bool LineLevel(int irq) => (_lines & (1 << irq)) != 0;

    /// <summary>Highest-priority request that would be delivered now, or -1. <paramref name="cascadeIrq"/>: the master's slave input to treat specially in special fully nested mode.</summary>
    public int PendingIrq(int cascadeIrq = -1)
    {
        int req = _irr & ~_imr;
        if (req == 0) return -1;
        int inService = _isr;
        if (_specialMask) inService &= ~_imr;
        if (_specialFullyNested && cascadeIrq >= 0) inService &= ~(1 << cascadeIrq);
        for (int i = 0; i < 8; i++)
        {
            int irq = (_lowestPriority + 1 + i) & 7;
            if ((inService & (1 << irq)) != 0)
            {
                // A request of equal priority is allowed in special fully nested mode (the cascade line).
                return -1;
            }
            if ((req & (1 << irq)) != 0) return irq;
        }
        return -1;
    }

    /// <summary>The INTA cycle for this chip: moves <paramref name="irq"/> from IRR to ISR (unless auto-EOI).</summary>
    public void Acknowledge(int irq)
    {
        byte mask = (byte)(1 << irq);
        _irr &= (byte)~mask;
        if ((LevelMask & mask) != 0 && (_lines & mask) != 0) _irr |= mask; // level still asserted
        if (_autoEoi)
        {
            if (_rotateOnAutoEoi) _lowestPriority = irq;
        }
        else _isr |= mask;
    }

    /// <summary>Reads the command port (0x20/0xA0): poll byte, IRR or ISR. <paramref name="pollAck"/> performs the poll's acknowledge.</summary>
    public byte ReadCommand(Func<int> pollAck)
    {
        if (_pollPending)
        {
            _pollPending = false;
            int irq = pollAck();
            return irq < 0 ? (byte)0 : (byte)(0x80 | irq);
        }
        return _readIsr ? _isr : _irr;
    }

    public byte ReadData() => _imr;

    public void WriteCommand(byte value)
    {
        if ((value & Icw1Select) != 0)
        {
            // ICW1: restart initialisation. IMR cleared, edge detectors reset, IR7 lowest priority, IRR selected.
            _initStep = 2;
            _needIcw4 = (value & Icw1NeedIcw4) != 0;
            _single = (value & Icw1Single) != 0;
            _ltim = (value & Icw1LevelTriggered) != 0;
            _imr = 0;
            _isr = 0;
            _irr = (byte)(_lines & LevelMask);
            _lowestPriority = 7;
            _specialMask = false;
            _readIsr = false;
            _pollPending = false;
            _autoEoi = false;
            _rotateOnAutoEoi = false;
            _specialFullyNested = false;
            if (!_needIcw4) { /* 8080 mode defaults are ignored: we always deliver 8086 vectors */ }
            return;
        }
        if ((value & 0x18) == Ocw3Select)
        {
            if ((value & Ocw3Poll) != 0) _pollPending = true;
            if ((value & Ocw3ReadRegister) != 0) _readIsr = (value & Ocw3ReadIsr) != 0;
            if ((value & Ocw3SpecialMaskValid) != 0) _specialMask = (value & Ocw3SetSpecialMask) != 0;
            return;
        }
        // OCW2
        int command = value >> 5;
        int level = value & 7;
        switch (command)
        {
            case Ocw2RotateAeoiClear: _rotateOnAutoEoi = false; break;
            case Ocw2RotateAeoiSet: _rotateOnAutoEoi = true; break;
            case Ocw2NonSpecificEoi:
            case Ocw2RotateNonSpecificEoi:
                {
                    int irq = HighestInService();
                    if (irq >= 0)
                    {
                        _isr &= (byte)~(1 << irq);
                        if (command == Ocw2RotateNonSpecificEoi) _lowestPriority = irq;
                    }
                    break;
                }
            case Ocw2SpecificEoi: _isr &= (byte)~(1 << level); break;
            case Ocw2RotateSpecificEoi: _isr &= (byte)~(1 << level); _lowestPriority = level; break;
            case Ocw2SetPriority: _lowestPriority = level; break;
        }
    }

    public void WriteData(byte value)
    {
        switch (_initStep)
        {
            case 2:
                _vectorBase = (byte)(value & 0xF8);
                _initStep = _single ? (_needIcw4 ? 4 : 0) : 3;
                return;
            case 3:
                // ICW3: cascade wiring. Our PC wiring is fixed (slave on master IR2), so the value is only accepted.
                _initStep = _needIcw4 ? 4 : 0;
                return;
            case 4:
                _autoEoi = (value & Icw4AutoEoi) != 0;
                _specialFullyNested = (value & Icw4SpecialFullyNested) != 0;
                _initStep = 0;
                return;
            default:
                _imr = value; // OCW1
                return;
        }
    }

    private int HighestInService()
    {
        int isr = _specialMask ? _isr & ~_imr : _isr;
        for (int i = 0; i < 8; i++)
        {
            int irq = (_lowestPriority + 1 + i) & 7;
            if ((isr & (1 << irq)) != 0) return irq;
        }
        return -1;
    }

    /// <summary>Named, versioned snapshot of one chip.</summary>
    public sealed record State(int Version, byte Irr, byte Isr, byte Imr, byte Lines, byte Elcr, byte VectorBase, int InitStep,
        bool NeedIcw4, bool Single, bool Ltim, bool AutoEoi, bool RotateOnAutoEoi, bool SpecialFullyNested, bool SpecialMask,
        bool ReadIsr, bool PollPending, int LowestPriority)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _irr, _isr, _imr, _lines, _elcr, _vectorBase, _initStep, _needIcw4, _single,
        _ltim, _autoEoi, _rotateOnAutoEoi, _specialFullyNested, _specialMask, _readIsr, _pollPending, _lowestPriority);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"8259 state version {s.Version} is not supported.");
        (_irr, _isr, _imr, _lines, _elcr, _vectorBase, _initStep) = (s.Irr, s.Isr, s.Imr, s.Lines, s.Elcr, s.VectorBase, s.InitStep);
        (_needIcw4, _single, _ltim, _autoEoi, _rotateOnAutoEoi) = (s.NeedIcw4, s.Single, s.Ltim, s.AutoEoi, s.RotateOnAutoEoi);
        (_specialFullyNested, _specialMask, _readIsr, _pollPending, _lowestPriority) = (s.SpecialFullyNested, s.SpecialMask, s.ReadIsr, s.PollPending, s.LowestPriority);
    }

    public bool IsMaster => _isMaster;
}

using static VmPortal.Emulator.Devices.E1000.E1000Registers;

namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// The 82540EM's serial EEPROM: a 64-word Microwire part (93C46 class) read two ways. Linux's e1000 bit-bangs it
/// through EECD (request/grant, chip select, clock, data in/out; a read is start bit 1, opcode 10, 6 address bits,
/// then 16 data bits MSB first, sequential words while CS stays high); iPXE uses the EERD register (start bit 0,
/// address in bits 15:8, done bit 4, data in 31:16). Contents: the MAC in words 0–2, IDs in words 0x0B–0x0E, and
/// word 0x3F chosen so the 64 words sum to 0xBABA (the drivers refuse the card otherwise). Writes are not supported.
/// </summary>
public sealed class E1000Eeprom
{
    public const int WordCount = 64;
    public const ushort ChecksumTarget = 0xBABA;
    private const int AddressBits = 6, CommandBits = 3;

    private readonly ushort[] _words = new ushort[WordCount];
    private uint _eecd = EecdPresent;
    private int _bitsIn, _outBit = -1;
    private uint _shiftIn;
    private bool _reading;
    private int _address;

    public E1000Eeprom(ReadOnlySpan<byte> mac)
    {
        if (mac.Length != 6) throw new ArgumentException("a MAC address has 6 bytes", nameof(mac));
        for (int i = 0; i < 3; i++) _words[i] = (ushort)(mac[2 * i] | mac[2 * i + 1] << 8);
        _words[0x04] = 0xFFFF;          // LED configuration: defaults
        _words[0x08] = 0x2000;          // part number (PBA)
        _words[0x09] = 0x0010;
        _words[0x0A] = 0x6004;          // initialization control 1: 64-bit-capable, load subsystem IDs
        _words[0x0B] = 0x001E;          // subsystem ID (PRO/1000 MT Desktop)
        _words[0x0C] = 0x8086;          // subsystem vendor
        _words[0x0D] = 0x100E;          // device ID
        _words[0x0E] = 0x8086;          // vendor ID
        _words[0x0F] = 0x3000;          // initialization control 2: symmetric and asymmetric pause capable
        ushort sum = 0;
        for (int i = 0; i < WordCount - 1; i++) sum += _words[i];
        _words[WordCount - 1] = (ushort)(ChecksumTarget - sum);
    }

    public ushort this[int word] => (uint)word < WordCount ? _words[word] : (ushort)0xFFFF;

    /// <summary>EECD as the driver reads it: what it wrote, the grant mirroring the request, present, and DO.</summary>
    public uint ReadEecd()
    {
        uint v = (_eecd & (EecdSk | EecdCs | EecdDi | EecdRequest)) | EecdPresent;
        if ((v & EecdRequest) != 0) v |= EecdGrant;
        if (DataOut) v |= EecdDo;
        return v;
    }

    private bool DataOut => _reading && _outBit is >= 0 and < 16 && ((_words[_address] >> (15 - _outBit)) & 1) != 0;

    public void WriteEecd(uint value)
    {
        uint old = _eecd;
        _eecd = value;
        if ((value & EecdCs) == 0)
        {
            _bitsIn = 0; _shiftIn = 0; _reading = false; _outBit = -1;
            return;
        }
        bool rising = (old & EecdSk) == 0 && (value & EecdSk) != 0;
        if (!rising) return;
        if (_reading)
        {
            if (++_outBit == 16) { _outBit = 0; _address = (_address + 1) % WordCount; }
            return;
        }
        uint bit = (value & EecdDi) != 0 ? 1u : 0u;
        if (_bitsIn == 0 && bit == 0) return; // waiting for the start bit
        _shiftIn = _shiftIn << 1 | bit;
        if (++_bitsIn < CommandBits + AddressBits) return;
        uint opcode = _shiftIn >> AddressBits; // start bit + 2 opcode bits
        if (opcode == 0b110)
        {
            _reading = true;
            _address = (int)(_shiftIn & (WordCount - 1));
            _outBit = -1;
        }
        _bitsIn = 0; _shiftIn = 0; // other commands (write enable, write, erase) are ignored
    }

    /// <summary>EERD: a write with the start bit completes at once with the word.</summary>
    public uint ReadByEerd(uint request)
    {
        if ((request & EerdStart) == 0) return request & ~EerdDone;
        int addr = (int)((request >> 8) & 0xFF);
        return (uint)this[addr] << 16 | (uint)addr << 8 | EerdDone;
    }

    public sealed record State(int Version, uint Eecd, int BitsIn, uint ShiftIn, bool Reading, int Address, int OutBit)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _eecd, _bitsIn, _shiftIn, _reading, _address, _outBit);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"e1000 EEPROM state version {s.Version} is not supported.");
        (_eecd, _bitsIn, _shiftIn, _reading, _address, _outBit) = (s.Eecd, s.BitsIn, s.ShiftIn, s.Reading, s.Address, s.OutBit);
    }
}

using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Dma;

/// <summary>
/// One Intel 8237A DMA controller: four <see cref="DmaChannel"/>s and its registers, addressed by register index
/// 0–15 (the port layout differs between the two PC chips and lives in <see cref="IsaDma"/>):
/// 0–7 channel address/count (two 8-bit halves through the byte-pointer flip-flop), 8 status (read: TC bits 0–3,
/// request bits 4–7; cleared by reading) / command (write), 9 request, 10 single mask, 11 mode, 12 clear flip-flop,
/// 13 temporary (read) / master clear (write), 14 clear all masks, 15 write all masks (read back on PIIX).
/// </summary>
public sealed class Dma8237
{
    public const int RegStatusCommand = 8, RegRequest = 9, RegSingleMask = 10, RegMode = 11, RegClearFlipFlop = 12;
    public const int RegMasterClear = 13, RegClearMasks = 14, RegAllMasks = 15;

    private readonly DmaChannel[] _channels = new DmaChannel[4];
    private bool _flipFlopHigh;
    private byte _status;
    private byte _command;
    private byte _requests;

    public Dma8237(PhysicalMemory memory, int firstChannel, bool sixteenBit)
    {
        for (int i = 0; i < 4; i++) _channels[i] = new DmaChannel(memory, firstChannel + i, sixteenBit, n => _status |= (byte)(1 << (n & 3)));
    }

    public DmaChannel this[int index] => _channels[index];
    public byte Command => _command;

    /// <summary>Machine reset: same as a master clear.</summary>
    public void Reset() => Write(RegMasterClear, 0);

    /// <summary>Named, versioned snapshot of the chip.</summary>
    public sealed record State(int Version, DmaChannel.State[] Channels, bool FlipFlopHigh, byte Status, byte Command, byte Requests)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _channels.Select(c => c.SaveState()).ToArray(), _flipFlopHigh, _status, _command, _requests);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"8237 state version {s.Version} is not supported.");
        for (int i = 0; i < 4; i++) _channels[i].LoadState(s.Channels[i]);
        (_flipFlopHigh, _status, _command, _requests) = (s.FlipFlopHigh, s.Status, s.Command, s.Requests);
    }

    public byte Read(int reg)
    {
        if (reg < 8)
        {
            var ch = _channels[reg >> 1];
            ushort v = (reg & 1) == 0 ? ch.CurrentAddress : ch.CurrentCount;
            byte b = _flipFlopHigh ? (byte)(v >> 8) : (byte)v;
            _flipFlopHigh = !_flipFlopHigh;
            return b;
        }
        switch (reg)
        {
            case RegStatusCommand:
                {
                    byte s = (byte)(_status | _requests << 4);
                    _status = 0;
                    return s;
                }
            case RegAllMasks:
                {
                    int m = 0xF0;
                    for (int i = 0; i < 4; i++) if (_channels[i].Masked) m |= 1 << i;
                    return (byte)m;
                }
            default: return 0; // temporary register and write-only registers
        }
    }

    public void Write(int reg, byte value)
    {
        if (reg < 8)
        {
            var ch = _channels[reg >> 1];
            bool address = (reg & 1) == 0;
            ushort old = address ? ch.BaseAddress : ch.BaseCount;
            ushort v = _flipFlopHigh ? (ushort)(old & 0x00FF | value << 8) : (ushort)(old & 0xFF00 | value);
            _flipFlopHigh = !_flipFlopHigh;
            if (address) { ch.BaseAddress = v; ch.CurrentAddress = v; }
            else ch.SetCount(v);
            return;
        }
        switch (reg)
        {
            case RegStatusCommand: _command = value; break;
            case RegRequest:
                if ((value & 4) != 0) _requests |= (byte)(1 << (value & 3)); else _requests &= (byte)~(1 << (value & 3));
                break;
            case RegSingleMask: _channels[value & 3].Masked = (value & 4) != 0; break;
            case RegMode: _channels[value & 3].Mode = value; break;
            case RegClearFlipFlop: _flipFlopHigh = false; break;
            case RegMasterClear:
                _flipFlopHigh = false;
                _status = 0;
                _command = 0;
                _requests = 0;
                foreach (var c in _channels) c.Masked = true;
                break;
            case RegClearMasks: foreach (var c in _channels) c.Masked = false; break;
            case RegAllMasks: for (int i = 0; i < 4; i++) _channels[i].Masked = (value & (1 << i)) != 0; break;
        }
    }
}

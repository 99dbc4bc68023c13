using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Dma;

/// <summary>
/// One channel of an 8237 (owned by <see cref="Dma8237"/>): base/current address and count, the page register,
/// mode (transfer type, auto-initialise, address decrement), mask and terminal count. Channels 0–3 move bytes;
/// channels 5–7 move 16-bit words (address and count in words, page bit 0 ignored).
/// Devices call <see cref="WriteToMemory"/> (device → memory, a "write" transfer such as a floppy read) or
/// <see cref="ReadFromMemory"/> (memory → device) while <see cref="Ready"/>; each returns the bytes moved, which stop
/// at terminal count. Verify transfers move nothing but still count.
/// </summary>
public sealed class DmaChannel
{
    public const int TransferVerify = 0, TransferWrite = 1, TransferRead = 2;
    public const byte ModeAutoInit = 0x10, ModeDecrement = 0x20;

    private readonly PhysicalMemory _memory;
    private readonly Action<int> _terminalCountReached;

    internal DmaChannel(PhysicalMemory memory, int number, bool sixteenBit, Action<int> terminalCountReached)
    {
        _memory = memory;
        Number = number;
        Is16Bit = sixteenBit;
        _terminalCountReached = terminalCountReached;
    }

    public int Number { get; }
    public bool Is16Bit { get; }
    public ushort BaseAddress { get; internal set; }
    public ushort BaseCount { get; internal set; }
    public ushort CurrentAddress { get; internal set; }
    public ushort CurrentCount { get; internal set; }
    public byte Page { get; internal set; }
    public byte Mode { get; internal set; }
    public bool Masked { get; internal set; } = true;
    /// <summary>Set when the count ran out; cleared when the guest programs the count again.</summary>
    public bool TerminalCount { get; internal set; }

    public int TransferType => (Mode >> 2) & 3;
    public bool AutoInit => (Mode & ModeAutoInit) != 0;
    public bool Decrement => (Mode & ModeDecrement) != 0;

    /// <summary>The channel is unmasked and has not reached terminal count (or re-arms itself).</summary>
    public bool Ready => !Masked && (!TerminalCount || AutoInit);

    private int UnitSize => Is16Bit ? 2 : 1;

    /// <summary>Bytes left before terminal count.</summary>
    public int RemainingBytes => TerminalCount && !AutoInit ? 0 : (CurrentCount + 1) * UnitSize;

    /// <summary>Physical address of the next transfer unit.</summary>
    public uint PhysicalAddress => Is16Bit
        ? (uint)((Page & 0xFE) << 16) | (uint)(CurrentAddress << 1) & 0x1FFFF
        : (uint)(Page << 16) | CurrentAddress;

    /// <summary>Named, versioned snapshot of one channel.</summary>
    public sealed record State(int Version, ushort BaseAddress, ushort BaseCount, ushort CurrentAddress, ushort CurrentCount, byte Page,
        byte Mode, bool Masked, bool TerminalCount)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, BaseAddress, BaseCount, CurrentAddress, CurrentCount, Page, Mode, Masked, TerminalCount);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"DMA channel state version {s.Version} is not supported.");
        (BaseAddress, BaseCount, CurrentAddress, CurrentCount, Page, Mode, Masked, TerminalCount) =
            (s.BaseAddress, s.BaseCount, s.CurrentAddress, s.CurrentCount, s.Page, s.Mode, s.Masked, s.TerminalCount);
    }

    internal void SetCount(ushort count)
    {
        BaseCount = CurrentCount = count;
        TerminalCount = false;
    }

    /// <summary>Device → memory. Returns the number of bytes moved (stops at terminal count).</summary>
    public int WriteToMemory(ReadOnlySpan<byte> data)
    {
        int n = 0;
        bool write = TransferType == TransferWrite;
        while (n < data.Length && Ready)
        {
            uint addr = PhysicalAddress;
            for (int b = 0; b < UnitSize && n < data.Length; b++, n++)
                if (write) _memory.Write8(addr + (uint)b, data[n]);
            if (Step()) break;
        }
        return n;
    }

    /// <summary>Memory → device. Returns the number of bytes moved (stops at terminal count).</summary>
    public int ReadFromMemory(Span<byte> data)
    {
        int n = 0;
        bool read = TransferType == TransferRead;
        while (n < data.Length && Ready)
        {
            uint addr = PhysicalAddress;
            for (int b = 0; b < UnitSize && n < data.Length; b++, n++)
                data[n] = read ? _memory.Read8(addr + (uint)b) : (byte)0;
            if (Step()) break;
        }
        return n;
    }

    /// <summary>Advances one unit; returns true at terminal count.</summary>
    private bool Step()
    {
        CurrentAddress = (ushort)(Decrement ? CurrentAddress - 1 : CurrentAddress + 1);
        if (CurrentCount == 0)
        {
            TerminalCount = true;
            _terminalCountReached(Number);
            if (AutoInit)
            {
                CurrentAddress = BaseAddress;
                CurrentCount = BaseCount;
            }
            else Masked = true; // the 8237 masks a channel at terminal count unless it auto-initialises
            return true;
        }
        CurrentCount--;
        return false;
    }
}

using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// The PIIX3 bus-master IDE engine of one channel (SFF-8038i): command (start/stop, direction), status
/// (active, error, interrupt, drive DMA capable) and the physical address of the PRD table, 8 I/O ports in
/// BAR4 of the IDE function (primary at +0, secondary at +8). A PRD entry is {u32 address, u16 byte count
/// (0 = 64 KiB), u16 flags (bit 15 = end of table)}. The data moves synchronously once the start bit
/// is set, the selected device has asked for DMA and the PCI command register allows bus mastering; the command's
/// end (active bit cleared, the device's status and interrupt) is held until <see cref="FinishPending"/> (the
/// machine calls it between CPU slices, see <see cref="PiixIde.FinishDma"/>): a disk that answered inside the
/// guest's write of the start bit made Linux wait for its next timer tick after every request.
/// Guests: Linux ata_piix (READ/WRITE DMA, ATAPI DMA); SeaBIOS only sets the capability bits.
/// </summary>
public sealed class IdeBusMaster
{
    public const int RegCommand = 0, RegStatus = 2, RegPrdTable = 4;
    public const byte CommandStart = 0x01, CommandToMemory = 0x08;
    public const byte StatusActive = 0x01, StatusError = 0x02, StatusInterrupt = 0x04, StatusDrive0Dma = 0x20, StatusDrive1Dma = 0x40;
    private const int MaxPrdEntries = 4096;
    private const int ChunkSize = 4096;

    private readonly AtaChannel _channel;
    private readonly PhysicalMemory _memory;
    private readonly byte[] _chunk = new byte[ChunkSize];
    private byte _command, _status;
    private uint _prdTable;
    // a transfer whose end is not reported yet: the device, whether it succeeded, whether the active bit clears
    private AtaDevice? _finishDevice;
    private bool _finishOk, _finishClearsActive;

    public IdeBusMaster(AtaChannel channel, PhysicalMemory memory)
    {
        _channel = channel;
        _memory = memory;
        channel.BusMaster = this;
    }

    public byte Status => _status;

    /// <summary>Whether the PCI function may master the bus (command register bit 2); set by <see cref="PiixIde"/>.</summary>
    internal Func<bool>? BusMasterAllowed { get; set; }

    /// <summary>Bus-master registers for machine snapshots.</summary>
    public sealed record State(int Version, byte Command, byte Status, uint PrdTable)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _command, _status, _prdTable);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"IDE bus-master state version {s.Version} is not supported.");
        _command = (byte)(s.Command & (CommandStart | CommandToMemory));
        _status = s.Status;
        _prdTable = s.PrdTable & 0xFFFF_FFFC;
    }

    internal void SetInterruptFlag() => _status |= StatusInterrupt;

    public uint Read(int offset, int size)
    {
        uint v = 0;
        for (int i = 0; i < size; i++) v |= (uint)ReadByte(offset + i) << (8 * i);
        return v;
    }

    public void Write(int offset, int size, uint value)
    {
        if (offset == RegPrdTable && size == 4) { _prdTable = value & 0xFFFF_FFFC; return; }
        for (int i = 0; i < size; i++) WriteByte(offset + i, (byte)(value >> (8 * i)));
    }

    private byte ReadByte(int offset) => offset switch
    {
        RegCommand => _command,
        RegStatus => _status,
        >= RegPrdTable and < RegPrdTable + 4 => (byte)(_prdTable >> (8 * (offset - RegPrdTable))),
        _ => 0,
    };

    private void WriteByte(int offset, byte v)
    {
        switch (offset)
        {
            case RegCommand:
                bool start = (v & CommandStart) != 0, wasStarted = (_command & CommandStart) != 0;
                _command = (byte)(v & (CommandStart | CommandToMemory));
                if (start && !wasStarted) { _status |= StatusActive; TryTransfer(); }
                else if (!start)
                {
                    FinishPending(); // stopping the engine ends the command first (the guest normally waits for the interrupt)
                    _status &= unchecked((byte)~StatusActive);
                }
                break;
            case RegStatus:
                // Interrupt and error are write-one-to-clear; the drive-capable bits are plain storage.
                _status = (byte)((_status & ~(StatusDrive0Dma | StatusDrive1Dma) & ~(v & (StatusInterrupt | StatusError)))
                                 | (v & (StatusDrive0Dma | StatusDrive1Dma)));
                break;
            case >= RegPrdTable and < RegPrdTable + 4:
                int shift = 8 * (offset - RegPrdTable);
                _prdTable = ((_prdTable & ~(0xFFu << shift)) | ((uint)v << shift)) & 0xFFFF_FFFC;
                break;
        }
    }

    /// <summary>Runs the transfer if the engine is started and the selected device wants DMA.</summary>
    internal void TryTransfer()
    {
        if ((_command & CommandStart) == 0 || (_status & StatusActive) == 0) return;
        if (BusMasterAllowed != null && !BusMasterAllowed()) return; // waits until the guest enables bus mastering
        var dev = _channel.Selected;
        if (dev == null || !dev.DmaRequested) return;

        uint entry = _prdTable;
        bool eot = false, exhausted = false;
        for (int n = 0; n < MaxPrdEntries && dev.DmaRemaining > 0; n++, entry += 8)
        {
            uint addr = _memory.Read32(entry) & 0xFFFF_FFFE;
            uint flags = _memory.Read32(entry + 4);
            int count = (int)(flags & 0xFFFE);
            if (count == 0) count = 0x10000;
            eot = (flags & 0x8000_0000) != 0;
            int done = 0;
            while (done < count && dev.DmaRemaining > 0)
            {
                int len = Math.Min(ChunkSize, count - done);
                var span = _chunk.AsSpan(0, len);
                int moved;
                if (dev.DmaToMemory)
                {
                    moved = dev.DmaProduce(span);
                    _memory.WriteBytes(addr + (uint)done, span[..moved]);
                }
                else
                {
                    _memory.ReadBytes(addr + (uint)done, span);
                    moved = dev.DmaConsume(span);
                }
                if (moved == 0) break;
                done += moved;
            }
            exhausted = done == count;
            if (eot) break;
        }
        bool ok = dev.DmaRemaining == 0;
        // Active stays set when the PRD table described more memory than the device moved.
        _finishDevice = dev;
        _finishOk = ok;
        _finishClearsActive = !ok || (eot && exhausted);
    }

    /// <summary>Machine reset: a transfer's end that was not reported yet is dropped.</summary>
    internal void DropPending() => _finishDevice = null;

    /// <summary>Whether a transfer's end waits to be reported.</summary>
    public bool FinishIsPending => _finishDevice != null;

    /// <summary>Reports the end of the last transfer (status bits, the device's completion and its interrupt), if pending.</summary>
    public void FinishPending()
    {
        if (_finishDevice is not { } dev) return;
        _finishDevice = null;
        if (!_finishOk) _status |= StatusError;
        if (_finishClearsActive) _status &= unchecked((byte)~StatusActive);
        dev.DmaFinished(_finishOk);
    }
}

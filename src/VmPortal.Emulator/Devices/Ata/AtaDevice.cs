using System.Buffers.Binary;

namespace VmPortal.Emulator.Devices.Ata;

/// <summary>
/// One device (master or slave) on an IDE channel: its copy of the task file registers, the PIO data buffer
/// (one DRQ block at a time) and the bus-master DMA hooks. <see cref="AtaHardDisk"/> and <see cref="AtapiCdrom"/>
/// implement the command sets. Commands complete synchronously: by the time the guest's OUT to the command
/// register returns, the device shows DRQ (data to move) or its final status and has raised its interrupt.
/// </summary>
public abstract class AtaDevice
{
    /// <summary>Largest PIO block: an ATAPI byte-count-limited chunk (≤ 0xFFFE) or 16 sectors of READ MULTIPLE.</summary>
    protected const int BufferSize = 64 * 1024;

    // Task file as the device holds it. The channel writes host values into both devices.
    internal byte Features, SectorCount, LbaLow, LbaMid, LbaHigh, Device = AtaProtocol.DeviceObsolete;
    internal byte HobFeatures, HobSectorCount, HobLbaLow, HobLbaMid, HobLbaHigh;
    internal byte Status, Error = AtaProtocol.DiagnosticPassed;

    protected readonly byte[] Buffer = new byte[BufferSize];
    protected int BufferPos, BufferLength;
    /// <summary>True when the current DRQ block goes from the host to the device (writes).</summary>
    protected bool HostToDevice;

    internal AtaChannel? Channel { get; set; }

    /// <summary>True if this is a packet (ATAPI) device; used for the reset signature.</summary>
    public abstract bool IsAtapi { get; }

    /// <summary>Device-specific handling of a command written to the command register.</summary>
    internal abstract void ExecuteCommand(byte command);

    /// <summary>Called when the host has read (or written) the whole current DRQ block.</summary>
    protected abstract void OnBlockTransferred();

    /// <summary>Puts the reset signature in the task file (after SRST, DEVICE RESET, EXECUTE DEVICE DIAGNOSTIC, power-on).</summary>
    internal virtual void SetSignature()
    {
        SectorCount = 1;
        LbaLow = 1;
        LbaMid = IsAtapi ? (byte)0x14 : (byte)0;
        LbaHigh = IsAtapi ? (byte)0xEB : (byte)0;
        Device = AtaProtocol.DeviceObsolete;
        Error = AtaProtocol.DiagnosticPassed;
        Status = IsAtapi ? (byte)0 : (byte)(AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc);
        BufferPos = BufferLength = 0;
        DmaRequested = false;
    }

    /// <summary>Soft reset (SRST) or power-on: abandons any command.</summary>
    internal virtual void Reset() => SetSignature();

    // ---- PIO data port ----

    internal uint ReadData(int size)
    {
        if ((Status & AtaProtocol.StatusDrq) == 0 || HostToDevice) return size == 4 ? 0xFFFF_FFFFu : 0xFFFFu;
        uint v = 0;
        for (int i = 0; i < size; i++)
        {
            if (BufferPos < BufferLength) v |= (uint)Buffer[BufferPos++] << (8 * i);
        }
        if (BufferPos >= BufferLength) OnBlockTransferred();
        return v;
    }

    internal void WriteData(int size, uint value)
    {
        if ((Status & AtaProtocol.StatusDrq) == 0 || !HostToDevice) return;
        for (int i = 0; i < size; i++)
        {
            if (BufferPos < BufferLength) Buffer[BufferPos++] = (byte)(value >> (8 * i));
        }
        if (BufferPos >= BufferLength) OnBlockTransferred();
    }

    /// <summary>Offers <paramref name="length"/> bytes of <see cref="Buffer"/> to the host (DRQ set, data in).</summary>
    protected void StartDataIn(int length, bool interrupt)
    {
        BufferPos = 0;
        BufferLength = length;
        HostToDevice = false;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusDrq;
        if (interrupt) RaiseIrq();
    }

    /// <summary>Asks the host for <paramref name="length"/> bytes into <see cref="Buffer"/> (DRQ set, data out).</summary>
    protected void StartDataOut(int length, bool interrupt)
    {
        BufferPos = 0;
        BufferLength = length;
        HostToDevice = true;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusDrq;
        if (interrupt) RaiseIrq();
    }

    protected void CompleteOk(bool interrupt = true)
    {
        BufferPos = BufferLength = 0;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc;
        Error = 0;
        if (interrupt) RaiseIrq();
    }

    protected void CompleteError(byte error)
    {
        BufferPos = BufferLength = 0;
        DmaRequested = false;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusErr;
        Error = error;
        RaiseIrq();
    }

    protected void Abort() => CompleteError(AtaProtocol.ErrorAbrt);

    protected void RaiseIrq() => Channel?.RaiseIrq();

    // ---- Bus-master DMA ----

    /// <summary>True while a DMA command waits for the bus master to move its data.</summary>
    internal bool DmaRequested { get; private protected set; }

    /// <summary>Direction of the requested DMA: true = device to memory (reads).</summary>
    internal bool DmaToMemory { get; private protected set; }

    /// <summary>Bytes the DMA command still wants moved.</summary>
    internal long DmaRemaining { get; private protected set; }

    /// <summary>Fills <paramref name="dest"/> with the next bytes of a device-to-memory transfer; returns the count produced.</summary>
    internal virtual int DmaProduce(Span<byte> dest) => 0;

    /// <summary>Takes the next bytes of a memory-to-device transfer; returns the count consumed.</summary>
    internal virtual int DmaConsume(ReadOnlySpan<byte> src) => 0;

    /// <summary>Called by the bus master when the transfer ended; <paramref name="ok"/> is false if the PRD table ran out first.</summary>
    internal virtual void DmaFinished(bool ok)
    {
        DmaRequested = false;
        if (ok) CompleteOk();
        else Abort();
    }

    /// <summary>Announces a DMA data phase and lets the bus master run it if it is already started.</summary>
    protected void RequestDma(bool toMemory, long bytes)
    {
        DmaToMemory = toMemory;
        DmaRemaining = bytes;
        DmaRequested = true;
        Status = AtaProtocol.StatusDrdy | AtaProtocol.StatusDsc | AtaProtocol.StatusDrq;
        Channel?.BusMaster?.TryTransfer();
    }

    // ---- helpers ----

    /// <summary>Builds IDENTIFY data: 256 little-endian words in <see cref="Buffer"/>.</summary>
    protected static void StoreWords(Span<byte> dest, ReadOnlySpan<ushort> words)
    {
        for (int i = 0; i < words.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dest[(2 * i)..], words[i]);
    }
}

namespace VmPortal.Emulator.Io;

/// <summary>Reads <paramref name="size"/> bytes (1, 2 or 4) from an I/O port.</summary>
public delegate uint IoReadHandler(ushort port, int size);

/// <summary>Writes <paramref name="size"/> bytes (1, 2 or 4) to an I/O port.</summary>
public delegate void IoWriteHandler(ushort port, int size, uint value);

/// <summary>
/// The x86 I/O port space (64 Ki ports). Devices register their own ports in their constructors.
/// Unclaimed ports read as all ones and ignore writes; with <see cref="TraceUnclaimed"/> set they
/// are reported through <see cref="UnclaimedAccess"/> so a missing device is easy to spot.
/// A 16/32-bit access to a port whose handler was registered for byte access only is split into byte accesses.
/// </summary>
public sealed class IoBus
{
    private readonly IoReadHandler?[] _read = new IoReadHandler?[65536];
    private readonly IoWriteHandler?[] _write = new IoWriteHandler?[65536];
    // Bit 0: handler accepts 16-bit accesses whole; bit 1: accepts 32-bit accesses whole.
    private readonly byte[] _wide = new byte[65536];

    public bool TraceUnclaimed { get; set; }

    /// <summary>Raised for accesses to ports nobody registered, when <see cref="TraceUnclaimed"/> is set.</summary>
    public event Action<ushort, int, bool, uint>? UnclaimedAccess;

    /// <summary>
    /// Claims <paramref name="count"/> ports from <paramref name="basePort"/>.
    /// <paramref name="wideAccess"/>: true if the handlers accept 16/32-bit accesses themselves;
    /// otherwise wide accesses are split into byte accesses on consecutive ports.
    /// </summary>
    public void Register(ushort basePort, int count, IoReadHandler? read, IoWriteHandler? write, bool wideAccess = false)
    {
        for (int i = 0; i < count; i++)
        {
            int p = (basePort + i) & 0xFFFF;
            if (read != null) _read[p] = read;
            if (write != null) _write[p] = write;
            _wide[p] = (byte)(wideAccess ? 3 : 0);
        }
    }

    public void Unregister(ushort basePort, int count)
    {
        for (int i = 0; i < count; i++)
        {
            int p = (basePort + i) & 0xFFFF;
            _read[p] = null;
            _write[p] = null;
            _wide[p] = 0;
        }
    }

    public bool IsClaimed(ushort port) => _read[port] != null || _write[port] != null;

    public byte In8(ushort port) => (byte)Read(port, 1);
    public ushort In16(ushort port) => (ushort)Read(port, 2);
    public uint In32(ushort port) => Read(port, 4);
    public void Out8(ushort port, byte value) => Write(port, 1, value);
    public void Out16(ushort port, ushort value) => Write(port, 2, value);
    public void Out32(ushort port, uint value) => Write(port, 4, value);

    public uint Read(ushort port, int size)
    {
        var h = _read[port];
        if (size == 1 || (h != null && _wide[port] != 0))
        {
            if (h != null) return h(port, size) & SizeMask(size);
            Unclaimed(port, size, false, 0);
            return SizeMask(size);
        }
        uint v = 0;
        for (int i = 0; i < size; i++)
            v |= (uint)In8Split((ushort)(port + i)) << (8 * i);
        return v;
    }

    public void Write(ushort port, int size, uint value)
    {
        value &= SizeMask(size);
        var h = _write[port];
        if (size == 1 || (h != null && _wide[port] != 0))
        {
            if (h != null) h(port, size, value);
            else Unclaimed(port, size, true, value);
            return;
        }
        for (int i = 0; i < size; i++)
        {
            ushort p = (ushort)(port + i);
            var hb = _write[p];
            byte b = (byte)(value >> (8 * i));
            if (hb != null) hb(p, 1, b);
            else Unclaimed(p, 1, true, b);
        }
    }

    private byte In8Split(ushort port)
    {
        var h = _read[port];
        if (h != null) return (byte)h(port, 1);
        Unclaimed(port, 1, false, 0);
        return 0xFF;
    }

    private void Unclaimed(ushort port, int size, bool isWrite, uint value)
    {
        if (TraceUnclaimed) UnclaimedAccess?.Invoke(port, size, isWrite, value);
    }

    private static uint SizeMask(int size) => size switch { 1 => 0xFFu, 2 => 0xFFFFu, _ => 0xFFFF_FFFFu };
}

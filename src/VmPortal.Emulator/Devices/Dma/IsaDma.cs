using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Dma;

/// <summary>
/// The PC/AT ISA DMA: two cascaded 8237A (<see cref="Dma8237"/>) — DMA 1 (8-bit channels 0–3) at 0x00–0x0F and
/// DMA 2 (16-bit channels 4–7, channel 4 = cascade) at 0xC0–0xDF on even ports — and the 74LS612 page registers at
/// 0x80–0x8F (channel 0: 0x87, 1: 0x83, 2: 0x81, 3: 0x82, 5: 0x8B, 6: 0x89, 7: 0x8A; the rest are plain latches).
/// Port 0x80 is also the POST code port: <see cref="LastPostCode"/> and <see cref="PostCodeWritten"/>.
/// Devices get a channel with <see cref="Channel"/> (the floppy uses channel 2).
/// Guests: SeaBIOS (floppy DMA setup, POST codes), Linux floppy driver, DOS sound/floppy code.
/// </summary>
public sealed class IsaDma
{
    public const ushort Dma1Base = 0x00, Dma2Base = 0xC0, PageBase = 0x80, PostCodePort = 0x80;
    private static readonly int[] PagePortForChannel = { 0x87, 0x83, 0x81, 0x82, 0x8F, 0x8B, 0x89, 0x8A };

    private readonly Dma8237 _dma1, _dma2;
    private readonly byte[] _pages = new byte[16];

    public IsaDma(IoBus io, PhysicalMemory memory)
    {
        _dma1 = new Dma8237(memory, 0, false);
        _dma2 = new Dma8237(memory, 4, true);
        io.Register(Dma1Base, 16, (p, s) => _dma1.Read(p - Dma1Base), (p, s, v) => _dma1.Write(p - Dma1Base, (byte)v));
        io.Register(Dma2Base, 32, ReadDma2, WriteDma2);
        io.Register(PageBase, 16, ReadPage, WritePage);
    }

    public Dma8237 Controller1 => _dma1;
    public Dma8237 Controller2 => _dma2;

    /// <summary>Machine reset: master clear of both controllers (the page registers keep their latches).</summary>
    public void Reset()
    {
        _dma1.Reset();
        _dma2.Reset();
    }

    /// <summary>Named, versioned snapshot: both controllers and the page register file.</summary>
    public sealed record State(int Version, Dma8237.State Dma1, Dma8237.State Dma2, byte[] Pages)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _dma1.SaveState(), _dma2.SaveState(), (byte[])_pages.Clone());

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"ISA DMA state version {s.Version} is not supported.");
        _dma1.LoadState(s.Dma1);
        _dma2.LoadState(s.Dma2);
        s.Pages.AsSpan(0, _pages.Length).CopyTo(_pages);
    }

    /// <summary>DMA channel 0–7.</summary>
    public DmaChannel Channel(int number) => number < 4 ? _dma1[number] : _dma2[number - 4];

    /// <summary>Last byte written to port 0x80 (BIOS POST progress code).</summary>
    public byte LastPostCode => _pages[0];

    /// <summary>Raised for every write to port 0x80.</summary>
    public event Action<byte>? PostCodeWritten;

    private uint ReadDma2(ushort port, int size)
    {
        int off = port - Dma2Base;
        return (off & 1) != 0 ? 0xFFu : _dma2.Read(off >> 1);
    }

    private void WriteDma2(ushort port, int size, uint value)
    {
        int off = port - Dma2Base;
        if ((off & 1) == 0) _dma2.Write(off >> 1, (byte)value);
    }

    private uint ReadPage(ushort port, int size) => _pages[port - PageBase];

    private void WritePage(ushort port, int size, uint value)
    {
        int off = port - PageBase;
        _pages[off] = (byte)value;
        for (int ch = 0; ch < 8; ch++)
            if (PagePortForChannel[ch] == port) Channel(ch).Page = (byte)value;
        if (port == PostCodePort) PostCodeWritten?.Invoke((byte)value);
    }
}

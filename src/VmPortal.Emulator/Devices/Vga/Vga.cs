using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// IBM VGA core of the Bochs/QEMU standard VGA (the PCI face is <see cref="StdVgaPci"/>).
/// Ports: attribute controller 0x3C0/0x3C1 (index/data flip-flop, reset by reading input status 1),
/// misc output 0x3C2 (write) / 0x3CC (read), input status 0 0x3C2 (read), sequencer 0x3C4/0x3C5,
/// DAC 0x3C6 (pel mask), 0x3C7 (read index / DAC state), 0x3C8 (write index), 0x3C9 (data),
/// feature control 0x3CA (read) / 0x3BA or 0x3DA (write), graphics controller 0x3CE/0x3CF,
/// CRTC 0x3B4/0x3B5 or 0x3D4/0x3D5 and input status 1 0x3BA or 0x3DA (mono/colour by misc output bit 0),
/// plus the Bochs DISPI registers at 0x1CE/0x1CF (<see cref="BochsDispi"/>).
/// Memory: 0xA0000–0xBFFFF (window chosen by GC misc bits 2–3) into 256 KiB of planar VRAM (4 planes,
/// stored interleaved: byte 4·offset+plane) with read modes 0–1, write modes 0–3, latches, set/reset,
/// rotate/function, bit mask, chain-4 and odd/even; with DISPI enabled the window is a 64 KiB bank of linear VRAM.
/// The whole VRAM (default 16 MiB) is also the linear framebuffer (<see cref="LfbRead"/>/<see cref="LfbWrite"/>).
/// Display output: <see cref="Screen"/>. Guests: SeaBIOS vgabios-stdvga, DOS programs, Linux vgacon/vga16fb/
/// vesafb/bochs-drm, memtest86+, GRUB, iPXE.
/// </summary>
public sealed class Vga : IMmioDevice
{
    public const uint WindowBase = 0xA0000, WindowSize = 0x20000;
    public const int PlanarSize = 256 * 1024;
    public const int DefaultVramSize = 16 * 1024 * 1024;
    public const int DirtyPageShift = 12;

    // Ports.
    public const ushort PortAttrIndex = 0x3C0, PortAttrData = 0x3C1, PortMiscWrite = 0x3C2, PortInputStatus0 = 0x3C2;
    public const ushort PortSeqIndex = 0x3C4, PortSeqData = 0x3C5, PortPelMask = 0x3C6, PortDacReadIndex = 0x3C7;
    public const ushort PortDacWriteIndex = 0x3C8, PortDacData = 0x3C9, PortFeatureRead = 0x3CA, PortMiscRead = 0x3CC;
    public const ushort PortGcIndex = 0x3CE, PortGcData = 0x3CF;
    public const ushort PortCrtcIndexMono = 0x3B4, PortCrtcDataMono = 0x3B5, PortStatus1Mono = 0x3BA;
    public const ushort PortCrtcIndexColor = 0x3D4, PortCrtcDataColor = 0x3D5, PortStatus1Color = 0x3DA;

    // Sequencer registers.
    public const int SeqReset = 0, SeqClocking = 1, SeqMapMask = 2, SeqCharMap = 3, SeqMemoryMode = 4;
    // Graphics controller registers.
    public const int GcSetReset = 0, GcEnableSetReset = 1, GcColorCompare = 2, GcRotate = 3, GcReadMap = 4;
    public const int GcMode = 5, GcMisc = 6, GcColorDontCare = 7, GcBitMask = 8;
    // CRTC registers.
    public const int CrHTotal = 0, CrHDisplayEnd = 1, CrOverflow = 7, CrPresetRowScan = 8, CrMaxScanLine = 9;
    public const int CrCursorStart = 0x0A, CrCursorEnd = 0x0B, CrStartHigh = 0x0C, CrStartLow = 0x0D;
    public const int CrCursorHigh = 0x0E, CrCursorLow = 0x0F, CrVRetraceEnd = 0x11, CrVDisplayEnd = 0x12;
    public const int CrOffset = 0x13, CrUnderline = 0x14, CrModeControl = 0x17, CrLineCompare = 0x18;
    // Attribute controller registers.
    public const int AcMode = 0x10, AcOverscan = 0x11, AcColorPlaneEnable = 0x12, AcHPan = 0x13, AcColorSelect = 0x14;
    public const byte AcPaletteAddressSource = 0x20;

    // Bits.
    public const byte MiscIoAddressColor = 0x01, SeqMemChain4 = 0x08, SeqMemOddEvenDisable = 0x04, SeqClock8Dot = 0x01;
    public const byte SeqClockScreenOff = 0x20, GcMiscGraphics = 0x01, GcModeOddEven = 0x10;
    public const byte GcModeInterleave = 0x20, GcMode256 = 0x40, CrModeByte = 0x40, CrModeWrapMa15 = 0x20;
    public const byte CrModeMap14 = 0x02, CrModeMap13 = 0x01, CrUnderlineDword = 0x40, CrProtect = 0x80;

    internal readonly byte[] Vram;
    internal readonly byte[] Seq = new byte[8];
    internal readonly byte[] Gc = new byte[16];
    internal readonly byte[] Crtc = new byte[64];
    internal readonly byte[] Ac = new byte[32];
    internal readonly byte[] Dac = new byte[256 * 3];
    internal byte Misc, PelMask = 0xFF;
    private int _seqIndex, _gcIndex, _crtcIndex, _acIndex;
    private bool _acFlipFlopData;
    private int _dacWriteIndex, _dacReadIndex, _dacComponent, _dacReadComponent;
    private byte _dacState;
    private readonly byte[] _dacLatch = new byte[3];
    private uint _latch;
    private byte _featureControl;
    private uint _statusCounter;

    // Change tracking read by the renderer (written on the machine thread, read on the console thread).
    internal readonly byte[] DirtyPages;
    internal volatile int RegisterGeneration;
    internal volatile int CursorGeneration;
    internal volatile int FontGeneration;
    internal volatile int DacGeneration;

    /// <param name="reuseVram">The VRAM of a card of the same size that this one replaces (a state load overwrites it):
    /// used as it is instead of a fresh array (no page faults on first touch).</param>
    public Vga(IoBus bus, PhysicalMemory memory, int vramSize = DefaultVramSize, byte[]? reuseVram = null)
    {
        if (vramSize < PlanarSize || (vramSize & (vramSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(vramSize), "VRAM must be a power of two of at least 256 KiB.");
        Vram = reuseVram?.Length == vramSize ? reuseVram : GC.AllocateArray<byte>(vramSize, pinned: true);
        DirtyPages = new byte[vramSize >> DirtyPageShift];
        Dispi = new BochsDispi(vramSize);
        Dispi.LayoutChanged += () => RegisterGeneration++;
        Dispi.ClearRequested += n => { Vram.AsSpan(0, n).Clear(); MarkAllDirty(); };
        Screen = new Screen(this);

        foreach (ushort p in new[] { PortCrtcIndexMono, PortCrtcDataMono, PortStatus1Mono, PortCrtcIndexColor, PortCrtcDataColor, PortStatus1Color })
            bus.Register(p, 1, ReadPort, WritePort);
        bus.Register(PortAttrIndex, 0x10, ReadPort, WritePort); // 0x3C0–0x3CF
        bus.Register(BochsDispi.IndexPort, 3, ReadDispi, WriteDispi, wideAccess: true);
        memory.MapMmio(WindowBase, WindowSize, this);
        Reset();
    }

    public BochsDispi Dispi { get; }

    /// <summary>The display as the console and tests see it.</summary>
    public Screen Screen { get; }

    public int VramSize => Vram.Length;

    /// <summary>Power-on state: registers cleared (the VGA BIOS programs a mode), DAC black, DISPI off.</summary>
    public void Reset()
    {
        Array.Clear(Seq); Array.Clear(Gc); Array.Clear(Crtc); Array.Clear(Ac); Array.Clear(Dac);
        Misc = 0; PelMask = 0xFF;
        _seqIndex = _gcIndex = _crtcIndex = _acIndex = 0;
        _acFlipFlopData = false;
        _dacWriteIndex = _dacReadIndex = _dacComponent = _dacReadComponent = 0;
        Gc[GcBitMask] = 0xFF;
        Seq[SeqMapMask] = 0x0F;
        Dispi.Reset();
        RegisterGeneration++;
        DacGeneration++;
        MarkAllDirty();
    }

    internal bool ColorIo => (Misc & MiscIoAddressColor) != 0;

    /// <summary>Everything the guest can observe of the VGA (registers, DAC, latches, DISPI, VRAM), for machine snapshots.</summary>
    public sealed record State(int Version, byte Misc, byte PelMask, byte[] Seq, byte[] Gc, byte[] Crtc, byte[] Ac, byte[] Dac,
        int SeqIndex, int GcIndex, int CrtcIndex, int AcIndex, bool AcFlipFlopData, int DacWriteIndex, int DacReadIndex,
        int DacComponent, int DacReadComponent, byte DacState, byte[] DacLatch, uint Latch, byte FeatureControl,
        BochsDispi.State Dispi, byte[] Vram, uint StatusCounter)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, Misc, PelMask, (byte[])Seq.Clone(), (byte[])Gc.Clone(),
        (byte[])Crtc.Clone(), (byte[])Ac.Clone(), (byte[])Dac.Clone(), _seqIndex, _gcIndex, _crtcIndex, _acIndex,
        _acFlipFlopData, _dacWriteIndex, _dacReadIndex, _dacComponent, _dacReadComponent, _dacState,
        (byte[])_dacLatch.Clone(), _latch, _featureControl, Dispi.SaveState(), (byte[])Vram.Clone(), _statusCounter);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"VGA state version {s.Version} is not supported.");
        if (s.Vram.Length != Vram.Length || s.Seq.Length != Seq.Length || s.Gc.Length != Gc.Length || s.Crtc.Length != Crtc.Length
            || s.Ac.Length != Ac.Length || s.Dac.Length != Dac.Length || s.DacLatch.Length != _dacLatch.Length)
            throw new InvalidDataException("VGA state does not match this device (VRAM size or register counts).");
        Misc = s.Misc; PelMask = s.PelMask;
        s.Seq.CopyTo(Seq, 0); s.Gc.CopyTo(Gc, 0); s.Crtc.CopyTo(Crtc, 0); s.Ac.CopyTo(Ac, 0); s.Dac.CopyTo(Dac, 0);
        _seqIndex = s.SeqIndex & 7; _gcIndex = s.GcIndex & 0x0F; _crtcIndex = s.CrtcIndex & 0x3F; _acIndex = s.AcIndex & 0x3F;
        _acFlipFlopData = s.AcFlipFlopData;
        _dacWriteIndex = s.DacWriteIndex & 0xFF; _dacReadIndex = s.DacReadIndex & 0xFF;
        _dacComponent = Math.Clamp(s.DacComponent, 0, 2); _dacReadComponent = Math.Clamp(s.DacReadComponent, 0, 2);
        _dacState = s.DacState;
        s.DacLatch.CopyTo(_dacLatch, 0);
        _latch = s.Latch;
        _featureControl = s.FeatureControl;
        _statusCounter = s.StatusCounter;
        Dispi.LoadState(s.Dispi);
        if (!ReferenceEquals(s.Vram, Vram)) s.Vram.CopyTo(Vram, 0); // a board's state load fills Vram in place
        RegisterGeneration++;
        DacGeneration++;
        MarkAllDirty();
    }

    /// <summary>Attribute controller palette address source bit: clear while the BIOS reprograms the palette (screen blanked).</summary>
    internal bool PaletteSourceVideo => (_acIndex & AcPaletteAddressSource) != 0;

    internal void MarkAllDirty()
    {
        Array.Fill(DirtyPages, (byte)1);
        FontGeneration++;
    }

    // ---------------- I/O ports ----------------

    private uint ReadPort(ushort port, int size)
    {
        switch (port)
        {
            case PortAttrIndex: return (uint)_acIndex;
            case PortAttrData: return Ac[_acIndex & 0x1F];
            case PortInputStatus0: return 0x10; // switch sense: colour monitor attached
            case PortSeqIndex: return (uint)_seqIndex;
            case PortSeqData: return Seq[_seqIndex];
            case PortPelMask: return PelMask;
            case PortDacReadIndex: return _dacState;
            case PortDacWriteIndex: return (uint)_dacWriteIndex;
            case PortDacData:
            {
                byte v = Dac[_dacReadIndex * 3 + _dacReadComponent];
                if (++_dacReadComponent == 3) { _dacReadComponent = 0; _dacReadIndex = (_dacReadIndex + 1) & 0xFF; }
                return v;
            }
            case PortFeatureRead: return _featureControl;
            case PortMiscRead: return Misc;
            case PortGcIndex: return (uint)_gcIndex;
            case PortGcData: return Gc[_gcIndex];
            case PortCrtcIndexMono: return ColorIo ? 0xFFu : (uint)_crtcIndex;
            case PortCrtcDataMono: return ColorIo ? 0xFFu : Crtc[_crtcIndex];
            case PortCrtcIndexColor: return ColorIo ? (uint)_crtcIndex : 0xFFu;
            case PortCrtcDataColor: return ColorIo ? Crtc[_crtcIndex] : 0xFFu;
            case PortStatus1Mono: return ColorIo ? 0xFFu : InputStatus1();
            case PortStatus1Color: return ColorIo ? InputStatus1() : 0xFFu;
            default: return 0xFF;
        }
    }

    /// <summary>
    /// Input status 1: bit 0 = display disabled (blanking), bit 3 = vertical retrace. Derived from a read
    /// counter, not wall time, so polling loops always make progress: every read toggles bit 0 and one read
    /// in eight reports retrace.
    /// </summary>
    private uint InputStatus1()
    {
        _acFlipFlopData = false;
        uint c = ++_statusCounter;
        bool retrace = (c & 7) == 0;
        return (uint)((retrace ? 0x09 : (int)(c & 1)));
    }

    private void WritePort(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        switch (port)
        {
            case PortAttrIndex:
                if (!_acFlipFlopData)
                {
                    if (((_acIndex ^ v) & AcPaletteAddressSource) != 0) RegisterGeneration++;
                    _acIndex = v & 0x3F;
                }
                else
                {
                    int i = _acIndex & 0x1F;
                    if (i <= AcColorSelect && Ac[i] != v) { Ac[i] = v; RegisterGeneration++; }
                }
                _acFlipFlopData = !_acFlipFlopData;
                return;
            case PortMiscWrite: Misc = v; RegisterGeneration++; return;
            case PortSeqIndex: _seqIndex = v & 7; return;
            case PortSeqData:
                if (Seq[_seqIndex] != v) { Seq[_seqIndex] = v; if (_seqIndex != SeqMapMask) RegisterGeneration++; }
                if (_seqIndex == SeqCharMap) FontGeneration++;
                return;
            case PortPelMask: PelMask = v; DacGeneration++; return;
            case PortDacReadIndex: _dacReadIndex = v; _dacReadComponent = 0; _dacState = 3; return;
            case PortDacWriteIndex: _dacWriteIndex = v; _dacComponent = 0; _dacState = 0; return;
            case PortDacData:
                _dacLatch[_dacComponent++] = v;
                if (_dacComponent == 3)
                {
                    _dacComponent = 0;
                    int mask = Dispi.Dac8Bit ? 0xFF : 0x3F;
                    Dac[_dacWriteIndex * 3] = (byte)(_dacLatch[0] & mask);
                    Dac[_dacWriteIndex * 3 + 1] = (byte)(_dacLatch[1] & mask);
                    Dac[_dacWriteIndex * 3 + 2] = (byte)(_dacLatch[2] & mask);
                    _dacWriteIndex = (_dacWriteIndex + 1) & 0xFF;
                    DacGeneration++;
                }
                return;
            case PortGcIndex: _gcIndex = v & 0x0F; return;
            case PortGcData:
                if (Gc[_gcIndex] != v)
                {
                    Gc[_gcIndex] = v;
                    if (_gcIndex == GcMisc || _gcIndex == GcMode) RegisterGeneration++;
                }
                return;
            case PortCrtcIndexMono: if (!ColorIo) _crtcIndex = v & 0x3F; return;
            case PortCrtcDataMono: if (!ColorIo) WriteCrtc(v); return;
            case PortCrtcIndexColor: if (ColorIo) _crtcIndex = v & 0x3F; return;
            case PortCrtcDataColor: if (ColorIo) WriteCrtc(v); return;
            case PortStatus1Mono: if (!ColorIo) _featureControl = v; return;
            case PortStatus1Color: if (ColorIo) _featureControl = v; return;
        }
    }

    private void WriteCrtc(byte v)
    {
        int i = _crtcIndex;
        if ((Crtc[CrVRetraceEnd] & CrProtect) != 0 && i <= CrOverflow)
        {
            if (i != CrOverflow) return;
            v = (byte)((Crtc[CrOverflow] & ~0x10) | (v & 0x10)); // only line compare bit 8 stays writable
        }
        if (Crtc[i] == v) return;
        Crtc[i] = v;
        // The text cursor's shape and place are drawn per cell: they do not force a full redraw.
        if (i is CrCursorStart or CrCursorEnd or CrCursorHigh or CrCursorLow) CursorGeneration++;
        else RegisterGeneration++;
    }

    private uint ReadDispi(ushort port, int size) => port == BochsDispi.IndexPort ? Dispi.ReadIndex() : Dispi.ReadData();

    private void WriteDispi(ushort port, int size, uint value)
    {
        if (port == BochsDispi.IndexPort) Dispi.WriteIndex(value);
        else Dispi.WriteData(value);
    }

    // ---------------- legacy memory window ----------------

    public uint MmioRead(uint address, int size)
    {
        uint v = ReadByte(address);
        if (size == 1) return v;
        v |= (uint)ReadByte(address + 1) << 8;
        if (size == 2) return v;
        return v | (uint)ReadByte(address + 2) << 16 | (uint)ReadByte(address + 3) << 24;
    }

    public void MmioWrite(uint address, int size, uint value)
    {
        WriteByte(address, (byte)value);
        if (size == 1) return;
        WriteByte(address + 1, (byte)(value >> 8));
        if (size == 2) return;
        WriteByte(address + 2, (byte)(value >> 16));
        WriteByte(address + 3, (byte)(value >> 24));
    }

    /// <summary>Offset of <paramref name="address"/> inside the window GC misc selects, or -1 if the window does not decode it.</summary>
    private int WindowOffset(uint address)
    {
        uint a = address - WindowBase;
        switch ((Gc[GcMisc] >> 2) & 3)
        {
            case 0: return (int)a;
            case 1: return a < 0x10000 ? (int)a : -1;
            case 2: return a >= 0x10000 && a < 0x18000 ? (int)(a - 0x10000) : -1;
            default: return a >= 0x18000 ? (int)(a - 0x18000) : -1;
        }
    }

    private bool BankedLinear => Dispi.Enabled && Dispi.Bpp != 4;

    internal byte ReadByte(uint address)
    {
        if (BankedLinear)
        {
            uint a = address - WindowBase;
            if (a >= 0x10000) return 0xFF;
            return Vram[(Dispi.Bank * 0x10000 + (int)a) & (Vram.Length - 1)];
        }
        int off = WindowOffset(address);
        if (off < 0) return 0xFF;
        int plane, o;
        if ((Seq[SeqMemoryMode] & SeqMemChain4) != 0)
        {
            plane = off & 3;
            o = off & 0xFFFC;
        }
        else if ((Gc[GcMode] & GcModeOddEven) != 0)
        {
            plane = (Gc[GcReadMap] & 2) | (off & 1);
            o = off & 0xFFFE;
        }
        else
        {
            plane = Gc[GcReadMap] & 3;
            o = off & 0xFFFF;
        }
        _latch = Unsafe.ReadUnaligned<uint>(ref Vram[o * 4]);
        if ((Gc[GcMode] & 0x08) == 0) return (byte)(_latch >> (8 * plane));
        // Read mode 1: colour compare over the planes not masked by colour don't care.
        uint dontCare = Expand(Gc[GcColorDontCare] & 0x0F);
        uint compare = Expand(Gc[GcColorCompare] & 0x0F);
        uint diff = (_latch ^ compare) & dontCare;
        return (byte)~((byte)diff | (byte)(diff >> 8) | (byte)(diff >> 16) | (byte)(diff >> 24));
    }

    internal void WriteByte(uint address, byte value)
    {
        if (BankedLinear)
        {
            uint a = address - WindowBase;
            if (a >= 0x10000) return;
            int idx = (Dispi.Bank * 0x10000 + (int)a) & (Vram.Length - 1);
            Vram[idx] = value;
            DirtyPages[idx >> DirtyPageShift] = 1;
            return;
        }
        int off = WindowOffset(address);
        if (off < 0) return;
        int mapMask = Seq[SeqMapMask] & 0x0F;
        int o;
        if ((Seq[SeqMemoryMode] & SeqMemChain4) != 0)
        {
            // Chain 4: the two low address bits choose the plane; the byte is stored as is.
            int plane = off & 3;
            if ((mapMask & (1 << plane)) == 0) return;
            o = off & 0xFFFC;
            Vram[o * 4 + plane] = value;
            if (plane == 2) FontGeneration++;
            DirtyPages[(o * 4) >> DirtyPageShift] = 1;
            return;
        }
        if ((Seq[SeqMemoryMode] & SeqMemOddEvenDisable) == 0)
        {
            mapMask &= (off & 1) != 0 ? 0b1010 : 0b0101;
            o = off & 0xFFFE;
        }
        else o = off & 0xFFFF;
        if (mapMask == 0) return;

        uint result;
        int rotate = Gc[GcRotate] & 7;
        byte rotated = (byte)((value >> rotate) | (value << (8 - rotate)));
        uint bitMask = Gc[GcBitMask];
        switch (Gc[GcMode] & 3)
        {
            case 0:
            {
                uint data = Expand8(rotated);
                uint enable = Expand(Gc[GcEnableSetReset] & 0x0F);
                data = (data & ~enable) | (Expand(Gc[GcSetReset] & 0x0F) & enable);
                result = Combine(data, bitMask);
                break;
            }
            case 1:
                result = _latch;
                break;
            case 2:
                result = Combine(Expand(value & 0x0F), bitMask);
                break;
            default:
                result = Combine(Expand(Gc[GcSetReset] & 0x0F), bitMask & rotated);
                break;
        }
        uint planeMask = Expand(mapMask);
        ref uint cell = ref Unsafe.As<byte, uint>(ref Vram[o * 4]);
        cell = (cell & ~planeMask) | (result & planeMask);
        if ((mapMask & 4) != 0) FontGeneration++;
        DirtyPages[(o * 4) >> DirtyPageShift] = 1;
    }

    /// <summary>Applies the logical function with the latches and then the bit mask (write modes 0, 2, 3).</summary>
    private uint Combine(uint data, uint bitMask)
    {
        switch ((Gc[GcRotate] >> 3) & 3)
        {
            case 1: data &= _latch; break;
            case 2: data |= _latch; break;
            case 3: data ^= _latch; break;
        }
        uint m = Expand8((byte)bitMask);
        return (data & m) | (_latch & ~m);
    }

    /// <summary>Each of the low 4 bits becomes a 0x00/0xFF byte in the packed planes word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Expand(int planes) =>
        ((planes & 1) != 0 ? 0xFFu : 0) | ((planes & 2) != 0 ? 0xFF00u : 0) | ((planes & 4) != 0 ? 0xFF0000u : 0) | ((planes & 8) != 0 ? 0xFF000000u : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Expand8(byte b) => b * 0x01010101u;

    // ---------------- linear framebuffer (PCI BAR0) ----------------

    /// <summary>Reads 1, 2 or 4 bytes at <paramref name="offset"/> of VRAM (the LFB).</summary>
    public uint LfbRead(uint offset, int size)
    {
        if (offset > (uint)Vram.Length - (uint)size) return size == 1 ? 0xFFu : size == 2 ? 0xFFFFu : 0xFFFF_FFFFu;
        return size switch
        {
            1 => Vram[offset],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(Vram.AsSpan((int)offset)),
            _ => BinaryPrimitives.ReadUInt32LittleEndian(Vram.AsSpan((int)offset)),
        };
    }

    public void LfbWrite(uint offset, int size, uint value)
    {
        if (offset > (uint)Vram.Length - (uint)size) return;
        switch (size)
        {
            case 1: Vram[offset] = (byte)value; break;
            case 2: Unsafe.WriteUnaligned(ref Vram[offset], (ushort)value); break;
            default: Unsafe.WriteUnaligned(ref Vram[offset], value); break;
        }
        DirtyPages[offset >> DirtyPageShift] = 1;
        DirtyPages[(offset + (uint)size - 1) >> DirtyPageShift] = 1;
    }
}

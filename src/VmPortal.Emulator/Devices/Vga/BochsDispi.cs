namespace VmPortal.Emulator.Devices.Vga;

/// <summary>
/// Bochs/QEMU "DISPI" VBE extension registers of the standard VGA (1234:1111): index port 0x1CE, data port
/// 0x1CF (16-bit). Registers: ID (0xB0C0–0xB0C5), XRES, YRES, BPP (8/15/16/24/32), ENABLE (enabled, GETCAPS,
/// 8-bit DAC, LFB, NOCLEARMEM), BANK (64 KiB window at 0xA0000), VIRT_WIDTH/HEIGHT, X/Y_OFFSET and
/// VIDEO_MEMORY_64K. The display itself (scan-out, banked window) is done by <see cref="Vga"/>.
/// Guests: SeaBIOS vgabios-stdvga (VBE modes), Linux bochs-drm and vesafb, GRUB gfxterm, iPXE.
/// </summary>
public sealed class BochsDispi
{
    public const ushort IndexPort = 0x1CE, DataPort = 0x1CF, DataPortAlias = 0x1D0;
    public const int RegId = 0, RegXres = 1, RegYres = 2, RegBpp = 3, RegEnable = 4, RegBank = 5;
    public const int RegVirtWidth = 6, RegVirtHeight = 7, RegXOffset = 8, RegYOffset = 9, RegVideoMemory64K = 10;
    public const ushort Id0 = 0xB0C0, Id5 = 0xB0C5;
    public const ushort EnableEnabled = 0x01, EnableGetCaps = 0x02, Enable8BitDac = 0x20, EnableLfb = 0x40, EnableNoClearMem = 0x80;
    public const int MaxXres = 2560, MaxYres = 1600, MaxBpp = 32;

    private readonly int _vramSize;
    private readonly ushort[] _regs = new ushort[11];
    private int _index;

    public BochsDispi(int vramSize)
    {
        _vramSize = vramSize;
        Reset();
    }

    /// <summary>Raised after a write that changes the display layout (mode, offsets, enable).</summary>
    public event Action? LayoutChanged;
    /// <summary>Raised when the guest enables the display without NOCLEARMEM: clear this many bytes of VRAM.</summary>
    public event Action<int>? ClearRequested;

    public void Reset()
    {
        Array.Clear(_regs);
        _regs[RegId] = Id5;
        _regs[RegXres] = 640;
        _regs[RegYres] = 480;
        _regs[RegBpp] = 8;
        _index = 0;
    }

    public bool Enabled => (_regs[RegEnable] & EnableEnabled) != 0;
    public bool Dac8Bit => (_regs[RegEnable] & Enable8BitDac) != 0;
    public int Width => Math.Clamp((int)_regs[RegXres], 1, MaxXres);
    public int Height => Math.Clamp((int)_regs[RegYres], 1, MaxYres);
    public int Bpp => _regs[RegBpp] switch { 4 => 4, 15 => 15, 16 => 16, 24 => 24, 32 => 32, _ => 8 };
    public int BytesPerPixel => Bpp switch { 15 or 16 => 2, 24 => 3, 32 => 4, _ => 1 };
    public int Bank => _regs[RegBank] & 0x1FF;
    public int VirtualWidth => Math.Max(Width, (int)_regs[RegVirtWidth]);
    /// <summary>Bytes from one scan line to the next.</summary>
    public int Pitch => Bpp == 4 ? VirtualWidth / 8 : VirtualWidth * BytesPerPixel;
    public int VirtualHeight => Math.Max(1, _vramSize / Math.Max(1, Pitch));
    /// <summary>Byte offset in VRAM of the first displayed pixel.</summary>
    public int StartOffset => Bpp == 4 ? 0 : _regs[RegYOffset] * Pitch + _regs[RegXOffset] * BytesPerPixel;

    /// <summary>DISPI registers and index, for machine snapshots.</summary>
    public sealed record State(int Version, ushort[] Registers, int Index)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, (ushort[])_regs.Clone(), _index);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"DISPI state version {s.Version} is not supported.");
        if (s.Registers.Length != _regs.Length) throw new InvalidDataException("DISPI state has the wrong register count.");
        s.Registers.CopyTo(_regs, 0);
        _index = s.Index;
        LayoutChanged?.Invoke();
    }

    public uint ReadIndex() => (uint)_index;
    public void WriteIndex(uint value) => _index = (int)(value & 0xFFFF);

    public uint ReadData()
    {
        bool caps = (_regs[RegEnable] & EnableGetCaps) != 0;
        return _index switch
        {
            RegXres when caps => MaxXres,
            RegYres when caps => MaxYres,
            RegBpp when caps => MaxBpp,
            RegVirtWidth => (uint)VirtualWidth,
            RegVirtHeight => (uint)Math.Min(VirtualHeight, 0xFFFF),
            RegVideoMemory64K => (uint)(_vramSize / 65536),
            >= 0 and < RegVideoMemory64K => _regs[_index],
            _ => 0,
        };
    }

    public void WriteData(uint value)
    {
        ushort v = (ushort)value;
        switch (_index)
        {
            case RegId:
                if (v >= Id0 && v <= Id5) _regs[RegId] = v;
                return;
            case RegXres: case RegYres: case RegBpp: case RegBank: case RegXOffset: case RegYOffset: case RegVirtWidth:
                _regs[_index] = v;
                break;
            case RegVirtHeight:
                return; // derived from the memory size and pitch
            case RegEnable:
                bool wasEnabled = Enabled;
                _regs[RegEnable] = v;
                if (Enabled && !wasEnabled)
                {
                    if (_regs[RegVirtWidth] < Width) _regs[RegVirtWidth] = (ushort)Width;
                    _regs[RegXOffset] = 0;
                    _regs[RegYOffset] = 0;
                    _regs[RegBank] = 0;
                    if ((v & EnableNoClearMem) == 0) ClearRequested?.Invoke(Math.Min(_vramSize, Pitch * Height));
                }
                break;
            default:
                return;
        }
        LayoutChanged?.Invoke();
    }
}

using System.Buffers.Binary;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Devices.Vga;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Timing;
using static VmPortal.Emulator.Devices.E1000.E1000Registers;

namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// Intel 82540EM Gigabit Ethernet controller (PRO/1000 MT Desktop), PCI 8086:100E, class 0200, INTA#.
/// BAR0: 128 KiB of memory-mapped registers; BAR1: 64 I/O ports (IOADDR at +0 selects a register, IODATA at +4
/// reads/writes it); ROM BAR: the iPXE option ROM (Debian's ipxe-qemu pxe-e1000.rom) when given.
/// Registers (see <see cref="E1000Registers"/>): CTRL (reset), STATUS (link up/down, 1000 Mb/s full duplex), EECD/EERD
/// (<see cref="E1000Eeprom"/>), MDIC (<see cref="E1000Phy"/>), ICR (read clears) / ICS / IMS / IMC, ITR (interrupt
/// throttling: at most one interrupt per ITR × 256 ns while the CPU is busy, at once while it idles in HLT; one guest
/// timer armed only while an interrupt waits),
/// RCTL/TCTL, RXCSUM (receive checksum offload: the card checks IPv4/TCP/UDP checksums and reports them in the
/// descriptor, <see cref="E1000RxChecksum"/>), the receive and transmit rings (RDBAL/RDBAH/RDLEN/RDH/RDT, TDBAL/…/TDT), RAL/RAH, MTA, the statistics
/// (clear on read) and delay registers (RDTR/RADV/TIDV/TADV are kept but interrupts are not delayed beyond ITR).
/// Frames move by bus-master DMA: transmit when the guest moves TDT (<see cref="E1000Transmitter"/>), receive from
/// the <see cref="IFramePort"/> into the guest's buffers while free receive descriptors exist (frames wait in the
/// port's bounded queue otherwise). Receive filter: station addresses (RAL/RAH with AV), broadcast with BAM,
/// multicast by MTA hash or MPE, everything with UPE. Machine thread only, except what the port does.
/// Guests: Linux e1000 (Debian's i386 kernel module), iPXE's intel driver (PXE), SeaBIOS (runs the option ROM).
/// </summary>
public sealed class E1000 : PciFunction, IMmioDevice
{
    public const ushort IntelVendorId = 0x8086, DeviceId82540Em = 0x100E;
    public const uint MmioSize = 128 * 1024, IoSize = 64;
    public const int MmioBar = 0, IoBar = 1, RomBar = 6;
    public const int MinFrame = 60, MaxFrame = 16384;

    private readonly uint[] _regs = new uint[MmioSize / 4];
    private readonly PhysicalMemory _memory;
    private readonly IoBus _io;
    private readonly TimerScheduler _scheduler;
    private readonly GuestTimer _itrTimer;
    private readonly IFramePort? _port;
    private readonly byte[] _mac;
    private readonly byte[] _rxBuffer = new byte[MaxFrame + 4];
    private readonly byte[] _descriptor = new byte[DescriptorSize];
    private uint _mmioBase;
    private ushort _ioBase;
    private bool _mmioMapped, _romMapped;
    private uint _ioAddr;
    private bool _link = true;
    private bool _intAsserted;
    private long _lastInterruptNs = long.MinValue / 2;
    private byte[]? _held; // a frame taken from the port that waits for free descriptors

    public E1000(IoBus io, PhysicalMemory memory, TimerScheduler scheduler, ReadOnlySpan<byte> mac, IFramePort? port,
        ReadOnlySpan<byte> optionRom)
        : base(IntelVendorId, DeviceId82540Em, 0x02, 0x00, 0x00, revision: 3)
    {
        if (mac.Length != 6) throw new ArgumentException("a MAC address has 6 bytes", nameof(mac));
        _io = io;
        _memory = memory;
        _scheduler = scheduler;
        _port = port;
        _mac = mac.ToArray();
        Eeprom = new E1000Eeprom(mac);
        WriteConfigRaw(SubsystemVendorOffset, 0x001E_8086);
        SetInterruptPin(1);
        DefineBar(MmioBar, MmioSize, io: false);
        DefineBar(IoBar, IoSize, io: true);
        if (!optionRom.IsEmpty)
        {
            Rom = new PciExpansionRom(optionRom, PciExpansionRom.SizeFor(optionRom.Length));
            DefineRomBar(Rom.Size);
        }
        _itrTimer = scheduler.CreateTimer("e1000 ITR", _ => UpdateInterrupt());
        BarChanged += OnBarChanged;
        ResetRegisters();
    }

    public E1000Eeprom Eeprom { get; }
    public E1000Phy Phy { get; } = new();
    public E1000Transmitter Transmitter { get; } = new();
    public PciExpansionRom? Rom { get; }
    public ReadOnlySpan<byte> MacAddress => _mac;

    /// <summary>Frames sent / received by the guest, bytes, and frames the card dropped (filter, runt, oversize, no bus master).</summary>
    public long FramesSent { get; private set; }
    public long FramesReceived { get; private set; }
    public long BytesSent { get; private set; }
    public long BytesReceived { get; private set; }
    public long FramesDropped { get; private set; }

    /// <summary>Times the card raised INTA#, guest writes of TDT (transmit kicks) and transmit descriptors it processed.</summary>
    public long InterruptsRaised { get; private set; }
    public long TransmitKicks { get; private set; }
    public long TransmitDescriptors { get; private set; }

    /// <summary>
    /// Diagnostics (benchmarks): when set, the guest's register reads and writes are counted per register, reads at
    /// index offset/4 × 2, writes at offset/4 × 2 + 1 (MMIO and the I/O window alike). Null (the default) costs nothing.
    /// </summary>
    public long[]? RegisterAccessCounts { get; set; }

    /// <summary>The cable: link down drops traffic both ways and raises a link status change interrupt.</summary>
    public bool LinkUp
    {
        get => _link;
        set
        {
            if (_link == value) return;
            _link = value;
            Phy.Link = value;
            SetCause(IntLsc);
        }
    }

    private void ResetRegisters()
    {
        Array.Clear(_regs);
        _regs[Ctrl / 4] = CtrlSlu | 0x0000_0200; // SLU, speed 1000 in CTRL as the hardware leaves it
        _regs[Pba / 4] = 0x0010_0030;
        _regs[Tipg / 4] = 0;
        _regs[Ral0 / 4] = BinaryPrimitives.ReadUInt32LittleEndian(_mac);
        _regs[Rah0 / 4] = BinaryPrimitives.ReadUInt16LittleEndian(_mac.AsSpan(4)) | RahAddressValid;
        _regs[Mdic / 4] = MdicReady;
        _regs[Rxcsum / 4] = RxcsumIpofl | RxcsumTuofl;
        _intAsserted = false;
        _itrTimer.Cancel();
        SetIntx(false);
        Phy.Reset();
        Phy.Link = _link;
    }

    // ---- register access ---------------------------------------------------------------------------------

    public uint MmioRead(uint address, int size)
    {
        uint off = address - _mmioBase;
        uint v = ReadRegister((int)(off & ~3u));
        return size == 4 ? v : (v >> (int)(8 * (off & 3))) & (size == 1 ? 0xFFu : 0xFFFFu);
    }

    public void MmioWrite(uint address, int size, uint value)
    {
        uint off = address - _mmioBase;
        int reg = (int)(off & ~3u);
        if (size != 4)
        {
            int shift = (int)(8 * (off & 3));
            uint mask = (size == 1 ? 0xFFu : 0xFFFFu) << shift;
            value = (_regs[reg / 4] & ~mask) | ((value << shift) & mask);
        }
        WriteRegister(reg, value);
    }

    /// <summary>A register read as the guest sees it (side effects included: ICR and the statistics clear).</summary>
    public uint ReadRegister(int reg)
    {
        if ((uint)reg >= MmioSize) return 0;
        if (RegisterAccessCounts is { } counts) counts[reg / 4 * 2]++;
        switch (reg)
        {
            case Status:
                return StatusFullDuplex | StatusSpeed1000 | (_link ? StatusLinkUp : 0) | 0x0000_0200;
            case Eecd:
                return Eeprom.ReadEecd();
            case Icr:
            {
                uint v = _regs[Icr / 4];
                _regs[Icr / 4] = 0;
                UpdateInterrupt();
                return v;
            }
            case Ics: case Imc:
                return 0;
        }
        if (reg >= StatsStart && reg < StatsEnd)
        {
            uint v = _regs[reg / 4];
            _regs[reg / 4] = 0;
            return v;
        }
        return _regs[reg / 4];
    }

    public void WriteRegister(int reg, uint value)
    {
        if ((uint)reg >= MmioSize) return;
        if (RegisterAccessCounts is { } counts) counts[reg / 4 * 2 + 1]++;
        switch (reg)
        {
            case Ctrl:
                if ((value & CtrlReset) != 0) { ResetRegisters(); return; }
                _regs[Ctrl / 4] = value & ~CtrlPhyReset;
                if ((value & CtrlPhyReset) != 0) { Phy.Reset(); Phy.Link = _link; }
                return;
            case Status:
                return;
            case Eecd:
                Eeprom.WriteEecd(value);
                return;
            case Eerd:
                _regs[Eerd / 4] = Eeprom.ReadByEerd(value);
                return;
            case Mdic:
                WriteMdic(value);
                return;
            case Icr:
                _regs[Icr / 4] &= ~value;
                UpdateInterrupt();
                return;
            case Ics:
                SetCause(value);
                return;
            case Ims:
                _regs[Ims / 4] |= value;
                UpdateInterrupt();
                return;
            case Imc:
                _regs[Ims / 4] &= ~value;
                UpdateInterrupt();
                return;
            case Rctl:
                _regs[Rctl / 4] = value;
                PumpReceive();
                return;
            case Tctl:
                _regs[Tctl / 4] = value;
                Transmit();
                return;
            case Rdlen: case Tdlen:
                _regs[reg / 4] = value & 0x000F_FF80;
                return;
            case Rdbal: case Tdbal:
                _regs[reg / 4] = value & ~0xFu;
                return;
            case Rdh: case Rdt: case Tdh:
                _regs[reg / 4] = value & 0xFFFF;
                if (reg == Rdt) PumpReceive();
                return;
            case Tdt:
                _regs[Tdt / 4] = value & 0xFFFF;
                TransmitKicks++;
                Transmit();
                return;
            case Itr:
                _regs[Itr / 4] = value & 0xFFFF;
                UpdateInterrupt();
                return;
        }
        _regs[reg / 4] = value;
    }

    private void WriteMdic(uint value)
    {
        int phy = (int)((value >> 21) & 0x1F), reg = (int)((value >> 16) & 0x1F);
        uint result = value & ~(MdicReady | MdicError);
        if (phy != E1000Phy.Address) result |= MdicError;
        else if ((value & (3u << 26)) == MdicOpRead) result = (result & 0xFFFF_0000) | Phy.Read(reg);
        else if ((value & (3u << 26)) == MdicOpWrite) Phy.Write(reg, (ushort)value);
        _regs[Mdic / 4] = result | MdicReady;
    }

    // ---- interrupts --------------------------------------------------------------------------------------

    private void SetCause(uint causes)
    {
        _regs[Icr / 4] |= causes;
        UpdateInterrupt();
    }

    /// <summary>INTA# follows ICR &amp; IMS, but rises at most once per ITR interval (a timer waits out the rest).</summary>
    private void UpdateInterrupt()
    {
        bool pending = (_regs[Icr / 4] & _regs[Ims / 4]) != 0;
        if (!pending)
        {
            if (_intAsserted) { _intAsserted = false; SetIntx(false); }
            if (_itrTimer.Armed) _itrTimer.Cancel();
            return;
        }
        if (_intAsserted) return;
        long now = _scheduler.Clock.NowNs;
        long interval = (long)(_regs[Itr / 4] & 0xFFFF) * 256;
        // Throttling saves a busy CPU from interrupts; an idle one (HLT) only loses time waiting for the interval
        // (and the machine sleeps in whole milliseconds), so an idle guest gets its interrupt at once.
        if (interval == 0 || now >= _lastInterruptNs + interval || CpuIdle?.Invoke() == true)
        {
            _lastInterruptNs = now;
            _intAsserted = true;
            InterruptsRaised++;
            if (_itrTimer.Armed) _itrTimer.Cancel();
            SetIntx(true);
        }
        else if (!_itrTimer.Armed) _itrTimer.Schedule(_lastInterruptNs + interval);
    }

    /// <summary>
    /// Whether the CPU waits in HLT (set by the board). While it does, a throttled interrupt is raised at once instead
    /// of at the end of the ITR interval; checked whenever the interrupt state changes and each time the board pumps.
    /// </summary>
    public Func<bool>? CpuIdle { get; set; }

    /// <summary>True while the card drives INTA#.</summary>
    public bool InterruptAsserted => _intAsserted;

    // ---- transmit ----------------------------------------------------------------------------------------

    private void Transmit()
    {
        if ((_regs[Tctl / 4] & TctlEnable) == 0) return;
        int count = (int)(_regs[Tdlen / 4] / DescriptorSize);
        if (count == 0) return;
        uint head = _regs[Tdh / 4], tail = _regs[Tdt / 4];
        if (head >= count || tail >= count) return;
        if (!BusMasterEnabled) return;
        ulong ring = (ulong)_regs[Tdbah / 4] << 32 | _regs[Tdbal / 4];
        bool any = false;
        int guard = count;
        while (head != tail && guard-- > 0)
        {
            uint at = (uint)(ring + head * DescriptorSize);
            _memory.ReadBytes(at, _descriptor);
            if (Transmitter.Process(_descriptor, _memory, SendFrame))
                _memory.Write8(at + 12, (byte)(_descriptor[12] | TxStatusDd));
            head = (uint)((head + 1) % count);
            TransmitDescriptors++;
            any = true;
        }
        _regs[Tdh / 4] = head;
        if (any) SetCause(IntTxdw | IntTxqe);
    }

    private void SendFrame(ReadOnlySpan<byte> frame)
    {
        if (!_link || frame.Length < 14 || frame.Length > MaxFrame) { FramesDropped++; return; }
        FramesSent++;
        BytesSent += frame.Length;
        AddStat(Gptc, 1); AddStat(Tpt, 1);
        AddStat64(Gotcl, (uint)frame.Length); AddStat64(Totl, (uint)frame.Length);
        if (frame[0] == 0xFF && frame[1] == 0xFF && frame[2] == 0xFF && frame[3] == 0xFF && frame[4] == 0xFF && frame[5] == 0xFF) AddStat(Bptc, 1);
        else if ((frame[0] & 1) != 0) AddStat(Mptc, 1);
        _port?.Send(frame);
    }

    // ---- receive -----------------------------------------------------------------------------------------

    private bool ReceiveEnabled => (_regs[Rctl / 4] & RctlEnable) != 0;

    private int RxBufferSize
    {
        get
        {
            uint rctl = _regs[Rctl / 4];
            int bsize = (int)((rctl >> 16) & 3);
            if ((rctl & RctlBsex) != 0) return bsize switch { 1 => 16384, 2 => 8192, 3 => 4096, _ => 2048 };
            return bsize switch { 0 => 2048, 1 => 1024, 2 => 512, _ => 256 };
        }
    }

    private int RxFreeDescriptors(out int count)
    {
        count = (int)(_regs[Rdlen / 4] / DescriptorSize);
        if (count == 0) return 0;
        uint head = _regs[Rdh / 4], tail = _regs[Rdt / 4];
        if (head >= count || tail >= count) return 0;
        return (int)((tail + count - head) % count);
    }

    /// <summary>
    /// Moves waiting frames from the port into the guest's receive buffers while descriptors are free. Called by the
    /// board between CPU slices and when the guest hands over buffers (RDT) or enables the receiver.
    /// </summary>
    public void PumpReceive()
    {
        if (_itrTimer.Armed && CpuIdle?.Invoke() == true) UpdateInterrupt();
        if (_port == null) return;
        if (!ReceiveEnabled || !_link)
        {
            // A stopped receiver (or a pulled cable) loses what arrives, as on the wire.
            _held = null;
            while (_port.TryReceive(out _)) { }
            return;
        }
        if (!BusMasterEnabled) return;
        int budget = 256;
        while (budget-- > 0)
        {
            byte[]? frame = _held;
            _held = null;
            if (frame == null && !_port.TryReceive(out frame)) return;
            if (!Receive(frame)) { _held = frame; return; }
        }
    }

    /// <summary>Delivers one frame into the ring; false when it needs more free descriptors than there are.</summary>
    public bool Receive(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 14 || frame.Length > MaxFrame) { FramesDropped++; return true; }
        if (!Accepts(frame)) return true;
        int length = Math.Max(frame.Length, MinFrame);
        frame.CopyTo(_rxBuffer);
        if (length > frame.Length) _rxBuffer.AsSpan(frame.Length, length - frame.Length).Clear();
        if ((_regs[Rctl / 4] & RctlStripCrc) == 0) { _rxBuffer.AsSpan(length, 4).Clear(); length += 4; }
        int bufSize = RxBufferSize;
        int needed = (length + bufSize - 1) / bufSize;
        int free = RxFreeDescriptors(out int count);
        if (free < needed) return false;
        ulong ring = (ulong)_regs[Rdbah / 4] << 32 | _regs[Rdbal / 4];
        uint head = _regs[Rdh / 4];
        var (csumStatus, csumErrors) = E1000RxChecksum.Check(frame, _regs[Rxcsum / 4]);
        int done = 0;
        Span<byte> d = stackalloc byte[8];
        while (done < length)
        {
            uint at = (uint)(ring + head * DescriptorSize);
            ulong buffer = _memory.Read32(at) | (ulong)_memory.Read32(at + 4) << 32;
            int n = Math.Min(bufSize, length - done);
            if (buffer <= uint.MaxValue) E1000Dma.Write(_memory, (uint)buffer, _rxBuffer.AsSpan(done, n));
            done += n;
            BinaryPrimitives.WriteUInt16LittleEndian(d, (ushort)n);
            d[2] = 0; d[3] = 0;
            bool last = done >= length; // status and errors of a frame are in its last descriptor
            d[4] = (byte)(RxStatusDd | (last ? RxStatusEop | csumStatus : 0));
            d[5] = last ? csumErrors : (byte)0;
            d[6] = 0; d[7] = 0;
            _memory.WriteBytes(at + 8, d);
            head = (uint)((head + 1) % count);
        }
        _regs[Rdh / 4] = head;
        FramesReceived++;
        BytesReceived += frame.Length;
        AddStat(Gprc, 1); AddStat(Tpr, 1);
        AddStat64(Gorcl, (uint)length); AddStat64(Torl, (uint)length);
        if ((frame[0] & 1) != 0) AddStat(IsBroadcast(frame) ? Bprc : Mprc, 1);
        uint causes = IntRxt0;
        int threshold = (int)((_regs[Rctl / 4] >> 8) & 3) switch { 0 => count / 2, 1 => count / 4, _ => count / 8 };
        if (RxFreeDescriptors(out _) <= threshold) causes |= IntRxdmt0;
        SetCause(causes);
        return true;
    }

    private static bool IsBroadcast(ReadOnlySpan<byte> f) => f[0] == 0xFF && f[1] == 0xFF && f[2] == 0xFF && f[3] == 0xFF && f[4] == 0xFF && f[5] == 0xFF;

    private bool Accepts(ReadOnlySpan<byte> f)
    {
        uint rctl = _regs[Rctl / 4];
        if (IsBroadcast(f)) return (rctl & RctlBroadcastAccept) != 0 || (rctl & RctlMulticastPromisc) != 0;
        if ((f[0] & 1) != 0)
        {
            if ((rctl & RctlMulticastPromisc) != 0) return true;
            int mo = (int)((rctl >> 12) & 3);
            int hash = mo switch
            {
                0 => (f[4] >> 4) | (f[5] << 4),
                1 => (f[4] >> 3) | (f[5] << 5),
                2 => (f[4] >> 2) | (f[5] << 6),
                _ => f[4] | (f[5] << 8),
            } & 0xFFF;
            return (_regs[Mta / 4 + (hash >> 5)] & (1u << (hash & 31))) != 0;
        }
        if ((rctl & RctlUnicastPromisc) != 0) return true;
        uint lo = BinaryPrimitives.ReadUInt32LittleEndian(f), hi = BinaryPrimitives.ReadUInt16LittleEndian(f[4..]);
        for (int i = 0; i < ReceiveAddresses; i++)
        {
            uint rah = _regs[(Rah0 + 8 * i) / 4];
            if ((rah & RahAddressValid) != 0 && _regs[(Ral0 + 8 * i) / 4] == lo && (rah & 0xFFFF) == hi) return true;
        }
        return false;
    }

    private void AddStat(int reg, uint n) => _regs[reg / 4] = _regs[reg / 4] + n < _regs[reg / 4] ? uint.MaxValue : _regs[reg / 4] + n;

    private void AddStat64(int lowReg, uint n)
    {
        ulong v = ((ulong)_regs[lowReg / 4 + 1] << 32 | _regs[lowReg / 4]) + n;
        _regs[lowReg / 4] = (uint)v;
        _regs[lowReg / 4 + 1] = (uint)(v >> 32);
    }

    // ---- PCI BARs ----------------------------------------------------------------------------------------

    private void OnBarChanged(int bar)
    {
        if (bar == MmioBar)
        {
            if (_mmioMapped) { _memory.UnmapMmio(this); _mmioMapped = false; }
            uint addr = BarAddress(MmioBar);
            if (MemoryEnabled && Usable(addr, MmioSize))
            {
                _mmioBase = addr;
                _memory.MapMmio(addr, MmioSize, this);
                _mmioMapped = true;
            }
        }
        else if (bar == IoBar)
        {
            if (_ioBase != 0) { _io.Unregister(_ioBase, (int)IoSize); _ioBase = 0; }
            uint addr = BarAddress(IoBar);
            if (IoEnabled && addr != 0 && addr + IoSize <= 0x1_0000 && addr != 0xFFFC && addr < 0xFFC0)
            {
                _ioBase = (ushort)addr;
                _io.Register(_ioBase, (int)IoSize, ReadIo, WriteIo, wideAccess: true);
            }
        }
        else if (bar == RomBar && Rom != null)
        {
            if (_romMapped) { _memory.UnmapMmio(Rom); _romMapped = false; Rom.Base = 0; }
            uint addr = BarAddress(RomBar);
            if (RomEnabled && Usable(addr, Rom.Size))
            {
                Rom.Base = addr;
                _memory.MapMmio(addr, Rom.Size, Rom);
                _romMapped = true;
            }
        }
    }

    private static bool Usable(uint addr, uint size) => addr != 0 && (ulong)addr + size - 1 < 0xFFFF_FFFFUL && addr >= 0x10_0000;

    private uint ReadIo(ushort port, int size)
    {
        int off = port - _ioBase;
        if (off < 4) return _ioAddr;
        if (off < 8) return ReadRegister((int)(_ioAddr & 0x1FFFC));
        return 0xFFFF_FFFF;
    }

    private void WriteIo(ushort port, int size, uint value)
    {
        int off = port - _ioBase;
        if (off < 4) _ioAddr = value;
        else if (off < 8) WriteRegister((int)(_ioAddr & 0x1FFFC), value);
    }

    // ---- snapshots ---------------------------------------------------------------------------------------

    /// <summary>Named, versioned snapshot of the registers, EEPROM/PHY interfaces and transmit context (config space: <see cref="PciFunction.SaveConfigState"/>).</summary>
    public sealed record State(int Version, uint[] Registers, uint IoAddress, bool Link, bool InterruptAsserted,
        long LastInterruptNs, long ItrDeadlineNs, byte[]? HeldFrame, E1000Eeprom.State Eeprom, E1000Phy.State Phy,
        E1000Transmitter.State Transmitter)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, (uint[])_regs.Clone(), _ioAddr, _link, _intAsserted, _lastInterruptNs,
        _itrTimer.Armed ? _itrTimer.DeadlineNs : -1, _held, Eeprom.SaveState(), Phy.SaveState(), Transmitter.SaveState());

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"e1000 state version {s.Version} is not supported.");
        s.Registers.AsSpan(0, _regs.Length).CopyTo(_regs);
        (_ioAddr, _link, _intAsserted, _lastInterruptNs, _held) = (s.IoAddress, s.Link, s.InterruptAsserted, s.LastInterruptNs, s.HeldFrame);
        Eeprom.LoadState(s.Eeprom);
        Phy.LoadState(s.Phy);
        Transmitter.LoadState(s.Transmitter);
        if (s.ItrDeadlineNs >= 0) _itrTimer.Schedule(s.ItrDeadlineNs); else _itrTimer.Cancel();
        SetIntx(_intAsserted);
    }
}

using System.Buffers.Binary;
using System.Text;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.FwCfg;

/// <summary>
/// QEMU firmware configuration device ("fw_cfg", x86 I/O flavour): selector at 0x510 (16-bit write), data at 0x511
/// (byte reads stream the selected item; offset resets on select; reads past the end give 0) and the DMA interface at
/// 0x514 (64-bit big-endian address of an access record; writing the low half at 0x518 runs it). An access record is
/// { be32 control, be32 length, be64 address }; control bits 0x01 error, 0x02 read, 0x04 skip, 0x08 select (item in
/// bits 31–16), 0x10 write (refused: items are read-only). Items: 0x00 signature "QEMU", 0x01 feature ID
/// (bit 0 traditional, bit 1 DMA), 0x03 RAM size, 0x05 CPU count, 0x0E boot menu, 0x0F max CPUs, kernel/initrd/cmdline/
/// setup items 0x07–0x18 for direct Linux boot, 0x19 the file directory (be32 count, then per file be32 size,
/// be16 select, be16 reserved, 56-byte name) and files from 0x20 on, added with <see cref="AddFile"/>.
/// Guests: SeaBIOS (src/fw/paravirt.c: detects "QEMU", prefers DMA, reads "etc/e820", "bootorder",
/// "etc/boot-menu-wait", "etc/show-boot-menu", "vgaroms/*", "genroms/*"), QEMU's linuxboot option ROMs.
/// </summary>
public sealed class FwCfgDevice
{
    public const ushort DefaultBasePort = 0x510;
    public const int SelectorOffset = 0, DataOffset = 1, DmaOffset = 4;

    public const ushort KeySignature = 0x00, KeyId = 0x01, KeyUuid = 0x02, KeyRamSize = 0x03, KeyNoGraphic = 0x04;
    public const ushort KeyNbCpus = 0x05, KeyMachineId = 0x06, KeyKernelAddr = 0x07, KeyKernelSize = 0x08;
    public const ushort KeyKernelCmdline = 0x09, KeyInitrdAddr = 0x0A, KeyInitrdSize = 0x0B, KeyBootDevice = 0x0C;
    public const ushort KeyNuma = 0x0D, KeyBootMenu = 0x0E, KeyMaxCpus = 0x0F, KeyKernelEntry = 0x10;
    public const ushort KeyKernelData = 0x11, KeyInitrdData = 0x12, KeyCmdlineAddr = 0x13, KeyCmdlineSize = 0x14;
    public const ushort KeyCmdlineData = 0x15, KeySetupAddr = 0x16, KeySetupSize = 0x17, KeySetupData = 0x18;
    public const ushort KeyFileDir = 0x19, KeyFileFirst = 0x20, KeyE820Table = 0x8003;

    public const uint IdTraditional = 0x01, IdDma = 0x02;
    public const uint DmaError = 0x01, DmaRead = 0x02, DmaSkip = 0x04, DmaSelect = 0x08, DmaWrite = 0x10;
    public const int FileNameLength = 56, FileEntrySize = 64;
    public const uint E820Ram = 1, E820Reserved = 2;

    private readonly PhysicalMemory _memory;
    private readonly Dictionary<ushort, byte[]> _items = new();
    private readonly List<(string Name, ushort Key)> _files = new();
    private readonly ushort _base;
    private ushort _selected;
    private byte[] _current = Array.Empty<byte>();
    private int _offset;
    private uint _dmaHigh;

    public FwCfgDevice(IoBus io, PhysicalMemory memory, ushort basePort = DefaultBasePort, bool enableDma = true)
    {
        _memory = memory;
        _base = basePort;
        DmaEnabled = enableDma;
        AddItem(KeySignature, "QEMU"u8.ToArray());
        AddItem(KeyId, U32(IdTraditional | (enableDma ? IdDma : 0)));
        AddItem(KeyNbCpus, U16(1));
        AddItem(KeyMaxCpus, U16(1));
        AddItem(KeyBootMenu, U16(0));
        AddItem(KeyNuma, new byte[8]);
        AddItem(KeyE820Table, new byte[4]);
        RebuildDirectory();
        io.Register(basePort, 1, null, (p, s, v) => Select((ushort)v), wideAccess: true);
        io.Register((ushort)(basePort + DataOffset), 1, (p, s) => ReadByte(), null);
        if (enableDma) io.Register((ushort)(basePort + DmaOffset), 8, ReadDma, WriteDma, wideAccess: true);
    }

    public bool DmaEnabled { get; }

    /// <summary>Sets a numbered item (legacy key) to <paramref name="data"/>.</summary>
    public void AddItem(ushort key, byte[] data)
    {
        _items[key] = data;
        if (key == _selected) _current = data;
    }

    /// <summary>Adds or replaces a named file in the directory; returns its selector key.</summary>
    public ushort AddFile(string name, byte[] data)
    {
        if (Encoding.ASCII.GetByteCount(name) >= FileNameLength) throw new ArgumentException("fw_cfg file names are at most 55 bytes.", nameof(name));
        foreach (var f in _files)
            if (f.Name == name) { AddItem(f.Key, data); RebuildDirectory(); return f.Key; }
        ushort key = (ushort)(KeyFileFirst + _files.Count);
        _files.Add((name, key));
        AddItem(key, data);
        RebuildDirectory();
        return key;
    }

    public byte[]? GetItem(ushort key) => _items.TryGetValue(key, out var d) ? d : null;

    /// <summary>RAM size item (0x03) and CPU counts.</summary>
    public void SetRamSize(ulong bytes) => AddItem(KeyRamSize, U64(bytes));

    public void SetCpuCount(int cpus)
    {
        AddItem(KeyNbCpus, U16((ushort)cpus));
        AddItem(KeyMaxCpus, U16((ushort)cpus));
    }

    /// <summary>"etc/e820": entries of { le64 address, le64 length, le32 type }.</summary>
    public void SetE820(ReadOnlySpan<(ulong Address, ulong Length, uint Type)> entries)
    {
        var data = new byte[entries.Length * 20];
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(i * 20), entries[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(i * 20 + 8), entries[i].Length);
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i * 20 + 16), entries[i].Type);
        }
        AddFile("etc/e820", data);
    }

    /// <summary>"bootorder": one OpenFirmware device path per line, most preferred first (see <see cref="FwCfgBootPaths"/>).</summary>
    public void SetBootOrder(params string[] devicePaths) =>
        AddFile("bootorder", Encoding.ASCII.GetBytes(string.Join('\n', devicePaths) + "\0"));

    /// <summary>Boot menu: shown or not ("etc/show-boot-menu" via item 0x0E) and its wait in ms ("etc/boot-menu-wait").</summary>
    public void SetBootMenu(bool show, int waitMs)
    {
        AddItem(KeyBootMenu, U16(show ? (ushort)1 : (ushort)0));
        AddFile("etc/boot-menu-wait", U16((ushort)Math.Clamp(waitMs, 0, 0xFFFF)));
    }

    /// <summary>Items QEMU's linuxboot option ROM reads for direct Linux boot.</summary>
    public void SetLinuxBoot(byte[] setup, uint setupAddr, byte[] kernel, uint kernelAddr, byte[]? initrd, uint initrdAddr, string cmdline, uint cmdlineAddr)
    {
        AddItem(KeySetupAddr, U32(setupAddr)); AddItem(KeySetupSize, U32((uint)setup.Length)); AddItem(KeySetupData, setup);
        AddItem(KeyKernelAddr, U32(kernelAddr)); AddItem(KeyKernelSize, U32((uint)kernel.Length)); AddItem(KeyKernelData, kernel);
        var init = initrd ?? Array.Empty<byte>();
        AddItem(KeyInitrdAddr, U32(initrdAddr)); AddItem(KeyInitrdSize, U32((uint)init.Length)); AddItem(KeyInitrdData, init);
        var cmd = Encoding.ASCII.GetBytes(cmdline + "\0");
        AddItem(KeyCmdlineAddr, U32(cmdlineAddr)); AddItem(KeyCmdlineSize, U32((uint)cmd.Length)); AddItem(KeyCmdlineData, cmd);
    }

    /// <summary>Named, versioned snapshot of the guest-visible position (the items are configuration, rebuilt by the machine).</summary>
    public sealed record State(int Version, ushort Selected, int Offset, uint DmaHigh)
    {
        public const int CurrentVersion = 1;
    }

    public State SaveState() => new(State.CurrentVersion, _selected, _offset, _dmaHigh);

    public void LoadState(State s)
    {
        if (s.Version != State.CurrentVersion) throw new InvalidDataException($"fw_cfg state version {s.Version} is not supported.");
        Select(s.Selected);
        _offset = s.Offset;
        _dmaHigh = s.DmaHigh;
    }

    private void RebuildDirectory()
    {
        var dir = new byte[4 + _files.Count * FileEntrySize];
        BinaryPrimitives.WriteUInt32BigEndian(dir, (uint)_files.Count);
        for (int i = 0; i < _files.Count; i++)
        {
            var e = dir.AsSpan(4 + i * FileEntrySize, FileEntrySize);
            BinaryPrimitives.WriteUInt32BigEndian(e, (uint)_items[_files[i].Key].Length);
            BinaryPrimitives.WriteUInt16BigEndian(e[4..], _files[i].Key);
            Encoding.ASCII.GetBytes(_files[i].Name, e[8..]);
        }
        AddItem(KeyFileDir, dir);
    }

    private void Select(ushort key)
    {
        _selected = key;
        _current = _items.TryGetValue(key, out var d) ? d : Array.Empty<byte>();
        _offset = 0;
    }

    private uint ReadByte() => _offset < _current.Length ? _current[_offset++] : 0u;

    // The DMA register reads back the "QEMU CFG" signature (big-endian), as QEMU's does.
    private uint ReadDma(ushort port, int size)
    {
        ulong sig = 0x51454D5520434647UL;
        int off = port - _base - DmaOffset;
        Span<byte> be = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(be, sig);
        uint v = 0;
        for (int i = 0; i < size && off + i < 8; i++) v |= (uint)be[off + i] << (8 * i);
        return v;
    }

    private void WriteDma(ushort port, int size, uint value)
    {
        int off = port - _base - DmaOffset;
        // The register is big-endian: the guest writes cpu_to_be32(x) with a little-endian OUT, so swap back.
        if (off == 0 && size == 4) { _dmaHigh = BinaryPrimitives.ReverseEndianness(value); return; }
        if (off == 4 && size == 4)
        {
            ulong address = (ulong)_dmaHigh << 32 | BinaryPrimitives.ReverseEndianness(value);
            _dmaHigh = 0;
            if (address <= 0xFFFF_FFF0) RunDma((uint)address);
        }
    }

    private void RunDma(uint accessAddress)
    {
        Span<byte> access = stackalloc byte[16];
        _memory.ReadBytes(accessAddress, access);
        uint control = BinaryPrimitives.ReadUInt32BigEndian(access);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(access[4..]);
        ulong target = BinaryPrimitives.ReadUInt64BigEndian(access[8..]);
        if ((control & DmaSelect) != 0) Select((ushort)(control >> 16));
        uint result = 0;
        if ((control & DmaWrite) != 0) result = DmaError; // no writable items
        else if ((control & DmaRead) != 0)
        {
            if (target + length > 0x1_0000_0000UL) result = DmaError;
            else
            {
                int available = Math.Max(0, Math.Min((int)Math.Min(length, int.MaxValue), _current.Length - _offset));
                if (available > 0) _memory.WriteBytes((uint)target, _current.AsSpan(_offset, available));
                // Past the end of the item the guest gets zeros (bounded by RAM: writes beyond it are dropped anyway).
                ulong zeroEnd = Math.Min(target + length, Math.Max(target + (ulong)available, _memory.RamSize));
                for (ulong a = target + (ulong)available; a < zeroEnd; a++) _memory.Write8((uint)a, 0);
                _offset += (int)Math.Min(length, (uint)(int.MaxValue - _offset));
            }
        }
        else if ((control & DmaSkip) != 0) _offset += (int)Math.Min(length, (uint)(int.MaxValue - _offset));
        Span<byte> done = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(done, result);
        _memory.WriteBytes(accessAddress, done);
    }

    private static byte[] U16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
}

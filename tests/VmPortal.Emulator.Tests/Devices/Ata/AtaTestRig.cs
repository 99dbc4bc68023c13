using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Ata;

/// <summary>Records IRQ line changes, as the 8259 pair would see them.</summary>
internal sealed class IrqRecorder : IIrqSink
{
    public readonly bool[] Level = new bool[16];
    public readonly int[] Raised = new int[16];

    public void SetIrq(int irq, bool level)
    {
        if (level && !Level[irq]) Raised[irq]++;
        Level[irq] = level;
    }
}

/// <summary>A PIIX3 IDE controller on a real I/O bus and physical memory, driven through ports like a BIOS.</summary>
internal sealed class AtaTestRig
{
    public readonly IoBus Bus = new();
    public readonly PhysicalMemory Memory = new(4 * 1024 * 1024);
    public readonly IrqRecorder Irqs = new();
    public readonly PiixIde Ide;
    public const ushort Base = 0x1F0, Control = 0x3F6;

    public AtaTestRig()
    {
        Ide = new PiixIde(Bus, Memory, Irqs);
    }

    public byte Status => Bus.In8(Base + 7);
    public byte AltStatus => Bus.In8(Control);

    public void Select(int unit, byte extra = 0x40) => Bus.Out8(Base + 6, (byte)(0xA0 | extra | (unit << 4)));

    public void Lba28(uint lba, byte count, int unit = 0)
    {
        Bus.Out8(Base + 2, count);
        Bus.Out8(Base + 3, (byte)lba);
        Bus.Out8(Base + 4, (byte)(lba >> 8));
        Bus.Out8(Base + 5, (byte)(lba >> 16));
        Bus.Out8(Base + 6, (byte)(0xE0 | (unit << 4) | ((lba >> 24) & 0x0F)));
    }

    public void Lba48(long lba, int count)
    {
        Bus.Out8(Base + 2, (byte)(count >> 8));
        Bus.Out8(Base + 3, (byte)(lba >> 24));
        Bus.Out8(Base + 4, (byte)(lba >> 32));
        Bus.Out8(Base + 5, (byte)(lba >> 40));
        Bus.Out8(Base + 2, (byte)count);
        Bus.Out8(Base + 3, (byte)lba);
        Bus.Out8(Base + 4, (byte)(lba >> 8));
        Bus.Out8(Base + 5, (byte)(lba >> 16));
        Bus.Out8(Base + 6, 0x40);
    }

    public void Command(byte cmd) => Bus.Out8(Base + 7, cmd);

    public byte[] ReadBlock(int bytes, bool use32 = false)
    {
        var b = new byte[bytes];
        for (int i = 0; i < bytes; i += use32 ? 4 : 2)
        {
            if (use32) BitConverter.TryWriteBytes(b.AsSpan(i), Bus.In32(Base));
            else BitConverter.TryWriteBytes(b.AsSpan(i), Bus.In16(Base));
        }
        return b;
    }

    public void WriteBlock(ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i += 2) Bus.Out16(Base, BitConverter.ToUInt16(data[i..]));
    }

    public ushort[] Identify(byte cmd = AtaProtocol.CmdIdentify)
    {
        Command(cmd);
        var raw = ReadBlock(512);
        var w = new ushort[256];
        for (int i = 0; i < 256; i++) w[i] = BitConverter.ToUInt16(raw, 2 * i);
        return w;
    }

    public static string AtaString(ushort[] w, int first, int count)
    {
        var chars = new char[count * 2];
        for (int i = 0; i < count; i++) { chars[2 * i] = (char)(w[first + i] >> 8); chars[2 * i + 1] = (char)(w[first + i] & 0xFF); }
        return new string(chars).TrimEnd();
    }

    /// <summary>Sends a 12-byte ATAPI packet with the given byte count limit.</summary>
    public void Packet(ReadOnlySpan<byte> cdb, int byteCountLimit = 0xFFFE, bool dma = false)
    {
        Bus.Out8(Base + 1, (byte)(dma ? 1 : 0));
        Bus.Out8(Base + 4, (byte)byteCountLimit);
        Bus.Out8(Base + 5, (byte)(byteCountLimit >> 8));
        Command(AtaProtocol.CmdPacket);
        Assert.Equal(AtaProtocol.StatusDrq, (byte)(AltStatus & (AtaProtocol.StatusDrq | AtaProtocol.StatusBsy)));
        Assert.Equal(AtaProtocol.ReasonCoD, Bus.In8(Base + 2));
        Span<byte> p = stackalloc byte[12];
        cdb.CopyTo(p);
        WriteBlock(p);
    }

    /// <summary>Reads the whole data-in phase of a packet command, chunk by chunk, checking the protocol.</summary>
    public byte[] ReadPacketData(List<int>? chunkSizes = null)
    {
        var all = new List<byte>();
        while (true)
        {
            byte st = Status;
            if ((st & AtaProtocol.StatusDrq) == 0) break;
            Assert.Equal(AtaProtocol.ReasonIo, Bus.In8(Base + 2));
            int n = Bus.In8(Base + 4) | Bus.In8(Base + 5) << 8;
            chunkSizes?.Add(n);
            all.AddRange(ReadBlock(n));
        }
        return all.ToArray();
    }
}

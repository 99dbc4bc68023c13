using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Devices.E1000;

/// <summary>
/// Bus-master copies between the card and guest memory, a page at a time: plain RAM pages are copied as spans (a
/// 1.5 KiB frame is one or two copies), anything else (ROM, MMIO, pages holding cached code, which must see the
/// write) goes through <see cref="PhysicalMemory"/>'s byte accessors.
/// </summary>
internal static class E1000Dma
{
    public static void Read(PhysicalMemory memory, uint address, Span<byte> into)
    {
        while (!into.IsEmpty)
        {
            int inPage = (int)Math.Min((uint)into.Length, PhysicalMemory.PageSize - (address & (PhysicalMemory.PageSize - 1)));
            int off = memory.ReadPageOffset(address);
            if (off >= 0) memory.Backing.AsSpan(off + (int)(address & (PhysicalMemory.PageSize - 1)), inPage).CopyTo(into);
            else memory.ReadBytes(address, into[..inPage]);
            into = into[inPage..];
            address += (uint)inPage;
        }
    }

    public static void Write(PhysicalMemory memory, uint address, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int inPage = (int)Math.Min((uint)data.Length, PhysicalMemory.PageSize - (address & (PhysicalMemory.PageSize - 1)));
            int off = memory.WritePageOffset(address);
            uint page = (address & memory.A20Mask) >> PhysicalMemory.PageShift;
            if (off >= 0 && !memory.IsCodePage(page)) data[..inPage].CopyTo(memory.Backing.AsSpan(off + (int)(address & (PhysicalMemory.PageSize - 1))));
            else memory.WriteBytes(address, data[..inPage]);
            data = data[inPage..];
            address += (uint)inPage;
        }
    }
}

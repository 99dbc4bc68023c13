using System.Buffers.Binary;
using System.Text;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Boot;

public class LinuxBootTests
{
    /// <summary>A synthetic bzImage: boot sector + <paramref name="setupSects"/> setup sectors + a protected-mode part.</summary>
    private static byte[] FakeKernel(int setupSects = 4, ushort protocol = 0x020F, int pmSize = 64 * 1024, byte loadFlags = 0x01)
    {
        var file = new byte[(setupSects + 1) * 512 + pmSize];
        for (int i = 0; i < file.Length; i++) file[i] = (byte)(i * 13 + 1);
        file[LinuxKernelImage.SetupSectsOffset] = (byte)setupSects;
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(LinuxKernelImage.BootFlagOffset), 0xAA55);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(LinuxKernelImage.HeaderMagicOffset), LinuxKernelImage.HeaderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(LinuxKernelImage.VersionOffset), protocol);
        file[LinuxKernelImage.TypeOfLoaderOffset] = 0;
        file[LinuxKernelImage.LoadFlagsOffset] = loadFlags;
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(LinuxKernelImage.InitrdAddrMaxOffset), 0x7FFF_FFFF);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(LinuxKernelImage.CmdlineSizeOffset), 0x7FF);
        return file;
    }

    [Fact]
    public void ParsesTheSetupHeader()
    {
        var k = LinuxKernelImage.Parse(FakeKernel(setupSects: 6, protocol: 0x0207));
        Assert.Equal(7 * 512, k.SetupSize);
        Assert.Equal(0x0207, k.Protocol);
        Assert.Equal(0x7FFF_FFFFu, k.InitrdAddrMax);
        Assert.Equal(0x7FFu, k.CmdlineMax);
        Assert.Equal(64 * 1024, k.ProtectedMode.Length);
    }

    [Fact]
    public void ZeroSetupSectorsMeansFour()
    {
        Assert.Equal(5 * 512, LinuxKernelImage.Parse(FakeKernel(setupSects: 0)).SetupSize);
    }

    [Fact]
    public void OldProtocolsDefaultTheirLimits()
    {
        var k = LinuxKernelImage.Parse(FakeKernel(protocol: 0x0202));
        Assert.Equal(0x37FF_FFFFu, k.InitrdAddrMax);
        Assert.Equal(255u, k.CmdlineMax);
    }

    [Fact]
    public void CorruptImagesAreRejectedWithAPreciseReason()
    {
        Assert.Contains("only 100 bytes", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(new byte[100])).Message);
        var noFlag = FakeKernel(); noFlag[LinuxKernelImage.BootFlagOffset] = 0;
        Assert.Contains("0xAA55", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(noFlag)).Message);
        var noMagic = FakeKernel(); noMagic[LinuxKernelImage.HeaderMagicOffset] = (byte)'X';
        Assert.Contains("HdrS", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(noMagic)).Message);
        Assert.Contains("too old", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(FakeKernel(protocol: 0x0201))).Message);
        Assert.Contains("zImage", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(FakeKernel(loadFlags: 0))).Message);
        var truncated = FakeKernel(setupSects: 4, pmSize: 0);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => LinuxKernelImage.Parse(truncated)).Message);
    }

    [Fact]
    public void TheTriggerPortLoadsEverythingWhereTheBootProtocolSays()
    {
        var mem = new PhysicalMemory(64 << 20);
        var io = new IoBus();
        var file = FakeKernel();
        var kernel = LinuxKernelImage.Parse(file);
        var initrd = new byte[10000];
        for (int i = 0; i < initrd.Length; i++) initrd[i] = (byte)(255 - i);
        var boot = new LinuxBoot(mem, io, kernel, initrd, "console=ttyS0 quiet");
        bool loaded = false;
        boot.Loaded += () => loaded = true;
        mem.A20Enabled = false; // the loader must not be fooled by a closed A20 gate

        io.Out8(LinuxBoot.TriggerPort, 1);

        Assert.True(loaded);
        Assert.False(mem.A20Enabled);
        mem.A20Enabled = true;
        // Initrd: page aligned, ending at most 1 MiB below the top of RAM.
        Assert.Equal(0u, boot.InitrdAddress & 0xFFF);
        Assert.True(boot.InitrdAddress + initrd.Length <= (64 << 20) - LinuxBoot.HighReserve);
        Assert.True(boot.InitrdAddress + initrd.Length > (64 << 20) - LinuxBoot.HighReserve - 4096);
        for (int i = 0; i < initrd.Length; i += 997) Assert.Equal(initrd[i], mem.Read8(boot.InitrdAddress + (uint)i));
        // Protected-mode part at 1 MiB.
        for (int i = 0; i < kernel.ProtectedMode.Length; i += 1009) Assert.Equal(file[kernel.SetupSize + i], mem.Read8(LinuxBoot.KernelAddress + (uint)i));
        // Real-mode part at 0x10000 with the loader's header fields filled in.
        uint h = LinuxBoot.SetupBase;
        Assert.Equal(file[0x100], mem.Read8(h + 0x100));
        Assert.Equal(LinuxBoot.LoaderIdUndefined, mem.Read8(h + LinuxKernelImage.TypeOfLoaderOffset));
        Assert.Equal(LinuxKernelImage.LoadedHigh | LinuxKernelImage.CanUseHeap, mem.Read8(h + LinuxKernelImage.LoadFlagsOffset));
        Assert.Equal(LinuxBoot.HeapEnd - 0x200, mem.Read16(h + LinuxKernelImage.HeapEndPtrOffset));
        Assert.Equal(LinuxBoot.CmdlineAddress, mem.Read32(h + LinuxKernelImage.CmdLinePtrOffset));
        Assert.Equal(boot.InitrdAddress, mem.Read32(h + LinuxKernelImage.RamdiskImageOffset));
        Assert.Equal((uint)initrd.Length, mem.Read32(h + LinuxKernelImage.RamdiskSizeOffset));
        // NUL-terminated command line.
        var cmd = new byte[20];
        mem.ReadBytes(LinuxBoot.CmdlineAddress, cmd);
        Assert.Equal("console=ttyS0 quiet\0", Encoding.ASCII.GetString(cmd));
    }

    [Fact]
    public void TheOptionRomIsAValidPnpRomWhoseBevEntersTheSetupCode()
    {
        var boot = new LinuxBoot(new PhysicalMemory(64 << 20), new IoBus(), LinuxKernelImage.Parse(FakeKernel()), null, "");
        var rom = boot.OptionRom;
        Assert.Equal(512, rom.Length);
        Assert.Equal(0x55, rom[0]);
        Assert.Equal(0xAA, rom[1]);
        Assert.Equal(1, rom[2]);
        Assert.Equal(0, rom.Aggregate(0, (s, b) => (s + b) & 0xFF));
        int pnp = BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(0x1A));
        Assert.Equal("$PnP", Encoding.ASCII.GetString(rom, pnp, 4));
        Assert.Equal(0, rom.Skip(pnp).Take(32).Aggregate(0, (s, b) => (s + b) & 0xFF));
        int bev = BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(pnp + 0x1A));
        // out dx, al to the trigger port, then a far jump to (SetupSegment + 0x20):0000.
        Assert.Equal(0xBA, rom[bev + 4]);
        Assert.Equal(LinuxBoot.TriggerPort, BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(bev + 5)));
        int jmp = Array.IndexOf(rom, (byte)0xEA, bev);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(jmp + 1)));
        Assert.Equal(LinuxBoot.SetupSegment + 0x20, BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(jmp + 3)));
        int name = BinaryPrimitives.ReadUInt16LittleEndian(rom.AsSpan(pnp + 0x10));
        Assert.StartsWith("VmPortal", Encoding.ASCII.GetString(rom, name, 8));
    }

    [Fact]
    public void KernelsThatDoNotFitAreRefusedBeforeBoot()
    {
        var kernel = LinuxKernelImage.Parse(FakeKernel(pmSize: 3 << 20));
        var e = Assert.Throws<InvalidDataException>(() => new LinuxBoot(new PhysicalMemory(4 << 20), new IoBus(), kernel, null, ""));
        Assert.Contains("does not fit", e.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => new LinuxBoot(new PhysicalMemory(8 << 20), new IoBus(), kernel, new byte[4 << 20], ""));
        Assert.Contains("do not fit", e2.Message);
        var e3 = Assert.Throws<InvalidDataException>(() => new LinuxBoot(new PhysicalMemory(8 << 20), new IoBus(), LinuxKernelImage.Parse(FakeKernel(protocol: 0x0202)), null, new string('x', 300)));
        Assert.Contains("at most 255", e3.Message);
    }

    [Fact]
    public void TheRescueKernelParsesWhenBuilt()
    {
        string path = Path.Combine(GuestImages.Directory, GuestImages.RescueKernel);
        if (!File.Exists(path)) return;
        var k = LinuxKernelImage.Load(path);
        Assert.True(k.Protocol >= 0x020F);
        Assert.True(k.CmdlineMax >= 255);
    }
}

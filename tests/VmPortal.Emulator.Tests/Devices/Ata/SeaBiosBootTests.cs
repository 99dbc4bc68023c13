using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using VmPortal.Emulator.Devices.Ata;
using VmPortal.Emulator.Devices.FwCfg;
using VmPortal.Emulator.Devices.Misc;
using VmPortal.Emulator.Devices.Pci;
using VmPortal.Emulator.Devices.Pic;
using VmPortal.Emulator.Devices.Pit;
using VmPortal.Emulator.Devices.Ps2;
using VmPortal.Emulator.Devices.Rtc;
using VmPortal.Emulator.Devices.Vga;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Io;
using VmPortal.Emulator.Memory;
using VmPortal.Emulator.Storage;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator.Tests.Devices.Ata;

/// <summary>
/// Real firmware over our disk and display devices: Debian's SeaBIOS + vgabios-stdvga find the ATAPI drive,
/// boot a hand-made El Torito CD or hard disk MBR (boot code: TestData/cdboot.asm), which reads another block through
/// int 13h (→ ATAPI READ(10) or ATA READ SECTORS) and prints it through int 10h (→ VGA text memory). The chipset is wired here by
/// hand, the way the machine does it.
/// </summary>
public class SeaBiosBootTests
{
    private const string BiosPath = "/usr/share/seabios/bios.bin", VgaBiosPath = "/usr/share/seabios/vgabios-stdvga.bin";

    // nasm -f bin TestData/cdboot.asm
    private const string BootImageHex =
        "ea0500c0070e1fbe5200e82600be4200b442cd1372151e31c08ed8be0006e812001fbe6d00e80b00f4ebfdbe7e00e80200ebf5ac84c07409b40ebb07" +
        "00cd10ebf2c3100001000006000015000000000000004344424f4f543a2072656164696e6720626c6f636b2032310d0a000d0a4344424f4f543a2064" +
        "6f6e650d0a004344424f4f543a2072656164206661696c65640d0a00";

    /// <summary>An ISO 9660 image with an El Torito boot record (block 17), boot catalog (19), no-emulation image (20), data (21).</summary>
    internal static byte[] BuildBootableIso(string dataText)
    {
        const int B = 2048;
        var iso = new byte[32 * B];
        // Primary volume descriptor (block 16) and terminator (block 18).
        var pvd = iso.AsSpan(16 * B, B);
        pvd[0] = 1; "CD001"u8.CopyTo(pvd[1..]); pvd[6] = 1;
        Encoding.ASCII.GetBytes("VMPORTAL_TEST".PadRight(32)).CopyTo(pvd[40..]);
        BinaryPrimitives.WriteInt32LittleEndian(pvd[80..], 32); BinaryPrimitives.WriteInt32BigEndian(pvd[84..], 32);
        BinaryPrimitives.WriteInt16LittleEndian(pvd[128..], B); BinaryPrimitives.WriteInt16BigEndian(pvd[130..], B);
        var term = iso.AsSpan(18 * B, B);
        term[0] = 255; "CD001"u8.CopyTo(term[1..]); term[6] = 1;
        // Boot record volume descriptor (block 17).
        var brvd = iso.AsSpan(17 * B, B);
        brvd[0] = 0; "CD001"u8.CopyTo(brvd[1..]); brvd[6] = 1;
        "EL TORITO SPECIFICATION"u8.CopyTo(brvd[7..]);
        BinaryPrimitives.WriteInt32LittleEndian(brvd[0x47..], 19);
        // Boot catalog (block 19): validation entry + initial entry.
        var cat = iso.AsSpan(19 * B, B);
        cat[0] = 1; cat[0x1E] = 0x55; cat[0x1F] = 0xAA;
        int sum = 0;
        for (int i = 0; i < 32; i += 2) sum += BinaryPrimitives.ReadUInt16LittleEndian(cat[i..]);
        BinaryPrimitives.WriteUInt16LittleEndian(cat[0x1C..], (ushort)(-sum));
        cat[0x20] = 0x88;                                        // bootable
        cat[0x21] = 0;                                           // no emulation
        BinaryPrimitives.WriteUInt16LittleEndian(cat[0x26..], 4); // 4 virtual sectors = 2048 bytes
        BinaryPrimitives.WriteInt32LittleEndian(cat[0x28..], 20);
        Convert.FromHexString(BootImageHex).CopyTo(iso, 20 * B);
        Encoding.ASCII.GetBytes(dataText + "\0").CopyTo(iso, 21 * B);
        return iso;
    }

    /// <summary>A 16 MiB disk whose MBR holds the same boot code; sector 21 holds <paramref name="dataText"/>.</summary>
    internal static byte[] BuildBootableDisk(string dataText)
    {
        var disk = new byte[16 << 20];
        Convert.FromHexString(BootImageHex).CopyTo(disk, 0);
        disk[510] = 0x55; disk[511] = 0xAA;
        Encoding.ASCII.GetBytes(dataText + "\0").CopyTo(disk, 21 * 512);
        return disk;
    }

    [Theory]
    [InlineData(CmosBootDevice.CdRom)]
    [InlineData(CmosBootDevice.HardDisk)]
    public void SeaBiosBootsThroughAtaAndPrintsOnTheVgaTextScreen(CmosBootDevice bootFrom)
    {
        if (!File.Exists(BiosPath) || !File.Exists(VgaBiosPath)) return; // installed by scripts/install-deps.sh (seabios)

        const uint ram = 32u << 20;
        var mem = new PhysicalMemory(ram);
        var io = new IoBus();
        var clock = new MachineClock();
        var sched = new TimerScheduler(clock);
        var pic = new DualPic(io);
        var cpu = new VmPortal.Emulator.Cpu.Cpu(mem, io) { InterruptController = pic };
        var pit = new Pit8254(io, pic, sched);
        _ = new SystemControlPortB(io, pit, clock);
        _ = new SystemControlPortA(io, mem);
        var rtc = new Mc146818Rtc(io, pic, sched);
        CmosLayout.SetMemory(rtc, ram);
        CmosLayout.SetBootOrder(rtc, new[] { bootFrom });
        _ = new I8042Controller(io, pic, mem, new Ps2Keyboard(), new Ps2Mouse());
        var debug = new StringBuilder();
        var dc = new DebugConsole(io, 0x402);
        dc.Output += b => debug.Append((char)b);
        var bios = SystemBios.Map(mem, File.ReadAllBytes(BiosPath));
        var pci = new PciBus(io);
        var host = new I440FxHostBridge(mem);
        host.SetRomBacking(bios.IsaBase, 0x10_0000 - bios.IsaBase, bios.IsaBackingOffset);
        pci.Add(0, 0, host);
        pci.Add(1, 0, new Piix3IsaBridge(pic));
        var ide = new PiixIde(io, mem, pic);
        pci.Add(1, 1, ide);
        var vga = new VmPortal.Emulator.Devices.Vga.Vga(io, mem);
        pci.Add(2, 0, new StdVgaPci(vga, mem, File.ReadAllBytes(VgaBiosPath)));
        new FwCfgDevice(io, mem).SetRamSize(ram);
        bool cd = bootFrom == CmosBootDevice.CdRom;
        ide.Primary.Attach(0, new AtaHardDisk(new MemoryDiskImage(cd ? new byte[16 << 20] : BuildBootableDisk("HELLO FROM SECTOR 21"), readOnly: false)));
        ide.Secondary.Attach(0, new AtapiCdrom(new MemoryDiskImage(BuildBootableIso("HELLO FROM BLOCK 21"), readOnly: true)));

        cpu.Reset();
        clock.Start();
        var sw = Stopwatch.StartNew();
        string text = "";
        int iterations = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            cpu.Run(50_000);
            sched.RunDue(clock.NowNs);
            Assert.False(cpu.ShutdownPending, cpu.ShutdownReason);
            if (++iterations % 64 == 0 && debug.ToString().Contains("Booting from 0000:7c00"))
            {
                text = vga.Screen.GetText();
                if (text.Contains("CDBOOT: done") || text.Contains("failed")) break;
            }
            if (cpu.Halted)
            {
                long wait = sched.NextDeadlineNs - clock.NowNs;
                if (wait > 0) Thread.Sleep(TimeSpan.FromTicks(Math.Clamp(wait / 100, 0, 10_000)));
            }
        }
        text = vga.Screen.GetText();
        Assert.True(text.Contains("CDBOOT: done"), "screen:\n" + text + "\ndebug:\n" + debug);
        Assert.Contains("DVD/CD [ata1-0: VmPortal DVD-ROM ATAPI-4 DVD/CD]", debug.ToString());
        Assert.Contains("ata0-0: VmPortal HARDDISK ATA-7 Hard-Disk (16 MiBytes)", debug.ToString());
        var lines = text.Split('\n');
        Assert.StartsWith("SeaBIOS (version", lines[0]);
        Assert.Contains(cd ? "Booting from DVD/CD..." : "Booting from Hard Disk...", lines);
        Assert.Contains("CDBOOT: reading block 21", lines);
        Assert.Contains(cd ? "HELLO FROM BLOCK 21" : "HELLO FROM SECTOR 21", lines);
        Assert.Contains("CDBOOT: done", lines);
        vga.Screen.Refresh();
        Assert.Equal((ScreenMode.Text, 720, 400), (vga.Screen.Mode, vga.Screen.Width, vga.Screen.Height));
    }
}

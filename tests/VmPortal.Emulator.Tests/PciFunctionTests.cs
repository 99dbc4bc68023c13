using VmPortal.Emulator.Devices.Pci;

namespace VmPortal.Emulator.Tests;

public class PciFunctionTests
{
    private sealed class TestFunction : PciFunction
    {
        public TestFunction() : base(0x1234, 0x1111, 0x03, 0x00, 0x00)
        {
            DefineBar(0, 16 * 1024 * 1024, io: false, prefetchable: true);
            DefineBar(1, 32, io: true);
            DefineRomBar(64 * 1024);
        }
    }

    [Fact]
    public void BarSizingFollowsThePciProtocol()
    {
        var f = new TestFunction();
        var changed = new List<int>();
        f.BarChanged += changed.Add;
        Assert.Equal(0x1111_1234u, f.ReadConfig(0, 4));
        f.WriteConfig(0x10, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFF00_0008u, f.ReadConfig(0x10, 4));
        f.WriteConfig(0x14, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_FFE1u, f.ReadConfig(0x14, 4));
        f.WriteConfig(0x30, 4, 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_0001u, f.ReadConfig(0x30, 4));
        f.WriteConfig(0x10, 4, 0xFD00_0000);
        Assert.Equal(0xFD00_0000u, f.BarAddress(0));
        Assert.Contains(0, changed);
        f.WriteConfig(0x00, 2, 0);
        Assert.Equal(0x1234u, f.ReadConfig(0, 2)); // IDs are read-only
    }
}

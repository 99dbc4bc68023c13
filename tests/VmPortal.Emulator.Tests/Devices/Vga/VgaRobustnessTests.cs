using VmPortal.Emulator.Devices.Vga;

namespace VmPortal.Emulator.Tests.Devices.Vga;

public class VgaRobustnessTests
{
    private static readonly ushort[] Ports = { 0x3B4, 0x3B5, 0x3BA, 0x3C0, 0x3C1, 0x3C2, 0x3C4, 0x3C5, 0x3C6, 0x3C7, 0x3C8, 0x3C9, 0x3CE, 0x3CF, 0x3D4, 0x3D5, 0x3DA, 0x1CE, 0x1CF };

    [Fact]
    public void GarbageRegisterAndMemoryWritesNeverThrow()
    {
        var rig = new VgaTestRig();
        var rnd = new Random(1234);
        var s = rig.Vga.Screen;
        for (int round = 0; round < 300; round++)
        {
            for (int i = 0; i < 40; i++)
            {
                ushort port = Ports[rnd.Next(Ports.Length)];
                if (rnd.Next(3) == 0) rig.Bus.In16(port);
                else if (port >= 0x1CE) rig.Bus.Out16(port, (ushort)rnd.Next(65536));
                else rig.Bus.Out16(port, (ushort)rnd.Next(65536));
            }
            for (int i = 0; i < 50; i++)
            {
                uint a = 0xA0000 + (uint)rnd.Next(0x20000);
                if (rnd.Next(2) == 0) rig.Memory.Write32(a, (uint)rnd.Next());
                else rig.Memory.Read16(a);
            }
            rig.Vga.LfbWrite((uint)rnd.Next(), 4, 1);
            s.Refresh();
            s.GetText();
            _ = s.Cursor;
            Assert.True(s.Width > 0 && s.Height > 0 && s.Pixels.Length == s.Width * s.Height);
        }
    }
}

using VmPortal.Emulator.Devices.Ps2;
using VmPortal.Emulator.Memory;

namespace VmPortal.Emulator.Tests.Devices.Ps2;

public class I8042ControllerTests
{
    private readonly DeviceTestRig _rig = new();
    private readonly PhysicalMemory _memory = new(2 * 1024 * 1024);
    private readonly Ps2Keyboard _kbd = new();
    private readonly Ps2Mouse _mouse = new();
    private readonly I8042Controller _kbc;

    public I8042ControllerTests() => _kbc = new I8042Controller(_rig.Io, _rig.Pic, _memory, _kbd, _mouse);

    private void Command(byte c) => _rig.Io.Out8(0x64, c);
    private void Data(byte d) => _rig.Io.Out8(0x60, d);
    private byte Status() => _rig.Io.In8(0x64);

    /// <summary>Reads every byte the guest can see now, like a BIOS polling loop.</summary>
    private List<byte> Drain()
    {
        var bytes = new List<byte>();
        for (int guard = 0; guard < 100 && (Status() & 1) != 0; guard++) bytes.Add(_rig.Io.In8(0x60));
        return bytes;
    }

    [Fact]
    public void SelfTestsAndCommandByte()
    {
        Command(0xAA);
        Assert.Equal(0x01, Status() & 0x21);
        Assert.Equal(new byte[] { 0x55 }, Drain());
        Command(0xAB); Assert.Equal(new byte[] { 0x00 }, Drain());
        Command(0xA9); Assert.Equal(new byte[] { 0x00 }, Drain());
        Command(0x20); Assert.Equal(new byte[] { 0x45 }, Drain());
        Command(0x60); Data(0x65);
        Command(0x20); Assert.Equal(new byte[] { 0x65 }, Drain());
        Assert.Equal(0x04, Status() & 0x04); // system flag
        Command(0xA7);
        Command(0x20); Assert.Equal(0x20, Drain()[0] & 0x20);
    }

    [Fact]
    public void KeyboardResetAndIdentify()
    {
        Data(0xFF);
        Assert.Equal(new byte[] { 0xFA, 0xAA }, Drain());
        Data(0xF2);
        Assert.Equal(new byte[] { 0xFA, 0xAB, 0x41 }, Drain()); // 83 translated
        Command(0x60); Data(0x01); // translation off
        Data(0xF2);
        Assert.Equal(new byte[] { 0xFA, 0xAB, 0x83 }, Drain());
        Data(0xF0); Data(0x00);
        Assert.Equal(new byte[] { 0xFA, 0xFA, 0x02 }, Drain());
        Data(0xED); Data(0x07);
        Assert.Equal(new byte[] { 0xFA, 0xFA }, Drain());
        Assert.Equal(7, _kbd.Leds);
        Data(0xEE);
        Assert.Equal(new byte[] { 0xEE }, Drain());
        Data(0xF3); Data(0x20);
        Assert.Equal(new byte[] { 0xFA, 0xFA }, Drain());
        Data(0x12);
        Assert.Equal(new byte[] { 0xFE }, Drain());
    }

    [Fact]
    public void KeysArriveTranslatedToSet1WithIrq1PerByte()
    {
        _kbd.KeySet1(0x1E, true);  // A
        _kbd.KeySet1(0x1E, false);
        _kbc.PumpHostInput();
        Assert.Equal(0x09, _rig.TakeInterrupt());
        Assert.Equal(0x1E, _rig.Io.In8(0x60));
        Assert.Equal(0x09, _rig.TakeInterrupt());
        Assert.Equal(0x9E, _rig.Io.In8(0x60));
        Assert.Equal(-1, _rig.TakeInterrupt());
        Assert.Equal(0, Status() & 1);
    }

    [Fact]
    public void UntranslatedSet2Codes()
    {
        Command(0x60); Data(0x01);
        _kbd.KeySet1(0x1E, true);
        _kbd.KeySet1(0x1E, false);
        _kbd.KeySet2(0xE075, true); // Up
        Assert.Equal(new byte[] { 0x1C, 0xF0, 0x1C, 0xE0, 0x75 }, Drain());
    }

    [Fact]
    public void ExtendedPrintScreenAndPauseSequences()
    {
        _kbd.KeySet1(0xE048, true);
        _kbd.KeySet1(0xE048, false);
        Assert.Equal(new byte[] { 0xE0, 0x48, 0xE0, 0xC8 }, Drain());
        _kbd.KeySet1(Ps2Keyboard.PrintScreenSet1, true);
        _kbd.KeySet1(Ps2Keyboard.PrintScreenSet1, false);
        Assert.Equal(new byte[] { 0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA }, Drain());
        _kbd.KeySet1(Ps2Keyboard.PauseSet1, true);
        _kbd.KeySet1(Ps2Keyboard.PauseSet1, false);
        Assert.Equal(new byte[] { 0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5 }, Drain());
        _kbd.KeySet1(0xE01D, true); // right Ctrl
        Assert.Equal(new byte[] { 0xE0, 0x1D }, Drain());
    }

    [Fact]
    public void EveryKeyRoundTripsThroughTranslation()
    {
        for (ushort code = 1; code < 0x59; code++)
        {
            if (code is 0x55) continue; // not on the AT keyboard
            _kbd.KeySet1(code, true);
            _kbd.KeySet1(code, false);
            Assert.Equal(new[] { (byte)code, (byte)(code | 0x80) }, Drain());
        }
    }

    [Fact]
    public void DisabledScanningDropsKeysAndDisabledInterfaceHoldsThem()
    {
        Data(0xF5);
        Assert.Equal(new byte[] { 0xFA }, Drain());
        _kbd.KeySet1(0x10, true);
        Assert.Empty(Drain());
        Data(0xF4);
        Assert.Equal(new byte[] { 0xFA }, Drain());
        Command(0xAD);
        _kbd.KeySet1(0x10, true);
        Assert.Empty(Drain());
        Command(0xAE);
        Assert.Equal(new byte[] { 0x10 }, Drain());
    }

    [Fact]
    public void MouseThroughAuxPortWithIrq12()
    {
        Command(0x60); Data(0x47); // keyboard + aux IRQs, translation
        Command(0xD4); Data(0xFF);
        Assert.Equal(0x21, Status() & 0x21); // aux data
        Assert.Equal(new byte[] { 0xFA, 0xAA, 0x00 }, Drain());
        Command(0xD4); Data(0xF2);
        Assert.Equal(new byte[] { 0xFA, 0x00 }, Drain());
        Command(0xD4); Data(0xF3); Command(0xD4); Data(200);
        Assert.Equal(new byte[] { 0xFA, 0xFA }, Drain());
        Assert.Equal(200, _mouse.SampleRate);
        _mouse.MouseMove(10, 10, 1);
        Assert.Empty(Drain()); // reporting still off
        Command(0xD4); Data(0xF4);
        Assert.Equal(new byte[] { 0xFA }, Drain());
        _mouse.MouseMove(10, 5, 1); // right and down, left button
        _kbc.PumpHostInput();
        Assert.Equal(0x74, _rig.TakeInterrupt()); // IRQ 12
        Assert.Equal(0x29, _rig.Io.In8(0x60));   // Y sign (moved down), always-one bit, left button
        Assert.Equal(0x74, _rig.TakeInterrupt());
        Assert.Equal(0x0A, _rig.Io.In8(0x60));
        Assert.Equal(0x74, _rig.TakeInterrupt());
        Assert.Equal(0xFB, _rig.Io.In8(0x60));
        _mouse.MouseMove(-600, 0, 0); // split into packets of at most 255
        var bytes = Drain();
        Assert.Equal(9, bytes.Count);
        int sum = 0;
        for (int i = 0; i < 9; i += 3) sum += (sbyte)bytes[i + 1] - ((bytes[i] & 0x10) != 0 && (sbyte)bytes[i + 1] >= 0 ? 256 : 0);
        Assert.Equal(-600, sum);
    }

    [Fact]
    public void OutputPortDrivesA20AndReset()
    {
        int resets = 0;
        _kbc.ResetRequested += () => resets++;
        _memory.A20Enabled = false;
        Command(0xD1); Data(0xDF);
        Assert.True(_memory.A20Enabled);
        Command(0xD0);
        Assert.Equal(0x03, Drain()[0] & 0x03);
        Command(0xD1); Data(0xDD);
        Assert.False(_memory.A20Enabled);
        Command(0xDF);
        Assert.True(_memory.A20Enabled);
        Assert.Equal(0, resets);
        Command(0xFE);
        Assert.Equal(1, resets);
        Command(0xD1); Data(0x02);
        Assert.Equal(2, resets);
    }

    [Fact]
    public void WriteOutputBufferCommandsLoopBytesBack()
    {
        Command(0xD2); Data(0x42);
        Assert.Equal(0x09, _rig.TakeInterrupt());
        Assert.Equal(0x42, _rig.Io.In8(0x60));
        Command(0x60); Data(0x47);
        Command(0xD3); Data(0x99);
        Assert.Equal(0x20, Status() & 0x20);
        Assert.Equal(0x74, _rig.TakeInterrupt());
        Assert.Equal(0x99, _rig.Io.In8(0x60));
    }

    [Fact]
    public void KeysFromAnotherThreadSignalAndArriveAfterPump()
    {
        int signals = 0;
        _kbc.HostInputAvailable += () => Interlocked.Increment(ref signals);
        var t = new Thread(() => { for (int i = 0; i < 50; i++) { _kbd.KeySet1(0x39, true); _kbd.KeySet1(0x39, false); } });
        t.Start();
        t.Join();
        Assert.Equal(100, signals);
        _kbc.PumpHostInput();
        var bytes = Drain();
        Assert.Equal(100, bytes.Count);
        Assert.Equal(50, bytes.Count(b => b == 0x39));
    }

    [Fact]
    public void ResetRestoresCommandByteAndEmptiesBuffers()
    {
        Command(0x60); Data(0x00);
        _kbd.KeySet1(0x1E, true);
        Data(0xF5);
        _kbc.Reset();
        Command(0x20);
        Assert.Equal(new byte[] { 0x45 }, Drain());
        Assert.True(_kbd.ScanningEnabled);
    }

    [Fact]
    public void RawSequencesFromTheConsoleInEitherSetReachTheGuestAsSet1()
    {
        // Set 1 bytes for: Shift down, A down, A up, Shift up, PrintScreen (with its fake shift), Pause.
        byte[] set1 = [0x2A, 0x1E, 0x9E, 0xAA, 0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA, 0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5];
        _kbd.InjectScancodes(set1, set2: false);
        Assert.Equal(set1, Drain());
        byte[] set2 = [0x12, 0x1C, 0xF0, 0x1C, 0xF0, 0x12, 0xE0, 0x12, 0xE0, 0x7C, 0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12, 0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77];
        _kbd.InjectScancodes(set2, set2: true);
        Assert.Equal(set1, Drain());
        _kbd.KeyDown(0xE048); _kbd.KeyUp(0xE048);
        Assert.Equal(new byte[] { 0xE0, 0x48, 0xE0, 0xC8 }, Drain());
        // Keyboard switched to native set 1 with translation off: set 1 bytes pass unchanged.
        Command(0x60); Data(0x05);
        Data(0xF0); Data(0x01);
        Assert.Equal(new byte[] { 0xFA, 0xFA }, Drain());
        _kbd.InjectScancodes(set2, set2: true);
        Assert.Equal(set1, Drain());
        _kbd.KeySet1(0x1E, true);
        Assert.Equal(new byte[] { 0x1E }, Drain());
    }

    [Fact]
    public void StateRoundTripsMidSequence()
    {
        Command(0x60); Data(0x47);
        Data(0xED);                  // LED command waiting for its parameter
        _kbd.KeySet1(0x1E, true);
        Command(0xD4); Data(0xF4);   // mouse reporting on
        var state = _kbc.SaveState();
        var rig = new DeviceTestRig();
        var kbd = new Ps2Keyboard();
        var mouse = new Ps2Mouse();
        var copy = new I8042Controller(rig.Io, rig.Pic, _memory, kbd, mouse);
        copy.LoadState(state);
        Assert.Equal(0x09, rig.TakeInterrupt()); // the full output buffer raises IRQ 1 again
        var bytes = new List<byte>();
        while ((rig.Io.In8(0x64) & 1) != 0) bytes.Add(rig.Io.In8(0x60));
        Assert.Equal(new byte[] { 0xFA, 0x1E, 0xFA }, bytes);
        rig.Io.Out8(0x60, 0x02);     // the pending LED parameter
        Assert.Equal(2, kbd.Leds);
        Assert.True(mouse.ReportingEnabled);
    }
}

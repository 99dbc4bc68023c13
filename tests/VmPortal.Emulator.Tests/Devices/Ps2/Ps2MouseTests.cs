using VmPortal.Emulator.Devices.Ps2;

namespace VmPortal.Emulator.Tests.Devices.Ps2;

/// <summary>
/// The PS/2 mouse on its own, driven the way Linux psmouse drives it: stream-mode 3-byte packets with sign and
/// overflow bits, the IntelliMouse knock (sample rates 200, 100, 80 → ID 03, 4-byte packets with the wheel) and the
/// Explorer knock (200, 200, 80 → ID 04, buttons 4/5), remote mode (EB), wrap mode, scaling 2:1, reset.
/// </summary>
public class Ps2MouseTests
{
    private readonly Ps2Mouse _mouse = new();

    private List<byte> Drain()
    {
        var list = new List<byte>();
        while (_mouse.TryDequeue(out byte b)) list.Add(b);
        return list;
    }

    private List<byte> Send(params byte[] bytes)
    {
        foreach (byte b in bytes) _mouse.Receive(b);
        return Drain();
    }

    private void SetRate(byte rate) => Assert.Equal(new byte[] { 0xFA, 0xFA }, Send(0xF3, rate));

    [Fact]
    public void StreamModePacketsCarrySignsButtonsAndAlwaysOneBit()
    {
        Assert.Equal(new byte[] { 0xFA, 0xAA, 0x00 }, Send(0xFF));
        _mouse.MouseMove(10, -5, 1);
        Assert.Empty(Drain()); // reporting is off after reset
        Assert.Equal(new byte[] { 0xFA }, Send(0xF4));
        // (+10, −5) on screen = right and up: Y is positive upwards, so no sign bits; left button.
        _mouse.MouseMove(10, -5, 1);
        Assert.Equal(new byte[] { 0x09, 0x0A, 0x05 }, Drain());
        // Left and down with the right button: both sign bits, 9-bit two's complement.
        _mouse.MouseMove(-3, 200, 2);
        Assert.Equal(new byte[] { 0x3A, 0xFD, 0x38 }, Drain());
        // A button change alone is a packet; no change and no motion is none.
        _mouse.MouseMove(0, 0, 0);
        Assert.Equal(new byte[] { 0x08, 0x00, 0x00 }, Drain());
        _mouse.MouseMove(0, 0, 0);
        Assert.Empty(Drain());
        // Middle button.
        _mouse.MouseMove(0, 0, 4);
        Assert.Equal(new byte[] { 0x0C, 0x00, 0x00 }, Drain());
        Assert.Equal(0x00, Send(0xF2)[1]);
        Assert.Equal(4, _mouse.PacketsSent);
        Assert.Equal(6, _mouse.EventsReceived);
    }

    [Fact]
    public void LargeMovesAreSplitInStreamModeAndOverflowInRemoteMode()
    {
        Send(0xFF);
        Send(0xF4);
        _mouse.MouseMove(300, 0, 0);
        var b = Drain();
        Assert.Equal(new byte[] { 0x08, 0xFF, 0x00, 0x08, 0x2D, 0x00 }, b); // 255 + 45, no overflow bit
        // Remote mode: motion accumulates, EB reports it once; beyond ±255 the overflow bits are set.
        Assert.Equal(new byte[] { 0xFA }, Send(0xF0));
        _mouse.MouseMove(200, 0, 1);
        _mouse.MouseMove(200, -300, 1);
        Assert.Empty(Drain());
        Assert.Equal(new byte[] { 0xFA, 0xC9, 0xFF, 0xFF }, Send(0xEB)); // X and Y overflow, left button, clamped to 255
        Assert.Equal(new byte[] { 0xFA, 0x09, 0x00, 0x00 }, Send(0xEB)); // counters were cleared
        _mouse.MouseMove(-7, 3, 0);
        Assert.Equal(new byte[] { 0xFA, 0x38, 0xF9, 0xFD }, Send(0xEB));
        // Status: remote mode, reporting on, left button bit 2.
        _mouse.MouseMove(0, 0, 1);
        var status = Send(0xE9);
        Assert.Equal(new byte[] { 0xFA, 0x64, 0x02, 100 }, status);
        Assert.Equal(new byte[] { 0xFA }, Send(0xEA)); // back to stream mode
        _mouse.MouseMove(1, 1, 0);
        Assert.Equal(new byte[] { 0x28, 0x01, 0xFF }, Drain());
    }

    [Fact]
    public void TheIntelliMouseKnockTurnsOnTheWheelInAFourthByte()
    {
        Send(0xFF);
        Assert.Equal(new byte[] { 0xFA, 0x00 }, Send(0xF2));
        SetRate(200); SetRate(100); SetRate(80);
        Assert.Equal(new byte[] { 0xFA, 0x03 }, Send(0xF2));
        Assert.Equal((byte)0x03, _mouse.Id);
        Assert.Equal(80, _mouse.SampleRate);
        Send(0xF4);
        _mouse.MouseMove(10, -5, 1, 0);
        Assert.Equal(new byte[] { 0x09, 0x0A, 0x05, 0x00 }, Drain());
        _mouse.MouseMove(0, 0, 1, 2);   // two steps down (towards the user): +2
        Assert.Equal(new byte[] { 0x09, 0x00, 0x00, 0x02 }, Drain());
        _mouse.MouseMove(0, 0, 0, -1);  // one step up, left released
        Assert.Equal(new byte[] { 0x08, 0x00, 0x00, 0xFF }, Drain());
        _mouse.MouseMove(0, 0, 0, 10);  // more than 7 steps: two packets
        Assert.Equal(new byte[] { 0x08, 0x00, 0x00, 0x07, 0x08, 0x00, 0x00, 0x03 }, Drain());
        // The wrong order does not enable anything more; a reset goes back to the standard mouse.
        SetRate(100); SetRate(200); SetRate(80);
        Assert.Equal(new byte[] { 0xFA, 0x03 }, Send(0xF2));
        Send(0xFF);
        Assert.Equal(new byte[] { 0xFA, 0x00 }, Send(0xF2));
        Send(0xF4);
        _mouse.MouseMove(1, 0, 0, 3); // standard mouse: the wheel is not reported
        Assert.Equal(new byte[] { 0x08, 0x01, 0x00 }, Drain());
    }

    [Fact]
    public void TheExplorerKnockAddsButtonsFourAndFive()
    {
        Send(0xFF);
        SetRate(200); SetRate(100); SetRate(80);
        SetRate(200); SetRate(200); SetRate(80);
        Assert.Equal(new byte[] { 0xFA, 0x04 }, Send(0xF2));
        Send(0xF4);
        _mouse.MouseMove(0, 0, 0x08 | 0x01, -2); // back button + left, wheel up 2
        Assert.Equal(new byte[] { 0x09, 0x00, 0x00, 0x1E }, Drain());
        _mouse.MouseMove(0, 0, 0x10, 1);
        Assert.Equal(new byte[] { 0x08, 0x00, 0x00, 0x21 }, Drain());
    }

    [Fact]
    public void WrapModeEchoesUntilResetWrap()
    {
        Send(0xFF);
        Assert.Equal(new byte[] { 0xFA }, Send(0xEE));
        Assert.Equal(new byte[] { 0x12, 0xF4, 0xF2 }, Send(0x12, 0xF4, 0xF2)); // echoed, not executed
        Assert.False(_mouse.ReportingEnabled);
        Assert.Equal(new byte[] { 0xFA }, Send(0xEC));
        Assert.Equal(new byte[] { 0xFA, 0x00 }, Send(0xF2));
        Send(0xEE);
        Assert.Equal(new byte[] { 0xFA, 0xAA, 0x00 }, Send(0xFF)); // reset works in wrap mode and leaves it
        Assert.Equal(new byte[] { 0xFA, 0x00 }, Send(0xF2));
    }

    [Fact]
    public void Scaling21AppliesToStreamModeMotion()
    {
        Send(0xFF);
        Send(0xE7);
        Send(0xF4);
        _mouse.MouseMove(4, 0, 0);
        Assert.Equal(new byte[] { 0x08, 0x06, 0x00 }, Drain());
        _mouse.MouseMove(-10, -2, 0);
        Assert.Equal(new byte[] { 0x18, 0xEC, 0x01 }, Drain());
        Send(0xE6);
        _mouse.MouseMove(4, 0, 0);
        Assert.Equal(new byte[] { 0x08, 0x04, 0x00 }, Drain());
    }

    [Fact]
    public void StateRoundTripsWithTheWheelMode()
    {
        Send(0xFF);
        SetRate(200); SetRate(100); SetRate(80);
        Send(0xF4);
        var state = _mouse.SaveState();
        var copy = new Ps2Mouse();
        copy.LoadState(state);
        Assert.Equal((byte)0x03, copy.Id);
        copy.MouseMove(1, 1, 0, 1);
        var bytes = new List<byte>();
        while (copy.TryDequeue(out byte b)) bytes.Add(b);
        Assert.Equal(new byte[] { 0x28, 0x01, 0xFF, 0x01 }, bytes);
        // A version-1 state (before the wheel) still loads, as a standard mouse.
        copy.LoadState(state with { Version = 1, Id = 0 });
        Assert.Equal((byte)0x00, copy.Id);
    }
}

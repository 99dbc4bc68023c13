using System.Diagnostics.CodeAnalysis;
using VmPortal.Emulator.Io;

namespace VmPortal.Network.Tests;

/// <summary>A NIC's cable that can be moved to another switch's port while the VM runs (re-plugging).</summary>
public sealed class PatchCable(SwitchPort first) : IFramePort
{
    private volatile SwitchPort _port = first;
    private Action? _queued;

    public SwitchPort Port => _port;

    public void Plug(SwitchPort port)
    {
        var old = _port;
        old.FrameQueued = null;
        port.FrameQueued = _queued;
        _port = port;
        old.Switch.Disconnect(old);
    }

    public void Send(ReadOnlySpan<byte> frame) => _port.Send(frame);
    public bool TryReceive([NotNullWhen(true)] out byte[]? frame) => _port.TryReceive(out frame);

    public Action? FrameQueued
    {
        get => _queued;
        set { _queued = value; _port.FrameQueued = value; }
    }
}

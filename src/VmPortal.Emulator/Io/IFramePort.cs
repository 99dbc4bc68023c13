using System.Diagnostics.CodeAnalysis;

namespace VmPortal.Emulator.Io;

/// <summary>
/// Where a network card meets the network: one Ethernet link. The card sends frames (destination MAC first, no
/// FCS) with <see cref="Send"/> and pulls the frames waiting for it with <see cref="TryReceive"/>, both on its
/// machine's thread, so the queue of waiting frames (and its bound) belongs to the other side (a switch port in
/// VmPortal.Network, or a test). The other side calls <see cref="FrameQueued"/> from any thread when a frame starts
/// waiting; the machine uses it to wake a halted guest. The emulator defines this interface so that it depends on
/// nothing: VmPortal.Network implements it.
/// </summary>
public interface IFramePort
{
    /// <summary>Sends one frame. Must not block; the port copies what it keeps.</summary>
    void Send(ReadOnlySpan<byte> frame);

    /// <summary>Takes the next frame waiting for the card, if any.</summary>
    bool TryReceive([NotNullWhen(true)] out byte[]? frame);

    /// <summary>Called (on any thread) when a frame has been queued for the card. Set by the card's machine; null detaches.</summary>
    Action? FrameQueued { get; set; }
}

using VmPortal.Emulator.Io;

namespace VmPortal.Emulator.Devices.Misc;

/// <summary>
/// Bochs/QEMU debug console ("debugcon", port 0xE9): every byte written is passed to <see cref="Output"/>;
/// a read returns 0xE9 so a guest can detect the port. Guests: SeaBIOS (its debug log when built for it),
/// hand-written test programs; `vmportal run --debugcon stdio`.
/// </summary>
public sealed class DebugConsole
{
    public const ushort DefaultPort = 0xE9;
    public const byte DetectValue = 0xE9;

    public DebugConsole(IoBus io, ushort port = DefaultPort)
    {
        io.Register(port, 1, (p, s) => DetectValue, (p, s, v) => Output?.Invoke((byte)v));
    }

    /// <summary>Raised on the machine thread for each byte the guest writes.</summary>
    public event Action<byte>? Output;
}

namespace VmPortal.Emulator.Devices.Ps2;

/// <summary>A device on one of the i8042's serial ports (keyboard or auxiliary/mouse).</summary>
public interface IPs2Device
{
    /// <summary>A byte the controller (and so the guest) sends to the device. Machine thread.</summary>
    void Receive(byte value);

    /// <summary>Takes the next byte the device wants to send, if any. Thread-safe.</summary>
    bool TryDequeue(out byte value);

    /// <summary>Raised (on any thread) when the device has queued bytes for the controller.</summary>
    event Action? DataQueued;
}

namespace VmPortal.Emulator;

/// <summary>Life cycle of a <see cref="Machine"/>.</summary>
public enum MachineState
{
    /// <summary>Built, never started.</summary>
    Created,
    /// <summary>The guest runs (or idles in HLT).</summary>
    Running,
    /// <summary>Frozen: no instructions, guest time stands still.</summary>
    Paused,
    /// <summary>Stopped by <see cref="Machine.PowerOff"/> or by the guest; can be started again.</summary>
    PoweredOff,
    /// <summary>Stopped because of a host error or a triple fault with <see cref="TripleFaultAction.PowerOff"/>; see <see cref="Machine.CrashReason"/>.</summary>
    Crashed,
}

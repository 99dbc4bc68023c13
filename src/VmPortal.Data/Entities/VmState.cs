namespace VmPortal.Data.Entities;

/// <summary>Lifecycle state of a VM; persisted so that a restarted host knows what was running.</summary>
public enum VmState
{
    Stopped = 0,
    Starting = 1,
    Running = 2,
    Paused = 3,
    Stopping = 4,
    Crashed = 5,
    /// <summary>Suspended to disk: the machine state is saved in the VM's directory, no machine runs; resume continues it.</summary>
    Suspended = 6,
}

/// <summary>Devices a VM's firmware may boot from, in the order given by <see cref="VirtualMachine.BootOrder"/>.</summary>
public enum BootDevice
{
    Cdrom = 0,
    Disk = 1,
    Floppy = 2,
    Network = 3,
}

/// <summary>Raised when code asks a VM for a transition that its current state forbids.</summary>
public sealed class VmStateException(Guid vmId, VmState state, string action)
    : InvalidOperationException($"VM {vmId} cannot {action} while {state}.")
{
    public Guid VmId { get; } = vmId;
    public VmState State { get; } = state;
    public string Action { get; } = action;
}

namespace VmPortal.Data.Entities;

/// <summary>
/// A VM definition and its persisted lifecycle state. Hardware is edited through <see cref="ApplyHardware"/>;
/// the state only moves through the transition methods (<see cref="BeginStart"/>, <see cref="MarkRunning"/>, ...),
/// which refuse illegal transitions with <see cref="VmStateException"/>. Pages and endpoints never set the state.
/// </summary>
public sealed class VirtualMachine
{
    public const int NameMaxLength = 63;
    public const int DescriptionMaxLength = 1000;
    public const int MinMemoryMiB = 16;
    public const int MaxMemoryMiB = 16384;
    /// <summary>IDE has four devices; the CD-ROM takes one (secondary master), disks take the other three.</summary>
    public const int MaxDisks = 3;

    private VirtualMachine() { }

    public VirtualMachine(Guid ownerId, string name, DateTimeOffset now)
    {
        Id = Guid.CreateVersion7();
        OwnerId = ownerId;
        Rename(name);
        CreatedAt = now;
        UpdatedAt = now;
    }

    public Guid Id { get; private set; }
    public string Name { get; private set; } = "";
    /// <summary>Lower-case name; unique per owner (index).</summary>
    public string NormalizedName { get; private set; } = "";
    public string Description { get; set; } = "";
    public Guid OwnerId { get; private set; }
    public PortalUser? Owner { get; private set; }
    public int MemoryMiB { get; set; } = 128;
    /// <summary>Image id (see ImageCatalog) inserted in the CD-ROM drive, or null for an empty drive.</summary>
    public string? CdromImageId { get; set; }
    public List<BootDevice> BootOrder { get; set; } = [BootDevice.Cdrom, BootDevice.Disk];
    public List<VmDisk> Disks { get; set; } = [];
    public VmNic Nic { get; set; } = new();
    /// <summary>First-boot settings handed to the guest as a NoCloud seed (null: no seed is attached).</summary>
    public VmCloudInit? CloudInit { get; set; }
    /// <summary>Start this VM when the portal host starts (used by the VM runtime).</summary>
    public bool StartAtBoot { get; set; }
    public VmState State { get; private set; } = VmState.Stopped;
    /// <summary>
    /// Why the VM last stopped or crashed ("powered off", "the guest powered off", "the portal was shut down", "the
    /// portal host stopped unexpectedly", a crash reason); null while it runs or before its first run.
    /// </summary>
    public string? StateReason { get; private set; }
    public const int StateReasonMaxLength = 500;
    public DateTimeOffset? StateChangedAt { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset UpdatedAt { get; private set; }
    /// <summary>Optimistic-concurrency token (PostgreSQL xmin); exposed as <c>version</c> in the API.</summary>
    public uint Version { get; private set; }

    public void Rename(string name)
    {
        Name = name;
        NormalizedName = name.ToLowerInvariant();
    }

    public void Touch(DateTimeOffset now) => UpdatedAt = now;

    // ---- lifecycle (the runtime of a later issue drives these) ----
    public bool IsStopped => State is VmState.Stopped or VmState.Crashed;

    public void BeginStart(DateTimeOffset now) => Move(now, "start", VmState.Starting, VmState.Stopped, VmState.Crashed, VmState.Suspended);
    /// <summary>The machine's state was saved to disk and the machine ended (suspend to disk).</summary>
    public void MarkSuspended(DateTimeOffset now) => Move(now, "suspend", VmState.Suspended, VmState.Stopped, VmState.Running, VmState.Paused, VmState.Stopping);
    public void MarkRunning(DateTimeOffset now) => Move(now, "run", VmState.Running, VmState.Starting, VmState.Paused);
    public void Pause(DateTimeOffset now) => Move(now, "pause", VmState.Paused, VmState.Running);
    public void Resume(DateTimeOffset now) => Move(now, "resume", VmState.Running, VmState.Paused);
    public void BeginStop(DateTimeOffset now) => Move(now, "stop", VmState.Stopping, VmState.Running, VmState.Paused, VmState.Starting);
    public void MarkStopped(DateTimeOffset now, string? reason = null)
    {
        Move(now, "power off", VmState.Stopped, VmState.Stopping, VmState.Running, VmState.Paused, VmState.Starting, VmState.Suspended);
        StateReason = Clip(reason);
    }

    public void MarkCrashed(DateTimeOffset now, string? reason = null)
    {
        Move(now, "crash", VmState.Crashed, VmState.Starting, VmState.Running, VmState.Paused, VmState.Stopping);
        StateReason = Clip(reason);
    }

    private static string? Clip(string? reason) =>
        string.IsNullOrWhiteSpace(reason) ? null : reason.Length <= StateReasonMaxLength ? reason : reason[..StateReasonMaxLength];

    /// <summary>Deleting is only allowed when the VM does not run.</summary>
    public void EnsureDeletable()
    {
        if (!IsStopped && State != VmState.Suspended) throw new VmStateException(Id, State, "be deleted");
    }

    private void Move(DateTimeOffset now, string action, VmState to, params VmState[] from)
    {
        if (Array.IndexOf(from, State) < 0) throw new VmStateException(Id, State, action);
        State = to;
        StateChangedAt = now;
        if (to is not (VmState.Stopped or VmState.Crashed)) StateReason = null;
    }
}

/// <summary>
/// A virtual hard disk attached to a VM: a qcow2 file in the disk store (<c>&lt;store&gt;/&lt;vm id&gt;/&lt;File&gt;</c>),
/// blank or an overlay whose backing file is the base image <see cref="BackingImageId"/>.
/// </summary>
public sealed class VmDisk
{
    public const long MinSizeMiB = 1;
    public const long MaxSizeMiB = 128L * 1024; // 128 GiB (LBA28 limit of the emulated IDE disk)

    /// <summary>Stable id of the disk (its file name in the VM's directory derives from it).</summary>
    public Guid Id { get; set; }
    /// <summary>File name of the disk's qcow2 in the VM's store directory; empty until the file was created.</summary>
    public string File { get; set; } = "";
    /// <summary>Virtual size in MiB (at least the backing image's size).</summary>
    public long SizeMiB { get; set; } = 1024;
    /// <summary>Optional image id the disk is a copy-on-write overlay of.</summary>
    public string? BackingImageId { get; set; }
    /// <summary>Only "ide" for now.</summary>
    public string Bus { get; set; } = "ide";
}

/// <summary>First-boot configuration (cloud-init NoCloud): hostname, one user, its password hash and SSH keys.</summary>
public sealed class VmCloudInit
{
    public const int HostnameMaxLength = 63;
    public const int UserMaxLength = 32;
    public const int MaxSshKeys = 16;
    public const int SshKeyMaxLength = 16 * 1024;

    public string Hostname { get; set; } = "";
    public string User { get; set; } = "";
    /// <summary>SHA-512 crypt hash (<c>$6$…</c>) of the user's password, or empty (key-only login). Never the password.</summary>
    public string PasswordHash { get; set; } = "";
    public List<string> SshAuthorizedKeys { get; set; } = [];
}

/// <summary>The VM's network card.</summary>
public sealed class VmNic
{
    public bool Enabled { get; set; } = true;
    /// <summary>"e1000" (Intel 82540EM), the model the emulator has.</summary>
    public string Model { get; set; } = "e1000";
    /// <summary>Locally administered unicast MAC, "52:54:00:xx:xx:xx".</summary>
    public string MacAddress { get; set; } = "";
    /// <summary>Name of the host network the NIC attaches to ("default" = user-mode NAT, loopback policy).</summary>
    public string Network { get; set; } = "default";
    /// <summary>Host TCP ports forwarded to the guest while the VM runs (NAT networks only).</summary>
    public List<VmPortForward> PortForwards { get; set; } = [];
}

/// <summary>A host TCP port forwarded to a guest port: <c>HostAddress:HostPort → guest:GuestPort</c>.</summary>
public sealed class VmPortForward
{
    /// <summary>Only "tcp".</summary>
    public string Protocol { get; set; } = "tcp";
    public string HostAddress { get; set; } = "127.0.0.1";
    public int HostPort { get; set; }
    public int GuestPort { get; set; }
}

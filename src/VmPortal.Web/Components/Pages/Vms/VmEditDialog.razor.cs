using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using VmPortal.Core;
using VmPortal.Core.Images;
using VmPortal.Core.Vms;
using VmPortal.Data.Entities;

namespace VmPortal.Web.Components.Pages.Vms;

/// <summary>Create/edit dialog for a VM. Validates with <see cref="VmValidator"/> as you type, and shows the server's answer.</summary>
public partial class VmEditDialog
{
    /// <summary>The memory range, and a warning when the VM is larger than this host can ever run.</summary>
    private string MemoryHelp
    {
        get
        {
            var runnable = Math.Min(Host.Options.CapacityMiB, VmPortal.Emulator.MachineConfig.MaxMemoryMiB);
            return _model.MemoryMiB is int m && m > runnable
                ? $"Larger than this host can run ({runnable} MiB): it can be saved but will not start here."
                : $"{VirtualMachine.MinMemoryMiB}–{VirtualMachine.MaxMemoryMiB} MiB (this host runs VMs of up to {runnable} MiB)";
        }
    }

    /// <summary>The VM to edit; null to create a new one.</summary>
    [Parameter] public VmDto? Existing { get; set; }

    [CascadingParameter] private IMudDialogInstance MudDialog { get; set; } = default!;

    private MudForm? _form;
    private VmForm _model = new();
    private IReadOnlyList<ImageInfo> _images = [];
    private IDictionary<string, string[]> _serverErrors = new Dictionary<string, string[]>();
    private string? _serverError;
    private bool _saving;

    protected override void OnInitialized()
    {
        _images = Images.List();
        _model = Existing is null ? VmForm.New() : VmForm.From(Existing);
    }

    /// <summary>The host's networks, plus the VM's own when it names one that is gone (so the choice shows).</summary>
    private IEnumerable<string> NetworkNames => Networks.Names.Contains(_model.Network ?? "") ? Networks.Names : Networks.Names.Append(_model.Network ?? "default");

    private string? FieldError(string key) => _serverErrors.TryGetValue(key, out var e) && e.Length > 0 ? string.Join(" ", e) : null;

    private static string BootLabel(BootDevice d) => d switch
    {
        BootDevice.Cdrom => "CD-ROM",
        BootDevice.Disk => "Hard disk",
        BootDevice.Floppy => "Floppy",
        BootDevice.Network => "Network (PXE)",
        _ => d.ToString(),
    };

    private void MoveBoot(int index, int delta)
    {
        var target = index + delta;
        if (target < 0 || target >= _model.Boot.Count) return;
        (_model.Boot[index], _model.Boot[target]) = (_model.Boot[target], _model.Boot[index]);
    }

    private void Cancel() => MudDialog.Cancel();

    private string? DiskSizeError(DiskForm disk, long? size)
    {
        if (VmValidator.DiskSizeError(size) is { } e) return e;
        if (disk.Id is not null && size < disk.OriginalSizeMiB) return $"A disk cannot shrink (it has {disk.OriginalSizeMiB} MiB).";
        var baseImage = _images.FirstOrDefault(i => i.Id == disk.BackingImageId);
        if (baseImage?.VirtualSizeBytes is long vs && size * 1024 * 1024 < vs)
            return $"At least the base image's size ({(vs + (1 << 20) - 1) >> 20} MiB).";
        return null;
    }

    /// <summary>A new disk on a base image starts at the base's size (it can be larger, not smaller).</summary>
    private void BackingChanged(DiskForm disk)
    {
        var baseImage = _images.FirstOrDefault(i => i.Id == disk.BackingImageId);
        if (baseImage?.VirtualSizeBytes is long vs)
        {
            var mib = (vs + (1 << 20) - 1) >> 20;
            if (disk.SizeMiB is null || disk.SizeMiB < mib) disk.SizeMiB = mib;
        }
    }

    private string? SshKeysError()
    {
        if (FieldError("cloudInit.sshAuthorizedKeys") is { } e) return e;
        var keys = VmForm.Lines(_model.SshKeys);
        for (var i = 0; i < keys.Count; i++)
            if (VmValidator.SshKeyError(keys[i]) is { } ke) return $"Line {i + 1}: {ke}";
        return null;
    }

    private async Task SaveAsync()
    {
        _serverError = null;
        _serverErrors = new Dictionary<string, string[]>();
        if (_form is not null)
        {
            await _form.ValidateAsync();
            if (!_form.IsValid)
            {
                _serverError = "Please correct the highlighted fields.";
                return;
            }
        }
        var caller = Caller.From((await AuthState.GetAuthenticationStateAsync()).User);
        if (caller is null) return;

        _saving = true;
        try
        {
            var spec = _model.ToSpec();
            var result = Existing is null
                ? await Vms.CreateAsync(caller, spec)
                : await Vms.UpdateAsync(caller, Existing.Id, spec, Existing.Version);
            switch (result.Status)
            {
                case OpStatus.Ok:
                    MudDialog.Close(DialogResult.Ok(result.Value));
                    return;
                case OpStatus.Invalid:
                    _serverErrors = result.Errors ?? new Dictionary<string, string[]>();
                    _serverError = string.Join(" ", _serverErrors.SelectMany(e => e.Value));
                    break;
                default:
                    _serverError = result.Message;
                    break;
            }
        }
        finally
        {
            _saving = false;
        }
    }

    /// <summary>Mutable form state behind the dialog.</summary>
    internal sealed class VmForm
    {
        public string? Name { get; set; }
        public string? Description { get; set; }
        public int? MemoryMiB { get; set; } = 128;
        public string? CdromImageId { get; set; } = "";
        public bool StartAtBoot { get; set; }
        public List<BootEntry> Boot { get; set; } = [];
        public List<DiskForm> Disks { get; set; } = [];
        public bool NicEnabled { get; set; } = true;
        public string NicModel { get; set; } = "e1000";
        public string? MacAddress { get; set; }
        public string? Network { get; set; } = "default";
        public List<PortForwardSpec> Forwards { get; set; } = [];
        public string? Hostname { get; set; }
        public string? User { get; set; }
        public string? Password { get; set; }
        public bool HasPassword { get; set; }
        public string? SshKeys { get; set; }

        public static List<string> Lines(string? text) =>
            (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

        public static VmForm New() => new()
        {
            Boot = [new(BootDevice.Cdrom, true), new(BootDevice.Disk, true), new(BootDevice.Network, false), new(BootDevice.Floppy, false)],
            Disks = [new DiskForm { SizeMiB = 1024 }],
        };

        public static VmForm From(VmDto vm)
        {
            var boot = vm.BootOrder.Select(d => new BootEntry(d, true)).ToList();
            boot.AddRange(Enum.GetValues<BootDevice>().Where(d => !vm.BootOrder.Contains(d)).Select(d => new BootEntry(d, false)));
            return new VmForm
            {
                Name = vm.Name,
                Description = vm.Description,
                MemoryMiB = vm.MemoryMiB,
                CdromImageId = vm.CdromImageId ?? "",
                StartAtBoot = vm.StartAtBoot,
                Boot = boot,
                Disks = vm.Disks.Select(d => new DiskForm { Id = d.Id, SizeMiB = d.SizeMiB, OriginalSizeMiB = d.SizeMiB, BackingImageId = d.BackingImageId ?? "" }).ToList(),
                Hostname = vm.CloudInit?.Hostname,
                User = vm.CloudInit?.User,
                HasPassword = vm.CloudInit?.HasPassword ?? false,
                SshKeys = vm.CloudInit is { } ci ? string.Join("\n", ci.SshAuthorizedKeys) : null,
                NicEnabled = vm.Nic.Enabled,
                NicModel = vm.Nic.Model,
                MacAddress = vm.Nic.MacAddress,
                Network = vm.Nic.Network,
                Forwards = vm.Nic.PortForwards.Select(f => new PortForwardSpec { Protocol = f.Protocol, HostAddress = f.HostAddress, HostPort = f.HostPort, GuestPort = f.GuestPort }).ToList(),
            };
        }

        public VmSpec ToSpec() => new()
        {
            Name = Name?.Trim(),
            Description = Description ?? "",
            MemoryMiB = MemoryMiB,
            CdromImageId = string.IsNullOrEmpty(CdromImageId) ? null : CdromImageId,
            StartAtBoot = StartAtBoot,
            BootOrder = Boot.Where(b => b.Enabled).Select(b => b.Device).ToList(),
            Disks = Disks.Select(d => new DiskSpec { Id = d.Id, SizeMiB = d.SizeMiB, BackingImageId = string.IsNullOrEmpty(d.BackingImageId) ? null : d.BackingImageId, Bus = "ide" }).ToList(),
            CloudInit = new CloudInitSpec
            {
                Hostname = Hostname?.Trim() ?? "",
                User = User?.Trim() ?? "",
                // empty keeps a stored password when editing (the hash is never shown); a new VM without one has none
                Password = string.IsNullOrEmpty(Password) ? (HasPassword ? null : "") : Password,
                SshAuthorizedKeys = Lines(SshKeys),
            },
            Nic = new NicSpec { Enabled = NicEnabled, Model = NicModel, MacAddress = MacAddress?.Trim(), Network = string.IsNullOrWhiteSpace(Network) ? "default" : Network.Trim(), PortForwards = Forwards },
        };
    }

    internal sealed class BootEntry(BootDevice device, bool enabled)
    {
        public BootDevice Device { get; } = device;
        public bool Enabled { get; set; } = enabled;
    }

    internal sealed class DiskForm
    {
        /// <summary>The disk's id when it exists (its base is then fixed and it can only grow).</summary>
        public Guid? Id { get; set; }
        public long OriginalSizeMiB { get; set; }
        public long? SizeMiB { get; set; } = 1024;
        public string? BackingImageId { get; set; } = "";
    }
}

using VmPortal.Data.Entities;

namespace VmPortal.Core.Tests;

public sealed class VirtualMachineLifecycleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static VirtualMachine NewVm() => new(Guid.NewGuid(), "Test-VM", T0);

    [Fact]
    public void New_vm_is_stopped_with_normalized_name()
    {
        var vm = NewVm();
        Assert.Equal(VmState.Stopped, vm.State);
        Assert.Equal("test-vm", vm.NormalizedName);
        Assert.True(vm.IsStopped);
    }

    [Fact]
    public void Normal_life_start_run_pause_resume_stop()
    {
        var vm = NewVm();
        vm.BeginStart(T0);
        Assert.Equal(VmState.Starting, vm.State);
        vm.MarkRunning(T0.AddSeconds(1));
        Assert.Equal(VmState.Running, vm.State);
        vm.Pause(T0.AddSeconds(2));
        Assert.Equal(VmState.Paused, vm.State);
        vm.Resume(T0.AddSeconds(3));
        Assert.Equal(VmState.Running, vm.State);
        vm.BeginStop(T0.AddSeconds(4));
        Assert.Equal(VmState.Stopping, vm.State);
        vm.MarkStopped(T0.AddSeconds(5));
        Assert.Equal(VmState.Stopped, vm.State);
        Assert.Equal(T0.AddSeconds(5), vm.StateChangedAt);
    }

    [Fact]
    public void Illegal_transitions_throw_and_keep_the_state()
    {
        var vm = NewVm();
        var e = Assert.Throws<VmStateException>(() => vm.Pause(T0));
        Assert.Equal(VmState.Stopped, e.State);
        Assert.Equal(VmState.Stopped, vm.State);
        Assert.Throws<VmStateException>(() => vm.Resume(T0));
        Assert.Throws<VmStateException>(() => vm.MarkRunning(T0));
        Assert.Throws<VmStateException>(() => vm.BeginStop(T0));
        vm.BeginStart(T0);
        Assert.Throws<VmStateException>(() => vm.BeginStart(T0));
        Assert.Throws<VmStateException>(() => vm.EnsureDeletable());
    }

    [Fact]
    public void Crashed_vm_can_be_started_again_and_deleted()
    {
        var vm = NewVm();
        vm.BeginStart(T0);
        vm.MarkRunning(T0);
        vm.MarkCrashed(T0);
        Assert.Equal(VmState.Crashed, vm.State);
        vm.EnsureDeletable();
        vm.BeginStart(T0);
        Assert.Equal(VmState.Starting, vm.State);
    }
}

using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Emulator;

namespace VmPortal.Core.Tests.Runtime;

/// <summary>
/// <see cref="HostedVm.ShutdownAsync"/> with real machines: a 4 KiB firmware that enables ACPI and powers off when
/// the power button's status bit appears (Stopped, with the reason), and one that only halts (times out, Running again).
/// </summary>
public class VmShutdownTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("vmshutdown-tests").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Bios(string name, byte[] code)
    {
        var image = new byte[4096];
        code.CopyTo(image, 0);
        new byte[] { 0xEA, 0x00, 0xF0, 0x00, 0xF0 }.CopyTo(image, 0xFF0);
        var path = Path.Combine(dir, name + ".bin");
        File.WriteAllBytes(path, image);
        return path;
    }

    /// <summary>PMBA 0xB000 + PM I/O enable, ACPI enable, PWRBTN_EN; poll PWRBTN_STS; then S5.</summary>
    private string PowerButtonBios() => Bios("acpi", new byte[]
    {
        0xFA,
        0x66, 0xB8, 0x40, 0x0B, 0x00, 0x80, 0xBA, 0xF8, 0x0C, 0x66, 0xEF,
        0x66, 0xB8, 0x01, 0xB0, 0x00, 0x00, 0xBA, 0xFC, 0x0C, 0x66, 0xEF,
        0x66, 0xB8, 0x80, 0x0B, 0x00, 0x80, 0xBA, 0xF8, 0x0C, 0x66, 0xEF,
        0xB0, 0x01, 0xBA, 0xFC, 0x0C, 0xEE,
        0xB0, 0xF1, 0xE6, 0xB2,
        0xB8, 0x00, 0x01, 0xBA, 0x02, 0xB0, 0xEF,
        0xBA, 0x00, 0xB0, 0xED, 0xA9, 0x00, 0x01, 0x74, 0xFA,
        0xB8, 0x00, 0x20, 0xBA, 0x04, 0xB0, 0xEF,
        0xF4, 0xEB, 0xFD,
    });

    private string HaltBios() => Bios("halt", new byte[] { 0xFA, 0xF4, 0xEB, 0xFD });

    private static MachineConfig Config(string name, string bios) => new() { Name = name, MemoryMiB = 16, BiosPath = bios, SerialEnabled = false };

    [Fact]
    public async Task A_guest_that_handles_the_power_button_stops_and_the_reason_is_recorded()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 64 });
        var vm = host.Get(Guid.NewGuid());
        var changes = new List<(VmRunState, string?)>();
        host.StateChanged += (_, s, r) => { lock (changes) changes.Add((s, r)); };
        await vm.StartAsync(Config("acpi", PowerButtonBios()));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!vm.GuestHandlesPowerButton && DateTime.UtcNow < deadline) await Task.Delay(10);

        var outcome = await vm.ShutdownAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(ShutdownOutcome.Stopped, outcome);
        Assert.Equal(VmRunState.Stopped, vm.State);
        Assert.Equal(HostedVm.GuestPoweredOffReason, vm.Lifecycle.StopReason);
        Assert.Equal(0, host.ReservedMiB);
        lock (changes)
        {
            Assert.Contains((VmRunState.Stopping, (string?)null), changes);
            Assert.Equal((VmRunState.Stopped, HostedVm.GuestPoweredOffReason), changes[^1]);
        }
    }

    [Fact]
    public async Task A_guest_that_ignores_the_button_times_out_and_runs_on_until_powered_off()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 64 });
        var vm = host.Get(Guid.NewGuid());
        string? lastReason = null;
        host.StateChanged += (_, _, r) => lastReason = r;
        await vm.StartAsync(Config("halt", HaltBios()));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => vm.ShutdownAsync(TimeSpan.Zero));
        var outcome = await vm.ShutdownAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(ShutdownOutcome.TimedOut, outcome);
        Assert.Equal(VmRunState.Running, vm.State);
        Assert.False(vm.GuestHandlesPowerButton);
        Assert.Equal("the guest did not shut down within 1 s; Power off pulls the plug", lastReason);

        // Power off may run while a shutdown waits; the shutdown then reports Stopped.
        var waiting = vm.ShutdownAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(100);
        Assert.Equal(VmRunState.Stopping, vm.State);
        await vm.PowerOffAsync();
        Assert.Equal(ShutdownOutcome.Stopped, await waiting);
        Assert.Equal(VmRunState.Stopped, vm.State);
        Assert.Equal(HostedVm.PortalPoweredOffReason, vm.Lifecycle.StopReason);
        await Assert.ThrowsAsync<VmLifecycleException>(() => vm.ShutdownAsync(TimeSpan.FromSeconds(1)));
    }
}

using VmPortal.Core.Console;
using VmPortal.Core.Runtime;
using VmPortal.Emulator;

namespace VmPortal.Core.Tests.Runtime;

/// <summary>VmHost with real machines running a 4 KiB firmware image that halts (no disk or guest image needed).</summary>
public class VmHostTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("vmhost-tests").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>CLI; HLT; JMP back — reached from the reset vector F000:FFF0 → F000:F000.</summary>
    private string HaltBios()
    {
        var image = new byte[4096];
        new byte[] { 0xFA, 0xF4, 0xEB, 0xFD }.CopyTo(image, 0);
        new byte[] { 0xEA, 0x00, 0xF0, 0x00, 0xF0 }.CopyTo(image, 0xFF0);
        var path = Path.Combine(dir, "halt.bin");
        File.WriteAllBytes(path, image);
        return path;
    }

    private MachineConfig Config(string name, int memoryMiB = 16, string? bios = null) => new()
    {
        Name = name,
        MemoryMiB = memoryMiB,
        BiosPath = bios ?? HaltBios(),
        SerialEnabled = false,
    };

    [Fact]
    public async Task Start_pause_resume_reset_power_off_follow_the_machine()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 64 });
        var vm = host.Get(Guid.NewGuid());
        using var viewer = vm.Console.AddViewer();
        var changes = new List<VmRunState>();
        host.StateChanged += (_, s, _) => { lock (changes) changes.Add(s); };

        await vm.StartAsync(Config("a"));
        Assert.Equal(VmRunState.Running, vm.State);
        Assert.NotNull(vm.Machine);
        Assert.Equal(MachineState.Running, vm.Machine!.State);
        Assert.Equal(16, host.ReservedMiB);

        await vm.PauseAsync();
        Assert.Equal((VmRunState.Paused, MachineState.Paused), (vm.State, vm.Machine!.State));
        await vm.ResumeAsync();
        await vm.ResetAsync();
        Assert.Equal((VmRunState.Running, MachineState.Running), (vm.State, vm.Machine!.State));

        vm.Key("KeyA", true);
        vm.Key("KeyA", false);
        vm.SpecialKeys("ctrl-alt-del");
        vm.TypeText("ls\n");

        await vm.PowerOffAsync();
        Assert.Equal(VmRunState.Stopped, vm.State);
        Assert.Null(vm.Machine);
        Assert.Equal(0, host.ReservedMiB);
        lock (changes)
            Assert.Equal([VmRunState.Starting, VmRunState.Running, VmRunState.Paused, VmRunState.Running, VmRunState.Running, VmRunState.Stopped], changes);

        // The viewer saw the same states through the console stream.
        var states = new List<VmRunState>();
        while (viewer.Reader.TryRead(out var m)) if (m.Payload is ConsolePowerState p) states.Add(p.State);
        Assert.Equal([VmRunState.Stopped, VmRunState.Starting, VmRunState.Running, VmRunState.Paused, VmRunState.Running, VmRunState.Running, VmRunState.Stopped], states);
    }

    [Fact]
    public async Task Typed_text_is_bounded_per_vm_and_pending_text_can_be_dropped()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 64 });
        var vm = host.Get(Guid.NewGuid());
        await vm.StartAsync(Config("typing"));
        // The firmware halts and never reads the keyboard: what is typed stays queued (a few keystrokes reach the
        // i8042's own buffer).
        var full = new string('a', HostedVm.MaxTypedPending - 2) + "\r\n"; // 64 Ki characters; CR LF is one keystroke
        int pending = vm.TypeText(full);
        Assert.InRange(pending, HostedVm.MaxTypedPending - 5, HostedVm.MaxTypedPending - 1);

        var e = Assert.Throws<TypeQueueFullException>(() => vm.TypeText("more text"));
        Assert.Equal(HostedVm.MaxTypedPending, e.Capacity);
        // (the machine thread may still be handing the first keystrokes to the i8042 meanwhile)
        Assert.InRange(vm.TypedPending, e.Pending - 5, e.Pending);
        Assert.Contains("typing queue is full", e.Message);
        vm.Key("ControlLeft", true); // single keys are not held back by a full text queue
        vm.Key("ControlLeft", false);

        int dropped = vm.CancelTyping();
        Assert.InRange(dropped, HostedVm.MaxTypedPending - 5, HostedVm.MaxTypedPending - 1);
        Assert.Equal(0, vm.TypedPending);
        Assert.Equal(3, vm.TypeText("abc")); // room again (the halted guest reads nothing, so all three wait)
        await vm.PowerOffAsync();
        Assert.Equal(0, vm.TypedPending);
        Assert.Equal(0, vm.CancelTyping());
    }

    [Fact]
    public async Task A_start_that_would_overcommit_memory_is_refused_with_a_clear_message()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 40 });
        var a = host.Get(Guid.NewGuid());
        var b = host.Get(Guid.NewGuid());
        await a.StartAsync(Config("a", 32));
        var ex = await Assert.ThrowsAsync<VmHostException>(() => b.StartAsync(Config("b", 16)));
        Assert.Equal("Cannot start 'b': it needs 16 MiB of memory but only 8 MiB of this host's 40 MiB are free.", ex.Message);
        Assert.Equal(VmRunState.Stopped, b.State);
        Assert.Equal(32, host.ReservedMiB);

        await a.PowerOffAsync();
        await b.StartAsync(Config("b", 16));
        Assert.Equal(VmRunState.Running, b.State);
        Assert.Equal(16, host.ReservedMiB);
    }

    [Fact]
    public async Task Illegal_commands_are_refused_and_change_nothing()
    {
        using var host = new VmHost();
        var vm = host.Get(Guid.NewGuid());
        await Assert.ThrowsAsync<VmLifecycleException>(() => vm.PauseAsync());
        await Assert.ThrowsAsync<VmLifecycleException>(() => vm.PowerOffAsync());
        Assert.Throws<VmLifecycleException>(() => vm.Key("KeyA", true));
        await vm.StartAsync(Config("a"));
        await Assert.ThrowsAsync<VmLifecycleException>(() => vm.StartAsync(Config("a")));
        await Assert.ThrowsAsync<VmLifecycleException>(() => vm.ResumeAsync());
        Assert.Throws<ConsoleInputException>(() => vm.Key("NoSuchKey", true));
        Assert.Throws<ConsoleInputException>(() => vm.TypeText("é"));
        Assert.Equal(VmRunState.Running, vm.State);
        Assert.Equal(16, host.ReservedMiB);
        await vm.PauseAsync();
        Assert.Throws<VmLifecycleException>(() => vm.Key("KeyA", true)); // no input while paused
    }

    [Fact]
    public async Task A_machine_that_cannot_start_ends_crashed_releases_its_memory_and_can_be_started_again()
    {
        using var host = new VmHost(new VmHostOptions { CapacityMiB = 64 });
        var vm = host.Get(Guid.NewGuid());
        var corrupt = Path.Combine(dir, "corrupt.bin");
        File.WriteAllBytes(corrupt, new byte[1000]);
        await vm.StartAsync(Config("bad", bios: corrupt));
        Assert.Equal(VmRunState.Crashed, vm.State);
        Assert.False(string.IsNullOrWhiteSpace(vm.Lifecycle.CrashReason));
        Assert.Equal(0, host.ReservedMiB);

        await vm.StartAsync(Config("good"));
        Assert.Equal(VmRunState.Running, vm.State);
        Assert.Null(vm.Lifecycle.CrashReason);
    }

    [Fact]
    public async Task Invalid_configuration_is_refused_before_anything_is_reserved()
    {
        using var host = new VmHost();
        var vm = host.Get(Guid.NewGuid());
        var ex = await Assert.ThrowsAsync<VmHostException>(() => vm.StartAsync(Config("x").WithMissingDisk()));
        Assert.Contains("not found", ex.Message);
        Assert.Equal((VmRunState.Stopped, 0L), (vm.State, host.ReservedMiB));
    }

    [Fact]
    public async Task Serial_output_reaches_the_log_the_console_and_pattern_waits()
    {
        // mov dx, 0x3F8; mov al, 'R'; out dx, al; mov al, 'D'; out dx, al; mov al, 'Y'; out dx, al; cli; hlt; jmp $-1
        var image = new byte[4096];
        new byte[] { 0xBA, 0xF8, 0x03, 0xB0, 0x52, 0xEE, 0xB0, 0x44, 0xEE, 0xB0, 0x59, 0xEE, 0xFA, 0xF4, 0xEB, 0xFD }.CopyTo(image, 0);
        new byte[] { 0xEA, 0x00, 0xF0, 0x00, 0xF0 }.CopyTo(image, 0xFF0);
        var bios = Path.Combine(dir, "serial.bin");
        File.WriteAllBytes(bios, image);

        using var host = new VmHost();
        var vm = host.Get(Guid.NewGuid());
        using var viewer = vm.Console.AddViewer();
        await vm.StartAsync(new MachineConfig { Name = "serial", MemoryMiB = 16, BiosPath = bios, SerialEnabled = true });
        var r = await vm.WaitForAsync("R.Y", WaitSource.Serial, TimeSpan.FromSeconds(20));
        Assert.True(r.Matched, $"serial so far: '{r.LastText}'");
        Assert.Equal("RDY", r.Match);
        // The console stream carries the same bytes; it is fed by the console's own tick, so it may trail the log.
        var serial = new List<byte>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
            while (serial.Count < 3)
            {
                var m = await viewer.Reader.ReadAsync(cts.Token);
                if (m.Payload is ConsoleSerialData d) serial.AddRange(d.Bytes);
            }
        Assert.Equal("RDY", System.Text.Encoding.ASCII.GetString(serial.ToArray()));

        var none = await vm.WaitForAsync("never", WaitSource.Serial, TimeSpan.FromMilliseconds(200));
        Assert.False(none.Matched);
        Assert.Equal("RDY", none.LastText);
    }

    [Fact]
    public async Task The_vga_picture_reaches_viewers_and_screenshots()
    {
        using var host = new VmHost();
        var vm = host.Get(Guid.NewGuid());
        using var viewer = vm.Console.AddViewer();
        await vm.StartAsync(Config("screen"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        ConsoleFrame? frame = null;
        await foreach (var m in viewer.Reader.ReadAllAsync(cts.Token))
            if (m.Payload is ConsoleFrame f) { frame = f; break; }
        Assert.NotNull(frame);
        Assert.True(frame!.Full);
        var screen = vm.Machine!.Screen!;
        Assert.Equal((screen.Width, screen.Height), (frame.Width, frame.Height));
        Assert.True(frame.Width > 0 && frame.Height > 0);

        var png = vm.Screenshot()!;
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
        Assert.Equal(screen.Width, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(screen.Height, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        await vm.PowerOffAsync();
        Assert.Null(vm.Screenshot());
    }

    [Fact]
    public async Task Disposing_the_host_powers_every_machine_off()
    {
        var host = new VmHost();
        var vm = host.Get(Guid.NewGuid());
        await vm.StartAsync(Config("a"));
        var machine = vm.Machine!;
        host.Dispose();
        await machine.Stopped.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(VmRunState.Stopped, vm.State);
        Assert.Equal(0, host.ReservedMiB);
    }
}

internal static class ConfigExtensions
{
    public static MachineConfig WithMissingDisk(this MachineConfig c) => new()
    {
        Name = c.Name, MemoryMiB = c.MemoryMiB, BiosPath = c.BiosPath, SerialEnabled = false,
        HardDisks = [new DiskConfig("/nonexistent/disk.img")],
    };
}

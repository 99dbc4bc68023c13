using System.Diagnostics;
using VmPortal.Emulator.Snapshots;

namespace VmPortal.Emulator;

// Machine state: save a running machine to a stream, load it into a fresh (or running) machine
// (docs/emulator.md "Machine state").
public sealed partial class Machine
{
    /// <summary>The component the machine itself writes first: what PC it is, its instruction count and guest time.</summary>
    public const string MachineComponent = "machine";

    /// <summary>The machine's own part of a state file: the configuration it must match, counters and guest time.</summary>
    public sealed record MachineInfo(int Version, int MemoryMiB, int HardDisks, bool CdRom, bool Floppy, bool Serial, bool Kernel,
        long Instructions, long ClockNs, DateTimeOffset HostTimeAtStart)
    {
        public const int CurrentVersion = 1;
    }

    /// <summary>What a save took: how long the guest stood still (the capture), the whole save, and the file size.</summary>
    public sealed record StateSaveResult(TimeSpan Paused, TimeSpan Total, long Bytes);

    private volatile bool _startRestored;
    private long _pauseAt = -1;
    private TaskCompletionSource? _pauseAtDone;

    /// <summary>
    /// Saves the whole machine (CPU, FPU, RAM, every device, timers, guest time) to <paramref name="stream"/>.
    /// Works on a running or paused machine: the machine thread captures the state between two CPU slices (an
    /// instruction boundary) while the guest stands still, then the guest continues while the file is compressed
    /// and written. Disk and CD images are not part of the file: a load reattaches the images named by the config.
    /// </summary>
    public async Task<StateSaveResult> SaveState(Stream stream)
    {
        var total = Stopwatch.StartNew();
        var (snapshot, paused) = await CaptureState().ConfigureAwait(false);
        long bytes = StateFile.Write(stream, snapshot);
        return new StateSaveResult(paused, total.Elapsed, bytes);
    }

    /// <summary>Captures the machine's state in memory (see <see cref="SaveState"/>) and how long the guest stood still.</summary>
    public Task<(MachineSnapshot Snapshot, TimeSpan Paused)> CaptureState() => OnMachineThread(() =>
    {
        var sw = Stopwatch.StartNew();
        bool running = _state == MachineState.Running;
        if (running) Clock.Pause();
        try { return (Capture(_board!), sw.Elapsed); }
        finally { if (running) Clock.Start(); }
    });

    /// <summary>SHA-256 of the whole machine state (RAM, registers, devices, timers, guest time): equal states, equal hashes.</summary>
    public async Task<string> StateHash() => (await CaptureState().ConfigureAwait(false)).Snapshot.Hash();

    /// <summary>
    /// Loads a state saved by <see cref="SaveState"/> from a machine with the same configuration (memory, drives,
    /// serial port, kernel). The file is read and checked completely first (magic, format version, length,
    /// checksum, every component's name and version); a bad file throws <see cref="InvalidDataException"/> naming
    /// the problem and the machine is untouched. A machine that was never started (or is powered off) is started
    /// in <see cref="MachineState.Paused"/> with the loaded state: call <see cref="Resume"/>. A running or paused
    /// machine is switched to the loaded state between two slices and keeps running (or paused);
    /// <see cref="ResetOccurred"/> is raised with "machine state loaded" (re-read <see cref="Screen"/>).
    /// </summary>
    public async Task LoadState(Stream stream)
    {
        var snapshot = StateFile.Read(stream);
        await LoadState(snapshot).ConfigureAwait(false);
    }

    /// <summary>Loads an in-memory state (see <see cref="LoadState(Stream)"/>).</summary>
    public Task LoadState(MachineSnapshot snapshot)
    {
        Task? onThread = null;
        lock (_lifecycle)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_thread == null)
            {
                var (board, info) = Restore(snapshot, replaces: null);
                _board = board;
                Interlocked.Exchange(ref _instructions, info.Instructions);
                return StartThread(restored: true);
            }
            onThread = OnMachineThread(() =>
            {
                // the running board's RAM and VRAM are reused: no 150 MiB to allocate and fault in
                var (board, info) = Restore(snapshot, replaces: _board);
                FlushOutput();
                _board = board;
                Interlocked.Exchange(ref _instructions, info.Instructions);
                if (_state == MachineState.Running) Clock.Start();
                SafeRaise(() => ResetOccurred?.Invoke("machine state loaded"));
                return true;
            });
        }
        return onThread;
    }

    /// <summary>
    /// Runs until <see cref="InstructionCount"/> reaches <paramref name="instructionCount"/> (a REP string
    /// instruction may overshoot by its remaining iterations, up to 4,095), then pauses. For reproducible runs with
    /// <see cref="MachineConfig.DeterministicClock"/>; completes at once if the count is already reached.
    /// </summary>
    public Task PauseAtInstruction(long instructionCount) => OnMachineThread(() =>
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pauseAtDone?.TrySetCanceled();
        _pauseAt = instructionCount;
        _pauseAtDone = done;
        if (_state == MachineState.Paused) { Clock.Start(); SetState(MachineState.Running); }
        return done.Task;
    }).Unwrap();

    private void PauseAtReached()
    {
        _pauseAt = -1;
        if (_state == MachineState.Running) { Clock.Pause(); SetState(MachineState.Paused); }
        var done = _pauseAtDone;
        _pauseAtDone = null;
        done?.TrySetResult();
    }

    /// <summary>Runs <paramref name="work"/> on the machine thread between slices (running or paused).</summary>
    private Task<T> OnMachineThread<T>(Func<T> work)
    {
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lifecycle)
        {
            if (_thread == null || _board == null && !_startRestored)
                throw new InvalidOperationException($"machine '{Config.Name}' is not running (state {_state})" +
                    (_state == MachineState.Crashed ? $": {CrashReason}" : ""));
            _commands.Enqueue(new Command(CommandKind.Invoke, done, () =>
            {
                try
                {
                    if (_board == null) throw new InvalidOperationException($"machine '{Config.Name}' is not running (state {_state})");
                    result.TrySetResult(work());
                }
                catch (Exception e) { result.TrySetException(e); }
                done.TrySetResult();
            }));
        }
        _wake.Set();
        // The machine may stop before it gets to the command: Finish completes the command's own task, not ours.
        _ = done.Task.ContinueWith(_ => result.TrySetException(new InvalidOperationException($"machine '{Config.Name}' stopped")),
            TaskContinuationOptions.ExecuteSynchronously);
        return result.Task;
    }

    private MachineSnapshot Capture(PcBoard board)
    {
        var components = new List<ComponentState>();
        var info = new MachineInfo(MachineInfo.CurrentVersion, Config.MemoryMiB, Config.HardDisks.Count, Config.CdRomImage != null,
            Config.FloppyImage != null, Config.SerialEnabled, Config.KernelPath != null, InstructionCount, Clock.NowNs, Clock.HostTimeAtStart);
        var mw = new StateWriter(MachineComponent);
        mw.Record(info);
        components.Add(new ComponentState(MachineComponent, MachineInfo.CurrentVersion, mw.Json!, mw.Areas));
        foreach (var (name, component) in board.StateComponents.Components)
        {
            var w = new StateWriter(name);
            component.SaveState(w);
            if (w.Json == null) throw new InvalidOperationException($"state component '{name}' saved no fields");
            components.Add(new ComponentState(name, component.StateVersion, w.Json, w.Areas));
        }
        // boot files the guest cannot change: pages equal to their contents become references (MediaPages)
        string?[] media = [Config.KernelPath, Config.InitrdPath, Config.CdRomImage, Config.SecondCdRomImage];
        return new MachineSnapshot(components) { ReferenceMedia = media.OfType<string>().ToList() };
    }

    /// <summary>
    /// Builds a fresh board and loads <paramref name="snapshot"/> into it; on any error the machine (and its clock) is
    /// as before. With <paramref name="replaces"/> (the running board, machine thread) the new board takes over its RAM
    /// and VRAM arrays; they are written only once every component has loaded, so a refused state leaves them as they
    /// were (the ROM images copied in again are restored too), and on success the old board must not run again.
    /// </summary>
    private (PcBoard Board, MachineInfo Info) Restore(MachineSnapshot snapshot, PcBoard? replaces)
    {
        var mc = snapshot.Find(MachineComponent) ?? throw StateFile.Bad($"the '{MachineComponent}' component is missing");
        if (mc.Version != MachineInfo.CurrentVersion)
            throw StateFile.Bad($"component '{MachineComponent}' has state version {mc.Version}; this build reads version {MachineInfo.CurrentVersion}");
        var info = new StateReader(mc).Record<MachineInfo>();
        var mismatch = new List<string>();
        void Check<T>(string what, T saved, T mine) { if (!EqualityComparer<T>.Default.Equals(saved, mine)) mismatch.Add($"{what}: saved {saved}, this machine {mine}"); }
        Check("memory MiB", info.MemoryMiB, Config.MemoryMiB);
        Check("hard disks", info.HardDisks, Config.HardDisks.Count);
        Check("CD-ROM image", info.CdRom, Config.CdRomImage != null);
        Check("floppy image", info.Floppy, Config.FloppyImage != null);
        Check("serial port", info.Serial, Config.SerialEnabled);
        Check("direct kernel boot", info.Kernel, Config.KernelPath != null);
        if (mismatch.Count > 0) throw StateFile.Bad("it was saved from a differently configured machine (" + string.Join("; ", mismatch) + ")");

        _media ??= MachineMedia.Open(Config);
        // the ROM images live after the RAM in the same array: a new board copies them in again (the same files)
        var backing = replaces?.Memory.Backing;
        int ramSize = (int)(replaces?.Memory.RamSize ?? 0);
        byte[]? romTail = backing?[ramSize..];
        try { return BuildAndLoad(snapshot, info, replaces); }
        catch
        {
            romTail?.CopyTo(backing!, ramSize);
            throw;
        }
    }

    private (PcBoard Board, MachineInfo Info) BuildAndLoad(MachineSnapshot snapshot, MachineInfo info, PcBoard? replaces)
    {
        var board = BuildBoard(attachClock: false, replaces);
        var registry = board.StateComponents.Components;
        var fileNames = snapshot.Components.Select(c => c.Name).Where(n => n != MachineComponent).ToList();
        var unknown = fileNames.Except(registry.Select(c => c.Name)).ToList();
        var missing = registry.Select(c => c.Name).Except(fileNames).ToList();
        if (unknown.Count > 0) throw StateFile.Bad($"unknown component(s) {string.Join(", ", unknown.Select(n => $"'{n}'"))}: this build has no such device");
        if (missing.Count > 0) throw StateFile.Bad($"component(s) {string.Join(", ", missing.Select(n => $"'{n}'"))} missing: this machine has them");
        foreach (var (name, component) in registry)
        {
            int v = snapshot.Find(name)!.Version;
            if (!component.AcceptsVersion(v))
                throw StateFile.Bad($"component '{name}' has state version {v}; this build reads version {component.StateVersion}");
        }

        var clockBackup = Clock.Backup();
        try
        {
            bool clockSet = false;
            foreach (var (name, component) in registry)
            {
                if (!clockSet && !PcBoard.EarlyComponents.Contains(name))
                {
                    var cpu = board.Cpu;
                    Clock.RestoreState(info.ClockNs, info.HostTimeAtStart, () => cpu.InstructionCount);
                    clockSet = true;
                }
                try { component.LoadState(new StateReader(snapshot.Find(name)!)); }
                catch (Exception e) when (e is not InvalidDataException)
                {
                    throw StateFile.Bad($"component '{name}' could not be loaded: {e.GetType().Name}: {e.Message}");
                }
                catch (InvalidDataException e) when (!e.Message.StartsWith("machine state file:", StringComparison.Ordinal))
                {
                    throw StateFile.Bad($"component '{name}': {e.Message}");
                }
            }
            board.CompleteStateLoad(); // RAM and VRAM last: nothing can refuse the state any more
            return (board, info);
        }
        catch
        {
            Clock.RestoreBackup(clockBackup);
            throw;
        }
    }
}

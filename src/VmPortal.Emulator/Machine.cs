using System.Collections.Concurrent;
using VmPortal.Emulator.Devices.Vga;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Timing;

namespace VmPortal.Emulator;

/// <summary>
/// A whole PC built from a <see cref="MachineConfig"/>, running on its own thread.
/// <para>
/// Control (<see cref="Start"/>, <see cref="Pause"/>, <see cref="Resume"/>, <see cref="Reset"/>, <see cref="PowerOff"/>)
/// and input (<see cref="SendSerial"/>) may be called from any thread: they are queued and applied by the machine
/// thread between CPU slices; the returned task completes once applied. Events are raised on the machine thread:
/// handlers must be quick and must not block on this machine.
/// </para>
/// <para>
/// The loop runs the CPU in slices of <see cref="MachineConfig.SliceInstructions"/>, fires due device timers
/// (<see cref="TimerScheduler.RunDue"/>) and applies queued commands between slices. A halted CPU sleeps until the
/// next timer deadline or an external event, so an idle guest costs almost no host CPU. Guest time follows the host
/// clock (frozen while paused), paced by retired instructions within a slice so the guest never sees host hiccups
/// as jumps (<see cref="MachineClock"/>), or advances a fixed amount per instruction with
/// <see cref="MachineConfig.DeterministicClock"/>.
/// A host exception ends this machine only (<see cref="Crashed"/>); the process and other machines go on.
/// </para>
/// </summary>
public sealed partial class Machine : IDisposable
{
    /// <summary>
    /// Longest single sleep of an idle machine. Every input and command sets <c>_wake</c> (reset before each slice,
    /// so none is lost) and timers give their own deadline, so this is only a safety net. It must exceed the
    /// guest's timer periods (18.2 Hz for the BIOS): a shorter cap would add a second wake-up to every tick.
    /// </summary>
    private const int MaxIdleSleepMs = 1000;
    /// <summary>Key events go to the keyboard only while fewer bytes than this wait there, so none overflow its queue.</summary>
    private const int KeyboardQueueLow = 4;

    private enum CommandKind { Pause, Resume, Reset, PowerOff, Invoke }
    private readonly record struct Command(CommandKind Kind, TaskCompletionSource Done, Action? Work = null);

    private readonly ConcurrentQueue<Command> _commands = new();
    private readonly ConcurrentQueue<byte> _serialIn = new();
    private readonly ConcurrentQueue<KeyEvent> _keysIn = new();
    // Typed text: one entry per keystroke (the events from the first press until no key is held), so dropping the
    // queue never leaves a key down. Single keys (_keysIn) go ahead of it between keystrokes.
    private readonly ConcurrentQueue<KeyEvent[]> _typedIn = new();
    private int _typedPending;
    private KeyEvent[]? _typedCurrent; // machine thread only: the keystroke being fed
    private int _typedIndex;
    private readonly ConcurrentQueue<MouseEvent> _mouseIn = new();
    private long _mouseEvents;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0); // an idle guest must not spin
    private readonly object _lifecycle = new();
    private readonly List<byte> _debugBuffer = new();
    private readonly List<byte> _serialBuffer = new();
    private Thread? _thread;
    private TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile MachineState _state = MachineState.Created;
    private volatile bool _stopRequested;
    private PcBoard? _board;
    private Screen? _lastScreen; // the final picture stays readable after power-off
    private MachineMedia? _media;
    private long _instructions;
    private int _powerButtonPresses;
    private Exception? _cpuHostError;
    private bool _disposed;
    private volatile int _nicLinkRequest = -1;
    private int _nicLinkSet = -1; // the link last set by SetNicLink (-1: as configured); survives a reset

    public Machine(MachineConfig config)
    {
        var problems = config.Validate();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(config));
        Config = config;
        Clock = new MachineClock(config.TimeProvider, manual: config.DeterministicClock,
            nsPerInstruction: config.DeterministicClock ? config.NsPerInstruction : 0);
    }

    public MachineConfig Config { get; }

    /// <summary>Guest time; stands still while paused.</summary>
    public MachineClock Clock { get; }

    public MachineState State => _state;

    /// <summary>Why the machine crashed (null unless <see cref="State"/> is <see cref="MachineState.Crashed"/>).</summary>
    public string? CrashReason { get; private set; }

    /// <summary>The host exception behind a crash, if it was one (for logs).</summary>
    public Exception? CrashException { get; private set; }

    /// <summary>The CPU's JIT tier counters (null before the first start).</summary>
    public VmPortal.Emulator.Cpu.JitStatistics? JitStatistics => _board?.Cpu.GetJitStatistics();

    /// <summary>Instructions executed since the last start.</summary>
    public long InstructionCount => Interlocked.Read(ref _instructions);

    /// <summary>
    /// True when the last stop was the guest switching the machine off (ACPI S5, e.g. Linux <c>poweroff</c>), false
    /// after <see cref="PowerOff"/> (the plug pulled) or a crash. Read it in <see cref="PoweredOff"/> handlers.
    /// </summary>
    public bool PoweredOffByGuest { get; private set; }

    /// <summary>
    /// Whether the running guest listens for the ACPI power button (it enabled ACPI mode and the power-button
    /// event). Read without stopping the machine; false when it is not running.
    /// </summary>
    public bool GuestHandlesPowerButton => _board?.Pm.PowerButtonEnabled ?? false;

    /// <summary>Resets since the last start (guest-requested, triple faults and <see cref="Reset"/>).</summary>
    public int ResetCount { get; private set; }

    /// <summary>Completes when the machine thread has ended (powered off or crashed).</summary>
    public Task Stopped => _stopped.Task;

    public event Action<MachineState>? StateChanged;
    /// <summary>The machine stopped: <see cref="PowerOff"/> or the guest powered off (<see cref="PoweredOffByGuest"/>).</summary>
    public event Action? PoweredOff;
    /// <summary>The board was reset; the argument says why (e.g. "triple fault: …", "reset through port 0x92").</summary>
    public event Action<string>? ResetOccurred;
    /// <summary>The machine stopped on an error; the argument is <see cref="CrashReason"/>.</summary>
    public event Action<string>? Crashed;
    /// <summary>Bytes the guest sent out of COM1, in order, batched per CPU slice.</summary>
    public event Action<byte[]>? SerialOutput;
    /// <summary>Bytes written to the debug console ports (<see cref="MachineConfig.DebugConsolePorts"/>), batched per slice.</summary>
    public event Action<byte[]>? DebugOutput;

    /// <summary>
    /// Powers the machine on (from <see cref="MachineState.Created"/>, <see cref="MachineState.PoweredOff"/> or
    /// <see cref="MachineState.Crashed"/>). The task completes when the firmware starts running, or when building
    /// the board failed (then <see cref="State"/> is <see cref="MachineState.Crashed"/> with the reason).
    /// </summary>
    public Task Start() => StartThread(restored: false);

    /// <summary>
    /// Powers the machine on with a pause point already set (see <see cref="PauseAtInstruction"/>): the guest stops at
    /// exactly <paramref name="instructionCount"/> however late the caller gets to run, where a <see cref="Start"/>
    /// followed by <see cref="PauseAtInstruction"/> can find the guest already past it on a busy host. The task
    /// completes when the machine has paused there, and fails if it stopped (crashed, switched off) before.
    /// </summary>
    public Task StartAndPauseAt(long instructionCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(instructionCount);
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return StartThread(restored: false, (instructionCount, paused)).ContinueWith(_ => paused.Task, TaskScheduler.Default).Unwrap();
    }

    private Task StartThread(bool restored, (long At, TaskCompletionSource Done)? pause = null)
    {
        lock (_lifecycle)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_thread != null)
                return pause == null ? _started.Task : throw new InvalidOperationException($"machine '{Config.Name}' is already running: use PauseAtInstruction");
            _startRestored = restored;
            _started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _stopRequested = false;
            CrashReason = null;
            CrashException = null;
            ResetCount = 0;
            PoweredOffByGuest = false;
            Interlocked.Exchange(ref _powerButtonPresses, 0);
            if (!restored) Interlocked.Exchange(ref _instructions, 0);
            while (_commands.TryDequeue(out var stale)) stale.Done.TrySetResult();
            if (pause is var (at, done))
            {
                _pauseAtDone?.TrySetCanceled();
                (_pauseAt, _pauseAtDone) = (at, done); // set before the thread starts, so its first slice honours it
            }
            _thread = new Thread(ThreadMain) { IsBackground = true, Name = $"vm:{Config.Name}" };
            _thread.Start();
            return _started.Task;
        }
    }

    /// <summary>Freezes the guest and its clock.</summary>
    public Task Pause() => Enqueue(CommandKind.Pause);
    /// <summary>Continues a paused guest.</summary>
    public Task Resume() => Enqueue(CommandKind.Resume);
    /// <summary>Presses the reset button: every device back to power-on state, firmware starts again.</summary>
    public Task Reset() => Enqueue(CommandKind.Reset);
    /// <summary>Pulls the plug. The task completes when the machine thread has ended.</summary>
    public Task PowerOff()
    {
        lock (_lifecycle)
        {
            if (_thread == null) return Task.CompletedTask;
            _stopRequested = true;
            Enqueue(CommandKind.PowerOff);
            return _stopped.Task;
        }
    }

    /// <summary>Queues bytes for COM1's receiver (the guest reads them as they fit its FIFO).</summary>
    public void SendSerial(ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) _serialIn.Enqueue(b);
        _wake.Set();
    }

    /// <summary>
    /// Plugs the network card's cable in or pulls it (the guest sees a link change: STATUS.LU and a link status change
    /// interrupt). Any thread; applied by the machine thread within a slice, kept across a guest reset. A card whose
    /// config has no port stays down.
    /// </summary>
    public void SetNicLink(bool up)
    {
        _nicLinkRequest = up ? 1 : 0;
        _wake.Set();
    }

    /// <summary>Whether the network card's link is up now (false without a card or a port).</summary>
    public bool NicLinkUp
    {
        get
        {
            int pending = _nicLinkRequest; // not applied yet
            return pending >= 0 ? pending == 1 && Config.Nic?.Port != null : _board?.Nic?.LinkUp ?? false;
        }
    }

    /// <summary>Presses or releases a key (scancode set 2 make code; 0xE0xx for extended keys).</summary>
    public void SendKey(ushort set2Code, bool down)
    {
        _keysIn.Enqueue(new KeyEvent(set2Code, down));
        _wake.Set();
    }

    /// <summary>
    /// Relative mouse input for the PS/2 mouse: <paramref name="dx"/> right, <paramref name="dy"/> down, the buttons
    /// held (bit 0 left, 1 right, 2 middle, 3 back, 4 forward) and wheel steps (positive = down, towards the user).
    /// Any thread; the machine thread hands it to the mouse (motion of events with the same buttons is merged while
    /// the guest has not read the previous packets). The guest sees it once its driver enabled reporting.
    /// </summary>
    public void SendMouse(int dx, int dy, int buttons, int wheel = 0)
    {
        _mouseIn.Enqueue(new MouseEvent(Math.Clamp(dx, -4096, 4096), Math.Clamp(dy, -4096, 4096), buttons & 0x1F, Math.Clamp(wheel, -64, 64)));
        Interlocked.Increment(ref _mouseEvents);
        _wake.Set();
    }

    /// <summary>Mouse events received through <see cref="SendMouse"/> since this machine was created.</summary>
    public long MouseEvents => Interlocked.Read(ref _mouseEvents);

    /// Presses the ACPI power button (PIIX4 PM PWRBTN_STS → SCI). An ACPI guest then shuts itself down (or does
    /// whatever its power-button policy says); a guest without ACPI ignores it. Any thread; applied between slices.
    /// </summary>
    public void PressPowerButton()
    {
        Interlocked.Increment(ref _powerButtonPresses);
        _wake.Set();
    }

    /// <summary>Types <paramref name="text"/> on a US keyboard ('\n' = Enter); keys go out as the guest reads them.</summary>
    public void TypeText(string text) => EnqueueTyped(KeyboardText.ToKeyEvents(text));

    /// <summary>
    /// Queues key events as typed text: split into keystrokes (from a press until no key is held), fed as the guest
    /// reads them, behind the keystroke in progress but after any <see cref="SendKey"/> input. Returns the number of
    /// keystrokes queued. Any thread.
    /// </summary>
    public int EnqueueTyped(IReadOnlyList<KeyEvent> events)
    {
        var held = new HashSet<ushort>();
        int start = 0, queued = 0;
        for (int i = 0; i < events.Count; i++)
        {
            if (events[i].Down) held.Add(events[i].Set2Code);
            else held.Remove(events[i].Set2Code);
            if (held.Count == 0 || i == events.Count - 1)
            {
                var stroke = new KeyEvent[i + 1 - start];
                for (int j = 0; j < stroke.Length; j++) stroke[j] = events[start + j];
                _typedIn.Enqueue(stroke);
                Interlocked.Increment(ref _typedPending);
                queued++;
                start = i + 1;
            }
        }
        _wake.Set();
        return queued;
    }

    /// <summary>Keystrokes of typed text not yet handed to the keyboard.</summary>
    public int TypedKeystrokesPending => Math.Max(0, Volatile.Read(ref _typedPending));

    /// <summary>Drops the typed text not yet handed to the keyboard (the keystroke in progress finishes); returns how many keystrokes were dropped.</summary>
    public int ClearTypedText()
    {
        int dropped = 0;
        while (_typedIn.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _typedPending);
            dropped++;
        }
        return dropped;
    }

    /// <summary>
    /// The VGA text screen, rows separated by '\n' with trailing blanks removed, or null when the display is in a
    /// graphics mode (or there is no VGA). Safe to call from any thread (a snapshot may be torn by a concurrent update).
    /// </summary>
    public string? ReadScreenText()
    {
        var screen = Screen;
        if (screen == null || screen.Columns == 0) return null;
        return screen.GetText();
    }

    /// <summary>Row of the text-mode cursor, or -1.</summary>
    public int CursorRow => Screen is { Columns: > 0 } s ? s.Cursor.Row : -1;

    /// <summary>
    /// The VGA's screen (pixels, dirty tiles, text cells; see docs/emulator.md). A reset builds new hardware, so
    /// read this property again after <see cref="ResetOccurred"/> (or each frame). Null before the first start.
    /// </summary>
    public Screen? Screen => _board?.Vga.Screen ?? _lastScreen;

    /// <summary>
    /// Refreshes the screen and copies the picture (0x00RRGGBB pixels), or null when nothing is displayed.
    /// Use from one consumer thread only (it calls <see cref="Screen.Refresh"/>).
    /// </summary>
    public ScreenCapture? CaptureScreen()
    {
        var screen = Screen;
        if (screen == null) return null;
        screen.Refresh();
        if (screen.Width <= 0 || screen.Height <= 0) return null;
        var rgba = new uint[screen.Width * screen.Height];
        screen.CopyPixels(rgba);
        for (int i = 0; i < rgba.Length; i++)
        {
            uint p = rgba[i]; // R | G<<8 | B<<16 | A<<24
            rgba[i] = (p & 0xFF) << 16 | (p & 0xFF00) | (p >> 16 & 0xFF);
        }
        return new ScreenCapture(screen.Width, screen.Height, rgba);
    }

    /// <summary>
    /// A one-line snapshot of the CPU (mode, CS:EIP, registers, CR0/CR3, halted) for diagnostics and failure
    /// messages. Read without stopping the machine, so the fields may come from different instants.
    /// </summary>
    public string DescribeCpu()
    {
        var cpu = _board?.Cpu;
        if (cpu == null) return "no CPU (machine not running)";
        var cs = VmPortal.Emulator.Cpu.SegmentRegister.CS;
        string mode = cpu.V86Mode ? "v86" : cpu.ProtectedMode ? "prot" : "real";
        return $"{mode} {cpu.GetSelector(cs):X4}:{cpu.Eip:X8} (lin {cpu.GetSegmentBase(cs) + cpu.Eip:X8}) " +
               $"EAX={cpu.Eax:X8} EBX={cpu.Ebx:X8} ECX={cpu.Ecx:X8} EDX={cpu.Edx:X8} ESI={cpu.Esi:X8} EDI={cpu.Edi:X8} " +
               $"EBP={cpu.Ebp:X8} ESP={cpu.Esp:X8} EFL={cpu.Eflags:X8} CR0={cpu.Cr0:X8} CR3={cpu.Cr3:X8}" +
               (cpu.Halted ? " HALTED" : "");
    }

    /// <summary>Copies guest physical memory (diagnostics; racy while the guest runs). Unmapped bytes read 0xFF.</summary>
    public void ReadPhysical(uint address, Span<byte> into)
    {
        var memory = _board?.Memory;
        if (memory == null) { into.Fill(0xFF); return; }
        memory.ReadBytes(address, into);
    }

    public void Dispose()
    {
        Thread? t;
        lock (_lifecycle)
        {
            if (_disposed) return;
            _disposed = true;
            t = _thread;
            _stopRequested = true;
        }
        _wake.Set();
        t?.Join(TimeSpan.FromSeconds(5));
        _media?.Dispose();
    }

    private Task Enqueue(CommandKind kind)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_thread == null) { done.TrySetResult(); return done.Task; }
        _commands.Enqueue(new Command(kind, done));
        _wake.Set();
        return done.Task;
    }

    // ---- machine thread ----

    private void ThreadMain()
    {
        string? crash = null;
        Exception? crashException = null;
        try
        {
            if (_startRestored && _board != null)
            {
                SetState(MachineState.Paused); // a loaded state waits for Resume
            }
            else
            {
                _media ??= MachineMedia.Open(Config);
                _board = BuildBoard();
                Clock.Start();
                SetState(MachineState.Running);
            }
            _cpuHostError = null;
            _started.TrySetResult();
            Loop();
        }
        catch (GuestStoppedException e)
        {
            crash = e.Message;
            crashException = e.InnerException;
        }
        catch (InvalidDataException e)
        {
            crash = e.Message; // unusable firmware or kernel image: the message names the file and the problem
        }
        catch (FileNotFoundException e)
        {
            crash = e.Message;
        }
        catch (Exception e)
        {
            crash = $"host error in machine '{Config.Name}': {e.GetType().Name}: {e.Message}";
            crashException = e;
        }
        Finish(crash, crashException);
    }

    private void Finish(string? crash, Exception? crashException)
    {
        Clock.Pause();
        _lastScreen = _board?.Vga.Screen;
        _board = null;
        lock (_lifecycle)
        {
            _thread = null;
            while (_commands.TryDequeue(out var c)) c.Done.TrySetResult();
        }
        FlushOutput();
        if (crash != null)
        {
            CrashReason = crash;
            CrashException = crashException;
            SetState(MachineState.Crashed);
            SafeRaise(() => Crashed?.Invoke(crash));
        }
        else
        {
            SetState(MachineState.PoweredOff);
            SafeRaise(() => PoweredOff?.Invoke());
        }
        // A pause point the machine never reached: whoever waits for it learns why (the state is final by now).
        var pauseWaiter = _pauseAtDone;
        long pauseAt = _pauseAt;
        _pauseAtDone = null;
        _pauseAt = -1;
        pauseWaiter?.TrySetException(new InvalidOperationException(
            $"machine '{Config.Name}' stopped before instruction {pauseAt} (state {_state})" + (crash != null ? $": {crash}" : "")));
        _started.TrySetResult();
        _stopped.TrySetResult();
    }

    private PcBoard BuildBoard(bool attachClock = true, PcBoard? replaces = null)
    {
        string biosPath = Config.BiosPath ?? FirmwareFiles.FindBios()
            ?? throw new FileNotFoundException(FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName));
        byte[] bios = File.ReadAllBytes(biosPath);
        string? problem = SystemBios.Validate(bios);
        if (problem != null) throw new InvalidDataException($"{biosPath}: {problem}");
        LinuxKernelImage? kernel = Config.KernelPath != null ? LinuxKernelImage.Load(Config.KernelPath) : null;
        byte[]? initrd = Config.InitrdPath != null ? File.ReadAllBytes(Config.InitrdPath) : null;
        string? vgaBiosPath = Config.VgaBiosPath ?? FirmwareFiles.FindVgaBios();
        byte[]? vgaBios = vgaBiosPath != null ? File.ReadAllBytes(vgaBiosPath) : null;
        var board = new PcBoard(Config, Clock, _media!, bios, vgaBios, kernel, initrd, replaces);
        if (_nicLinkSet >= 0 && board.Nic != null) board.Nic.LinkUp = _nicLinkSet == 1 && Config.Nic?.Port != null; // a reset keeps the cable as it was
        board.DebugByte += b => _debugBuffer.Add(b);
        board.SerialByte += b => _serialBuffer.Add(b);
        board.WakeRequested += _wake.Set;
        board.Cpu.HostError = e => _cpuHostError = e;
        if (Config.Jit is bool jit) board.Cpu.JitEnabled = jit;
        if (Config.JitThreshold is int threshold) board.Cpu.JitThreshold = threshold;
        board.Cpu.Reset();
        var cpu = board.Cpu;
        if (attachClock) Clock.AttachInstructionCounter(() => cpu.InstructionCount);
        return board;
    }

    /// <summary>Guest instructions run after a bus-master transfer before its end is reported (≈ 20 µs at 100 MIPS).</summary>
    private const int DmaLatencyInstructions = 2_000;

    private void Loop()
    {
        int slice = Config.SliceInstructions;
        bool deterministic = Config.DeterministicClock;
        while (true)
        {
            _wake.Reset();
            if (!ApplyCommands() || _stopRequested) return;
            if (_state == MachineState.Paused)
            {
                _wake.Wait(MaxIdleSleepMs);
                continue;
            }

            var board = _board!;
            int runFor = slice;
            if (_pauseAt >= 0)
            {
                long left = _pauseAt - InstructionCount;
                if (left <= 0) { PauseAtReached(); continue; }
                runFor = (int)Math.Min(slice, left);
            }
            Clock.BeginSlice();
            board.Scheduler.RunDue(Clock.NowNs);
            FeedInput(board);
            int executed = board.Cpu.Run(runFor);
            if (board.Ide.DmaFinishPending)
            {
                // A disk answers some time after the command starts, never inside the guest's write of the start
                // bit: the guest runs on a little (or until it halts to wait) before the end and its interrupt.
                int extra = _pauseAt >= 0 ? (int)Math.Min(DmaLatencyInstructions, Math.Max(0, _pauseAt - InstructionCount - executed)) : DmaLatencyInstructions;
                if (!board.Cpu.Halted && extra > 0) executed += board.Cpu.Run(extra);
                board.Ide.FinishDma();
            }
            Interlocked.Add(ref _instructions, executed);

            if (board.Cpu.ShutdownPending)
            {
                if (_cpuHostError is { } hostError)
                    throw new GuestStoppedException(board.Cpu.ShutdownReason ?? hostError.Message, hostError);
                string reason = board.Cpu.ShutdownReason ?? "triple fault";
                if (Config.OnTripleFault == TripleFaultAction.PowerOff)
                    throw new GuestStoppedException(reason);
                ResetBoard(reason);
                continue;
            }
            if (board.ResetReason != null)
            {
                ResetBoard(board.ResetReason);
                continue;
            }
            if (board.PowerOffReason != null)
            {
                PoweredOffByGuest = true;
                return;
            }
            FlushOutput();

            if (executed == 0 && board.Cpu.Halted) Idle(board, deterministic);
        }
    }

    /// <summary>The CPU waits for an interrupt: sleep (or, in deterministic mode, jump) to the next timer deadline.</summary>
    private void Idle(PcBoard board, bool deterministic)
    {
        long next = board.Scheduler.NextDeadlineNs;
        long now = Clock.NowNs;
        if (deterministic)
        {
            if (next != long.MaxValue) { Clock.Advance(Math.Max(0, next - now)); return; }
            _wake.Wait(MaxIdleSleepMs); // nothing armed: only input can wake the guest
            return;
        }
        Clock.EnterIdle();
        now = Clock.NowNs;
        if (next <= now) return;
        long ms = next == long.MaxValue ? MaxIdleSleepMs : Math.Min(MaxIdleSleepMs, (next - now + 999_999) / 1_000_000);
        _wake.Wait((int)ms);
    }

    /// <summary>Hands queued serial bytes to COM1 and key events to the keyboard (a few at a time, as it drains).</summary>
    private void FeedInput(PcBoard board)
    {
        if (!_serialIn.IsEmpty)
        {
            Span<byte> chunk = stackalloc byte[64];
            int n = 0;
            while (n < chunk.Length && _serialIn.TryDequeue(out byte b)) chunk[n++] = b;
            board.Com1?.Receive(chunk[..n]);
            if (!_serialIn.IsEmpty) _wake.Set();
        }
        var keyboard = board.Keyboard.Keyboard;
        while (keyboard.QueuedBytes < KeyboardQueueLow)
        {
            if (_typedCurrent is { } stroke)
            {
                var e = stroke[_typedIndex++];
                if (_typedIndex == stroke.Length) _typedCurrent = null;
                keyboard.KeySet2(e.Set2Code, e.Down);
            }
            else if (_keysIn.TryDequeue(out var key)) keyboard.KeySet2(key.Set2Code, key.Down);
            else if (_typedIn.TryDequeue(out var next))
            {
                Interlocked.Decrement(ref _typedPending);
                _typedCurrent = next;
                _typedIndex = 0;
            }
            else break;
        }
        if (!_mouseIn.IsEmpty) FeedMouse(board.Keyboard.Mouse);
        int link = _nicLinkRequest;
        if (link >= 0 && board.Nic != null)
        {
            _nicLinkRequest = -1;
            _nicLinkSet = link;
            board.Nic.LinkUp = link == 1 && Config.Nic?.Port != null;
        }
        board.PumpInput();
        if (Volatile.Read(ref _powerButtonPresses) > 0 && Interlocked.Exchange(ref _powerButtonPresses, 0) > 0)
            board.Pm.PressPowerButton();
    }

    /// <summary>
    /// Hands queued mouse events to the PS/2 mouse. While the guest still has packets to read, events that keep the
    /// same buttons are merged into one (motion and wheel summed), so a slow guest sees fewer, larger moves and no
    /// click is lost; a change of buttons is always its own packet.
    /// </summary>
    private void FeedMouse(Devices.Ps2.Ps2Mouse mouse)
    {
        while (_mouseIn.TryDequeue(out var e))
        {
            if (mouse.QueuedBytes > 0)
                while (_mouseIn.TryPeek(out var next) && next.Buttons == e.Buttons && _mouseIn.TryDequeue(out next))
                    e = e with { Dx = Math.Clamp(e.Dx + next.Dx, -4096, 4096), Dy = Math.Clamp(e.Dy + next.Dy, -4096, 4096), Wheel = Math.Clamp(e.Wheel + next.Wheel, -64, 64) };
            mouse.MouseMove(e.Dx, e.Dy, e.Buttons, e.Wheel);
        }
    }

    private readonly record struct MouseEvent(int Dx, int Dy, int Buttons, int Wheel);

    /// <summary>Applies queued commands; false when the machine must stop.</summary>
    private bool ApplyCommands()
    {
        while (_commands.TryDequeue(out var c))
        {
            switch (c.Kind)
            {
                case CommandKind.Pause:
                    if (_state == MachineState.Running) { Clock.Pause(); SetState(MachineState.Paused); }
                    break;
                case CommandKind.Resume:
                    if (_state == MachineState.Paused) { Clock.Start(); SetState(MachineState.Running); }
                    break;
                case CommandKind.Reset:
                    ResetBoard("reset requested");
                    break;
                case CommandKind.PowerOff:
                    c.Done.TrySetResult();
                    return false;
                case CommandKind.Invoke:
                    c.Work!(); // completes its own task
                    continue;
            }
            c.Done.TrySetResult();
        }
        return true;
    }

    private void ResetBoard(string reason)
    {
        FlushOutput();
        _board = BuildBoard();
        ResetCount++;
        SafeRaise(() => ResetOccurred?.Invoke(reason));
    }

    private void FlushOutput()
    {
        if (_debugBuffer.Count > 0)
        {
            var chunk = _debugBuffer.ToArray();
            _debugBuffer.Clear();
            DebugOutput?.Invoke(chunk);
        }
        if (_serialBuffer.Count > 0)
        {
            var chunk = _serialBuffer.ToArray();
            _serialBuffer.Clear();
            SerialOutput?.Invoke(chunk);
        }
    }

    private void SetState(MachineState state)
    {
        if (_state == state) return;
        _state = state;
        SafeRaise(() => StateChanged?.Invoke(state));
    }

    /// <summary>Raises an event while the machine is already stopping: a throwing handler must not hide the outcome.</summary>
    private static void SafeRaise(Action raise)
    {
        try { raise(); }
        catch (Exception) { /* a subscriber's bug; the machine's own state is already final */ }
    }

    /// <summary>The guest ended the machine (triple fault with <see cref="TripleFaultAction.PowerOff"/>).</summary>
    private sealed class GuestStoppedException(string reason, Exception? inner = null) : Exception(reason, inner);
}

/// <summary>A screenshot: <paramref name="Pixels"/> holds Width × Height 0x00RRGGBB values, row-major.</summary>
public readonly record struct ScreenCapture(int Width, int Height, uint[] Pixels);

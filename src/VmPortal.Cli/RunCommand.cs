using System.Diagnostics;
using System.Text;
using VmPortal.Emulator;
using VmPortal.Network;

namespace VmPortal.Cli;

/// <summary>
/// <c>vmportal run</c>: builds one machine from <see cref="RunOptions"/>, runs it on its own thread and watches
/// the serial output and the text screen for <c>--until</c>, until it matches (0), the guest powers off (0), the
/// timeout passes (2) or the machine crashes (3).
/// </summary>
public sealed class RunCommand
{
    public const int ExitMatched = 0, ExitHostError = 1, ExitTimeout = 2, ExitCrashed = 3;
    private const int MaxSerialKept = 256 * 1024;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly RunOptions _options;
    private readonly TextWriter _out;
    private readonly TextWriter _err;
    private readonly Stream? _stdout;
    private readonly object _serialLock = new();
    private readonly StringBuilder _serial = new();
    private int _serialSearchFrom;  // --until only looks at serial text from here (after --type)
    private readonly SemaphoreSlim _changed = new(0);

    public RunCommand(RunOptions options, TextWriter stdout, TextWriter stderr, Stream? rawStdout = null)
    {
        _options = options;
        _out = stdout;
        _err = stderr;
        _stdout = rawStdout;
    }

    public async Task<int> ExecuteAsync(Stream? stdin, CancellationToken cancel)
    {
        using var network = _options.Nic != null ? new UserNetwork(new VirtualSwitch("cli")) : null;
        MachineConfig config = _options.ToMachineConfig(network?.Switch.Connect("nic"));
        if (network != null)
        {
            try
            {
                foreach (var f in _options.Nic!.HostForwards)
                {
                    network.AddPortForward(f with { GuestMac = _options.Nic.Mac });
                    _err.WriteLine($"vmportal run: forwarding {f.HostAddress}:{f.HostPort} to the guest's port {f.GuestPort}");
                }
            }
            catch (PortForwardException e)
            {
                _err.WriteLine($"vmportal run: {e.Message}");
                return ExitHostError;
            }
        }
        var problems = config.Validate();
        if (problems.Count > 0)
        {
            foreach (var p in problems) _err.WriteLine($"vmportal run: {p}");
            return ExitHostError;
        }

        using var machine = new Machine(config);
        machine.SerialOutput += bytes =>
        {
            if (_options.SerialStdio) WriteRaw(bytes);
            lock (_serialLock)
            {
                _serial.Append(Encoding.Latin1.GetString(bytes));
                if (_serial.Length > MaxSerialKept)
                {
                    int drop = _serial.Length - MaxSerialKept / 2;
                    _serial.Remove(0, drop);
                    _serialSearchFrom = Math.Max(0, _serialSearchFrom - drop);
                }
            }
            _changed.Release();
        };
        if (_options.DebugconStdio) machine.DebugOutput += WriteRaw;
        machine.Crashed += _ => _changed.Release();
        machine.PoweredOff += () => _changed.Release();

        var sw = Stopwatch.StartNew();
        bool typed = _options.TypeText == null;
        int screenMatchesAtTyping = 0;
        if (_options.LoadState != null)
        {
            try
            {
                await using (var file = File.OpenRead(_options.LoadState)) await machine.LoadState(file);
            }
            catch (InvalidDataException e)
            {
                _err.WriteLine($"vmportal run: {_options.LoadState}: {e.Message}");
                return ExitHostError;
            }
        }
        if (!typed && _options.TypeAtStart)
        {
            // before the first instruction runs: the keys wait in the keyboard queue until the guest reads them
            string? loaded = machine.ReadScreenText();
            screenMatchesAtTyping = loaded != null && _options.Until != null ? _options.Until.Matches(loaded).Count : 0;
            machine.TypeText(_options.TypeText!);
            typed = true;
        }
        if (_options.LoadState != null) await machine.Resume();
        else await machine.Start();
        if (_options.SerialStdio && stdin != null) _ = Task.Run(() => PumpStdin(stdin, machine, cancel), CancellationToken.None);

        var prompt = new PromptSettle();
        int exit;
        while (true)
        {
            if (machine.State == MachineState.Crashed)
            {
                _err.WriteLine($"vmportal run: guest crashed: {machine.CrashReason}");
                exit = ExitCrashed;
                break;
            }
            if (machine.State == MachineState.PoweredOff)
            {
                if (machine.PoweredOffByGuest) _err.WriteLine("vmportal run: the guest powered off");
                exit = ExitMatched;
                break;
            }
            string? screen = machine.ReadScreenText();
            if (!typed && (MatchesSerial(_options.TypeAfter, fromTyping: false) || (screen != null && _options.TypeAfter.IsMatch(TypeAfterTarget(machine, screen))))
                && prompt.Settled(SerialLength(), screen, machine.InstructionCount, sw.Elapsed))
            {
                machine.TypeText(_options.TypeText!);
                typed = true;
                lock (_serialLock) _serialSearchFrom = _serial.Length;
                screenMatchesAtTyping = screen != null && _options.Until != null ? _options.Until.Matches(screen).Count : 0;
            }
            if (typed && _options.Until != null)
            {
                if (MatchesSerial(_options.Until, fromTyping: true) || (screen != null && _options.Until.Matches(screen).Count > screenMatchesAtTyping))
                {
                    exit = ExitMatched;
                    break;
                }
            }
            if (_options.TimeoutSeconds is double t && sw.Elapsed.TotalSeconds >= t)
            {
                _err.WriteLine($"vmportal run: timeout after {t:0.###} s" + (_options.Until != null ? $" waiting for /{_options.Until}/" : ""));
                _err.WriteLine($"vmportal run: {machine.InstructionCount:N0} instructions, guest time {machine.Clock.NowNs / 1e9:F1} s " +
                               $"(host {machine.Clock.HostNs / 1e9:F1} s), CPU at {machine.DescribeCpu()}");
                exit = ExitTimeout;
                break;
            }
            if (cancel.IsCancellationRequested)
            {
                exit = ExitTimeout;
                break;
            }
            try { await _changed.WaitAsync(PollInterval, cancel); }
            catch (OperationCanceledException) { }
        }

        if (machine.State is MachineState.Running or MachineState.Paused) await machine.Pause();
        if (_options.SaveState != null && !await SaveState(machine) && exit == ExitMatched) exit = ExitHostError;
        Finish(machine);
        await machine.PowerOff();
        _out.Flush();
        return exit;
    }

    /// <summary>Writes the state to a temporary file beside the target, then renames it: an interrupted save leaves the old file.</summary>
    private async Task<bool> SaveState(Machine machine)
    {
        string path = _options.SaveState!;
        if (machine.State is not (MachineState.Running or MachineState.Paused))
        {
            _err.WriteLine($"vmportal run: no state saved to {path}: the machine is {machine.State.ToString().ToLowerInvariant()}");
            return false;
        }
        string temp = path + ".tmp";
        try
        {
            Machine.StateSaveResult result;
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                result = await machine.SaveState(file);
            File.Move(temp, path, overwrite: true);
            _err.WriteLine($"vmportal run: state saved to {path} ({result.Bytes / 1048576.0:F1} MiB, guest paused {result.Paused.TotalMilliseconds:F0} ms, " +
                           $"{result.Total.TotalMilliseconds:F0} ms in all)");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _err.WriteLine($"vmportal run: could not save the state to {path}: {e.Message}");
            try { File.Delete(temp); } catch (IOException) { }
            return false;
        }
    }

    private void Finish(Machine machine)
    {
        if (_options.Jit != null && machine.JitStatistics is { Enabled: true } jit) _err.WriteLine($"vmportal run: JIT: {jit}");
        if (_options.ScreenText)
        {
            string? text = machine.ReadScreenText();
            _out.WriteLine();
            _out.WriteLine(text ?? "(no text screen: the display is in a graphics mode or there is no VGA)");
        }
        if (_options.Screenshot != null)
        {
            var shot = machine.CaptureScreen();
            if (shot == null) _err.WriteLine("vmportal run: no screen to capture");
            else PngWriter.Write(_options.Screenshot, shot.Value.Width, shot.Value.Height, shot.Value.Pixels);
        }
    }

    private bool MatchesSerial(System.Text.RegularExpressions.Regex regex, bool fromTyping)
    {
        lock (_serialLock)
        {
            int from = fromTyping ? _serialSearchFrom : 0;
            if (from >= _serial.Length) return false;
            return regex.IsMatch(_serial.ToString(from, _serial.Length - from));
        }
    }

    private int SerialLength()
    {
        lock (_serialLock) return _serial.Length;
    }

    /// <summary>
    /// A prompt is where output stops and waits: the pattern must keep matching while nothing more is printed for
    /// <see cref="Quiet"/> and the guest runs on. Without this, a poll that catches a boot message half printed (up to a
    /// "#" or "&gt;") typed into a machine whose keyboard driver was not there yet, and the text was lost.
    /// </summary>
    private sealed class PromptSettle
    {
        private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(750);
        private static readonly TimeSpan QuietIdle = TimeSpan.FromSeconds(5);
        private int _serialLength = -1;
        private string? _screen;
        private long _instructions;
        private TimeSpan _since;

        public bool Settled(int serialLength, string? screen, long instructions, TimeSpan now)
        {
            if (serialLength != _serialLength || screen != _screen)
            {
                (_serialLength, _screen, _instructions, _since) = (serialLength, screen, instructions, now);
                return false;
            }
            var quiet = now - _since;
            // the guest must have run meanwhile (a host too busy to schedule it proves nothing), unless it sits idle
            return quiet >= QuietIdle || (quiet >= Quiet && instructions != _instructions);
        }
    }

    /// <summary>The default prompt pattern looks at the cursor line only (a prompt is where the cursor waits); a
    /// pattern given with --type-after may appear anywhere on the screen.</summary>
    private string TypeAfterTarget(Machine machine, string screen) =>
        ReferenceEquals(_options.TypeAfter, RunOptions.DefaultPrompt) ? CursorLine(machine, screen) : screen;

    private static string CursorLine(Machine machine, string screen)
    {
        var lines = screen.Split('\n');
        int row = machine.CursorRow;
        string line = row >= 0 && row < lines.Length ? lines[row] : lines[^1];
        return line.TrimEnd();
    }

    private void WriteRaw(byte[] bytes)
    {
        if (_stdout != null) { _stdout.Write(bytes); _stdout.Flush(); }
        else { _out.Write(Encoding.Latin1.GetString(bytes)); _out.Flush(); }
    }

    private static void PumpStdin(Stream stdin, Machine machine, CancellationToken cancel)
    {
        var buffer = new byte[256];
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                int n = stdin.Read(buffer, 0, buffer.Length);
                if (n <= 0) return;
                machine.SendSerial(buffer.AsSpan(0, n));
            }
        }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }
}

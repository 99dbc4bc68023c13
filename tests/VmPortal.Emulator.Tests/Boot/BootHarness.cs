using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using VmPortal.Emulator.Firmware;
using VmPortal.Emulator.Tests.Platform;

namespace VmPortal.Emulator.Tests.Boot;

/// <summary>
/// A fact that boots real guest images: skipped with the reason while the CPU is the placeholder, when SeaBIOS is
/// not installed, or when the guest images were not built (scripts/build-guest-images.sh).
/// </summary>
public sealed class BootFactAttribute : FactAttribute
{
    /// <param name="cpuFeatures">CPUID leaf 1 EDX bits the guest cannot boot without (see <see cref="TestGuests.CpuLacks"/>).</param>
    /// <param name="guest">The guest's name for the skip message.</param>
    /// <param name="images">Guest image files (in the image cache) the test boots.</param>
    public BootFactAttribute(uint cpuFeatures, string guest, params string[] images)
    {
        if (TestGuests.CpuLacks(cpuFeatures, guest) is { } lacking) { Skip = lacking; return; }
        if (FirmwareFiles.FindBios() == null) { Skip = FirmwareFiles.MissingMessage(FirmwareFiles.BiosFileName); return; }
        // A host that cannot build an image at all says why in a file beside it (build-debian-image.sh: no way to
        // run i386 programs): skip with that reason, also in CI.
        foreach (var image in images)
            if (GuestImages.UnbuildableReason(image) is { } why)
            {
                Skip = $"{image} cannot be built on this host: {why}";
                return;
            }
        // In CI (CI=true) test.sh has built the images: a missing one must fail the test, not hide it.
        if (Environment.GetEnvironmentVariable("CI") == "true") return;
        foreach (var image in images)
            if (!File.Exists(GuestImages.PathOf(image)))
            {
                Skip = $"{GuestImages.PathOf(image)} is missing: {GuestImages.BuildHint}";
                return;
            }
    }
}

/// <summary>Runs one machine and waits for text on its serial port or its VGA text screen.</summary>
public sealed class BootHarness : IDisposable
{
    /// <summary>Host time allowed for one boot step; generous because the machine shares 2 cores with other tests.</summary>
    public static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(double.TryParse(Environment.GetEnvironmentVariable("VMPORTAL_BOOT_TIMEOUT"), out var s) ? s : 300);

    private readonly StringBuilder _serial = new();
    private readonly StringBuilder _debug = new();

    public BootHarness(MachineConfig config)
    {
        Machine = new Machine(config);
        Machine.SerialOutput += b => { lock (_serial) _serial.Append(Encoding.Latin1.GetString(b)); };
        Machine.DebugOutput += b => { lock (_debug) _debug.Append(Encoding.Latin1.GetString(b)); };
    }

    public Machine Machine { get; }

    public string Serial { get { lock (_serial) return _serial.ToString(); } }
    public string Debug { get { lock (_debug) return _debug.ToString(); } }
    public string Screen => Machine.ReadScreenText() ?? "";

    public static MachineConfig Config(int memoryMiB = 128, string? cdrom = null, string? kernel = null, string? initrd = null, string? append = null, bool? jit = null) => new()
    {
        Jit = jit,
        Name = "boot-test",
        MemoryMiB = memoryMiB,
        CdRomImage = cdrom == null ? null : GuestImages.PathOf(cdrom),
        KernelPath = kernel == null ? null : GuestImages.PathOf(kernel),
        InitrdPath = initrd == null ? null : GuestImages.PathOf(initrd),
        KernelCommandLine = kernel == null ? null : append ?? "",
        OnTripleFault = TripleFaultAction.PowerOff,
        DebugConsolePorts = new ushort[] { 0xE9, 0x402 },
    };

    public async Task Start() => await Machine.Start().WaitAsync(StepTimeout);

    /// <summary>Waits until <paramref name="pattern"/> matches the serial output (from <paramref name="serialFrom"/>) or the screen.</summary>
    public async Task<string> WaitFor(string pattern, bool serial = true, bool screen = true, int serialFrom = 0, TimeSpan? timeout = null)
    {
        var regex = new Regex(pattern, RegexOptions.Multiline);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (Machine.State == MachineState.Crashed)
                throw new Xunit.Sdk.XunitException($"machine crashed waiting for /{pattern}/: {Machine.CrashReason}\n{Diagnostics()}");
            if (serial)
            {
                string s = Serial;
                if (serialFrom < s.Length && regex.Match(s, serialFrom) is { Success: true } m) return m.Value;
            }
            if (screen && regex.Match(Screen) is { Success: true } sm) return sm.Value;
            if (sw.Elapsed > (timeout ?? StepTimeout))
                throw new Xunit.Sdk.XunitException($"/{pattern}/ did not appear within {(timeout ?? StepTimeout).TotalSeconds:F0} s\n{Diagnostics()}");
            await Task.Delay(100);
        }
    }

    /// <summary>Where the guest got to, for failure messages.</summary>
    public string Diagnostics()
    {
        string Tail(string s, int n) => s.Length <= n ? s : "…" + s[^n..];
        return $"instructions: {Machine.InstructionCount:N0}, guest time: {Machine.Clock.NowNs / 1e9:F1} s, state: {Machine.State}\n" +
               $"--- serial (tail) ---\n{Tail(Serial, 1500)}\n--- debug console (tail) ---\n{Tail(Debug, 1500)}\n--- screen ---\n{Screen}";
    }

    public void Dispose() => Machine.Dispose();
}

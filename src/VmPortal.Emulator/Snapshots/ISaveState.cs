namespace VmPortal.Emulator.Snapshots;

/// <summary>
/// A part of the machine that saves and restores its state through the machine state file
/// (docs/emulator.md "Machine state"). The name is given when the board registers the component (one class may
/// serve several instances: COM1/COM2, two PICs…), so it is not part of this interface.
/// <para>
/// <see cref="SaveState"/> runs on the machine thread between CPU slices and must not change the device;
/// <see cref="LoadState"/> runs on a freshly built board and must set fields only: no interrupts raised, no DMA,
/// no timers armed (the board restores the interrupt controller and all timer deadlines after every device).
/// Bump <see cref="StateVersion"/> whenever the fields change meaning; old files are then refused by name and version
/// (or accepted, if <see cref="AcceptsVersion"/> says so and <see cref="LoadState"/> reads <see cref="StateReader.Version"/>).
/// </para>
/// </summary>
public interface ISaveState
{
    int StateVersion { get; }
    void SaveState(StateWriter writer);
    void LoadState(StateReader reader);
    bool AcceptsVersion(int version) => version == StateVersion;
}

/// <summary>The components of one board, in load order.</summary>
public sealed class StateRegistry
{
    private readonly List<(string Name, ISaveState Component)> _components = new();

    public IReadOnlyList<(string Name, ISaveState Component)> Components => _components;

    public void Add(string name, ISaveState component)
    {
        if (_components.Any(c => c.Name == name)) throw new ArgumentException($"state component '{name}' registered twice");
        _components.Add((name, component));
    }

    /// <summary>Registers a component from a version and two delegates (for devices whose state is a record).</summary>
    public void Add(string name, int version, Action<StateWriter> save, Action<StateReader> load) =>
        Add(name, new DelegateComponent(version, save, load));

    /// <summary>Registers a device whose whole state is one JSON-serialisable record.</summary>
    public void AddRecord<T>(string name, int version, Func<T> save, Action<T> load) =>
        Add(name, version, w => w.Record(save()), r => load(r.Record<T>()));

    private sealed class DelegateComponent(int version, Action<StateWriter> save, Action<StateReader> load) : ISaveState
    {
        public int StateVersion => version;
        public void SaveState(StateWriter writer) => save(writer);
        public void LoadState(StateReader reader) => load(reader);
    }
}

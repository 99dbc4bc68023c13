using System.Text.Json;

namespace VmPortal.Emulator.Snapshots;

/// <summary>What one component saves: one JSON record (its fields by name) and any number of named memory areas.</summary>
public sealed class StateWriter
{
    internal StateWriter(string component) => Component = component;

    public string Component { get; }
    internal byte[]? Json { get; private set; }
    internal List<(string Name, PageImage Image)> Areas { get; } = new();

    /// <summary>The component's fields: a record serialised by property name (System.Text.Json). Once per component.</summary>
    public void Record<T>(T record)
    {
        if (Json != null) throw new InvalidOperationException($"state component '{Component}' wrote two records");
        Json = JsonSerializer.SerializeToUtf8Bytes(record, StateJson.Options);
    }

    /// <summary>A large byte area (RAM, VRAM): zero pages are skipped, the rest is compressed in the file.</summary>
    public void Area(string name, ReadOnlySpan<byte> bytes)
    {
        if (Areas.Any(a => a.Name == name)) throw new InvalidOperationException($"state component '{Component}' wrote area '{name}' twice");
        Areas.Add((name, PageImage.Capture(bytes)));
    }
}

/// <summary>What one component finds in a state file.</summary>
public sealed class StateReader
{
    private readonly ComponentState _state;

    internal StateReader(ComponentState state) => _state = state;

    public string Component => _state.Name;
    /// <summary>The version the file was saved with (equal to the component's own unless it accepts older ones).</summary>
    public int Version => _state.Version;

    public T Record<T>()
    {
        if (_state.Json.Length == 0) throw new InvalidDataException($"state component '{Component}' has no fields");
        try
        {
            return JsonSerializer.Deserialize<T>(_state.Json, StateJson.Options)
                ?? throw new InvalidDataException($"state component '{Component}' has no fields");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"state component '{Component}' (version {Version}): its fields do not match this build: {e.Message}", e);
        }
    }

    public PageImage Area(string name) =>
        _state.Areas.FirstOrDefault(a => a.Name == name).Image
        ?? throw new InvalidDataException($"state component '{Component}' lacks its memory area '{name}'");
}

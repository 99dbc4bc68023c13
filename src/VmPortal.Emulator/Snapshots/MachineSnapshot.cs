using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace VmPortal.Emulator.Snapshots;

/// <summary>One component's saved state: name, version, its fields as JSON, its memory areas.</summary>
public sealed class ComponentState
{
    public ComponentState(string name, int version, byte[] json, IReadOnlyList<(string Name, PageImage Image)> areas)
    {
        Name = name;
        Version = version;
        Json = json;
        Areas = areas;
    }

    public string Name { get; }
    public int Version { get; }
    public byte[] Json { get; }
    public IReadOnlyList<(string Name, PageImage Image)> Areas { get; }
}

/// <summary>
/// A whole machine's state in memory: the components in board order. <see cref="StateFile"/> writes and reads it;
/// <see cref="Hash"/> digests it (RAM, registers, device state) for determinism checks.
/// </summary>
public sealed class MachineSnapshot
{
    public MachineSnapshot(IReadOnlyList<ComponentState> components) => Components = components;

    public IReadOnlyList<ComponentState> Components { get; }

    /// <summary>
    /// Read-only files the machine booted from (kernel, initrd, CD images): pages equal to their contents are stored
    /// as references to them (<see cref="MediaPages"/>). Not part of <see cref="Hash"/>.
    /// </summary>
    public IReadOnlyList<string> ReferenceMedia { get; init; } = [];

    public ComponentState? Find(string name) => Components.FirstOrDefault(c => c.Name == name);

    /// <summary>SHA-256 (hex) over every component's name, version, fields and memory areas (expanded to their full size).</summary>
    public string Hash()
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> n = stackalloc byte[8];
        foreach (var c in Components)
        {
            h.AppendData(Encoding.UTF8.GetBytes(c.Name));
            BinaryPrimitives.WriteInt64LittleEndian(n, c.Version); h.AppendData(n);
            h.AppendData(c.Json);
            foreach (var (name, image) in c.Areas)
            {
                h.AppendData(Encoding.UTF8.GetBytes(name));
                BinaryPrimitives.WriteInt64LittleEndian(n, image.Length); h.AppendData(n);
                h.AppendData(image.PresentBitmap);
                h.AppendData(image.Pages);
            }
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}

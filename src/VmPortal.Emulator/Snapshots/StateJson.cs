using System.Text.Json;
using System.Text.Json.Serialization;

namespace VmPortal.Emulator.Snapshots;

/// <summary>
/// JSON settings for component records: properties by name; a property the record needs but the file lacks, or one
/// the file has but the record does not know, is an error (never a silent default).
/// </summary>
internal static class StateJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        RespectRequiredConstructorParameters = true,
        RespectNullableAnnotations = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        IncludeFields = false,
        WriteIndented = false,
    };
}

using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace DeviceOps.History;

/// <summary>
/// Writes the latest history an operation or device answer embeds from each entry's serialized
/// form (<see cref="HistoryEntryResponse.Written"/>), made the first time the entry is written and
/// copied as it is after that: a GET's twenty entries were a tenth of its CPU, written anew for
/// every answer although they change only when the device does. The form is made with the
/// options that write the answer, so the bytes are the ones the serializer would write.
/// </summary>
/// <remarks>
/// Applied to the two <c>operational_history</c> properties, not to the entry type, so the log
/// endpoint's pages (entries read for that page only) are written as usual, and the OpenAPI
/// document still describes the property from its type (it came out the same, byte for byte).
/// </remarks>
public sealed class EmbeddedHistory : JsonConverter<IReadOnlyList<HistoryEntryResponse>>
{
    public override IReadOnlyList<HistoryEntryResponse>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize(ref reader, (JsonTypeInfo<List<HistoryEntryResponse>>)options.GetTypeInfo(typeof(List<HistoryEntryResponse>)));

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<HistoryEntryResponse> value, JsonSerializerOptions options)
    {
        JsonTypeInfo<HistoryEntryResponse>? entryInfo = null;
        writer.WriteStartArray();
        for (var i = 0; i < value.Count; i++)
        {
            var entry = value[i];
            var written = entry.Written;
            if (written is null)
            {
                entryInfo ??= (JsonTypeInfo<HistoryEntryResponse>)options.GetTypeInfo(typeof(HistoryEntryResponse));
                // Two answers may write a new entry at once; both make the same bytes, and either
                // publishes them whole.
                written = JsonSerializer.SerializeToUtf8Bytes(entry, entryInfo);
                Volatile.Write(ref entry.Written, written);
            }
            writer.WriteRawValue(written, skipInputValidation: true);
        }
        writer.WriteEndArray();
    }
}

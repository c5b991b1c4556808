using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeviceOps.Http;

/// <summary>
/// JSON the store already holds as text — a history entry's changes, a device's configuration —
/// written into a response as it is. The server wrote that text itself, so it is not parsed into
/// a document and serialized again on every read (20 history entries per operation response).
/// </summary>
[JsonConverter(typeof(Converter))]
public readonly record struct StoredJson(string Text)
{
    public sealed class Converter : JsonConverter<StoredJson>
    {
        public override StoredJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var document = JsonDocument.ParseValue(ref reader);
            return new StoredJson(document.RootElement.GetRawText());
        }

        public override void Write(Utf8JsonWriter writer, StoredJson value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.Text, skipInputValidation: true);
    }
}

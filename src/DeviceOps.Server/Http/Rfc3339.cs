using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace DeviceOps.Http;

/// <summary>Timestamps as we store and show them: UTC, microsecond precision, RFC 3339.</summary>
public static class Rfc3339
{
    private const string Format = "yyyy-MM-dd'T'HH:mm:ss.FFFFFF'Z'";

    public static string ToText(DateTime utc) => utc.ToString(Format, CultureInfo.InvariantCulture);

    public static JsonNode? Node(DateTime? utc) => utc is { } value ? JsonValue.Create(ToText(value)) : null;

    /// <summary>
    /// PostgreSQL keeps microseconds, .NET ticks are a tenth of that; cutting here means a value
    /// reads back exactly as it was written, on both stores.
    /// </summary>
    public static DateTime Truncate(DateTime value) =>
        DateTime.SpecifyKind(new DateTime(value.Ticks - value.Ticks % 10, DateTimeKind.Utc), DateTimeKind.Utc);

    public static DateTime Now(TimeProvider clock) => Truncate(clock.GetUtcNow().UtcDateTime);
}

public sealed class Rfc3339Converter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        FieldReader.TryParseTimestamp(reader.GetString() ?? "", out var value) ? value : throw new JsonException("Not an RFC 3339 timestamp.");

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Rfc3339.ToText(value));
}

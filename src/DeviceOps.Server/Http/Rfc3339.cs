using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace DeviceOps.Http;

/// <summary>Timestamps as we store and show them: UTC, microsecond precision, RFC 3339.</summary>
public static class Rfc3339
{
    /// <summary><c>yyyy-MM-ddTHH:mm:ss.FFFFFFZ</c>: the fraction to the microsecond, trailing zeros and an empty fraction left out.</summary>
    public static string ToText(DateTime utc)
    {
        Span<byte> text = stackalloc byte[32];
        return Encoding.ASCII.GetString(text[..Write(utc, text)]);
    }

    /// <summary>
    /// Writes <see cref="ToText"/> as UTF-8, without the general formatter: a response carries a
    /// couple of dozen timestamps, and the custom-format path cost more than the rest of writing
    /// them.
    /// </summary>
    public static int Write(DateTime utc, Span<byte> destination)
    {
        var n = 0;
        Digits(utc.Year, 4, destination, ref n);
        destination[n++] = (byte)'-';
        Digits(utc.Month, 2, destination, ref n);
        destination[n++] = (byte)'-';
        Digits(utc.Day, 2, destination, ref n);
        destination[n++] = (byte)'T';
        Digits(utc.Hour, 2, destination, ref n);
        destination[n++] = (byte)':';
        Digits(utc.Minute, 2, destination, ref n);
        destination[n++] = (byte)':';
        Digits(utc.Second, 2, destination, ref n);
        var micros = (int)(utc.Ticks % TimeSpan.TicksPerSecond / 10);
        if (micros > 0)
        {
            var width = 6;
            while (micros % 10 == 0)
            {
                micros /= 10;
                width--;
            }
            destination[n++] = (byte)'.';
            Digits(micros, width, destination, ref n);
        }
        destination[n++] = (byte)'Z';
        return n;
    }

    private static void Digits(int value, int width, Span<byte> destination, ref int n)
    {
        for (var i = width - 1; i >= 0; i--)
        {
            destination[n + i] = (byte)('0' + value % 10);
            value /= 10;
        }
        n += width;
    }

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

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options)
    {
        Span<byte> text = stackalloc byte[32];
        writer.WriteStringValue(text[..Rfc3339.Write(value, text)]);
    }
}

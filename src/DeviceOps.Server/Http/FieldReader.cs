using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace DeviceOps.Http;

/// <summary>A request field that may be absent, which differs from present and null.</summary>
public readonly record struct Optional<T>(bool IsSet, T Value)
{
    public static implicit operator Optional<T>(T value) => new(true, value);

    public T Or(T fallback) => IsSet ? Value : fallback;
}

/// <summary>
/// Validates the fields of one JSON object and collects every field's messages, so a caller
/// learns about all its mistakes in one 400 instead of one per round trip.
/// </summary>
public sealed partial class FieldReader
{
    private readonly JsonElement _object;
    private readonly Dictionary<string, JsonElement> _fields = new(StringComparer.Ordinal);
    private readonly string _prefix;

    public FieldReader(JsonElement obj, IReadOnlySet<string> writable, IReadOnlySet<string> ignored, Errors errors, string prefix = "")
    {
        _object = obj;
        _prefix = prefix;
        Errors = errors;
        foreach (var property in obj.EnumerateObject())
        {
            if (!_fields.TryAdd(property.Name, property.Value))
            {
                Errors.Add(prefix + property.Name, "This field is given more than once.");
            }
            else if (!writable.Contains(property.Name) && !ignored.Contains(property.Name))
            {
                Errors.Add(prefix + property.Name, "Unknown field.");
            }
        }
        foreach (var name in ignored)
        {
            _fields.Remove(name);
        }
    }

    public Errors Errors { get; }

    public bool Has(string name) => _fields.ContainsKey(name);

    public JsonElement Raw => _object;

    /// <summary>A string field; <paramref name="check"/> returns a message for a bad value.</summary>
    public Optional<string?> Text(string name, int maxLength, bool required = false, bool nullable = true,
        Func<string, string?>? check = null)
    {
        if (!Present(name, required, nullable, out var value))
        {
            return default;
        }
        if (value.ValueKind == JsonValueKind.Null)
        {
            return new(true, null);
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            return Fail<string?>(name, "Must be a string.");
        }
        var text = value.GetString()!;
        if (text.Length > maxLength)
        {
            return Fail<string?>(name, $"Must be at most {maxLength} characters long.");
        }
        if (HasNul(text))
        {
            return Fail<string?>(name, NulMessage);
        }
        // Not only when required: a PATCH may omit a non-null field but must not blank it.
        if (!nullable && string.IsNullOrWhiteSpace(text))
        {
            return Fail<string?>(name, "This field may not be blank.");
        }
        if (check?.Invoke(text) is { } message)
        {
            return Fail<string?>(name, message);
        }
        return new(true, text);
    }

    public Optional<string?> Slug(string name, bool required = false, bool nullable = false) =>
        Text(name, 64, required, nullable, s => SlugPattern().IsMatch(s)
            ? null
            : "Must be a slug: lower-case letters, digits, '_' or '-', e.g. network_switch.");

    public Optional<string?> Email(string name, bool required = false, bool nullable = true) =>
        Text(name, 254, required, nullable, s => IsEmail(s) ? null : "Must be a valid e-mail address.");

    public Optional<string?> Choice(string name, IReadOnlyCollection<string> choices, bool required = false) =>
        Text(name, 64, required, nullable: false, s => choices.Contains(s)
            ? null
            : $"\"{s}\" is not a valid choice; use one of: {string.Join(", ", choices)}.");

    public Optional<DateTime?> Timestamp(string name, bool required = false, bool nullable = true)
    {
        if (!Present(name, required, nullable, out var value))
        {
            return default;
        }
        if (value.ValueKind == JsonValueKind.Null)
        {
            return new(true, null);
        }
        if (value.ValueKind == JsonValueKind.String && TryParseTimestamp(value.GetString()!, out var parsed))
        {
            return new(true, parsed);
        }
        return Fail<DateTime?>(name, "Must be an RFC 3339 timestamp with a time zone, e.g. 2024-01-15T14:30:00Z.");
    }

    public Optional<int?> Number(string name, int min, int max, bool required = false, bool nullable = true)
    {
        if (!Present(name, required, nullable, out var value))
        {
            return default;
        }
        if (value.ValueKind == JsonValueKind.Null)
        {
            return new(true, null);
        }
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number))
        {
            return Fail<int?>(name, "Must be an integer.");
        }
        if (number < min || number > max)
        {
            return Fail<int?>(name, $"Must be between {min} and {max}.");
        }
        return new(true, number);
    }

    /// <summary>The element of a field that other code validates (arrays, objects).</summary>
    public Optional<JsonElement> Element(string name, bool required = false, bool nullable = true)
    {
        return Present(name, required, nullable, out var value) ? new(true, value) : default;
    }

    public void Fail(string name, string message) => Errors.Add(_prefix + name, message);

    private Optional<T> Fail<T>(string name, string message)
    {
        Fail(name, message);
        return default;
    }

    private bool Present(string name, bool required, bool nullable, out JsonElement value)
    {
        if (!_fields.TryGetValue(name, out value))
        {
            if (required)
            {
                Fail(name, "This field is required.");
            }
            return false;
        }
        if (value.ValueKind == JsonValueKind.Null && !nullable)
        {
            Fail(name, "This field may not be null.");
            return false;
        }
        return true;
    }

    /// <summary>RFC 3339: a date, a time and an explicit offset; the value is converted to UTC.</summary>
    public static bool TryParseTimestamp(string text, out DateTime utc)
    {
        utc = default;
        // RFC 3339's date-time and nothing looser: the general parser also takes a space before
        // the Z or a comma before the fraction.
        if (text.Length > 40 || !TimestampPattern().IsMatch(text))
        {
            return false;
        }
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed))
        {
            return false;
        }
        utc = parsed.UtcDateTime;
        return true;
    }

    public const string NulMessage = "Must not contain the NUL character (\\u0000).";

    /// <summary>PostgreSQL text cannot hold U+0000: storing or comparing one is a server error there, so it is refused up front.</summary>
    public static bool HasNul(string text) => text.Contains('\0', StringComparison.Ordinal);

    /// <summary>
    /// One or more ASCII digits and nothing else. Checked before <c>int.TryParse</c>, which takes
    /// trailing U+0000 characters as the end of a number (<c>"5\0"</c> is 5).
    /// </summary>
    public static bool IsDigits(ReadOnlySpan<char> text) => !text.IsEmpty && !text.ContainsAnyExceptInRange('0', '9');

    public static bool IsEmail(string text)
    {
        var at = text.IndexOf('@', StringComparison.Ordinal);
        return at is > 0 and <= 64
            && at == text.LastIndexOf('@')
            && EmailPattern().IsMatch(text);
    }

    [GeneratedRegex(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\z")]
    private static partial Regex TimestampPattern();

    [GeneratedRegex("^[a-z0-9]+(?:[_-][a-z0-9]+)*$")]
    private static partial Regex SlugPattern();

    [GeneratedRegex(@"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex EmailPattern();
}

/// <summary>Field messages keyed by field path, in the shape of a validation problem's <c>errors</c>.</summary>
public sealed class Errors
{
    private readonly Dictionary<string, List<string>> _messages = new(StringComparer.Ordinal);

    public bool Any => _messages.Count > 0;

    public void Add(string field, string message)
    {
        if (!_messages.TryGetValue(field, out var list))
        {
            _messages[field] = list = [];
        }
        list.Add(message);
    }

    /// <summary>Adds another set of messages under a prefix, e.g. a batch item's as <c>[3].status</c>.</summary>
    public void AddAll(Errors other, string prefix)
    {
        foreach (var (field, messages) in other._messages)
        {
            foreach (var message in messages)
            {
                Add(prefix + field, message);
            }
        }
    }

    public Dictionary<string, string[]> ToDictionary() =>
        _messages.ToDictionary(pair => pair.Key, pair => pair.Value.ToArray(), StringComparer.Ordinal);
}

/// <summary>Validation of the free-form <c>configuration</c> object of a device.</summary>
public static class ConfigurationRules
{
    public const int MaxKeys = 64;
    public const int MaxKeyLength = 64;
    public const int MaxStringLength = 1024;
    public static readonly string[] AlertLevels = ["low", "standard", "high", "critical"];

    /// <summary>
    /// Checks a configuration object as given in a request. Null values are kept: in a merge
    /// they remove the key. Known keys have fixed types; other keys take strings, numbers and
    /// booleans, so the configuration stays a flat map that monitoring tools can index.
    /// </summary>
    public static JsonObject? Read(JsonElement value, string field, Errors errors)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add(field, "Must be an object.");
            return null;
        }
        var result = new JsonObject();
        var count = 0;
        foreach (var property in value.EnumerateObject())
        {
            var path = $"{field}.{property.Name}";
            if (++count > MaxKeys)
            {
                errors.Add(field, $"Must have at most {MaxKeys} keys.");
                return null;
            }
            if (property.Name.Length is 0 or > MaxKeyLength)
            {
                errors.Add(path, $"Keys must be 1 to {MaxKeyLength} characters long.");
                continue;
            }
            if (result.ContainsKey(property.Name))
            {
                errors.Add(path, "This key is given more than once.");
                continue;
            }
            var v = property.Value;
            string? message = property.Name switch
            {
                _ when v.ValueKind == JsonValueKind.Null => null,
                "network_profile" or "firmware_version" => v.ValueKind == JsonValueKind.String ? null : "Must be a string.",
                "monitoring_enabled" => v.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : "Must be a boolean.",
                "alert_level" => v.ValueKind == JsonValueKind.String && AlertLevels.Contains(v.GetString())
                    ? null
                    : $"Must be one of: {string.Join(", ", AlertLevels)}.",
                _ => v.ValueKind is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False
                    ? null
                    : "Must be a string, a number or a boolean.",
            };
            if (message is null && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > MaxStringLength)
            {
                message = $"Must be at most {MaxStringLength} characters long.";
            }
            // Stored and sent on as written: a number past a double's range (1e309) would reach
            // every reader of the device, its history and its events as infinity or an error.
            if (message is null && v.ValueKind == JsonValueKind.Number && !IsDouble(v))
            {
                message = "Must be a number within a double's range (about ±1.8e308).";
            }
            if (message is not null)
            {
                errors.Add(path, message);
                continue;
            }
            result[property.Name] = JsonNode.Parse(v.GetRawText());
        }
        return result;
    }

    /// <summary>
    /// A finite double written with an exponent of at most three digits: a longer one either
    /// overflows or makes System.Text.Json throw when it compares the number (0e99999999999).
    /// </summary>
    private static bool IsDouble(JsonElement number)
    {
        if (!number.TryGetDouble(out var value) || !double.IsFinite(value))
        {
            return false;
        }
        var text = number.GetRawText();
        var e = text.AsSpan().IndexOfAny('e', 'E');
        return e < 0 || text.AsSpan(e + 1).TrimStart("+-").Length <= 3;
    }
}

using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace DeviceOps.History;

/// <summary>
/// Writes the latest history an operation or device answer embeds. A device's kept history
/// (<see cref="KeptHistory"/>) is written from each entry's serialized form, made the first time
/// the entry is written and copied as it is after that: a GET's twenty entries were a tenth of its
/// CPU, serialized anew for every answer although they change only when the device does. Any other
/// list is serialized as usual.
/// </summary>
/// <remarks>
/// Applied to the two <c>operational_history</c> properties, not to the entry type, so the log
/// endpoint's pages are written as usual, and the OpenAPI document still describes the property
/// from its type (it came out the same, byte for byte).
/// </remarks>
public sealed class EmbeddedHistory : JsonConverter<IReadOnlyList<HistoryEntryResponse>>
{
    public override IReadOnlyList<HistoryEntryResponse>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonSerializer.Deserialize(ref reader, ListInfo(options));

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<HistoryEntryResponse> value, JsonSerializerOptions options)
    {
        if (value is KeptHistory kept && ReferenceEquals(kept.Options, options))
        {
            kept.WriteTo(writer);
            return;
        }
        JsonSerializer.Serialize(writer, value, ListInfo(options));
    }

    /// <summary>The list's own contract: its converter is the serializer's, not this one (which sits on the properties).</summary>
    private static JsonTypeInfo<IReadOnlyList<HistoryEntryResponse>> ListInfo(JsonSerializerOptions options) =>
        (JsonTypeInfo<IReadOnlyList<HistoryEntryResponse>>)options.GetTypeInfo(typeof(IReadOnlyList<HistoryEntryResponse>));
}

/// <summary>
/// A device's latest history as <see cref="LatestHistory"/> keeps it and answers embed it: each
/// entry as the object that was read or written, until an answer first writes it, and from then on
/// as its serialized form only (with the API's options, <see cref="Options"/>), which later
/// answers copy. An entry is never edited, so the form stays true; nothing reads a kept entry's
/// fields but the writer, and the form takes about half the memory of the object with its strings.
/// </summary>
public sealed class KeptHistory : IReadOnlyList<HistoryEntryResponse>
{
    /// <summary>Each entry, newest first: a <see cref="HistoryEntryResponse"/> or, once written, its UTF-8 JSON.</summary>
    private readonly object[] _entries;

    public KeptHistory(JsonSerializerOptions options, object[] entries)
    {
        Options = options;
        _entries = entries;
    }

    /// <summary>The options every answer is written with; the serialized forms are theirs.</summary>
    public JsonSerializerOptions Options { get; }

    public int Count => _entries.Length;

    /// <summary>An entry as an object: the kept one, or read back from its serialized form (nothing on a hot path asks).</summary>
    public HistoryEntryResponse this[int index]
    {
        get
        {
            // Read once: an answer may replace the object with its form meanwhile.
            var entry = _entries[index];
            return entry as HistoryEntryResponse
                ?? JsonSerializer.Deserialize((byte[])entry, (JsonTypeInfo<HistoryEntryResponse>)Options.GetTypeInfo(typeof(HistoryEntryResponse)))!;
        }
    }

    /// <summary>The entries as kept (objects or serialized forms), for a list that adds newer ones in front.</summary>
    internal object Slot(int index) => _entries[index];

    /// <summary>Writes the array, serializing the entries not written before and keeping their forms.</summary>
    internal void WriteTo(Utf8JsonWriter writer)
    {
        JsonTypeInfo<HistoryEntryResponse>? entryInfo = null;
        writer.WriteStartArray();
        for (var i = 0; i < _entries.Length; i++)
        {
            if (_entries[i] is not byte[] written)
            {
                entryInfo ??= (JsonTypeInfo<HistoryEntryResponse>)Options.GetTypeInfo(typeof(HistoryEntryResponse));
                written = JsonSerializer.SerializeToUtf8Bytes((HistoryEntryResponse)_entries[i], entryInfo);
                // Two answers may write the list at once; both make the same bytes, and either
                // publishes them whole in place of the object.
                Volatile.Write(ref _entries[i], written);
            }
            writer.WriteRawValue(written, skipInputValidation: true);
        }
        writer.WriteEndArray();
    }

    public IEnumerator<HistoryEntryResponse> GetEnumerator()
    {
        for (var i = 0; i < _entries.Length; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace DeviceOps.History;

/// <summary>
/// Each device's latest history as an operation answer embeds it, kept by the id of the device's
/// newest entry. History is append-only, and a device's entries get ids in the order they
/// commit, so a device whose newest entry is still <c>upTo</c> still has exactly these entries:
/// a GET reads that id with the operation, in the same statement, and skips the twenty-row read
/// when it matches; a change adds its own entries in front of them. Only committed entries are
/// kept (a change adds its list once its commit is durable).
/// </summary>
/// <remarks>
/// Why ids follow commit order per device: on SQLite there is one writer, and a new row gets the
/// next id after every committed one. On PostgreSQL ids come from a sequence, which hands them out
/// in the order entries are inserted, not committed; but every write that adds entries to an
/// existing device holds that device's row lock from before its insert to its commit (the
/// operation writes, alone, in groups and in batches, the device writes, the operation
/// creations), so the next entry of a device is inserted only after the last one committed. The
/// PostgreSQL writes that keep this cache current are the groups of <c>UpdateGroups</c>, which
/// read the newest id under that lock.
/// </remarks>
public sealed class LatestHistory(IOptions<JsonOptions> json)
{
    private readonly System.Text.Json.JsonSerializerOptions _options = json.Value.SerializerOptions;

    /// <summary>Devices kept; past it the cache starts over rather than grow (some 13 KB a device as read, measured; about half once written, <see cref="KeptHistory"/>).</summary>
    public const int MaxDevices = 4096;

    private readonly ConcurrentDictionary<int, Latest> _byDevice = new();

    /// <summary>The device's latest entries, if they are known for its newest entry <paramref name="upTo"/> and its current code.</summary>
    public KeptHistory? Find(int deviceId, string deviceCode, long upTo) =>
        _byDevice.TryGetValue(deviceId, out var latest) && latest.UpTo == upTo && latest.DeviceCode == deviceCode ? latest.Entries : null;

    /// <summary>Entries read or written, newest first, as they are kept and embedded (<see cref="KeptHistory"/>).</summary>
    public KeptHistory Keep(IReadOnlyList<HistoryEntryResponse> entries)
    {
        var slots = new object[entries.Count];
        for (var i = 0; i < slots.Length; i++)
        {
            slots[i] = entries[i];
        }
        return new KeptHistory(_options, slots);
    }

    /// <summary>Keeps committed entries, newest first, whose newest is <paramref name="upTo"/> (0: none yet).</summary>
    public void Add(int deviceId, string deviceCode, long upTo, KeptHistory entries)
    {
        if (_byDevice.TryGetValue(deviceId, out var known) && known.UpTo >= upTo)
        {
            return;
        }
        if (_byDevice.Count >= MaxDevices)
        {
            _byDevice.Clear();
        }
        _byDevice[deviceId] = new Latest(upTo, deviceCode, entries);
    }

    /// <summary>
    /// Forgets every device: before a large batch, which moves the newest entry of most of the
    /// devices it touches anyway, so their kept entries (up to some 13 MB for 1,000 devices) are
    /// garbage the batch's own work can reuse rather than memory it adds to.
    /// </summary>
    public void Clear() => _byDevice.Clear();

    /// <summary>Batches of at least this many items clear the cache first (<see cref="Clear"/>).</summary>
    public const int ClearingBatch = 1000;

    /// <summary>
    /// A change's answer: its new entries (oldest first, as written), newest first, in front of
    /// the entries before them, up to <see cref="HistoryMapping.EmbeddedEntries"/>.
    /// </summary>
    public KeptHistory Prepend(IReadOnlyList<HistoryEntryResponse> added, KeptHistory before)
    {
        var count = Math.Min(HistoryMapping.EmbeddedEntries, added.Count + before.Count);
        var entries = new object[count];
        var i = 0;
        for (var a = added.Count - 1; a >= 0 && i < count; a--)
        {
            entries[i++] = added[a];
        }
        for (var b = 0; i < count; b++)
        {
            entries[i++] = before.Slot(b);
        }
        return new KeptHistory(_options, entries);
    }

    private static readonly ConcurrentDictionary<string, string> Performers = new(StringComparer.Ordinal);

    /// <summary>One string per user who performed changes (up to 1,000 of them), not a copy per kept entry.</summary>
    public static string Performer(string email) =>
        Performers.TryGetValue(email, out var known) ? known : Performers.Count < 1000 ? Performers.GetOrAdd(email, email) : email;

    private sealed record Latest(long UpTo, string DeviceCode, KeptHistory Entries);
}

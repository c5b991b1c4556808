using DeviceOps.Http;

namespace DeviceOps.History;

public sealed record HistoryEntryResponse(
    long Id,
    DateTime Timestamp,
    string Action,
    string? FromStatus,
    string? ToStatus,
    string PerformedBy,
    string DeviceId,
    int? OperationId,
    StoredJson Changes,
    string RequestId,
    string? Justification)
{
    /// <summary>
    /// The entry as the API writes it, once written (<see cref="EmbeddedHistory"/>). An entry is
    /// never edited, and the kept latest history (<see cref="LatestHistory"/>) hands the same
    /// entries to every answer about its device, so each is serialized once, not once per answer.
    /// A cache of what the fields say, not a field of its own: responses are never compared.
    /// </summary>
    internal byte[]? Written;
}

public static class HistoryMapping
{
    /// <summary>How many of the latest entries a device or operation response carries.</summary>
    public const int EmbeddedEntries = 20;

    public static HistoryEntryResponse ToResponse(this HistoryEntry entry, string deviceCode)
    {
        return new(entry.Id, entry.Timestamp, entry.Action, entry.FromStatus, entry.ToStatus, entry.PerformedBy,
            deviceCode, entry.OperationId, new StoredJson(entry.Changes), entry.RequestId, entry.Justification);
    }
}

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
    string? Justification);

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

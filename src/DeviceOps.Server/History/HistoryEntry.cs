using System.Text.Json.Nodes;
using DeviceOps.Devices;
using DeviceOps.Operations;

namespace DeviceOps.History;

public static class HistoryActions
{
    public const string Created = "created";
    public const string StatusChange = "status_change";
    public const string OperationCreated = "operation_created";
    public const string OperationStatusChange = "operation_status_change";
    public const string Relocation = "relocation";
    public const string AssignmentChange = "assignment_change";
    public const string ConfigurationChange = "configuration_change";
    public const string MaintenanceUpdate = "maintenance_update";
    public const string DeviceUpdate = "device_update";
    public const string Deleted = "deleted";
}

/// <summary>
/// One append-only entry of a device's operational history. Entries are only ever inserted;
/// no code path updates or deletes one.
/// </summary>
public sealed class HistoryEntry
{
    private HistoryEntry()
    {
    }

    public long Id { get; private set; }
    public DateTime Timestamp { get; private set; }
    public int DeviceId { get; private set; }
    public Device Device { get; private set; } = null!;
    public int? OperationId { get; private set; }
    public DeviceOperation? Operation { get; private set; }
    public string Action { get; private set; } = "";
    public string? FromStatus { get; private set; }
    public string? ToStatus { get; private set; }
    public string Changes { get; private set; } = "{}";
    public string PerformedBy { get; private set; } = "";
    public string RequestId { get; private set; } = "";
    public string? Justification { get; private set; }

    internal static HistoryEntry Create(Device device, DeviceOperation? operation, string action, JsonObject changes,
        ChangeContext change, string? fromStatus = null, string? toStatus = null) => new()
        {
            Timestamp = change.Now,
            Device = device,
            Operation = operation,
            Action = action,
            FromStatus = fromStatus,
            ToStatus = toStatus,
            Changes = changes.ToJsonString(),
            PerformedBy = change.Actor,
            RequestId = change.RequestId,
            Justification = change.Justification,
        };

    internal static JsonObject Diff(string field, JsonNode? from, JsonNode? to) =>
        new() { [field] = new JsonObject { ["from"] = from, ["to"] = to } };
}

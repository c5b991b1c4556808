using System.Text.Json.Nodes;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Operations;
using DeviceOps.Organizations;

namespace DeviceOps.Events;

/// <summary>
/// A change event in the transactional outbox: written in the same transaction as the change and
/// its history entry, read by the pull feed, the live stream and the webhook dispatcher.
/// Unlike history, events are removed after a retention period.
/// </summary>
public sealed class OutboxEvent
{
    private OutboxEvent()
    {
    }

    public long Id { get; private set; }

    /// <summary>
    /// PostgreSQL's transaction id of the writer (0 on SQLite). The feed reads in (tx, id) order
    /// and only below the oldest transaction still running, so a reader never skips an event
    /// that commits after a later-numbered one.
    /// </summary>
    public long Tx { get; private set; }

    public Guid EventId { get; private set; }
    public string Type { get; private set; } = "";
    public DateTime OccurredAt { get; private set; }
    public int OrganizationId { get; private set; }
    public Organization Organization { get; private set; } = null!;
    public int DeviceId { get; private set; }
    public Device Device { get; private set; } = null!;
    public string DeviceCode { get; private set; } = "";
    public int? OperationId { get; private set; }
    public DeviceOperation? Operation { get; private set; }
    public string RequestId { get; private set; } = "";
    public string PerformedBy { get; private set; } = "";

    /// <summary>JSON: <c>from</c>, <c>to</c>, <c>changes</c>, <c>justification</c>.</summary>
    public string Data { get; private set; } = "{}";

    public static OutboxEvent For(HistoryEntry entry)
    {
        var changes = JsonNode.Parse(entry.Changes)!.AsObject();
        JsonNode? from = null, to = null;
        if (changes.Count == 1 && changes.First().Value is JsonObject only)
        {
            from = only["from"]?.DeepClone();
            to = only["to"]?.DeepClone();
        }
        var data = new JsonObject
        {
            ["from"] = from,
            ["to"] = to,
            ["changes"] = changes,
            ["justification"] = entry.Justification,
        };
        return new OutboxEvent
        {
            EventId = Guid.CreateVersion7(),
            Type = TypeOf(entry.Action, changes),
            OccurredAt = entry.Timestamp,
            Device = entry.Device,
            Organization = entry.Device.Organization,
            DeviceCode = entry.Device.DeviceCode,
            Operation = entry.Operation,
            RequestId = entry.RequestId,
            PerformedBy = entry.PerformedBy,
            Data = data.ToJsonString(),
        };
    }

    public static readonly string[] Types =
    [
        "device.created", "device.status_changed", "device.relocated", "device.reassigned", "device.configuration_changed",
        "device.maintenance_scheduled", "device.maintenance_notes_changed", "device.updated", "device.deleted",
        "operation.created", "operation.status_changed",
    ];

    private static string TypeOf(string action, JsonObject changes) => action switch
    {
        HistoryActions.Created => "device.created",
        HistoryActions.StatusChange => "device.status_changed",
        HistoryActions.Relocation => "device.relocated",
        HistoryActions.AssignmentChange => "device.reassigned",
        HistoryActions.ConfigurationChange => "device.configuration_changed",
        HistoryActions.MaintenanceUpdate when changes.ContainsKey("next_maintenance") => "device.maintenance_scheduled",
        HistoryActions.MaintenanceUpdate => "device.maintenance_notes_changed",
        HistoryActions.DeviceUpdate => "device.updated",
        HistoryActions.Deleted => "device.deleted",
        HistoryActions.OperationCreated => "operation.created",
        HistoryActions.OperationStatusChange => "operation.status_changed",
        _ => $"device.{action}",
    };
}

using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;

namespace DeviceOps.Operations;

public enum WriteMode
{
    Create,
    Replace,
    Patch,
}

/// <summary>A validated operation request: the operation's own fields and the device effect fields.</summary>
public sealed record OperationInput(
    Optional<string?> DeviceId,
    Optional<string?> OperationType,
    Optional<string?> Status,
    Optional<string?> OperatorId,
    Optional<string?> Description,
    Optional<string?> Notes,
    Optional<DateTime?> StartedAt,
    Optional<DateTime?> CompletedAt,
    DeviceEffects Effects,
    string? Justification)
{
    private static readonly HashSet<string> Writable =
    [
        "device_id", "operation_type", "status", "operator_id", "description", "notes", "started_at", "completed_at",
        "justification", .. DeviceEffects.Fields,
    ];

    /// <summary>
    /// Fields a client gets in a response and may send back unchanged; they are ignored, as
    /// Django REST Framework ignores read-only fields.
    /// </summary>
    private static readonly HashSet<string> ReadOnly =
    [
        "id", "created_at", "updated_at", "last_updated", "updated_by", "operational_history",
        "device_name", "serial_number", "device_type", "organization",
    ];

    /// <summary>In a batch, <c>id</c> names the operation and <c>version</c> is its If-Match; both are read apart.</summary>
    private static readonly HashSet<string> ReadOnlyInBatch = [.. ReadOnly, "version"];

    public static OperationInput Read(JsonElement body, WriteMode mode, Errors errors, bool batchItem = false)
    {
        var fields = new FieldReader(body, Writable, batchItem ? ReadOnlyInBatch : ReadOnly, errors);
        var required = mode != WriteMode.Patch;
        return new(
            fields.Text("device_id", 64, required, nullable: false),
            fields.Slug("operation_type", required),
            fields.Choice("status", OperationStatus.All, required: mode == WriteMode.Replace),
            fields.Text("operator_id", 64),
            fields.Text("description", 2_000),
            fields.Text("notes", 10_000),
            fields.Timestamp("started_at"),
            fields.Timestamp("completed_at"),
            DeviceEffects.Read(fields),
            fields.Text("justification", 2_000).Value);
    }

    /// <summary>
    /// For a PUT, absent descriptive fields are cleared: PUT replaces. <c>started_at</c> and
    /// <c>completed_at</c> are kept when absent, because the server may have stamped them and a
    /// client replacing the description must not erase when the work happened.
    /// </summary>
    public OperationInput AsReplacement() => this with
    {
        OperatorId = OperatorId.IsSet ? OperatorId : new(true, null),
        Description = Description.IsSet ? Description : new(true, null),
        Notes = Notes.IsSet ? Notes : new(true, null),
    };
}

public sealed record OperationResponse(
    int Id,
    string OperationType,
    string Status,
    string DeviceId,
    string? OperatorId,
    string? Description,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    string? Notes,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    string DeviceName,
    string SerialNumber,
    string DeviceType,
    string OperationalStatus,
    string? Location,
    string? AssignedUser,
    string Organization,
    StoredJson Configuration,
    string? MaintenanceNotes,
    DateTime? NextMaintenance,
    DateTime LastUpdated,
    string UpdatedBy,
    [property: JsonConverter(typeof(EmbeddedHistory))] IReadOnlyList<HistoryEntryResponse>? OperationalHistory);

public static class OperationMapping
{
    /// <summary>The union the seed shows: the operation, the device view and, for one operation, the latest history.</summary>
    public static OperationResponse ToResponse(this DeviceOperation operation, IReadOnlyList<HistoryEntryResponse>? history)
    {
        var device = operation.Device;
        return new(operation.Id, operation.OperationType, operation.Status, device.DeviceCode, operation.OperatorId,
            operation.Description, operation.StartedAt, operation.CompletedAt, operation.Notes, operation.CreatedAt,
            operation.UpdatedAt, device.Name, device.SerialNumber, device.DeviceType, device.Status, device.Location,
            device.AssignedUser, device.Organization.Name, new StoredJson(device.Configuration), device.MaintenanceNotes,
            device.NextMaintenance, device.LastUpdated, device.UpdatedBy, history);
    }

    /// <summary>Changes when the operation or its device changes, since a response shows both.</summary>
    public static string ETag(this DeviceOperation operation) => $"\"{operation.Version}-{operation.Device.Version}\"";
}

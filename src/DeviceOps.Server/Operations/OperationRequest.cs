using System.Text.Json.Serialization;

namespace DeviceOps.Operations;

/// <summary>
/// The body of POST, PUT and PATCH on an operation, as the OpenAPI document shows it. Bodies are
/// validated field by field by <see cref="OperationInput"/>; this record only describes them.
/// </summary>
public sealed record OperationRequest(
    [property: JsonPropertyName("device_id")] string DeviceId,
    [property: JsonPropertyName("operation_type")] string OperationType,
    [property: JsonPropertyName("status")] string? Status,
    [property: JsonPropertyName("operator_id")] string? OperatorId,
    [property: JsonPropertyName("description")] string? Description,
    [property: JsonPropertyName("started_at")] DateTime? StartedAt,
    [property: JsonPropertyName("completed_at")] DateTime? CompletedAt,
    [property: JsonPropertyName("notes")] string? Notes,
    [property: JsonPropertyName("operational_status")] string? OperationalStatus,
    [property: JsonPropertyName("location")] string? Location,
    [property: JsonPropertyName("assigned_user")] string? AssignedUser,
    [property: JsonPropertyName("configuration")] Dictionary<string, object?>? Configuration,
    [property: JsonPropertyName("maintenance_notes")] string? MaintenanceNotes,
    [property: JsonPropertyName("next_maintenance")] DateTime? NextMaintenance,
    [property: JsonPropertyName("justification")] string? Justification);

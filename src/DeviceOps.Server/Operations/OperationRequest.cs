using System.Text.Json.Serialization;

namespace DeviceOps.Operations;

/// <summary>
/// The body of POST, PUT and PATCH on an operation, as the OpenAPI document shows it. Bodies are
/// validated field by field by <see cref="OperationInput"/>; this record only describes them.
/// </summary>
public sealed record OperationRequest(
    [property: JsonPropertyName("device_id")] string DeviceId,
    [property: JsonPropertyName("operation_type")] string OperationType,
    [property: JsonPropertyName("status")] string? Status = null,
    [property: JsonPropertyName("operator_id")] string? OperatorId = null,
    [property: JsonPropertyName("description")] string? Description = null,
    [property: JsonPropertyName("started_at")] DateTime? StartedAt = null,
    [property: JsonPropertyName("completed_at")] DateTime? CompletedAt = null,
    [property: JsonPropertyName("notes")] string? Notes = null,
    [property: JsonPropertyName("operational_status")] string? OperationalStatus = null,
    [property: JsonPropertyName("location")] string? Location = null,
    [property: JsonPropertyName("assigned_user")] string? AssignedUser = null,
    [property: JsonPropertyName("configuration")] Dictionary<string, object?>? Configuration = null,
    [property: JsonPropertyName("maintenance_notes")] string? MaintenanceNotes = null,
    [property: JsonPropertyName("next_maintenance")] DateTime? NextMaintenance = null,
    [property: JsonPropertyName("justification")] string? Justification = null);

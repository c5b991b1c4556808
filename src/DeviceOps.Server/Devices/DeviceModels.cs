using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceOps.History;
using DeviceOps.Http;

namespace DeviceOps.Devices;

/// <summary>A validated device request.</summary>
public sealed record DeviceInput(
    Optional<string?> DeviceId,
    Optional<string?> DeviceName,
    Optional<string?> SerialNumber,
    Optional<string?> DeviceType,
    Optional<JsonElement> Organization,
    DeviceEffects Effects,
    string? Justification)
{
    private static readonly HashSet<string> Writable =
        ["device_id", "device_name", "serial_number", "device_type", "organization", "justification", .. DeviceEffects.Fields];

    private static readonly HashSet<string> ReadOnly = ["id", "created_at", "last_updated", "updated_by", "operational_history"];

    private static readonly HashSet<string> ReadOnlyInBatch = [.. ReadOnly, "version"];

    public static DeviceInput Read(JsonElement body, Operations.WriteMode mode, Errors errors, bool batchItem = false)
    {
        var fields = new FieldReader(body, Writable, batchItem ? ReadOnlyInBatch : ReadOnly, errors);
        var required = mode != Operations.WriteMode.Patch;
        var organization = fields.Element("organization", required, nullable: false);
        if (organization is { IsSet: true, Value.ValueKind: not (JsonValueKind.String or JsonValueKind.Number) })
        {
            fields.Fail("organization", "Must be an organization's name or id.");
        }
        else if (organization is { IsSet: true, Value.ValueKind: JsonValueKind.String } && FieldReader.HasNul(organization.Value.GetString()!))
        {
            // Looked up by name: PostgreSQL refuses the NUL as it binds the statement, a 500.
            fields.Fail("organization", FieldReader.NulMessage);
        }
        return new(
            fields.Text("device_id", 64, required: mode == Operations.WriteMode.Create, nullable: false),
            fields.Text("device_name", 200, required, nullable: false),
            fields.Text("serial_number", 100, required, nullable: false),
            fields.Slug("device_type", required),
            organization,
            DeviceEffects.Read(fields, statusRequired: mode == Operations.WriteMode.Replace),
            fields.Text("justification", 2_000).Value);
    }

    /// <summary>
    /// For a PUT, absent optional fields are cleared and an absent configuration is empty: PUT
    /// replaces the device's description. Use PATCH to change some fields only.
    /// </summary>
    public DeviceInput AsReplacement() => this with
    {
        Effects = Effects with
        {
            Location = Effects.Location.IsSet ? Effects.Location : new(true, null),
            AssignedUser = Effects.AssignedUser.IsSet ? Effects.AssignedUser : new(true, null),
            Configuration = Effects.Configuration.IsSet ? Effects.Configuration : new(true, []),
            MaintenanceNotes = Effects.MaintenanceNotes.IsSet ? Effects.MaintenanceNotes : new(true, null),
            NextMaintenance = Effects.NextMaintenance.IsSet ? Effects.NextMaintenance : new(true, null),
        },
    };
}

public sealed record DeviceResponse(
    int Id,
    string DeviceId,
    string DeviceName,
    string SerialNumber,
    string DeviceType,
    string Organization,
    string OperationalStatus,
    string? Location,
    string? AssignedUser,
    StoredJson Configuration,
    string? MaintenanceNotes,
    DateTime? NextMaintenance,
    DateTime CreatedAt,
    DateTime LastUpdated,
    string UpdatedBy,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonConverter(typeof(EmbeddedHistory))]
    IReadOnlyList<HistoryEntryResponse>? OperationalHistory);

/// <summary>Device counts the token may see; <c>ByStatus</c> names every status, with 0 where none.</summary>
public sealed record DeviceSummary(int Total, IReadOnlyDictionary<string, int> ByStatus, int MaintenanceOverdue,
    IReadOnlyList<OrganizationSummary> Organizations, DateTime AsOf);

public sealed record OrganizationSummary(string Organization, int Total, IReadOnlyDictionary<string, int> ByStatus, int MaintenanceOverdue);

public static class DeviceMapping
{
    public static DeviceResponse ToResponse(this Device device, IReadOnlyList<HistoryEntryResponse>? history) =>
        new(device.Id, device.DeviceCode, device.Name, device.SerialNumber, device.DeviceType, device.Organization.Name,
            device.Status, device.Location, device.AssignedUser, new StoredJson(device.Configuration), device.MaintenanceNotes,
            device.NextMaintenance, device.CreatedAt, device.LastUpdated, device.UpdatedBy, history);

    public static string ETag(this Device device) => $"\"{device.Version}\"";
}

/// <summary>The body of POST, PUT and PATCH on a device, as the OpenAPI document shows it.</summary>
public sealed record DeviceRequest(
    [property: JsonPropertyName("device_id")] string DeviceId,
    [property: JsonPropertyName("device_name")] string DeviceName,
    [property: JsonPropertyName("serial_number")] string SerialNumber,
    [property: JsonPropertyName("device_type")] string DeviceType,
    [property: JsonPropertyName("organization")] string Organization,
    [property: JsonPropertyName("operational_status")] string? OperationalStatus = null,
    [property: JsonPropertyName("location")] string? Location = null,
    [property: JsonPropertyName("assigned_user")] string? AssignedUser = null,
    [property: JsonPropertyName("configuration")] Dictionary<string, object?>? Configuration = null,
    [property: JsonPropertyName("maintenance_notes")] string? MaintenanceNotes = null,
    [property: JsonPropertyName("next_maintenance")] DateTime? NextMaintenance = null,
    [property: JsonPropertyName("justification")] string? Justification = null);

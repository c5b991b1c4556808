using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace DeviceOps.Client;

/// <summary>One page of a list, in Django REST Framework's shape.</summary>
public sealed record Page<T>(int Count, string? Next, string? Previous, IReadOnlyList<T> Results);

/// <summary>The answer of a batch call: every item's result, in the order sent.</summary>
public sealed record BatchResult<T>(int Count, IReadOnlyList<T> Results)
{
    /// <summary>True when the server answered a retried request from its idempotency store instead of applying it again.</summary>
    [JsonIgnore]
    public bool Replayed { get; init; }
}

/// <summary>A device of the inventory.</summary>
public sealed record Device(
    int Id,
    string DeviceId,
    string DeviceName,
    string SerialNumber,
    string DeviceType,
    string Organization,
    string OperationalStatus,
    string? Location,
    string? AssignedUser,
    JsonObject? Configuration,
    string? MaintenanceNotes,
    DateTimeOffset? NextMaintenance,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdated,
    string UpdatedBy,
    IReadOnlyList<HistoryEntry>? OperationalHistory)
{
    /// <summary>The response's ETag, for If-Match on a later write.</summary>
    [JsonIgnore]
    public string? ETag { get; init; }
}

/// <summary>An operation with its device view (and, for one operation, the device's latest history).</summary>
public sealed record Operation(
    int Id,
    string OperationType,
    string Status,
    string DeviceId,
    string? OperatorId,
    string? Description,
    DateTimeOffset? StartedAt,
    DateTimeOffset? CompletedAt,
    string? Notes,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string DeviceName,
    string SerialNumber,
    string DeviceType,
    string OperationalStatus,
    string? Location,
    string? AssignedUser,
    string Organization,
    JsonObject? Configuration,
    string? MaintenanceNotes,
    DateTimeOffset? NextMaintenance,
    DateTimeOffset LastUpdated,
    string UpdatedBy,
    IReadOnlyList<HistoryEntry>? OperationalHistory)
{
    /// <summary>The response's ETag, for If-Match on a later write.</summary>
    [JsonIgnore]
    public string? ETag { get; init; }
}

/// <summary>One entry of a device's append-only operational history.</summary>
public sealed record HistoryEntry(
    long Id,
    DateTimeOffset Timestamp,
    string Action,
    string? FromStatus,
    string? ToStatus,
    string PerformedBy,
    string DeviceId,
    int? OperationId,
    JsonObject? Changes,
    string RequestId,
    string? Justification);

/// <summary>An API token; <see cref="Token"/> (the secret) is only present in the creation response.</summary>
public sealed record ApiToken(
    int Id,
    string User,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> Organizations,
    DateTimeOffset? ExpiresAt,
    int? RateLimitPerMinute,
    string? Description,
    DateTimeOffset CreatedAt,
    string CreatedBy,
    string? Hint,
    DateTimeOffset? RevokedAt,
    string? Token);

/// <summary>The body of POST /api/v1/token/.</summary>
public sealed record TokenRequest(
    string User,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string>? Organizations = null,
    DateTimeOffset? ExpiresAt = null,
    int? RateLimitPerMinute = null,
    string? Description = null);

/// <summary>
/// The body of a device POST/PATCH. Null properties are not sent, so a PATCH changes only what
/// is set; to clear a field, send a <see cref="JsonObject"/> body through the untyped overloads.
/// </summary>
public sealed record DeviceWrite(
    string? DeviceId = null,
    string? DeviceName = null,
    string? SerialNumber = null,
    string? DeviceType = null,
    string? Organization = null,
    string? OperationalStatus = null,
    string? Location = null,
    string? AssignedUser = null,
    JsonObject? Configuration = null,
    string? MaintenanceNotes = null,
    DateTimeOffset? NextMaintenance = null,
    string? Justification = null);

/// <summary>
/// The body of an operation POST/PUT/PATCH: the operation's own fields and the device effect
/// fields. Null properties are not sent.
/// </summary>
public sealed record OperationWrite(
    string? DeviceId = null,
    string? OperationType = null,
    string? Status = null,
    string? OperatorId = null,
    string? Description = null,
    string? Notes = null,
    DateTimeOffset? StartedAt = null,
    DateTimeOffset? CompletedAt = null,
    string? OperationalStatus = null,
    string? Location = null,
    string? AssignedUser = null,
    JsonObject? Configuration = null,
    string? MaintenanceNotes = null,
    DateTimeOffset? NextMaintenance = null,
    string? Justification = null);

/// <summary>One organization.</summary>
public sealed record Organization(int Id, string Name);

/// <summary>
/// A change event of the feed and the live stream. <see cref="Cursor"/> is its position: pass it as
/// <c>after</c> to continue behind it. <see cref="From"/> and <see cref="To"/> are set when the
/// change touched one field; <see cref="Changes"/> has every field's from and to.
/// </summary>
public sealed record ChangeEvent(
    Guid Id,
    string Cursor,
    string Type,
    DateTimeOffset OccurredAt,
    string DeviceId,
    int? OperationId,
    string? RequestId,
    string? PerformedBy,
    JsonNode? From,
    JsonNode? To,
    JsonObject? Changes,
    string? Justification);

/// <summary>A page of the pull feed: the events, the cursor to continue from, and whether more are waiting.</summary>
public sealed record EventPage(IReadOnlyList<ChangeEvent> Results, string Cursor, string? Next, bool HasMore);

/// <summary>Snake_case JSON for every request and response, source-generated (no reflection, trimmable).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, NumberHandling = JsonNumberHandling.Strict,
    Converters = [typeof(Rfc3339Converter)])]
[JsonSerializable(typeof(Device))]
[JsonSerializable(typeof(Page<Device>))]
[JsonSerializable(typeof(Operation))]
[JsonSerializable(typeof(Page<Operation>))]
[JsonSerializable(typeof(BatchResult<Operation>))]
[JsonSerializable(typeof(BatchResult<Device>))]
[JsonSerializable(typeof(HistoryEntry))]
[JsonSerializable(typeof(Page<HistoryEntry>))]
[JsonSerializable(typeof(ApiToken))]
[JsonSerializable(typeof(Page<ApiToken>))]
[JsonSerializable(typeof(TokenRequest))]
[JsonSerializable(typeof(DeviceWrite))]
[JsonSerializable(typeof(OperationWrite))]
[JsonSerializable(typeof(Organization))]
[JsonSerializable(typeof(Page<Organization>))]
[JsonSerializable(typeof(ChangeEvent))]
[JsonSerializable(typeof(EventPage))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(JsonArray))]
public sealed partial class DeviceOpsJsonContext : JsonSerializerContext
{
}

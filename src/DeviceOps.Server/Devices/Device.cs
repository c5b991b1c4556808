using System.Text.Json;
using System.Text.Json.Nodes;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Operations;
using DeviceOps.Organizations;

namespace DeviceOps.Devices;

/// <summary>
/// A device of the inventory. Every change goes through a method named for its intent, which
/// checks the rule, makes the change and appends the history entry; setters stay private.
/// </summary>
public sealed class Device
{
    /// <summary>Largest stored configuration, after a merge.</summary>
    public const int MaxConfigurationBytes = 16 * 1024;

    private ChangeContext? _touchedBy;

    private Device()
    {
    }

    public int Id { get; private set; }
    public string DeviceCode { get; private set; } = "";
    public string Name { get; private set; } = "";
    public string SerialNumber { get; private set; } = "";
    public string DeviceType { get; private set; } = "";
    public int OrganizationId { get; private set; }
    public Organization Organization { get; private set; } = null!;
    public string Status { get; private set; } = DeviceStatus.Provisioning;
    public string? Location { get; private set; }
    public string? AssignedUser { get; private set; }
    public string Configuration { get; private set; } = "{}";
    public string? MaintenanceNotes { get; private set; }
    public DateTime? NextMaintenance { get; private set; }
    public DateTime CreatedAt { get; private set; }
    public DateTime LastUpdated { get; private set; }
    public string UpdatedBy { get; private set; } = "";
    public DateTime? DeletedAt { get; private set; }

    /// <summary>Incremented by every change; the device's ETag.</summary>
    public int Version { get; private set; }

    /// <summary>A device as the store holds it, read by a hot path without EF Core.</summary>
    internal static Device Restore(int id, string code, string name, string serial, string type, Organization organization,
        string status, string? location, string? assignedUser, string configuration, string? maintenanceNotes,
        DateTime? nextMaintenance, DateTime createdAt, DateTime lastUpdated, string updatedBy, int version) => new()
        {
            Id = id,
            DeviceCode = code,
            Name = name,
            SerialNumber = serial,
            DeviceType = type,
            OrganizationId = organization.Id,
            Organization = organization,
            Status = status,
            Location = location,
            AssignedUser = assignedUser,
            Configuration = configuration,
            MaintenanceNotes = maintenanceNotes,
            NextMaintenance = nextMaintenance,
            CreatedAt = createdAt,
            LastUpdated = lastUpdated,
            UpdatedBy = updatedBy,
            Version = version,
        };

    /// <summary>Registers a device and writes its <c>created</c> history entry.</summary>
    public static Device Register(string code, string name, string serial, string type, Organization organization,
        string status, ChangeContext change)
    {
        var device = new Device
        {
            DeviceCode = code,
            Name = name,
            SerialNumber = serial,
            DeviceType = type,
            Organization = organization,
            Status = status,
            CreatedAt = change.Now,
        };
        var changes = new JsonObject
        {
            ["device_id"] = Diff(null, code),
            ["device_name"] = Diff(null, name),
            ["serial_number"] = Diff(null, serial),
            ["device_type"] = Diff(null, type),
            ["organization"] = Diff(null, organization.Name),
            ["operational_status"] = Diff(null, status),
        };
        device.Record(change, HistoryEntry.Create(device, null, HistoryActions.Created, changes, change, null, status));
        return device;
    }

    /// <summary>
    /// Moves the device to another operational status. Same status is no change and leaves no
    /// entry; a move the rules forbid is refused unless the change may override it.
    /// </summary>
    public void ChangeStatus(string to, ChangeContext change, DeviceOperation? operation = null)
    {
        if (to == Status)
        {
            return;
        }
        if (!DeviceStatus.CanMove(Status, to) && !change.CanOverride)
        {
            change.Refuse("operational_status", Status, to, DeviceStatus.AllowedFrom(Status));
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.StatusChange,
            HistoryEntry.Diff("operational_status", Status, to), change, Status, to));
        Status = to;
    }

    public void Relocate(string? location, ChangeContext change, DeviceOperation? operation = null)
    {
        if (location == Location)
        {
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.Relocation,
            HistoryEntry.Diff("location", Location, location), change));
        Location = location;
    }

    public void Reassign(string? user, ChangeContext change, DeviceOperation? operation = null)
    {
        if (user == AssignedUser)
        {
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.AssignmentChange,
            HistoryEntry.Diff("assigned_user", AssignedUser, user), change));
        AssignedUser = user;
    }

    public void UpdateMaintenanceNotes(string? notes, ChangeContext change, DeviceOperation? operation = null)
    {
        if (notes == MaintenanceNotes)
        {
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.MaintenanceUpdate,
            HistoryEntry.Diff("maintenance_notes", MaintenanceNotes, notes), change));
        MaintenanceNotes = notes;
    }

    public void ScheduleMaintenance(DateTime? next, ChangeContext change, DeviceOperation? operation = null)
    {
        if (next == NextMaintenance)
        {
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.MaintenanceUpdate,
            HistoryEntry.Diff("next_maintenance", Rfc3339.Node(NextMaintenance), Rfc3339.Node(next)), change));
        NextMaintenance = next;
    }

    /// <summary>
    /// Applies a configuration: merged key by key (a null value removes the key) or, for a
    /// replacement, taken whole. One <c>configuration_change</c> entry lists every key that
    /// changed as <c>configuration.KEY</c>.
    /// </summary>
    public void Configure(JsonObject given, bool merge, ChangeContext change, DeviceOperation? operation = null)
    {
        var current = ConfigurationObject();
        var next = merge ? (JsonObject)current.DeepClone() : [];
        foreach (var (key, value) in given)
        {
            if (value is null)
            {
                next.Remove(key);
            }
            else
            {
                next[key] = value.DeepClone();
            }
        }

        var changes = new JsonObject();
        foreach (var key in current.Select(p => p.Key).Union(next.Select(p => p.Key)))
        {
            current.TryGetPropertyValue(key, out var before);
            next.TryGetPropertyValue(key, out var after);
            if (!SameValue(before, after))
            {
                changes[$"configuration.{key}"] = Diff(before?.DeepClone(), after?.DeepClone());
            }
        }
        if (changes.Count == 0)
        {
            return;
        }

        var json = next.ToJsonString();
        if (next.Count > ConfigurationRules.MaxKeys || json.Length > MaxConfigurationBytes)
        {
            change.Errors.Add("configuration",
                $"The resulting configuration must have at most {ConfigurationRules.MaxKeys} keys and {MaxConfigurationBytes} bytes.");
            return;
        }
        Record(change, HistoryEntry.Create(this, operation, HistoryActions.ConfigurationChange, changes, change));
        Configuration = json;
    }

    /// <summary>
    /// JSON equality that never throws: System.Text.Json compares numbers by their digits and
    /// throws on an exponent past an int's range (<c>0e99999999999</c>), which values stored
    /// before such numbers were refused may hold; those compare as text.
    /// </summary>
    private static bool SameValue(JsonNode? before, JsonNode? after)
    {
        try
        {
            return JsonNode.DeepEquals(before, after);
        }
        catch (ArgumentOutOfRangeException)
        {
            return before?.ToJsonString() == after?.ToJsonString();
        }
    }

    /// <summary>Changes what the device is: its name, serial number, type or organization.</summary>
    public void Describe(string? name, string? serial, string? type, Organization? organization, ChangeContext change)
    {
        var changes = new JsonObject();
        if (name is not null && name != Name)
        {
            changes["device_name"] = Diff(Name, name);
            Name = name;
        }
        if (serial is not null && serial != SerialNumber)
        {
            changes["serial_number"] = Diff(SerialNumber, serial);
            SerialNumber = serial;
        }
        if (type is not null && type != DeviceType)
        {
            changes["device_type"] = Diff(DeviceType, type);
            DeviceType = type;
        }
        if (organization is not null && organization.Id != OrganizationId)
        {
            changes["organization"] = Diff(Organization.Name, organization.Name);
            Organization = organization;
        }
        if (changes.Count > 0)
        {
            Record(change, HistoryEntry.Create(this, null, HistoryActions.DeviceUpdate, changes, change));
        }
    }

    /// <summary>
    /// Removes a decommissioned device from the inventory. Its row and history stay, so the
    /// audit trail of a device outlives the device.
    /// </summary>
    public bool Delete(ChangeContext change)
    {
        if (Status != DeviceStatus.Decommissioned)
        {
            change.Refuse("operational_status", Status, "deleted", []);
            return false;
        }
        Record(change, HistoryEntry.Create(this, null, HistoryActions.Deleted, HistoryEntry.Diff("deleted", false, true), change));
        DeletedAt = change.Now;
        return true;
    }

    public JsonObject ConfigurationObject() => JsonNode.Parse(Configuration)?.AsObject() ?? [];

    private static JsonObject Diff(JsonNode? from, JsonNode? to) => new() { ["from"] = from, ["to"] = to };

    private void Record(ChangeContext change, HistoryEntry entry)
    {
        change.Entries.Add(entry);
        if (_touchedBy != change)
        {
            _touchedBy = change;
            Version++;
            LastUpdated = change.Now;
            UpdatedBy = change.Actor;
        }
    }
}

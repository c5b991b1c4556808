using System.Text.Json.Nodes;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Operations;

namespace DeviceOps.Devices;

/// <summary>
/// The device fields a request may change — on the device itself or through one of its
/// operations. Absent fields leave the device as it is.
/// </summary>
public sealed record DeviceEffects(
    Optional<string?> OperationalStatus,
    Optional<string?> Location,
    Optional<string?> AssignedUser,
    Optional<JsonObject?> Configuration,
    Optional<string?> MaintenanceNotes,
    Optional<DateTime?> NextMaintenance)
{
    public static readonly string[] Fields =
        ["operational_status", "location", "assigned_user", "configuration", "maintenance_notes", "next_maintenance"];

    public static DeviceEffects Read(FieldReader fields, bool statusRequired = false)
    {
        var configuration = fields.Element("configuration", nullable: false);
        return new(
            fields.Choice("operational_status", DeviceStatus.All, required: statusRequired),
            fields.Text("location", 200),
            fields.Email("assigned_user"),
            configuration.IsSet ? new(true, ConfigurationRules.Read(configuration.Value, "configuration", fields.Errors)) : default,
            fields.Text("maintenance_notes", 10_000),
            fields.Timestamp("next_maintenance"));
    }

    /// <summary>
    /// Applies the given fields to the device, each through its intent method so each change
    /// leaves its own history entry. The status goes last, so its entry is the newest.
    /// </summary>
    public void ApplyTo(Device device, ChangeContext change, DeviceOperation? operation, bool mergeConfiguration)
    {
        if (Location.IsSet)
        {
            device.Relocate(Location.Value, change, operation);
        }
        if (AssignedUser.IsSet)
        {
            device.Reassign(AssignedUser.Value, change, operation);
        }
        if (Configuration is { IsSet: true, Value: { } configuration })
        {
            device.Configure(configuration, mergeConfiguration, change, operation);
        }
        if (MaintenanceNotes.IsSet)
        {
            device.UpdateMaintenanceNotes(MaintenanceNotes.Value, change, operation);
        }
        if (NextMaintenance.IsSet)
        {
            device.ScheduleMaintenance(NextMaintenance.Value, change, operation);
        }
        if (OperationalStatus is { IsSet: true, Value: { } status })
        {
            device.ChangeStatus(status, change, operation);
        }
    }
}

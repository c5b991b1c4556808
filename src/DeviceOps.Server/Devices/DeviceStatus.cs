namespace DeviceOps.Devices;

/// <summary>The operational status of a device and the moves allowed between them.</summary>
public static class DeviceStatus
{
    public const string Provisioning = "provisioning";
    public const string Active = "active";
    public const string Maintenance = "maintenance";
    public const string Inactive = "inactive";
    public const string Decommissioned = "decommissioned";

    public static readonly string[] All = [Provisioning, Active, Maintenance, Inactive, Decommissioned];

    private static readonly Dictionary<string, string[]> Next = new()
    {
        [Provisioning] = [Active, Decommissioned],
        [Active] = [Maintenance, Inactive, Decommissioned],
        [Maintenance] = [Active, Inactive, Decommissioned],
        [Inactive] = [Active, Maintenance, Decommissioned],
        [Decommissioned] = [],
    };

    /// <summary>
    /// The statuses a device may move to in one change. Unlike operations, a device takes only
    /// direct arrows: a device in provisioning that goes to maintenance would claim it had
    /// been active, which nobody recorded.
    /// </summary>
    public static IReadOnlyList<string> AllowedFrom(string from) => Next.TryGetValue(from, out var next) ? next : [];

    public static bool CanMove(string from, string to) => AllowedFrom(from).Contains(to);
}

using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Devices;
using DeviceOps.History;
using DeviceOps.Http;
using DeviceOps.Organizations;

namespace DeviceOps.Operations;

/// <summary>
/// One operation, its device and the device's latest history, read and written in plain SQL:
/// the hot paths of GET, PUT and PATCH on one operation (<see cref="SqlStore"/> says why). The
/// rules stay in the entities; this only loads them and stores what they changed.
/// </summary>
public static class OperationRows
{
    private const string LoadSql = """
        SELECT o.id, o.operation_type, o.status, o.operator_id, o.description, o.notes, o.started_at, o.completed_at,
               o.created_at, o.updated_at, o.created_by, o.version,
               d.id, d.device_code, d.name, d.serial_number, d.device_type, d.status, d.location, d.assigned_user,
               d.configuration, d.maintenance_notes, d.next_maintenance, d.created_at, d.last_updated, d.updated_by, d.version,
               g.id, g.name
        FROM operations o JOIN devices d ON d.id = o.device_id JOIN organizations g ON g.id = d.organization_id
        WHERE o.id = $1 AND d.deleted_at IS NULL
        """;

    /// <summary>
    /// PostgreSQL: the device's row lock, taken before the operation is read. Every write of an
    /// operation or its device takes it first, so concurrent requests apply one after the other.
    /// (On SQLite the one writer's transaction is the lock.)
    /// </summary>
    private const string LockSql = "SELECT 1 FROM devices WHERE id = (SELECT device_id FROM operations WHERE id = $1) FOR UPDATE";

    /// <summary>The columns <see cref="ReadHistoryAsync"/> reads, in its order.</summary>
    private const string HistoryColumns =
        "id, timestamp, action, from_status, to_status, performed_by, operation_id, changes, request_id, justification";

    private const string HistorySql = $"SELECT {HistoryColumns} FROM history WHERE device_id = $1 ORDER BY id DESC LIMIT 20";

    private const string HistoryOfOperationDeviceSql =
        $"SELECT {HistoryColumns} FROM history WHERE device_id = (SELECT device_id FROM operations WHERE id = $1) ORDER BY id DESC LIMIT 20";

    private const string UpdateOperationSql = """
        UPDATE operations SET operation_type = $2, status = $3, operator_id = $4, description = $5, notes = $6,
               started_at = $7, completed_at = $8, updated_at = $9, version = $10
        WHERE id = $1
        """;

    private const string UpdateDeviceSql = """
        UPDATE devices SET status = $2, location = $3, assigned_user = $4, configuration = $5, maintenance_notes = $6,
               next_maintenance = $7, last_updated = $8, updated_by = $9, version = $10
        WHERE id = $1
        """;

    /// <summary>
    /// An operation with its device, as the caller may see it, and the device's latest history —
    /// read for a GET. On PostgreSQL both queries go in one round trip.
    /// </summary>
    public static async Task<(DeviceOperation? Operation, IReadOnlyList<HistoryEntryResponse> History)> ReadAsync(
        SqlSession session, int id, Caller caller, CancellationToken cancellationToken)
    {
        if (session.IsPostgres)
        {
            // The history query goes first, so a missing operation still costs one round trip.
            await session.QueueAsync(HistoryOfOperationDeviceSql, [id], cancellationToken);
            await using var rows = await session.QueryAsync(LoadSql, [id], cancellationToken, readQueued: true);
            var history = await ReadHistoryAsync(rows, null, cancellationToken);
            await rows.Reader.NextResultAsync(cancellationToken);
            var operation = await ReadOperationAsync(rows, caller, cancellationToken);
            return (operation, operation is null ? [] : WithCode(history, operation.Device.DeviceCode));
        }
        var found = await LoadAsync(session, id, caller, cancellationToken);
        return found is null ? (null, []) : (found, await LatestHistoryAsync(session, found.Device, cancellationToken));
    }

    /// <summary>Locks the operation's device (PostgreSQL) and reads the operation for a write.</summary>
    public static async Task<DeviceOperation?> LoadForWriteAsync(SqlSession session, int id, Caller caller, CancellationToken cancellationToken)
    {
        if (session.IsPostgres)
        {
            await session.QueueAsync(LockSql, [id], cancellationToken);
        }
        return await LoadAsync(session, id, caller, cancellationToken);
    }

    private static async Task<DeviceOperation?> LoadAsync(SqlSession session, int id, Caller caller, CancellationToken cancellationToken)
    {
        await using var rows = await session.QueryAsync(LoadSql, [id], cancellationToken);
        return await ReadOperationAsync(rows, caller, cancellationToken);
    }

    private static async Task<DeviceOperation?> ReadOperationAsync(SqlRows r, Caller caller, CancellationToken cancellationToken)
    {
        var reader = r.Reader;
        if (!await reader.ReadAsync(cancellationToken) || !caller.CanSee(reader.GetInt32(27)))
        {
            return null;
        }
        var organization = Organization.Restore(reader.GetInt32(27), reader.GetString(28));
        var device = Device.Restore(reader.GetInt32(12), reader.GetString(13), reader.GetString(14), reader.GetString(15),
            reader.GetString(16), organization, reader.GetString(17), r.Text(18), r.Text(19), reader.GetString(20), r.Text(21),
            r.Time(22), r.Utc(23), r.Utc(24), reader.GetString(25), reader.GetInt32(26));
        return DeviceOperation.Restore(reader.GetInt32(0), device, reader.GetString(1), reader.GetString(2), r.Text(3), r.Text(4),
            r.Text(5), r.Time(6), r.Time(7), r.Utc(8), r.Utc(9), reader.GetString(10), reader.GetInt32(11));
    }

    /// <summary>
    /// Stores what a request changed — the operation's and the device's columns, when their
    /// versions moved, and every history entry with its outbox event — and reads back the
    /// device's latest history for the answer: on PostgreSQL all of it in one round trip.
    /// </summary>
    public static async Task<IReadOnlyList<HistoryEntryResponse>> SaveAsync(SqlSession session, DeviceOperation operation,
        int operationVersion, int deviceVersion, IReadOnlyList<HistoryEntry> entries, CancellationToken cancellationToken)
    {
        if (operation.Version != operationVersion)
        {
            await session.QueueAsync(UpdateOperationSql, [operation.Id, operation.OperationType, operation.Status, operation.OperatorId,
                operation.Description, operation.Notes, operation.StartedAt, operation.CompletedAt, operation.UpdatedAt, operation.Version],
                cancellationToken);
        }
        var device = operation.Device;
        if (device.Version != deviceVersion)
        {
            await session.QueueAsync(UpdateDeviceSql, [device.Id, device.Status, device.Location, device.AssignedUser, device.Configuration,
                device.MaintenanceNotes, device.NextMaintenance, device.LastUpdated, device.UpdatedBy, device.Version],
                cancellationToken);
        }
        await AuditRows.QueueAsync(session, entries, cancellationToken);
        return await LatestHistoryAsync(session, device, cancellationToken);
    }

    private static async Task<IReadOnlyList<HistoryEntryResponse>> LatestHistoryAsync(SqlSession session, Device device, CancellationToken cancellationToken)
    {
        await using var rows = await session.QueryAsync(HistorySql, [device.Id], cancellationToken);
        return await ReadHistoryAsync(rows, device.DeviceCode, cancellationToken);
    }

    private static async Task<List<HistoryEntryResponse>> ReadHistoryAsync(SqlRows r, string? deviceCode, CancellationToken cancellationToken)
    {
        var entries = new List<HistoryEntryResponse>(HistoryMapping.EmbeddedEntries);
        var reader = r.Reader;
        while (await reader.ReadAsync(cancellationToken))
        {
            entries.Add(new HistoryEntryResponse(reader.GetInt64(0), r.Utc(1), reader.GetString(2), r.Text(3), r.Text(4),
                reader.GetString(5), deviceCode ?? "", r.Reference(6), new StoredJson(reader.GetString(7)), reader.GetString(8), r.Text(9)));
        }
        return entries;
    }

    private static List<HistoryEntryResponse> WithCode(List<HistoryEntryResponse> entries, string deviceCode) =>
        entries.ConvertAll(e => e with { DeviceId = deviceCode });
}

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
    private const string Columns = """
        SELECT o.id, o.operation_type, o.status, o.operator_id, o.description, o.notes, o.started_at, o.completed_at,
               o.created_at, o.updated_at, o.created_by, o.version,
               d.id, d.device_code, d.name, d.serial_number, d.device_type, d.status, d.location, d.assigned_user,
               d.configuration, d.maintenance_notes, d.next_maintenance, d.created_at, d.last_updated, d.updated_by, d.version,
               g.id, g.name
        """;

    private const string From = " FROM operations o JOIN devices d ON d.id = o.device_id JOIN organizations g ON g.id = d.organization_id";

    private const string SelectSql = Columns + From;

    private const string LoadSql = SelectSql + " WHERE o.id = $1 AND d.deleted_at IS NULL";

    /// <summary>The id of the operation's device's newest history entry (<see cref="LatestHistory"/>), as column 29.</summary>
    private const string NewestEntry = ", (SELECT max(h.id) FROM history h WHERE h.device_id = d.id)";

    /// <summary>The same with the device's newest entry.</summary>
    private const string LoadWithNewestEntrySql = Columns + NewestEntry + From + " WHERE o.id = $1 AND d.deleted_at IS NULL";

    /// <summary>Ids a batch reads per statement; the last statement repeats its last id to fill it, so one prepared statement serves all.</summary>
    private const int LoadManyChunk = 500;

    private static readonly string LoadManySql =
        $"{SelectSql} WHERE o.id IN ({string.Join(", ", Enumerable.Range(1, LoadManyChunk).Select(i => $"${i}"))}) AND d.deleted_at IS NULL";

    /// <summary>PostgreSQL: a batch's device locks, in id order, so two batches cannot deadlock.</summary>
    private const string LockManySql =
        "SELECT 1 FROM devices WHERE id IN (SELECT device_id FROM operations WHERE id = ANY($1)) ORDER BY id FOR UPDATE";

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

    /// <summary>The device's latest history up to its entry <c>$2</c>.</summary>
    private const string HistoryUpToSql = $"SELECT {HistoryColumns} FROM history WHERE device_id = $1 AND id <= $2 ORDER BY id DESC LIMIT 20";

    /// <summary>
    /// An operation with its device, as the caller may see it, and the device's latest history —
    /// read for a GET: from <see cref="LatestHistory"/> when the device's newest entry, read with
    /// the operation, says it is current; else read, up to that entry, and kept. A pending
    /// <paramref name="check"/> of the caller's token goes in the same round trip, and nothing is
    /// read past it when it refuses the token.
    /// </summary>
    public static async Task<(DeviceOperation? Operation, IReadOnlyList<HistoryEntryResponse> History)> ReadAsync(
        SqlSession session, int id, Caller caller, RevocationCheck? check, LatestHistory latest, CancellationToken cancellationToken)
    {
        var (found, newest) = await LoadAsync(session, id, caller, withNewestEntry: true, check, cancellationToken);
        if (found is null || check?.Refusal is not null)
        {
            return (null, []);
        }
        return (found, latest.Find(found.Device.Id, found.Device.DeviceCode, newest)
            ?? await ReadHistoryUpToAsync(session, found.Device, newest, latest, cancellationToken));
    }

    /// <summary>
    /// The device's latest history up to its entry <paramref name="newest"/>, read when
    /// <see cref="LatestHistory"/> has none current, and kept there.
    /// </summary>
    public static async Task<KeptHistory> ReadHistoryUpToAsync(SqlSession session, Device device, long newest, LatestHistory latest,
        CancellationToken cancellationToken)
    {
        KeptHistory read;
        await using (var rows = await session.QueryAsync(HistoryUpToSql, [device.Id, newest], cancellationToken))
        {
            read = latest.Keep(await ReadHistoryAsync(rows, device.DeviceCode, cancellationToken));
        }
        latest.Add(device.Id, device.DeviceCode, newest, read);
        return read;
    }

    /// <summary>
    /// Locks the operation's device (PostgreSQL) and reads the operation for a write, with the id
    /// of the device's newest history entry on SQLite (0 on PostgreSQL).
    /// </summary>
    public static async Task<(DeviceOperation? Operation, long NewestEntry)> LoadForWriteAsync(SqlSession session, int id, Caller caller,
        CancellationToken cancellationToken)
    {
        if (session.IsPostgres)
        {
            await session.QueueAsync(LockSql, [id], cancellationToken);
        }
        return await LoadAsync(session, id, caller, withNewestEntry: !session.IsPostgres, check: null, cancellationToken);
    }

    private static async Task<(DeviceOperation? Operation, long NewestEntry)> LoadAsync(SqlSession session, int id, Caller caller,
        bool withNewestEntry, RevocationCheck? check, CancellationToken cancellationToken)
    {
        if (check is not null)
        {
            await session.QueueAsync(TokenCache.StateSql, [check.Hash], cancellationToken);
        }
        await using var rows = await session.QueryAsync(withNewestEntry ? LoadWithNewestEntrySql : LoadSql, [id], cancellationToken,
            readQueued: check is not null);
        if (check is not null)
        {
            await check.CompleteAsync(rows, cancellationToken);
            await rows.Reader.NextResultAsync(cancellationToken);
        }
        var operation = await ReadOperationAsync(rows, caller, cancellationToken);
        return (operation, operation is null || !withNewestEntry || rows.Reader.IsDBNull(29) ? 0 : rows.Reader.GetInt64(29));
    }

    private static async Task<DeviceOperation?> ReadOperationAsync(SqlRows r, Caller caller, CancellationToken cancellationToken)
    {
        if (!await r.Reader.ReadAsync(cancellationToken) || !caller.CanSee(r.Reader.GetInt32(27)))
        {
            return null;
        }
        return Restore(r, Device(r, null));
    }

    private static Device Device(SqlRows r, Organization? organization)
    {
        var reader = r.Reader;
        organization ??= Organization.Restore(reader.GetInt32(27), reader.GetString(28));
        return Devices.Device.Restore(reader.GetInt32(12), reader.GetString(13), reader.GetString(14), reader.GetString(15),
            reader.GetString(16), organization, reader.GetString(17), r.Text(18), r.Text(19), reader.GetString(20), r.Text(21),
            r.Time(22), r.Utc(23), r.Utc(24), reader.GetString(25), reader.GetInt32(26));
    }

    private static DeviceOperation Restore(SqlRows r, Device device)
    {
        var reader = r.Reader;
        return DeviceOperation.Restore(reader.GetInt32(0), device, reader.GetString(1), reader.GetString(2), r.Text(3), r.Text(4),
            r.Text(5), r.Time(6), r.Time(7), r.Utc(8), r.Utc(9), reader.GetString(10), reader.GetInt32(11));
    }

    /// <summary>
    /// Locks the devices of a batch's operations (PostgreSQL) and reads the operations the caller
    /// may see, as entities that share one <see cref="Devices.Device"/> per device, so a batch
    /// item sees what the items before it did to the device.
    /// </summary>
    public static async Task<OperationSet> LoadManyForWriteAsync(SqlSession session, IReadOnlyList<int> ids, Caller caller,
        CancellationToken cancellationToken)
    {
        if (session.IsPostgres)
        {
            await session.QueueAsync(LockManySql, [ids.ToArray()], cancellationToken);
        }
        var set = new OperationSet(ids.Count);
        var organizations = new Dictionary<int, Organization>();
        var values = new object?[LoadManyChunk];
        for (var start = 0; start < ids.Count; start += LoadManyChunk)
        {
            for (var i = 0; i < LoadManyChunk; i++)
            {
                values[i] = ids[Math.Min(start + i, ids.Count - 1)];
            }
            await using var rows = await session.QueryAsync(LoadManySql, values, cancellationToken);
            while (await rows.Reader.ReadAsync(cancellationToken))
            {
                var organizationId = rows.Reader.GetInt32(27);
                if (!caller.CanSee(organizationId) || set.Contains(rows.Reader.GetInt32(0)))
                {
                    continue;
                }
                if (!set.TryGetDevice(rows.Reader.GetInt32(12), out var device))
                {
                    if (!organizations.TryGetValue(organizationId, out var organization))
                    {
                        organizations[organizationId] = organization = Organization.Restore(organizationId, rows.Reader.GetString(28));
                    }
                    device = Device(rows, organization);
                }
                set.Add(Restore(rows, device));
            }
        }
        return set;
    }

    /// <summary>
    /// PostgreSQL: the operations of a group of requests, read in one statement, each by its own
    /// index lookups. Written as a join on <c>o.id = ANY($1)</c>, PostgreSQL's estimates made it
    /// hash every device to find a dozen (0.35 ms a group of 13 on 1,000 devices, against 0.09 ms
    /// looked up one by one, and growing with the fleet); the lateral subquery, which
    /// <c>OFFSET 0</c> keeps from being merged into the join, reads one operation per id whatever
    /// the estimates say.
    /// </summary>
    private const string LoadAnySql =
        "SELECT x.* FROM unnest($1::integer[]) AS r(id) CROSS JOIN LATERAL (" + Columns + NewestEntry + From
        + " WHERE o.id = r.id AND d.deleted_at IS NULL OFFSET 0) AS x";

    /// <summary>
    /// PostgreSQL, for <see cref="UpdateGroups"/>: locks the devices of the operations in id order
    /// and reads the operations, each with a device of its own (whoever may see them: each
    /// request's caller is checked by the group) and the id of its newest history entry, read
    /// under the lock, in one round trip — which also carries the requests' pending token
    /// <paramref name="checks"/>.
    /// </summary>
    public static Task<Dictionary<int, (DeviceOperation Operation, long NewestEntry)>> LoadGroupAsync(SqlSession session, int[] ids,
        IReadOnlyList<RevocationCheck> checks, CancellationToken cancellationToken) =>
        LoadAnyAsync(session, ids, checks, lockDevices: true, cancellationToken);

    /// <summary>
    /// PostgreSQL, for <see cref="ReadGroups"/>: the operations, each with a device of its own
    /// (whoever may see them: each request's caller is checked by its endpoint) and the id of its
    /// newest history entry, and the requests' pending token <paramref name="checks"/>, in one
    /// round trip and no transaction.
    /// </summary>
    public static Task<Dictionary<int, (DeviceOperation Operation, long NewestEntry)>> LoadGroupForReadAsync(SqlSession session, int[] ids,
        IReadOnlyList<RevocationCheck> checks, CancellationToken cancellationToken) =>
        LoadAnyAsync(session, ids, checks, lockDevices: false, cancellationToken);

    private static async Task<Dictionary<int, (DeviceOperation Operation, long NewestEntry)>> LoadAnyAsync(SqlSession session, int[] ids,
        IReadOnlyList<RevocationCheck> checks, bool lockDevices, CancellationToken cancellationToken)
    {
        ids = [.. ids.Distinct()];   // the lookups read a row per id given
        if (lockDevices)
        {
            await session.QueueAsync(LockManySql, [ids], cancellationToken);
        }
        await session.QueueAsync(LoadAnySql, [ids], cancellationToken);
        if (checks.Count > 0)
        {
            await session.QueueAsync(RevocationCheck.ManySql, [checks.Select(c => c.Hash).Distinct().ToArray()], cancellationToken);
        }
        var found = new Dictionary<int, (DeviceOperation, long)>(ids.Length);
        await using var rows = await session.QueryQueuedAsync(cancellationToken);
        if (lockDevices)
        {
            await rows.Reader.NextResultAsync(cancellationToken);   // past the locks
        }
        while (await rows.Reader.ReadAsync(cancellationToken))
        {
            found[rows.Reader.GetInt32(0)] = (Restore(rows, Device(rows, null)), rows.Reader.IsDBNull(29) ? 0 : rows.Reader.GetInt64(29));
        }
        if (checks.Count > 0)
        {
            await rows.Reader.NextResultAsync(cancellationToken);
            await RevocationCheck.CompleteAllAsync(rows, checks, cancellationToken);
        }
        return found;
    }

    /// <summary>
    /// PostgreSQL, for <see cref="UpdateGroups"/>: queues what a group's requests changed — the
    /// operations and devices whose columns moved, every history entry (answering its id) with
    /// its outbox event — as one statement each, columns passed as arrays, then the read of the
    /// latest history of the devices whose kept history (<see cref="LatestHistory"/>) is not
    /// current (<paramref name="unknownDevices"/>). <see cref="ReadGroupAsync"/> reads the answers.
    /// </summary>
    public static async Task QueueGroupSaveAsync(SqlSession session, IReadOnlyList<(DeviceOperation Operation, AsRead AsRead)> changed,
        IReadOnlyList<HistoryEntry> entries, int[] unknownDevices, CancellationToken cancellationToken)
    {
        var operations = new List<object?[]>(changed.Count);
        var devices = new List<object?[]>(changed.Count);
        foreach (var (operation, asRead) in changed)
        {
            if (Moved(asRead.Operation, Values(operation)) is { } o)
            {
                operations.Add([operation.Id, .. o]);
            }
            if (Moved(asRead.Device, Values(operation.Device)) is { } d)
            {
                devices.Add([operation.Device.Id, .. d]);
            }
        }
        await QueueUpdatesAsync(session, operations, devices, cancellationToken);
        await AuditRows.QueueManyAsync(session, entries, cancellationToken);
        if (unknownDevices.Length > 0)
        {
            await session.QueueAsync(GroupHistorySql, [unknownDevices], cancellationToken);
        }
    }

    /// <summary>PostgreSQL: queues the updates of whole operation and device rows (id first, then <see cref="Values(DeviceOperation)"/> or <see cref="Values(Device)"/>), one statement per table; each row once.</summary>
    private static async Task QueueUpdatesAsync(SqlSession session, List<object?[]> operations, List<object?[]> devices,
        CancellationToken cancellationToken)
    {
        if (operations.Count > 0)
        {
            await session.QueueAsync(UpdateOperationsSql, ArrayRows.ByColumn(operations, OperationTypes), cancellationToken);
        }
        if (devices.Count > 0)
        {
            await session.QueueAsync(UpdateDevicesSql, ArrayRows.ByColumn(devices, DeviceTypes), cancellationToken);
        }
    }

    /// <summary>
    /// The rows <see cref="QueueGroupSaveAsync"/> answers: the new entries' ids, in the order
    /// given, and the latest history of each device it read, by device id.
    /// </summary>
    public static async Task<(long[] EntryIds, Dictionary<int, List<HistoryEntryResponse>> History)> ReadGroupAsync(SqlRows r, int entries,
        IReadOnlyDictionary<int, string> unknownDevices, CancellationToken cancellationToken)
    {
        var reader = r.Reader;
        var ids = new long[entries];
        if (entries > 0)
        {
            for (var i = 0; i < entries; i++)
            {
                ids[i] = await reader.ReadAsync(cancellationToken) ? reader.GetInt64(0) : throw new InvalidOperationException("An entry's id is missing.");
            }
            await reader.NextResultAsync(cancellationToken);
        }
        var history = new Dictionary<int, List<HistoryEntryResponse>>(unknownDevices.Count);
        if (unknownDevices.Count > 0)
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var deviceId = reader.GetInt32(10);
                if (!history.TryGetValue(deviceId, out var list))
                {
                    history[deviceId] = list = new List<HistoryEntryResponse>(HistoryMapping.EmbeddedEntries);
                }
                list.Add(HistoryRow(r, unknownDevices[deviceId]));
            }
            await reader.NextResultAsync(cancellationToken);
        }
        return (ids, history);
    }

    /// <summary>Entries just written, as an answer shows them: <paramref name="count"/> from <paramref name="start"/>, with their ids.</summary>
    public static HistoryEntryResponse[] Written(IReadOnlyList<HistoryEntry> entries, int start, int count, IReadOnlyList<long> ids, string deviceCode)
    {
        var written = new HistoryEntryResponse[count];
        for (var i = 0; i < count; i++)
        {
            var e = entries[start + i];
            written[i] = new HistoryEntryResponse(ids[start + i], e.Timestamp, e.Action, e.FromStatus, e.ToStatus, e.PerformedBy, deviceCode,
                e.Operation?.Id ?? e.OperationId, new StoredJson(e.Changes), e.RequestId, e.Justification);
        }
        return written;
    }

    /// <summary>The row's writable columns if any moved since it was read; a group writes them all (PostgreSQL keeps an update HOT when no indexed value changes, whatever it sets).</summary>
    private static object?[]? Moved(object?[] before, object?[] after)
    {
        for (var i = 0; i < after.Length; i++)
        {
            if (!Equals(before[i], after[i]))
            {
                return after;
            }
        }
        return null;
    }

    private static readonly string[] OperationTypes = ["int", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "timestamptz", "int"];

    private static readonly string[] DeviceTypes = ["int", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "text", "int"];

    private static string UpdateMany(string table, string[] columns, string[] types) =>
        $"UPDATE {table} AS t SET {string.Join(", ", columns.Select((c, i) => $"{c} = v.c{i}"))}"
        + $" FROM {ArrayRows.Unnest(types)} AS v(id, {string.Join(", ", columns.Select((_, i) => $"c{i}"))}) WHERE t.id = v.id";

    private const string GroupHistorySql =
        $"SELECT h.* FROM unnest($1::int[]) AS v(device_id) CROSS JOIN LATERAL (SELECT {HistoryColumns}, device_id FROM history"
        + " WHERE history.device_id = v.device_id ORDER BY id DESC LIMIT 20) AS h";

    /// <summary>
    /// Stores what a batch changed to its operations and devices: every one whose version moved
    /// since <see cref="LoadManyForWriteAsync"/>. (On PostgreSQL their devices are locked already,
    /// so the order of the updates cannot deadlock.)
    /// </summary>
    public static async Task SaveManyAsync(SqlSession session, OperationSet set, CancellationToken cancellationToken)
    {
        if (session.IsPostgres)
        {
            // One statement per table, the rows as arrays, as the groups write: a 10,000-item batch
            // was 20,000 UPDATE statements with 200,000 parameters.
            List<object?[]> operations = [.. set.Operations.Where(o => o.Operation.Version != o.Version).Select(o => (object?[])[o.Operation.Id, .. Values(o.Operation)])];
            List<object?[]> devices = [.. set.Devices.Where(d => d.Device.Version != d.Version).Select(d => (object?[])[d.Device.Id, .. Values(d.Device)])];
            await QueueUpdatesAsync(session, operations, devices, cancellationToken);
            await session.FlushAsync(cancellationToken);
            return;
        }
        foreach (var (operation, version) in set.Operations)
        {
            if (operation.Version != version)
            {
                await QueueChangedAsync(session, "operations", OperationColumns, operation.Id, null, Values(operation), cancellationToken);
            }
        }
        foreach (var (device, version) in set.Devices)
        {
            if (device.Version != version)
            {
                await QueueChangedAsync(session, "devices", DeviceColumns, device.Id, null, Values(device), cancellationToken);
            }
        }
        await session.FlushAsync(cancellationToken);
    }

    /// <summary>An operation's and its device's writable columns as a write read them (<see cref="Values(DeviceOperation)"/>).</summary>
    public readonly record struct AsRead(object?[] Operation, object?[] Device)
    {
        public static AsRead Of(DeviceOperation operation) => new(Values(operation), Values(operation.Device));
    }

    private static readonly string[] OperationColumns =
        ["operation_type", "status", "operator_id", "description", "notes", "started_at", "completed_at", "updated_at", "version"];

    private static object?[] Values(DeviceOperation o) =>
        [o.OperationType, o.Status, o.OperatorId, o.Description, o.Notes, o.StartedAt, o.CompletedAt, o.UpdatedAt, o.Version];

    private static readonly string[] DeviceColumns =
        ["status", "location", "assigned_user", "configuration", "maintenance_notes", "next_maintenance", "last_updated", "updated_by", "version"];

    private static object?[] Values(Device d) =>
        [d.Status, d.Location, d.AssignedUser, d.Configuration, d.MaintenanceNotes, d.NextMaintenance, d.LastUpdated, d.UpdatedBy, d.Version];

    /// <summary>PostgreSQL groups: every writable column of many rows from arrays (<see cref="QueueGroupSaveAsync"/>).</summary>
    private static readonly string UpdateOperationsSql = UpdateMany("operations", OperationColumns, OperationTypes);

    private static readonly string UpdateDevicesSql = UpdateMany("devices", DeviceColumns, DeviceTypes);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Table, int Changed), string> UpdateSql = new();

    /// <summary>
    /// Updates only the columns whose value moved since <paramref name="before"/>, if any; with
    /// no <paramref name="before"/> (a batch, which keeps no copy per item), every column. SQLite
    /// rewrites the index entries of every column an <c>UPDATE</c> sets, changed or not: a
    /// relocation that also set the status, the user and the next maintenance to what they were
    /// rewrote four more of the device's indexes, in the one writer every write waits for.
    /// </summary>
    private static async Task QueueChangedAsync(SqlSession session, string table, string[] columns, int id, object?[]? before,
        object?[] after, CancellationToken cancellationToken)
    {
        var changed = 0;
        var count = 0;
        for (var i = 0; i < columns.Length; i++)
        {
            if (before is null || !Equals(before[i], after[i]))
            {
                changed |= 1 << i;
                count++;
            }
        }
        if (changed == 0)
        {
            return;
        }
        var sql = UpdateSql.GetOrAdd((table, changed), key => $"UPDATE {key.Table} SET "
            + string.Join(", ", columns.Where((_, i) => (key.Changed & (1 << i)) != 0).Select((c, n) => $"{c} = ${n + 2}"))
            + " WHERE id = $1");
        var values = new object?[count + 1];
        values[0] = id;
        for (int i = 0, n = 1; i < columns.Length; i++)
        {
            if ((changed & (1 << i)) != 0)
            {
                values[n++] = after[i];
            }
        }
        await session.QueueAsync(sql, values, cancellationToken);
    }

    /// <summary>
    /// Stores what a request changed — the operation's and the device's columns whose values
    /// moved since <paramref name="asRead"/>, and every history entry with its outbox event — and returns the device's
    /// latest history for the answer. On PostgreSQL that is read back, all in one round trip. On
    /// SQLite, where this runs in the one writer that every write waits for, the new entries are
    /// put in front of the device's known latest history when <paramref name="newestEntry"/> says
    /// it is still current (<see cref="LatestHistory"/>), and read only when it is not — reading
    /// and building twenty entries was a third of the writer's time for a change.
    /// </summary>
    public static async Task<IReadOnlyList<HistoryEntryResponse>> SaveAsync(SqlSession session, DeviceOperation operation,
        AsRead asRead, long newestEntry, IReadOnlyList<HistoryEntry> entries, LatestHistory latest,
        CancellationToken cancellationToken)
    {
        await QueueChangedAsync(session, "operations", OperationColumns, operation.Id, asRead.Operation, Values(operation), cancellationToken);
        var device = operation.Device;
        await QueueChangedAsync(session, "devices", DeviceColumns, device.Id, asRead.Device, Values(device), cancellationToken);
        if (session.IsPostgres)
        {
            await AuditRows.QueueAsync(session, entries, cancellationToken);
            return await LatestHistoryAsync(session, device, cancellationToken);
        }
        var ids = new List<long>(entries.Count);
        await AuditRows.QueueAsync(session, entries, cancellationToken, ids);
        var code = device.DeviceCode;
        KeptHistory history;
        if (latest.Find(device.Id, code, newestEntry) is { } before)
        {
            history = latest.Prepend(Written(entries, 0, entries.Count, ids, code), before);
        }
        else
        {
            history = latest.Keep(await LatestHistoryAsync(session, device, cancellationToken));
        }
        var upTo = ids.Count > 0 ? ids[^1] : newestEntry;
        session.AfterCommit(() => latest.Add(device.Id, code, upTo, history));
        return history;
    }

    private static async Task<IReadOnlyList<HistoryEntryResponse>> LatestHistoryAsync(SqlSession session, Device device, CancellationToken cancellationToken)
    {
        await using var rows = await session.QueryAsync(HistorySql, [device.Id], cancellationToken);
        return await ReadHistoryAsync(rows, device.DeviceCode, cancellationToken);
    }

    private static async Task<List<HistoryEntryResponse>> ReadHistoryAsync(SqlRows r, string deviceCode, CancellationToken cancellationToken)
    {
        var entries = new List<HistoryEntryResponse>(HistoryMapping.EmbeddedEntries);
        while (await r.Reader.ReadAsync(cancellationToken))
        {
            entries.Add(HistoryRow(r, deviceCode));
        }
        return entries;
    }

    /// <summary>The current row's <see cref="HistoryColumns"/> as an answer shows the entry.</summary>
    private static HistoryEntryResponse HistoryRow(SqlRows r, string deviceCode)
    {
        var reader = r.Reader;
        return new HistoryEntryResponse(reader.GetInt64(0), r.Utc(1), Shared(reader.GetString(2)), Shared(r.Text(3)),
            Shared(r.Text(4)), LatestHistory.Performer(reader.GetString(5)), deviceCode, r.Reference(6),
            new StoredJson(reader.GetString(7)), reader.GetString(8), r.Text(9));
    }

    /// <summary>An action or status as the one string the code names it by, not a copy per entry kept in <see cref="LatestHistory"/>.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    private static string? Shared(string? text) => text is null ? null : string.IsInterned(text) ?? text;
}

/// <summary>
/// A batch's operations, read by <see cref="OperationRows.LoadManyForWriteAsync"/>: by id, with
/// each operation's and each device's version as read, so only what moved is written back.
/// </summary>
public sealed class OperationSet(int capacity)
{
    private readonly Dictionary<int, (DeviceOperation Operation, int Version)> _operations = new(capacity);
    private readonly Dictionary<int, (Device Device, int Version)> _devices = [];

    public bool Contains(int id) => _operations.ContainsKey(id);

    public bool TryGet(int id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DeviceOperation? operation)
    {
        var found = _operations.TryGetValue(id, out var entry);
        operation = entry.Operation;
        return found;
    }

    public DeviceOperation this[int id] => _operations[id].Operation;

    internal bool TryGetDevice(int id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Device? device)
    {
        var found = _devices.TryGetValue(id, out var entry);
        device = entry.Device;
        return found;
    }

    internal void Add(DeviceOperation operation)
    {
        _operations.Add(operation.Id, (operation, operation.Version));
        _devices.TryAdd(operation.Device.Id, (operation.Device, operation.Device.Version));
    }

    /// <summary>The operations, each with its version as read.</summary>
    internal IEnumerable<(DeviceOperation Operation, int Version)> Operations => _operations.Values;

    /// <summary>The devices, each with its version as read.</summary>
    internal IEnumerable<(Device Device, int Version)> Devices => _devices.Values;
}

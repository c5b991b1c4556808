using DeviceOps.Data;
using DeviceOps.Events;

namespace DeviceOps.History;

/// <summary>
/// A change's history entries and their outbox events as plain rows, for the paths that write
/// them without EF Core's change tracker: large batches and the single-operation hot path.
/// </summary>
public static class AuditRows
{
    public static readonly string[] HistoryColumns =
        ["timestamp", "device_id", "operation_id", "action", "from_status", "to_status", "changes", "performed_by", "request_id", "justification"];

    /// <summary>PostgreSQL stamps <c>tx</c> itself (the column's default); SQLite keeps it at 0.</summary>
    public static string[] EventColumns(bool postgres) => postgres ? PostgresEventColumns : SqliteEventColumns;

    private static readonly string[] PostgresEventColumns =
        ["event_id", "type", "occurred_at", "organization_id", "device_id", "device_code", "operation_id", "request_id", "performed_by", "data"];

    private static readonly string[] SqliteEventColumns = ["tx", .. PostgresEventColumns];

    public static object?[] History(HistoryEntry e) =>
        [e.Timestamp, e.Device.Id, e.Operation?.Id, e.Action, e.FromStatus, e.ToStatus, e.Changes, e.PerformedBy, e.RequestId, e.Justification];

    /// <summary>The entry's outbox event.</summary>
    public static object?[] Event(HistoryEntry e, bool postgres)
    {
        var v = OutboxEvent.For(e);
        return postgres
            ? [v.EventId, v.Type, v.OccurredAt, e.Device.OrganizationId, e.Device.Id, v.DeviceCode, e.Operation?.Id, v.RequestId, v.PerformedBy, v.Data]
            : [0L, v.EventId, v.Type, v.OccurredAt, e.Device.OrganizationId, e.Device.Id, v.DeviceCode, e.Operation?.Id, v.RequestId, v.PerformedBy, v.Data];
    }

    private static readonly string InsertHistorySql = Insert("history", HistoryColumns);
    private static readonly string InsertPostgresEventSql = Insert("events", PostgresEventColumns);
    private static readonly string InsertSqliteEventSql = Insert("events", SqliteEventColumns);

    /// <summary>
    /// Queues the entries and their events in the session's transaction (<see cref="SqlSession.QueueAsync"/>).
    /// On SQLite, which runs them at once, <paramref name="ids"/> (if given) gets each entry's id.
    /// </summary>
    public static async Task QueueAsync(SqlSession session, IReadOnlyList<HistoryEntry> entries, CancellationToken cancellationToken,
        List<long>? ids = null)
    {
        foreach (var entry in entries)
        {
            await session.QueueAsync(InsertHistorySql, History(entry), cancellationToken);
            if (ids is not null && !session.IsPostgres)
            {
                ids.Add(session.LastInsertId());
            }
            await session.QueueAsync(session.IsPostgres ? InsertPostgresEventSql : InsertSqliteEventSql, Event(entry, session.IsPostgres), cancellationToken);
        }
    }

    /// <summary>
    /// PostgreSQL: queues many changes' entries and their events as two statements, each taking
    /// its columns as arrays, so the text is the same whatever the count and stays prepared.
    /// Rows are inserted in the order given (<c>WITH ORDINALITY</c>), which is the order of their
    /// ids: a device's history and the outbox feed read in that order. The history statement
    /// answers the entries' ids, in that order, unless <paramref name="answerIds"/> is false.
    /// </summary>
    public static async Task QueueManyAsync(SqlSession session, IReadOnlyList<HistoryEntry> entries, CancellationToken cancellationToken,
        bool answerIds = true)
    {
        if (entries.Count == 0)
        {
            return;
        }
        var history = new object?[entries.Count][];
        var events = new object?[entries.Count][];
        for (var i = 0; i < entries.Count; i++)
        {
            history[i] = History(entries[i]);
            events[i] = Event(entries[i], postgres: true);
        }
        await session.QueueAsync(answerIds ? InsertManyHistorySql : InsertManyHistoryQuietSql, ArrayRows.ByColumn(history, HistoryTypes), cancellationToken);
        await session.QueueAsync(InsertManyEventsSql, ArrayRows.ByColumn(events, PostgresEventTypes), cancellationToken);
    }

    /// <summary>The PostgreSQL types of <see cref="HistoryColumns"/> and of the PostgreSQL event columns, as <see cref="ArrayRows"/> passes them.</summary>
    private static readonly string[] HistoryTypes = ["timestamptz", "int", "int", "text", "text", "text", "text", "text", "text", "text"];

    private static readonly string[] PostgresEventTypes = ["uuid", "text", "timestamptz", "int", "int", "text", "int", "text", "text", "text"];

    private static readonly string InsertManyHistoryQuietSql = InsertMany("history", HistoryColumns, HistoryTypes);

    private static readonly string InsertManyHistorySql = InsertManyHistoryQuietSql + " RETURNING id";

    /// <summary>Entries a batch holds before it queues them (<see cref="QueueManyAsync"/>): two statements for this many.</summary>
    public const int ManyChunk = 1000;

    private static readonly string InsertManyEventsSql = InsertMany("events", PostgresEventColumns, PostgresEventTypes);

    private static string InsertMany(string table, string[] columns, string[] types) =>
        $"INSERT INTO {table} ({string.Join(", ", columns)}) SELECT {string.Join(", ", columns.Select((_, i) => $"c{i}"))}"
        + $" FROM {ArrayRows.Unnest(types)} WITH ORDINALITY AS v({string.Join(", ", columns.Select((_, i) => $"c{i}"))}, n) ORDER BY n";

    private static string Insert(string table, string[] columns) =>
        $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select((_, i) => $"${i + 1}"))})";
}

using DeviceOps.Data;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Events;

/// <summary>
/// Reads the outbox in order without gaps, for the feed, the live stream and the webhook fan-out.
/// On PostgreSQL only events of transactions older than the oldest one still running are read,
/// in (tx, id) order: an event numbered earlier but committed later can then never be skipped.
/// </summary>
public static class EventReader
{
    /// <summary>
    /// Up to <paramref name="limit"/> events after a cursor, the cursor after them (unchanged when
    /// there are none) and whether more are waiting.
    /// </summary>
    public static async Task<(List<OutboxEvent> Window, EventCursor Cursor, bool More)> ReadAsync(DeviceOpsDb db, EventCursor after,
        int limit, CancellationToken cancellationToken, Func<IQueryable<OutboxEvent>, IQueryable<OutboxEvent>>? where = null)
    {
        var query = db.Events.AsNoTracking();
        if (where is not null)
        {
            query = where(query);
        }
        long? horizon = db.IsPostgres ? await HorizonAsync(db, cancellationToken) : null;
        var window = await After(query, after, horizon).Take(limit + 1).ToListAsync(cancellationToken);
        var more = window.Count > limit;
        if (more)
        {
            window.RemoveAt(limit);
        }
        var cursor = window.Count > 0 ? new EventCursor(window[^1].Tx, window[^1].Id) : after;
        return (window, cursor, more);
    }

    /// <summary>
    /// The events after a cursor, in feed order: on PostgreSQL only below the horizon (the oldest
    /// transaction still running), on SQLite (no horizon) by id alone. Each read must start at the
    /// cursor in an index, not walk the outbox from its start: the webhook dispatcher reads twice a
    /// round and the stream after every commit, and such a walk grew with the table (4 ms a read
    /// at 30,000 events on SQLite).
    /// </summary>
    internal static IQueryable<OutboxEvent> After(IQueryable<OutboxEvent> events, EventCursor after, long? horizon) =>
        horizon is { } below
            // "tx >= cursor" bounds the range of the (tx, id) index; the OR alone would not.
            ? events.Where(e => e.Tx < below && e.Tx >= after.Tx && (e.Tx > after.Tx || e.Id > after.Id))
                .OrderBy(e => e.Tx).ThenBy(e => e.Id)
            // One writer commits in id order and tx is always 0: the id alone orders the feed.
            : events.Where(e => e.Id > after.Id).OrderBy(e => e.Id);

    /// <summary>
    /// The current end of the feed: a cursor after every event committed now, so that reading
    /// from it yields only events committed later.
    /// </summary>
    public static async Task<EventCursor> EndAsync(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        if (db.IsPostgres)
        {
            // Every transaction that started later has an id from the snapshot's xmax on. Ones
            // still running now are left out: they race with "now", and some that committed
            // just before (above the oldest running one) must not be sent as new.
            var next = await db.Database
                .SqlQueryRaw<long>("SELECT (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint AS \"Value\"")
                .SingleAsync(cancellationToken);
            return new EventCursor(next - 1, long.MaxValue);
        }
        var last = await db.Events.MaxAsync(e => (long?)e.Id, cancellationToken);
        return new EventCursor(0, last ?? 0);
    }

    /// <summary>PostgreSQL: the oldest transaction id still running; every lower one has ended.</summary>
    private static Task<long> HorizonAsync(DeviceOpsDb db, CancellationToken cancellationToken) => db.Database
        .SqlQueryRaw<long>("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint AS \"Value\"")
        .SingleAsync(cancellationToken);
}

using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace DeviceOps.Webhooks;

public sealed class EventRetentionOptions
{
    /// <summary>How long outbox events, and finished webhook deliveries, are kept.</summary>
    public double RetentionDays { get; set; } = 7;
}

/// <summary>
/// Removes outbox events older than the retention that nothing needs any more — no delivery row
/// refers to them and every active webhook has fanned them out — and delivered or dead
/// deliveries older than the retention. History is never removed.
/// </summary>
public sealed class EventsJanitor(IServiceProvider services, IOptions<EventRetentionOptions> options, TimeProvider clock,
    ILogger<EventsJanitor> logger) : PeriodicCleanup(services, clock, logger)
{
    protected override string What => "expired events and deliveries";

    protected override Task CleanAsync(DeviceOpsDb db, DateTime now, CancellationToken cancellationToken) =>
        CleanUpAsync(db, Rfc3339.Truncate(now) - TimeSpan.FromDays(options.Value.RetentionDays), cancellationToken);

    /// <summary>Removes what is older than <paramref name="cutoff"/> and no longer needed; answers (events, deliveries) removed.</summary>
    public static async Task<(int Events, int Deliveries)> CleanUpAsync(DeviceOpsDb db, DateTime cutoff, CancellationToken cancellationToken)
    {
        var deliveries = await db.Deliveries
            .Where(d => d.CreatedAt < cutoff && d.Status != DeliveryStatus.Pending)
            .ExecuteDeleteAsync(cancellationToken);
        var old = db.Events.Where(e => e.OccurredAt < cutoff && !db.Deliveries.Any(d => d.OutboxEventId == e.Id));
        // Events an active webhook has not fanned out yet stay: they are still to be delivered.
        var cursors = await db.Webhooks.AsNoTracking().Where(w => w.Active).Select(w => new { w.CursorTx, w.CursorId })
            .ToListAsync(cancellationToken);
        if (cursors.Count > 0)
        {
            var first = cursors.OrderBy(c => c.CursorTx).ThenBy(c => c.CursorId).First();
            old = old.Where(e => e.Tx < first.CursorTx || (e.Tx == first.CursorTx && e.Id <= first.CursorId));
        }
        var events = await old.ExecuteDeleteAsync(cancellationToken);
        return (events, deliveries);
    }
}

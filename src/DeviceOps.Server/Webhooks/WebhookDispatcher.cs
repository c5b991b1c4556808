using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace DeviceOps.Webhooks;

public sealed class WebhookOptions
{
    /// <summary>The delay before the second attempt; each later one doubles it, up to <see cref="MaxDelaySeconds"/>.</summary>
    public double BaseDelaySeconds { get; set; } = 10;

    public double MaxDelaySeconds { get; set; } = 3600;

    /// <summary>Attempts before a delivery is dead-lettered.</summary>
    public int MaxAttempts { get; set; } = 12;

    /// <summary>Deliveries one instance sends at once (to different devices or webhooks).</summary>
    public int Concurrency { get; set; } = 32;

    /// <summary>How long a receiver may take to answer.</summary>
    public double TimeoutSeconds { get; set; } = 10;

    /// <summary>
    /// The delay after the given number of failed attempts: base × 2^(attempts-1), at most the
    /// maximum, times a random 0.8–1.2 so receivers that fail together do not retry together.
    /// </summary>
    public TimeSpan DelayAfter(int attempts, double jitter) =>
        TimeSpan.FromSeconds(Math.Min(MaxDelaySeconds, BaseDelaySeconds * Math.Pow(2, Math.Max(0, attempts - 1))) * jitter);
}

/// <summary>
/// Sends webhook deliveries, in every instance. Each round (1) fans the outbox out to every
/// active webhook: the events after its scan cursor that it wants become delivery rows, in the
/// transaction that advances the cursor, with the webhook row locked so two instances never fan
/// out the same events; then (2) claims due deliveries that head their (webhook, device) queue
/// with a lease and POSTs them, signed. A commit in this process wakes it at once; it polls
/// every second for other instances' commits and for retries coming due.
/// </summary>
public sealed class WebhookDispatcher(IServiceProvider services, IHttpClientFactory httpClients, IOptions<WebhookOptions> options,
    EventSignal signal, TimeProvider clock, ILogger<WebhookDispatcher> logger) : BackgroundService
{
    public const string HttpClientName = "webhooks";
    public const string SignatureHeader = "X-DeviceOps-Signature";
    public const string EventIdHeader = "X-DeviceOps-Event-Id";
    public const string EventTypeHeader = "X-DeviceOps-Event-Type";
    public const string DeliveryHeader = "X-DeviceOps-Delivery";
    private const int FanOutBatch = 500;
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>Milliseconds between the starts of two rounds, at least.</summary>
    private const long MinRoundInterval = 10;

    /// <summary>
    /// A round claims this many times <see cref="WebhookOptions.Concurrency"/> deliveries and sends
    /// them <see cref="WebhookOptions.Concurrency"/> at a time. Under a write load a round's fixed
    /// part (the fan-out and claim, the read, the recording: a dozen round trips, each waiting for
    /// a thread behind the requests' work) took 20 ms on SQLite and some 300 ms on PostgreSQL; with
    /// 32 deliveries a round that capped delivery below the rate of changes, and the backlog grew
    /// for as long as the load lasted.
    /// </summary>
    private const int SendsPerRound = 8;
    private readonly string _instance = Guid.NewGuid().ToString("N")[..12];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken);
        }
        finally
        {
            try
            {
                await SentAsync();
            }
            catch (OperationCanceledException)
            {
                // Stopped mid-send: unrecorded, those are sent again by the next start or instance.
            }
            await RecordedAsync();
        }
    }

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        var lastRound = Environment.TickCount64 - MinRoundInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            // Under a write load every commit pulses: rounds start at most every few milliseconds,
            // each taking all that came meanwhile, rather than two queries per commit.
            var since = Environment.TickCount64 - lastRound;
            if (since < MinRoundInterval)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(MinRoundInterval - since), stoppingToken);
            }
            lastRound = Environment.TickCount64;
            // Taken before the round, so a commit during it is not missed.
            var pulse = signal.Next();
            var busy = false;
            try
            {
                busy = await RoundAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "A webhook dispatch round failed; will try again.");
            }
            // A round that did work may have left more (a full batch, the next event of a device).
            // An idle round commits nothing, so its own commits cannot wake it in a loop.
            if (!busy)
            {
                await EventSignal.WaitAsync(pulse, PollInterval, stoppingToken);
            }
        }
    }

    /// <summary>Whether the last round fanned anything out.</summary>
    private bool _fannedOutLast;

    /// <summary>The last round's sends, still going while the next round fans out and claims.</summary>
    private Task _sending = Task.CompletedTask;

    /// <summary>The last round's results, still being written while the next round starts.</summary>
    private Task _recording = Task.CompletedTask;

    private Task SentAsync()
    {
        var sending = _sending;
        _sending = Task.CompletedTask;
        return SettledAsync(sending, "A round of webhook deliveries failed");
    }

    private Task RecordedAsync()
    {
        var recording = _recording;
        _recording = Task.CompletedTask;
        return SettledAsync(recording, "Could not record a round of webhook deliveries");
    }

    /// <summary>Awaits a round's sends or recording; a failure is only logged, as its leases run out and the deliveries are sent again (at least once, as promised).</summary>
    private async Task SettledAsync(Task work, string failure)
    {
        try
        {
            await work;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "{Failure}; they will be sent again.", failure);
        }
    }

    /// <summary>
    /// One round: fans new events out and claims the due heads in one write, then leaves them to
    /// be sent while the next round fans out and claims, and their results to be written while
    /// the round after starts. Under a write load a round's time is its round trips to the
    /// database, not its work (see <see cref="SendsPerRound"/>); on SQLite the results and the
    /// next fan-out often share one commit. True when anything was claimed or fanned out, or
    /// sends were still in flight.
    /// </summary>
    private async Task<bool> RoundAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        // After a round that fanned out, under a load, the look finds new events nearly always:
        // go straight to the fan-out, which reads under the lock anyway.
        var (anyActive, fresh) = _fannedOutLast
            ? await ActiveWebhooksAsync(db, cancellationToken)
            : await WebhooksWithNewEventsAsync(db, cancellationToken);
        if (!anyActive)
        {
            // Nothing to fan out, and nothing to claim: a claim takes only active webhooks'
            // deliveries. A store without webhooks thus writes nothing for them, where every round
            // (up to a hundred a second under a write load) took a place in the writer's queue.
            _fannedOutLast = false;
            if (!_sending.IsCompleted)
            {
                await SentAsync();
                return true;
            }
            return false;
        }
        // A delivery whose result is still being written keeps its lease; one read before the
        // write lands merely waits for a later round, so the write need not be awaited first.
        var writer = scope.ServiceProvider.GetRequiredService<StoreWriter>();
        var now = Rfc3339.Now(clock);
        var owner = $"{_instance}-{Guid.NewGuid():N}";
        var concurrency = Math.Max(1, settings.Concurrency);
        var perRound = concurrency * SendsPerRound;
        // Long enough for every send of the round to time out, one batch after another.
        var leaseUntil = Rfc3339.Truncate(now + (SendsPerRound * TimeSpan.FromSeconds(settings.TimeoutSeconds)) + TimeSpan.FromMinutes(1));
        var (fannedOut, claimedCount) = await writer.WriteAsync<(bool, int)>(async (wdb, token) =>
        {
            var fanned = false;
            foreach (var webhookId in fresh)
            {
                fanned |= await FanOutAsync(wdb, webhookId, token);
            }
            var claimed = await ClaimAsync(wdb, now, owner, leaseUntil, perRound, token);
            return ((fanned, claimed), fanned || claimed > 0);
        }, cancellationToken);
        _fannedOutLast = fannedOut;
        if (claimedCount == 0)
        {
            if (!_sending.IsCompleted)
            {
                // All that is due may wait behind the deliveries in flight: look again once they land.
                await SentAsync();
                return true;
            }
            return fannedOut;
        }
        // Claimed rows are pending still: the status's index finds them among the pending few,
        // where the lease owner alone, not indexed, read every delivery ever made (7 ms a round
        // at 40,000 on PostgreSQL, and growing with the table).
        var claimedDeliveries = await db.Deliveries.AsNoTracking()
            .Include(d => d.Webhook).Include(d => d.OutboxEvent)
            .Where(d => d.Status == DeliveryStatus.Pending && d.LeaseOwner == owner)
            .ToListAsync(cancellationToken);
        await SentAsync();
        _sending = SendAndRecordAsync(claimedDeliveries, owner, settings, concurrency, cancellationToken);
        if (claimedCount < perRound)
        {
            // Not behind: this round's sends finish before the next look. (A round costs about the
            // same for a few deliveries as for many; on SQLite, overlapping rounds that were not
            // full cost a PUT load 10 % of its rate for 20 ms less lag.)
            await SentAsync();
        }
        // Behind (a full round): the sends go on while the next round fans out and claims, one
        // round's sends at a time. A claim takes only heads, so no device's later event can pass
        // one still in flight. On PostgreSQL, whose rounds are slow under load, this took the
        // delivery lag of an 8 s PUT load from 1.4-2.7 s to 0.2-0.5 s.
        return true;
    }

    /// <summary>Sends a round's deliveries, at most <paramref name="concurrency"/> at once, then starts writing their results.</summary>
    private async Task SendAndRecordAsync(List<WebhookDelivery> claimedDeliveries, string owner, WebhookOptions settings,
        int concurrency, CancellationToken cancellationToken)
    {
        var results = new (WebhookDelivery Delivery, int? StatusCode, string? Error)[claimedDeliveries.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, results.Length),
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (i, token) => results[i] = await SendAsync(claimedDeliveries[i], settings, token));
        await RecordedAsync();
        // Not cancelled by a stop: what was sent is recorded, not sent again.
        _recording = RecordAsync(results, owner, settings);
    }

    /// <summary>Every active webhook, to fan out: after a round that fanned out, under a load, new events are nearly always there.</summary>
    private static async Task<(bool AnyActive, List<int> Fresh)> ActiveWebhooksAsync(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var active = await db.Webhooks.AsNoTracking().Where(w => w.Active).Select(w => w.Id).ToListAsync(cancellationToken);
        return (active.Count > 0, active);
    }

    /// <summary>Whether any webhook is active, and those with events after their cursor: a cheap look without a lock, as most rounds find nothing new.</summary>
    private static async Task<(bool AnyActive, List<int> Fresh)> WebhooksWithNewEventsAsync(DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var webhooks = await db.Webhooks.AsNoTracking().Where(w => w.Active).Select(w => new { w.Id, w.CursorTx, w.CursorId })
            .ToListAsync(cancellationToken);
        var fresh = new List<int>();
        foreach (var webhook in webhooks)
        {
            var (peek, _, _) = await EventReader.ReadAsync(db, new EventCursor(webhook.CursorTx, webhook.CursorId), 1, cancellationToken);
            if (peek.Count > 0)
            {
                fresh.Add(webhook.Id);
            }
        }
        return (webhooks.Count > 0, fresh);
    }

    /// <summary>
    /// Fans one webhook's new outbox events out into delivery rows. Inside the store's writer,
    /// like every request's write: on SQLite the one group-commit writer, so a fan-out never
    /// holds the write lock while requests wait for it.
    /// </summary>
    private async Task<bool> FanOutAsync(DeviceOpsDb db, int webhookId, CancellationToken cancellationToken)
    {
        db.ChangeTracker.Clear();
        var webhook = db.IsPostgres
            // Another instance fanning this webhook out holds the row: skip it rather than wait.
            ? await db.Webhooks.FromSql($"SELECT * FROM webhooks WHERE id = {webhookId} AND active FOR UPDATE SKIP LOCKED")
                .SingleOrDefaultAsync(cancellationToken)
            : await db.Webhooks.SingleOrDefaultAsync(w => w.Id == webhookId && w.Active, cancellationToken);
        if (webhook is null)
        {
            return false;
        }
        // The cursor is read again under the lock: it may have moved since the look.
        var (window, cursor, _) = await EventReader.ReadAsync(db, webhook.Cursor, FanOutBatch, cancellationToken);
        if (window.Count == 0)
        {
            return false;
        }
        var now = Rfc3339.Now(clock);
        // Rows, not tracked entities: under a write load a round fans out hundreds of events, and
        // on SQLite it does so inside the one writer, where every microsecond holds up requests.
        var rows = window.Where(webhook.Wants).Select(e => WebhookDelivery.Row(webhook.Id, e, now)).ToList();
        await db.InsertAsync("webhook_deliveries", WebhookDelivery.Columns, rows, cancellationToken);
        webhook.Advance(cursor);
        await db.SaveChangesAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// Leases the due head deliveries to this round. The claim is one conditional UPDATE: where
    /// two instances chose the same delivery, the database lets only the first one set the lease.
    /// </summary>
    private static Task<int> ClaimAsync(DeviceOpsDb db, DateTime now, string owner, DateTime leaseUntil, int count,
        CancellationToken cancellationToken)
    {
        if (db.IsPostgres)
        {
            // The heads are chosen and locked at once, passing over any row another transaction
            // holds (another instance's claim or record): two claims that chose overlapping rows
            // and locked them in different orders deadlocked, and a claim that met a locked row
            // waited on it, with every other device's deliveries behind it. A row locked and then
            // found changed is checked again (leased meanwhile: left out). A passed-over row is a
            // head still, so the device's later deliveries wait for it. (The conditions are
            // Heads' below, in SQL: EF Core has no row-locking clause to put under a LINQ query.)
            // The heads are the first pending delivery of each (webhook, device), found in one
            // pass over the pending rows, and their ids passed on as one array, so the rows to
            // lock are looked up by key. Written as a join ("no earlier pending delivery
            // exists"), the planner, whose statistics had seen few rows pending, checked each
            // candidate against every pending row: 0.4–0.7 s a claim with 1,500 pending under
            // the benchmark's webhook load, and a delivery lag of 1–2 s at p99.
            return db.Database.ExecuteSqlAsync($"""
                UPDATE webhook_deliveries SET lease_until = {leaseUntil}, lease_owner = {owner}
                WHERE id IN (
                    SELECT d.id FROM webhook_deliveries d
                    WHERE d.id = ANY (ARRAY(
                            SELECT h.id FROM (
                                SELECT DISTINCT ON (webhook_id, device_id) id, next_attempt_at, lease_until
                                FROM webhook_deliveries
                                WHERE status = {DeliveryStatus.Pending} AND webhook_id IN (SELECT id FROM webhooks WHERE active)
                                ORDER BY webhook_id, device_id, id) AS h
                            WHERE h.next_attempt_at <= {now} AND (h.lease_until IS NULL OR h.lease_until < {now})
                            ORDER BY h.next_attempt_at, h.id
                            LIMIT {count}))
                      AND d.status = {DeliveryStatus.Pending} AND d.next_attempt_at <= {now}
                      AND (d.lease_until IS NULL OR d.lease_until < {now})
                    FOR UPDATE OF d SKIP LOCKED)
                """, cancellationToken);
        }
        // One statement: the outer conditions are checked again on each row as it is updated
        // (PostgreSQL re-reads a row another transaction changed meanwhile), the chosen ids not.
        var candidates = Heads(db, now)
            .OrderBy(d => d.NextAttemptAt).ThenBy(d => d.Id)
            .Take(count)
            .Select(d => d.Id);
        return Heads(db, now).Where(d => candidates.Contains(d.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.LeaseUntil, leaseUntil).SetProperty(d => d.LeaseOwner, owner), cancellationToken);
    }

    /// <summary>One write records a whole round, in the writer's queue with the requests' writes.</summary>
    private async Task RecordAsync((WebhookDelivery Delivery, int? StatusCode, string? Error)[] results, string owner,
        WebhookOptions settings)
    {
        await using var scope = services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<StoreWriter>().WriteAsync<bool>(async (wdb, token) =>
        {
            // Most of a round is delivered: one statement per status code records them all.
            foreach (var answered in results.Where(r => r.Error is null).GroupBy(r => r.StatusCode))
            {
                await RecordDeliveredAsync(wdb, [.. answered.Select(r => r.Delivery.Id)], owner, answered.Key, token);
            }
            foreach (var (delivery, statusCode, error) in results.Where(r => r.Error is not null))
            {
                await RecordFailedAsync(wdb, delivery, owner, statusCode, error!, settings, token);
            }
            return (true, true);
        }, CancellationToken.None);
    }

    /// <summary>
    /// Deliveries that may be sent now: pending, due, not leased, of an active webhook, and first
    /// in line for their (webhook, device) — a failing one holds back that device's later events only.
    /// </summary>
    private static IQueryable<WebhookDelivery> Heads(DeviceOpsDb db, DateTime now) => db.Deliveries
        .Where(d => d.Status == DeliveryStatus.Pending && d.NextAttemptAt <= now && (d.LeaseUntil == null || d.LeaseUntil < now)
            && d.Webhook.Active)
        .Where(d => !db.Deliveries.Any(e => e.WebhookId == d.WebhookId && e.DeviceId == d.DeviceId
            && e.Status == DeliveryStatus.Pending && e.Id < d.Id));

    private async Task<(WebhookDelivery Delivery, int? StatusCode, string? Error)> SendAsync(WebhookDelivery delivery, WebhookOptions settings,
        CancellationToken cancellationToken)
    {
        int? statusCode = null;
        string? error = null;
        try
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(EventsApi.ToResponse(delivery.OutboxEvent), DeviceOpsJson.Default.EventResponse);
            using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Webhook.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            request.Headers.Add(SignatureHeader, Signature(delivery.Webhook.Secret, clock.GetUtcNow().ToUnixTimeSeconds(), body));
            request.Headers.Add(EventIdHeader, delivery.EventId.ToString());
            request.Headers.Add(EventTypeHeader, delivery.EventType);
            request.Headers.Add(DeliveryHeader, delivery.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var client = httpClients.CreateClient(HttpClientName);
            client.Timeout = TimeSpan.FromSeconds(settings.TimeoutSeconds);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            statusCode = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                error = $"The receiver answered {statusCode} {response.ReasonPhrase}.";
            }
        }
        catch (HttpRequestException ex)
        {
            error = ex.Message;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"No answer within {settings.TimeoutSeconds} s.";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Anything else (a URL stored before its check was tightened, say) is this delivery's
            // failed attempt, retried and in the end dead like any other: thrown, it ended the
            // whole round, and the round's other deliveries waited out their leases unsent.
            logger.LogWarning(ex, "Webhook {WebhookId} delivery {DeliveryId} could not be sent", delivery.WebhookId, delivery.Id);
            error = $"The request could not be sent: {ex.Message}";
        }
        return (delivery, statusCode, error);
    }

    /// <summary>Only while we still hold the lease: a redelivery or deletion meanwhile wins.</summary>
    private Task<int> RecordDeliveredAsync(DeviceOpsDb db, long[] ids, string owner, int? statusCode, CancellationToken cancellationToken)
    {
        var now = Rfc3339.Now(clock);
        return db.Deliveries.Where(d => ids.Contains(d.Id) && d.LeaseOwner == owner).ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, DeliveryStatus.Delivered)
            .SetProperty(d => d.Attempts, d => d.Attempts + 1)
            .SetProperty(d => d.LastStatusCode, statusCode)
            .SetProperty(d => d.LastError, (string?)null)
            .SetProperty(d => d.LastAttemptAt, now)
            .SetProperty(d => d.DeliveredAt, now)
            .SetProperty(d => d.LeaseUntil, (DateTime?)null)
            .SetProperty(d => d.LeaseOwner, (string?)null), cancellationToken);
    }

    private async Task RecordFailedAsync(DeviceOpsDb db, WebhookDelivery delivery, string owner, int? statusCode, string error,
        WebhookOptions settings, CancellationToken cancellationToken)
    {
        var now = Rfc3339.Now(clock);
        var attempts = delivery.Attempts + 1;
        var mine = db.Deliveries.Where(d => d.Id == delivery.Id && d.LeaseOwner == owner);
        var dead = attempts >= settings.MaxAttempts;
        var next = dead ? now : Rfc3339.Truncate(now + settings.DelayAfter(attempts, 0.8 + (Random.Shared.NextDouble() * 0.4)));
        // A receiver's reason phrase is the receiver's text: PostgreSQL's text cannot hold NUL,
        // and refusing it failed the whole round's record.
        error = error.Replace('\0', '\uFFFD');
        error = error.Length > 500 ? error[..500] : error;
        await mine.ExecuteUpdateAsync(s => s
            .SetProperty(d => d.Status, dead ? DeliveryStatus.Dead : DeliveryStatus.Pending)
            .SetProperty(d => d.Attempts, attempts)
            .SetProperty(d => d.LastStatusCode, statusCode)
            .SetProperty(d => d.LastError, error)
            .SetProperty(d => d.LastAttemptAt, now)
            .SetProperty(d => d.NextAttemptAt, next)
            .SetProperty(d => d.LeaseUntil, (DateTime?)null)
            .SetProperty(d => d.LeaseOwner, (string?)null), cancellationToken);
        if (dead)
        {
            logger.LogWarning("Webhook {WebhookId} delivery {DeliveryId} (event {EventId}) is dead after {Attempts} attempts: {Error}",
                delivery.WebhookId, delivery.Id, delivery.EventId, attempts, error);
        }
    }

    /// <summary><c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256 of "&lt;t&gt;.&lt;raw body&gt;"&gt;</c>, as receivers check it.</summary>
    public static string Signature(string secret, long unixSeconds, ReadOnlySpan<byte> body)
    {
        var t = unixSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var signed = new byte[t.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(t + ".", signed);
        body.CopyTo(signed.AsSpan(t.Length + 1));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
        return $"t={t},v1={Convert.ToHexStringLower(mac)}";
    }
}

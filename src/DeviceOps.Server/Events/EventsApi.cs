using System.Globalization;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Events;

public sealed record EventResponse(
    Guid Id,
    string Cursor,
    string Type,
    DateTime OccurredAt,
    string DeviceId,
    int? OperationId,
    string RequestId,
    string PerformedBy,
    JsonElement From,
    JsonElement To,
    JsonElement Changes,
    string? Justification);

public sealed record EventPage(IReadOnlyList<EventResponse> Results, string Cursor, string Next, bool HasMore);

/// <summary>A position in the event log, opaque to clients: <c>{tx}-{id}</c>.</summary>
public readonly record struct EventCursor(long Tx, long Id)
{
    public static readonly EventCursor Start = new(0, 0);

    /// <summary>What a client sends as <c>after</c> to start at the end of the feed.</summary>
    public const string Now = "now";

    public override string ToString() => $"{Tx.ToString(CultureInfo.InvariantCulture)}-{Id.ToString(CultureInfo.InvariantCulture)}";

    public static bool TryParse(string? text, out EventCursor cursor)
    {
        cursor = Start;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }
        var parts = text.Split('-');
        if (parts.Length == 2 && FieldReader.IsDigits(parts[0]) && FieldReader.IsDigits(parts[1])
            && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var tx)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            cursor = new(tx, id);
            return true;
        }
        return false;
    }
}

/// <summary>
/// The change feed: <c>GET /api/v1/events/?after=CURSOR</c> pages through every committed event
/// in order, gap-free and resumable; <c>/api/v1/events/stream</c> sends the same events live as
/// Server-Sent Events, resuming from <c>Last-Event-ID</c>.
/// </summary>
public static class EventsApi
{
    public const string Path = "/api/v1/events";
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static RouteGroupBuilder MapEvents(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Events").RequireAuthorization(AuthExtensions.AnyRead);
        group.MapGet("/", Feed).WithFields<EventResponse>().WithSummary("Read change events after a cursor, in order")
            .WithDescription("`after` is the `cursor` of the last event you processed (empty: from the oldest kept; `now`: no events, only the cursor of the feed's end, to read what commits later). Filters: `type` (comma-separated), `device_id`. Answers up to `limit` events (default 100, at most 1000), the cursor to continue from, and whether more are waiting.");
        group.MapGet("/stream", Stream).WithSummary("Change events live, as Server-Sent Events")
            .WithDescription("`?after=` is a cursor (empty: from the oldest kept event; `now`: only events that commit from now on). Each SSE message has the event's cursor as `id` and its type as `event`, and the first one is a `heartbeat` whose `id` is where the stream starts; reconnect with `Last-Event-ID` (or `?after=`) to resume without a gap. A `heartbeat` message comes every 15 seconds of quiet.");
        group.ProducesAuthProblems();
        return group;
    }

    public static async Task<Results<Ok<EventPage>, ValidationFailed>> Feed(HttpContext http, DeviceOpsDb db, CancellationToken cancellationToken)
    {
        var (filter, errors) = Read(http.Request, http.Request.Query["after"]);
        var limit = ListQuery.Count(http.Request, errors, "limit", DefaultLimit, 1, MaxLimit);
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        var (events, cursor, more) = filter.FromNow
            ? ([], await EventReader.EndAsync(db, cancellationToken), false)
            : await ReadAsync(db, http.Caller(), filter, limit, cancellationToken);
        var next = QueryHelpers.AddQueryString(Links.ToPath(http.Request),
            QueryHelpers.ParseQuery(http.Request.QueryString.Value)
                .Where(p => p.Key != "after")
                .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)))
                .Append(new("after", cursor.ToString())));
        return TypedResults.Ok(new EventPage(events, cursor.ToString(), next, more));
    }

    public static Results<ServerSentEventsResult<EventResponse>, ValidationFailed> Stream(
        HttpContext http, DeviceOpsDb db, EventSignal signal, TimeProvider clock)
    {
        // Last-Event-ID is how an EventSource resumes by itself; ?after= serves other clients.
        var resumeFrom = http.Request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } lastEventId
            ? lastEventId
            : http.Request.Query["after"].ToString();
        var (filter, errors) = Read(http.Request, resumeFrom);
        if (errors.Any)
        {
            return Problems.Validation(errors.ToDictionary(), "The query string has invalid parameters; see errors.");
        }
        return TypedResults.ServerSentEvents(Follow(db, http.Caller(), filter, signal, clock, KnownMethods.IsHead(http), http.RequestAborted));
    }

    private static async IAsyncEnumerable<SseItem<EventResponse>> Follow(DeviceOpsDb db, Caller caller, EventFilter filter,
        EventSignal signal, TimeProvider clock, bool headOnly, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (filter.FromNow)
        {
            filter = filter with { After = await EventReader.EndAsync(db, cancellationToken), FromNow = false };
        }
        // A first heartbeat sends the headers at once: a client (or proxy) waiting for them must
        // not wait for the next change. Its id is where the stream starts, to resume from.
        yield return new SseItem<EventResponse>(null!, "heartbeat") { EventId = filter.After.ToString() };
        if (headOnly)
        {
            yield break;
        }
        var quietSince = clock.GetTimestamp();
        var tokenCheckedAt = Environment.TickCount64;
        while (!cancellationToken.IsCancellationRequested)
        {
            var pulse = signal.Next();
            var (events, cursor, more) = await ReadAsync(db, caller, filter, MaxLimit, cancellationToken);
            // A revocation holds at once for a stream already open too: before it sends anything,
            // and at least every second while it is quiet, the stream asks whether its token
            // is still good, and ends if not (a reconnect then gets the 401).
            if (events.Count > 0 || Environment.TickCount64 - tokenCheckedAt >= TokenCheckInterval)
            {
                if (!await TokenStillValidAsync(db, caller, clock, cancellationToken))
                {
                    yield break;
                }
                tokenCheckedAt = Environment.TickCount64;
            }
            filter = filter with { After = cursor };
            foreach (var item in events)
            {
                yield return new SseItem<EventResponse>(item, item.Type) { EventId = item.Cursor };
            }
            if (events.Count > 0)
            {
                quietSince = clock.GetTimestamp();
            }
            else if (clock.GetElapsedTime(quietSince) > TimeSpan.FromSeconds(15))
            {
                quietSince = clock.GetTimestamp();
                yield return new SseItem<EventResponse>(null!, "heartbeat") { EventId = cursor.ToString() };
            }
            if (!more)
            {
                // A commit in this process wakes us at once; other instances' commits within a second.
                await EventSignal.WaitAsync(pulse, TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    /// <summary>Milliseconds a quiet stream goes at most without checking its token.</summary>
    private const long TokenCheckInterval = 1000;

    /// <summary>Not revoked (through any instance, or by the token command) and not expired.</summary>
    private static async Task<bool> TokenStillValidAsync(DeviceOpsDb db, Caller caller, TimeProvider clock, CancellationToken cancellationToken)
    {
        if (caller.TokenId is not { } id)
        {
            return true;
        }
        var token = await db.Tokens.AsNoTracking().Where(t => t.Id == id)
            .Select(t => new { t.RevokedAt, t.ExpiresAt })
            .FirstOrDefaultAsync(cancellationToken);
        return token is { RevokedAt: null } && (token.ExpiresAt is not { } expiresAt || expiresAt > clock.GetUtcNow().UtcDateTime);
    }

    /// <param name="FromNow">The client asked for <c>after=now</c>: start at the end of the feed.</param>
    private sealed record EventFilter(EventCursor After, HashSet<string>? Types, string? DeviceCode, bool FromNow = false);

    private static (EventFilter Filter, Errors Errors) Read(HttpRequest request, string? after)
    {
        var errors = new Errors();
        var cursor = EventCursor.Start;
        var fromNow = after == EventCursor.Now;
        if (!fromNow && !EventCursor.TryParse(after, out cursor))
        {
            errors.Add("after", "Must be a cursor this API returned, e.g. 0-123, or \"now\".");
        }
        HashSet<string>? types = null;
        if (request.Query["type"].ToString() is { Length: > 0 } given)
        {
            types = [.. given.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
            if (types.Count == 0)
            {
                errors.Add("type", "Name at least one event type, or leave type out for all.");
            }
            foreach (var unknown in types.Where(t => !OutboxEvent.Types.Contains(t)))
            {
                errors.Add("type", $"\"{unknown}\" is not an event type; use: {string.Join(", ", OutboxEvent.Types)}.");
            }
        }
        var device = request.Query["device_id"].ToString();
        if (FieldReader.HasNul(device))
        {
            errors.Add("device_id", FieldReader.NulMessage);
        }
        return (new EventFilter(cursor, types, device.Length > 0 ? device : null, fromNow), errors);
    }

    /// <summary>The next events after a cursor that the caller may see and asked for.</summary>
    private static async Task<(List<EventResponse> Events, EventCursor Cursor, bool More)> ReadAsync(DeviceOpsDb db, Caller caller,
        EventFilter filter, int limit, CancellationToken cancellationToken)
    {
        // The filters are part of the query, so a page holds up to `limit` events the caller
        // asked for; the cursor is the last one's, and what it skipped can never match later.
        var organizations = caller.Organizations;
        var (window, cursor, more) = await EventReader.ReadAsync(db, filter.After, limit, cancellationToken, events =>
        {
            if (organizations is not null)
            {
                events = events.Where(e => organizations.Contains(e.OrganizationId));
            }
            if (filter.Types is { } types)
            {
                events = events.Where(e => types.Contains(e.Type));
            }
            if (filter.DeviceCode is { } device)
            {
                events = events.Where(e => e.DeviceCode == device);
            }
            return events;
        });
        return ([.. window.Select(ToResponse)], cursor, more);
    }

    public static EventResponse ToResponse(OutboxEvent e)
    {
        using var data = JsonDocument.Parse(e.Data);
        var root = data.RootElement;
        return new(e.EventId, new EventCursor(e.Tx, e.Id).ToString(), e.Type, e.OccurredAt, e.DeviceCode, e.OperationId,
            e.RequestId, e.PerformedBy, root.GetProperty("from").Clone(), root.GetProperty("to").Clone(),
            root.GetProperty("changes").Clone(),
            root.GetProperty("justification").ValueKind == JsonValueKind.String ? root.GetProperty("justification").GetString() : null);
    }
}

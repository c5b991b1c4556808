using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.History;
using DeviceOps.Idempotency;
using Npgsql;

namespace DeviceOps.Operations;

/// <summary>
/// PostgreSQL: group commit for PUT and PATCH of one operation, the hot write path. Written one
/// transaction per request, a change cost PostgreSQL nine statements and three round trips —
/// begin, lock, read, two updates, two inserts, the history read, commit — and most of its CPU
/// went to starting statements and passing messages, not to the rows. Here the requests waiting
/// when a group starts share one transaction, two round trips and as many statements whatever
/// their number, each statement taking its rows as arrays:
/// <list type="number">
/// <item>begin, lock every device the group writes (in id order, as the batches do, so a group and
/// a batch cannot deadlock), read the operations and check the requests' tokens for revocation
/// (<see cref="RevocationCheck"/>; a refused one is answered 401 and not applied);</item>
/// <item>each request's rules applied in memory (<see cref="OperationsApi.Apply"/>, the same as a
/// request written alone), then the group's updates, its history entries and its events, the
/// devices' latest history for the answers, and the commit;</item>
/// <item>(only when a request carries an <c>Idempotency-Key</c>) the stored answers, and the
/// commit.</item>
/// </list>
/// Each request is answered only once the commit is durable. A request the rules refuse is
/// answered at once and leaves nothing in the transaction. A second request for a device the
/// group already writes, and every request of a group whose transaction fails before its commit
/// (a key's race with another instance, a statement the database refuses) is written alone, in a
/// transaction of its own, as before: one request's failure never fails the others.
/// </summary>
public sealed class UpdateGroups : IAsyncDisposable
{
    /// <summary>Most requests one transaction carries; bounds the latency one group adds (its statements are as many whatever its size).</summary>
    public const int MaxGroup = 128;

    private readonly SqlStore _sql;
    private readonly EventSignal _signal;
    private readonly ILogger<UpdateGroups> _logger;
    private readonly LatestHistory _latest;
    private readonly RequestGroups<Request>? _queue;

    public UpdateGroups(SqlStore sql, LatestHistory latest, EventSignal signal, ILogger<UpdateGroups> logger)
    {
        _latest = latest;
        _sql = sql;
        _signal = signal;
        _logger = logger;
        if (sql.IsPostgres)
        {
            _queue = new RequestGroups<Request>(MaxGroup, WriteAsync);
        }
    }

    /// <summary>Whether writes are grouped here: on PostgreSQL (SQLite's one writer groups every write already).</summary>
    public bool Enabled => _queue is not null;

    /// <summary>The request's answer, or null when it is to be written alone (<see cref="UpdateGroups"/> says when).</summary>
    public Task<UpdateResult?> UpdateAsync(int id, OperationInput input, HttpContext http, TimeProvider clock, CancellationToken cancellationToken)
    {
        var request = new Request(id, input, http, clock, cancellationToken);
        return _queue!.TryAdd(request) ? request.Completion.Task : Task.FromResult<UpdateResult?>(null);
    }

    private async Task WriteAsync(List<Request> group)
    {
        var none = CancellationToken.None;
        var stored = new List<Stored>(group.Count);
        var changed = new List<(DeviceOperation Operation, OperationRows.AsRead AsRead)>(group.Count);
        var entries = new List<HistoryEntry>(group.Count);
        var commitSent = false;
        SqlSession? session = null;
        try
        {
            session = await _sql.ReadAsync(none);
            await session.QueueAsync("BEGIN", [], none);
            var ids = new int[group.Count];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = group[i].Id;
            }
            var checks = new List<RevocationCheck>();
            foreach (var request in group)
            {
                if (RevocationCheck.Pending(request.Http) is { } check)
                {
                    checks.Add(check);
                }
            }
            var operations = await OperationRows.LoadGroupAsync(session, ids, checks, none);
            var devices = new HashSet<int>();
            foreach (var request in group)
            {
                if (request.Http.Features.Get<RevocationCheck>()?.Refusal is not null)
                {
                    // Its token is revoked: answered 401 by the endpoint, nothing read given to it.
                    request.Completion.TrySetResult(null);
                    continue;
                }
                operations.TryGetValue(request.Id, out var loaded);
                var operation = loaded.Operation;
                if (operation is not null && !devices.Add(operation.Device.Id))
                {
                    // The group writes this device already: alone, this request waits for the
                    // device's lock, so it sees what the group did.
                    request.Completion.TrySetResult(null);
                    continue;
                }
                if (operation is not null && !request.Http.Caller().CanSee(operation.Device.OrganizationId))
                {
                    operation = null;
                }
                if (OperationsApi.Apply(request.Id, operation, request.Input, request.Http, request.Clock, out var asRead, out var change) is { } refused)
                {
                    request.Completion.TrySetResult(refused);
                    continue;
                }
                var device = operation!.Device;
                stored.Add(new Stored(request, operation, entries.Count, change.Entries.Count, loaded.NewestEntry,
                    _latest.Find(device.Id, device.DeviceCode, loaded.NewestEntry)));
                changed.Add((operation, asRead));
                entries.AddRange(change.Entries);
            }
            if (stored.Count == 0)
            {
                await session.QueueAsync("ROLLBACK", [], none);
                await session.FlushAsync(none);
                return;
            }

            var unknown = stored.Where(s => s.Known is null).ToDictionary(s => s.Operation.Device.Id, s => s.Operation.Device.DeviceCode);
            await OperationRows.QueueGroupSaveAsync(session, changed, entries, [.. unknown.Keys], none);
            var records = stored.Exists(s => IdempotencyKeys.IsRecorded(s.Request.Http));
            if (!records)
            {
                await session.QueueAsync("COMMIT", [], none);
                commitSent = true;
            }
            (long[] EntryIds, Dictionary<int, List<HistoryEntryResponse>> History) written;
            await using (var rows = await session.QueryQueuedAsync(none))
            {
                written = await OperationRows.ReadGroupAsync(rows, entries.Count, unknown, none);
            }
            var responses = new OperationResponse[stored.Count];
            var kept = new (int Device, string Code, long UpTo, KeptHistory Entries)[stored.Count];
            for (var i = 0; i < stored.Count; i++)
            {
                var s = stored[i];
                var device = s.Operation.Device;
                var history = s.Known is { } known
                    ? _latest.Prepend(OperationRows.Written(entries, s.FirstEntry, s.Entries, written.EntryIds, device.DeviceCode), known)
                    : _latest.Keep(written.History.GetValueOrDefault(device.Id) ?? []);
                kept[i] = (device.Id, device.DeviceCode, s.Entries > 0 ? written.EntryIds[s.FirstEntry + s.Entries - 1] : s.NewestEntry, history);
                responses[i] = s.Operation.ToResponse(history);
                s.Request.Http.Response.Headers.ETag = s.Operation.ETag();
                if (records)
                {
                    await IdempotencyKeys.QueueRecordAsync(s.Request.Http, session, StatusCodes.Status200OK, responses[i], null, s.Request.Clock, none);
                }
            }
            if (records)
            {
                await session.QueueAsync("COMMIT", [], none);
                commitSent = true;
                await session.FlushAsync(none);
            }
            _signal.Pulse();
            for (var i = 0; i < stored.Count; i++)
            {
                _latest.Add(kept[i].Device, kept[i].Code, kept[i].UpTo, kept[i].Entries);
                stored[i].Request.Completion.TrySetResult(TypedResults.Ok(responses[i]));
            }
        }
        catch (Exception ex)
        {
            await RollBackAsync(session);
            // A PostgreSQL error means the server refused a statement and the transaction, the
            // commit included, did not happen; so does a failure before the commit was sent.
            // Otherwise the commit's outcome is unknown, and the requests fail as one would alone.
            var retry = !commitSent || ex is PostgresException;
            _logger.LogDebug(ex, "A group of {Count} operation writes failed; {Next}.", group.Count,
                retry ? "each is written alone" : "its requests fail");
            foreach (var request in group)
            {
                if (retry)
                {
                    request.Completion.TrySetResult(null);
                }
                else
                {
                    request.Completion.TrySetException(ex);
                }
            }
        }
        finally
        {
            if (session is not null)
            {
                await session.DisposeAsync();
            }
        }
    }

    private static async Task RollBackAsync(SqlSession? session)
    {
        if (session?.Connection is not NpgsqlConnection { State: System.Data.ConnectionState.Open } connection)
        {
            return;
        }
        try
        {
            await using var command = new NpgsqlCommand("ROLLBACK", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // The connection is broken; the server ends its transaction with it.
        }
    }

    public ValueTask DisposeAsync() => _queue?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>
    /// A request whose change the group stores: its entries are <paramref name="Entries"/> of the
    /// group's from <paramref name="FirstEntry"/>; <paramref name="Known"/> is its device's kept
    /// history, if current at <paramref name="NewestEntry"/>.
    /// </summary>
    private sealed record Stored(Request Request, DeviceOperation Operation, int FirstEntry, int Entries, long NewestEntry,
        KeptHistory? Known);

    private sealed class Request(int id, OperationInput input, HttpContext http, TimeProvider clock, CancellationToken cancellation)
        : IGroupedRequest
    {
        public int Id { get; } = id;
        public OperationInput Input { get; } = input;
        public HttpContext Http { get; } = http;
        public TimeProvider Clock { get; } = clock;
        public CancellationToken Cancellation { get; } = cancellation;
        public TaskCompletionSource<UpdateResult?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Cancel() => Completion.TrySetCanceled(Cancellation);
    }
}

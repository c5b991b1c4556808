using DeviceOps.Auth;
using DeviceOps.Data;
using DeviceOps.History;

namespace DeviceOps.Operations;

/// <summary>
/// GET of one operation, the hot read path. On PostgreSQL the GETs waiting when a read starts
/// share it: one statement reads all their operations, with one more for their tokens'
/// revocation checks (<see cref="RevocationCheck"/>), in one round trip. Read one statement per
/// request, a GET cost PostgreSQL 84–92 µs of CPU and the server 112–121 µs, most of it passing
/// messages; read together, 24–28 µs and 70 µs (the benchmark's GET, groups of about ten).
/// </summary>
/// <remarks>
/// A request joins only a read that starts after it arrived, so it sees every change committed
/// before it was sent — by this instance or any other — as a read of its own would. Reads do not
/// wait to fill: an idle store reads a lone request at once, and requests gather while a read is
/// under way. One read at a time made the largest groups and the most requests a second: two or
/// more under way split the waiting requests into smaller groups, and PostgreSQL's CPU for a GET
/// rose from 23–24 to 27–56 µs. Each request is then answered on its own: the caller's
/// organizations are checked against what was read, the device's latest history comes from
/// <see cref="LatestHistory"/> (read, up to the entry the group saw, when not current there).
/// A read that fails leaves its requests to read alone, which answers their error as before (a
/// store that refuses work is a 503). SQLite reads in the process and gains nothing by this:
/// there every GET reads alone.
/// </remarks>
public sealed class ReadGroups : IAsyncDisposable
{
    /// <summary>Most requests one read carries.</summary>
    public const int MaxGroup = 128;

    private readonly SqlStore _sql;
    private readonly LatestHistory _latest;
    private readonly ILogger<ReadGroups> _logger;
    private readonly RequestGroups<Request>? _queue;

    public ReadGroups(SqlStore sql, LatestHistory latest, ILogger<ReadGroups> logger)
    {
        _sql = sql;
        _latest = latest;
        _logger = logger;
        if (sql.IsPostgres)
        {
            _queue = new RequestGroups<Request>(MaxGroup, ReadAsync);
        }
    }

    /// <summary>
    /// The operation as the request's caller may see it (null when it may not, or it is not
    /// there, or the request's token was refused) and its device's latest history.
    /// </summary>
    public async Task<(DeviceOperation? Operation, IReadOnlyList<HistoryEntryResponse> History)> ReadAsync(int id, HttpContext http,
        CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        if (_queue is not null)
        {
            var request = new Request(id, RevocationCheck.Pending(http), cancellationToken);
            if (_queue.TryAdd(request) && await request.Completion.Task is { } read)
            {
                var (operation, newest) = read;
                if (operation is null || request.Check?.Refusal is not null || !caller.CanSee(operation.Device.OrganizationId))
                {
                    return (null, []);
                }
                if (_latest.Find(operation.Device.Id, operation.Device.DeviceCode, newest) is { } known)
                {
                    return (operation, known);
                }
                await using var historySession = await _sql.ReadAsync(cancellationToken);
                return (operation, await OperationRows.ReadHistoryUpToAsync(historySession, operation.Device, newest, _latest, cancellationToken));
            }
        }
        await using var session = await _sql.ReadAsync(cancellationToken);
        return await OperationRows.ReadAsync(session, id, caller, RevocationCheck.Pending(http), _latest, cancellationToken);
    }

    private async Task ReadAsync(List<Request> group)
    {
        try
        {
            var ids = group.Select(r => r.Id).ToArray();
            var checks = group.Where(r => r.Check is not null).Select(r => r.Check!).ToList();
            Dictionary<int, (DeviceOperation Operation, long NewestEntry)> found;
            await using (var session = await _sql.ReadAsync(CancellationToken.None))
            {
                found = await OperationRows.LoadGroupForReadAsync(session, ids, checks, CancellationToken.None);
            }
            foreach (var request in group)
            {
                request.Completion.TrySetResult(found.TryGetValue(request.Id, out var read) ? read : (null, 0));
            }
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "A group of {Count} operation reads failed; each is read alone.", group.Count);
            foreach (var request in group)
            {
                request.Completion.TrySetResult(null);
            }
        }
    }

    public ValueTask DisposeAsync() => _queue?.DisposeAsync() ?? ValueTask.CompletedTask;

    private sealed class Request(int id, RevocationCheck? check, CancellationToken cancellation) : IGroupedRequest
    {
        public int Id { get; } = id;
        public RevocationCheck? Check { get; } = check;
        public CancellationToken Cancellation { get; } = cancellation;

        /// <summary>The operation read (null when not found) with its device's newest entry; null when the group failed.</summary>
        public TaskCompletionSource<(DeviceOperation? Operation, long NewestEntry)?> Completion { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Cancel() => Completion.TrySetCanceled(Cancellation);
    }
}

using System.Threading.Channels;
using DeviceOps.Events;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace DeviceOps.Data;

/// <summary>
/// Runs a request's write in a transaction and answers only once it is durable. The work gets
/// the store and returns its result and whether to commit: a validation failure or a refused
/// transition returns <c>commit: false</c> and leaves nothing behind.
/// </summary>
public abstract class StoreWriter
{
    /// <param name="items">How many items the request writes (a batch's count): SQLite keeps the
    /// journal of a request's changes in memory, and a large batch's on disk.</param>
    public abstract Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1);

    /// <summary>The same, for a hot path written in plain SQL (<see cref="SqlStore"/>).</summary>
    public abstract Task<T> WriteSqlAsync<T>(Func<SqlSession, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1);
}

/// <summary>PostgreSQL: one transaction per request; the database's own group commit batches the fsyncs.</summary>
public sealed class TransactionWriter(DeviceOpsDb db, SqlStore sql) : StoreWriter
{
    public override Task<T> WriteSqlAsync<T>(Func<SqlSession, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1) => sql.WritePostgresAsync(work, cancellationToken);

    public override async Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var (result, commit) = await work(db, cancellationToken);
        if (commit)
        {
            await transaction.CommitAsync(cancellationToken);
        }
        return result;
    }
}

/// <summary>A request's door to the one SQLite writer (a scoped wrapper, so no scope disposes the writer).</summary>
public sealed class GroupCommitWriter(SqliteGroupCommit writer) : StoreWriter
{
    public override Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1) => writer.WriteAsync(work, cancellationToken, items);

    public override Task<T> WriteSqlAsync<T>(Func<SqlSession, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1) => writer.WriteSqlAsync(work, cancellationToken, items);
}

/// <summary>
/// SQLite: group commit. SQLite has one writer at a time and each commit waits for an fsync, so
/// one transaction per request caps writes at the disk's sync rate. Instead, writes queue to a
/// single writer that runs every waiting request in one transaction — each inside a savepoint,
/// so one request's failure is rolled back alone — and commits them with one fsync. A request
/// is answered only after that commit; if the commit fails, every request of the group fails
/// and none was acknowledged. If SQLite itself ends the transaction (a full disk), the requests
/// run before in the group fail with it and the rest go on in a new one (<see cref="StartOverAsync"/>).
/// </summary>
public sealed class SqliteGroupCommit : IAsyncDisposable
{
    /// <summary>Most requests one commit carries; bounds the latency one group adds.</summary>
    public const int MaxGroup = 256;

    private readonly RequestGroups<Job> _queue;
    private readonly string _connectionString;
    private readonly EventSignal _signal;
    private readonly ILogger<SqliteGroupCommit> _logger;
    private readonly Task _checkpoints;
    private readonly Channel<bool> _checkpointDue = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>How often, at most, the log is copied into the database file while writes go on.</summary>
    private static readonly TimeSpan CheckpointInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>The write-ahead log's size past which the writer makes it start again from its beginning.</summary>
    public const long DefaultLogLimit = 32L * 1024 * 1024;

    private readonly long _logLimit;
    private volatile bool _restartDue;
    private DbContextOptions<SqliteDeviceOpsDb>? _options;
    private SqlSession? _session;

    public SqliteGroupCommit(string connectionString, EventSignal signal, ILogger<SqliteGroupCommit> logger, long logLimit = DefaultLogLimit)
    {
        _connectionString = connectionString;
        _signal = signal;
        _logger = logger;
        _logLimit = logLimit;
        _queue = new RequestGroups<Job>(MaxGroup, CommitAsync);
        _checkpoints = Task.Run(CheckpointAsync);
    }

    public Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1) => EnqueueAsync<T>(items, async session =>
        {
            await using var db = new SqliteDeviceOpsDb(_options!);
            await db.Database.UseTransactionAsync(session.Transaction);
            var (result, commit) = await work(db, CancellationToken.None);
            return (result, commit);
        }, cancellationToken);

    public Task<T> WriteSqlAsync<T>(Func<SqlSession, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken, int items = 1) => EnqueueAsync<T>(items, async session =>
        {
            var (result, commit) = await work(session, CancellationToken.None);
            return (result, commit);
        }, cancellationToken);

    private async Task<T> EnqueueAsync<T>(int items, Func<SqlSession, Task<(object? Result, bool Commit)>> work, CancellationToken cancellationToken)
    {
        var job = new Job(work, items, cancellationToken);
        if (!_queue.TryAdd(job))
        {
            throw new InvalidOperationException("The store is shutting down.");
        }
        return (T)(await job.Completion.Task)!;
    }

    private async Task CommitAsync(List<Job> group)
    {
        await CommitGroupAsync(group);
        if (_restartDue)
        {
            _restartDue = false;
            CatchUpLog();
        }
    }

    /// <summary>
    /// Lets the log start again from its beginning. SQLite reuses the log only when a write
    /// begins after a checkpoint has copied all of it, and under a steady write load the
    /// checkpoint beside the writer never does: the writer has always committed more meanwhile,
    /// and the log grows without end (320–550 MB in eight seconds of the benchmark's PUTs), every
    /// read searching a longer index of it. So once it is past its limit the writer, between two
    /// commits, copies the little the last background checkpoint left; its next write then starts
    /// the log over, and <c>journal_size_limit</c> gives the file's tail back to the disk.
    /// </summary>
    private void CatchUpLog()
    {
        try
        {
            _session?.Command("PRAGMA wal_checkpoint(PASSIVE)").ExecuteNonQuery();
        }
        catch (SqliteException ex)
        {
            _logger.LogWarning(ex, "A checkpoint of the write-ahead log failed; the next one retries it.");
        }
    }

    private async Task CommitGroupAsync(List<Job> group)
    {
        var done = new List<(Job Job, object? Result)>(group.Count);
        try
        {
            var session = await OpenAsync();
            KeepJournalsInMemory(session, group.TrueForAll(job => job.Items <= MaxItemsJournaledInMemory));
            session.Transaction = await session.Connection.BeginTransactionAsync();
            foreach (var job in group)
            {
                var mark = session.AfterCommitMark;
                // Prepared once on the writer's connection (SqliteTransaction.Save prepares anew each time).
                session.Command("SAVEPOINT request").ExecuteNonQuery();
                try
                {
                    var (result, commit) = await job.Work(session);
                    if (commit)
                    {
                        session.Command("RELEASE request").ExecuteNonQuery();
                        done.Add((job, result));
                    }
                    else
                    {
                        RollBackRequest(session, mark);
                        // Nothing of it is in the transaction: it may be answered now.
                        job.Completion.TrySetResult(result);
                    }
                }
                catch (Exception ex) when (TransactionEnded(session))
                {
                    await StartOverAsync(session, done, ex);
                    job.Completion.TrySetException(ex);
                }
                catch (Exception ex)
                {
                    RollBackRequest(session, mark);
                    job.Completion.TrySetException(ex);
                }
            }
            await session.Transaction.CommitAsync();
            await session.Transaction.DisposeAsync();
            session.Transaction = null;
        }
        catch (Exception ex)
        {
            _session?.Abandoned();
            // Closing the connection (ResetAsync) rolls back whatever of the transaction is left.
            if (_session is not null)
            {
                _session.Transaction = null;
            }
            _logger.LogError(ex, "A group commit of {Count} requests failed; none was acknowledged.", done.Count);
            foreach (var (job, _) in done)
            {
                job.Completion.TrySetException(ex);
            }
            foreach (var job in group)
            {
                job.Completion.TrySetException(ex);
            }
            await ResetAsync();
            return;
        }
        try
        {
            _session?.Committed();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "An action after a group commit failed; the commit stands.");
        }
        foreach (var (job, result) in done)
        {
            job.Completion.TrySetResult(result);
        }
        if (done.Count > 0)
        {
            _signal.Pulse();
            _checkpointDue.Writer.TryWrite(true);
        }
    }

    /// <summary>
    /// Most items a request may write with its savepoint's journal in memory. The writer runs each
    /// request of a group in a savepoint, so that one request's failure is rolled back alone, and
    /// SQLite first copies every page the request changes into that savepoint's journal — to a
    /// temporary file once past 64 KiB, unless <c>temp_store</c> is <c>MEMORY</c>. A seed PUT
    /// changes some sixteen pages: on file, 30 of the writer's 37 writes a request under the
    /// benchmark's PUT went to a file read only when a request rolls back (in memory: 4.5–5 %
    /// more PUTs, three pairs). A batch of thousands changes thousands of pages, which would be
    /// held in memory for as long as it runs (about 6 MB more peak RSS in <c>bench/rss.sh</c>):
    /// a group with a request over this many items journals on file.
    /// </summary>
    public const int MaxItemsJournaledInMemory = 100;

    private bool? _journalsInMemory;

    /// <summary>Read by SQLite when a transaction begins; the writer has no temporary tables the switch would drop.</summary>
    private void KeepJournalsInMemory(SqlSession session, bool inMemory)
    {
        if (_journalsInMemory != inMemory)
        {
            session.Command(inMemory ? "PRAGMA temp_store=MEMORY" : "PRAGMA temp_store=DEFAULT").ExecuteNonQuery();
            _journalsInMemory = inMemory;
        }
    }

    /// <summary>
    /// Whether SQLite ended the group's transaction itself. On some errors — <c>SQLITE_FULL</c>,
    /// <c>SQLITE_IOERR</c>, <c>SQLITE_NOMEM</c> — it rolls back just the failing statement when it
    /// kept a journal for it, and otherwise the whole transaction: a one-row insert into a table
    /// without constraints keeps none, so a full disk during a history entry's insert undoes every
    /// request of the group run so far.
    /// </summary>
    private static bool TransactionEnded(SqlSession session) =>
        session.Transaction is not null && SQLitePCL.raw.sqlite3_get_autocommit(((SqliteConnection)session.Connection).Handle) != 0;

    /// <summary>
    /// After SQLite ended the group's transaction: the requests run so far in the group lost their
    /// writes with it, and fail with the error that ended it (none was answered, nothing of theirs
    /// is stored: a full disk is a 503, and they may retry as the failing request may); what they
    /// left for after the commit is dropped; the rest of the group goes on in a new transaction.
    /// </summary>
    private static async Task StartOverAsync(SqlSession session, List<(Job Job, object? Result)> done, Exception error)
    {
        session.RolledBackTo(0);
        foreach (var (job, _) in done)
        {
            job.Completion.TrySetException(error);
        }
        done.Clear();
        await session.Transaction!.DisposeAsync();
        session.Transaction = await session.Connection.BeginTransactionAsync();
    }

    private static void RollBackRequest(SqlSession session, int afterCommitMark)
    {
        session.RolledBackTo(afterCommitMark);
        session.Command("ROLLBACK TO request").ExecuteNonQuery();
        session.Command("RELEASE request").ExecuteNonQuery();
    }

    /// <summary>
    /// Copies committed pages from the write-ahead log into the database file, on a connection of
    /// its own, beside the writer. SQLite's automatic checkpoint would run inside the writer's
    /// commit, holding every request of the next group while it writes and syncs the database file.
    /// </summary>
    private async Task CheckpointAsync()
    {
        SqliteConnection? connection = null;
        long frameSize = 0;
        try
        {
            while (await _checkpointDue.Reader.WaitToReadAsync())
            {
                _checkpointDue.Reader.TryRead(out _);
                try
                {
                    if (connection is null)
                    {
                        connection = new SqliteConnection(_connectionString);
                        await connection.OpenAsync();
                        await using var size = connection.CreateCommand();
                        size.CommandText = "PRAGMA page_size;";
                        frameSize = Convert.ToInt64(await size.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) + 24;
                    }
                    await using var command = connection.CreateCommand();
                    // One row: busy, frames in the log, frames copied. A frame is a page and its header.
                    command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
                    await using (var result = await command.ExecuteReaderAsync())
                    {
                        if (await result.ReadAsync() && result.GetInt64(1) * frameSize > _logLimit)
                        {
                            _restartDue = true;
                        }
                    }
                }
                catch (SqliteException ex)
                {
                    _logger.LogWarning(ex, "A checkpoint of the write-ahead log failed; the next commit retries it.");
                }
                // Pages written again meanwhile are then copied once, not once per commit.
                await Task.Delay(CheckpointInterval);
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private async Task<SqlSession> OpenAsync()
    {
        if (_session is not null)
        {
            return _session;
        }
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync();
        await using (var pragma = connection.CreateCommand())
        {
            // The writer touches index pages all over a large store; SQLite's default 2 MiB page
            // cache makes a big batch re-read them from disk again and again.
            // Checkpoints run beside the writer (CheckpointAsync), not inside its commits.
            pragma.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0; "
                + $"PRAGMA journal_size_limit={_logLimit};";
            await pragma.ExecuteNonQueryAsync();
        }
        _options = new DbContextOptionsBuilder<SqliteDeviceOpsDb>().UseSqlite(connection).Options;
        return _session = new SqlSession(connection, isPostgres: false, owner: null);
    }

    private async Task ResetAsync()
    {
        if (_session is not null)
        {
            await _session.CloseAsync();
            _session = null;
            _journalsInMemory = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _queue.DisposeAsync();
        _checkpointDue.Writer.TryComplete();
        await _checkpoints;
        await ResetAsync();
    }

    private sealed record Job(Func<SqlSession, Task<(object? Result, bool Commit)>> Work, int Items, CancellationToken Cancellation) : IGroupedRequest
    {
        public TaskCompletionSource<object?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Cancel() => Completion.TrySetCanceled(Cancellation);
    }
}

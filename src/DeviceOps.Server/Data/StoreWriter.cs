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
    public abstract Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken);
}

/// <summary>PostgreSQL: one transaction per request; the database's own group commit batches the fsyncs.</summary>
public sealed class TransactionWriter(DeviceOpsDb db) : StoreWriter
{
    public override async Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken)
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
        CancellationToken cancellationToken) => writer.WriteAsync(work, cancellationToken);
}

/// <summary>
/// SQLite: group commit. SQLite has one writer at a time and each commit waits for an fsync, so
/// one transaction per request caps writes at the disk's sync rate. Instead, writes queue to a
/// single writer that runs every waiting request in one transaction — each inside a savepoint,
/// so one request's failure is rolled back alone — and commits them with one fsync. A request
/// is answered only after that commit; if the commit fails, every request of the group fails
/// and none was acknowledged.
/// </summary>
public sealed class SqliteGroupCommit : IAsyncDisposable
{
    /// <summary>Most requests one commit carries; bounds the latency one group adds.</summary>
    public const int MaxGroup = 256;

    private readonly Channel<Job> _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _connectionString;
    private readonly EventSignal _signal;
    private readonly ILogger<SqliteGroupCommit> _logger;
    private readonly Task _loop;
    private DbContextOptions<SqliteDeviceOpsDb>? _options;
    private SqliteConnection? _connection;

    public SqliteGroupCommit(string connectionString, EventSignal signal, ILogger<SqliteGroupCommit> logger)
    {
        _connectionString = connectionString;
        _signal = signal;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public async Task<T> WriteAsync<T>(Func<DeviceOpsDb, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken)
    {
        var job = new Job(async db =>
        {
            var (result, commit) = await work(db, CancellationToken.None);
            return (result, commit);
        }, cancellationToken);
        if (!_queue.Writer.TryWrite(job))
        {
            throw new InvalidOperationException("The store is shutting down.");
        }
        return (T)(await job.Completion.Task)!;
    }

    private async Task RunAsync()
    {
        var group = new List<Job>(MaxGroup);
        while (await _queue.Reader.WaitToReadAsync())
        {
            group.Clear();
            while (group.Count < MaxGroup && _queue.Reader.TryRead(out var job))
            {
                if (job.Cancellation.IsCancellationRequested)
                {
                    job.Completion.TrySetCanceled(job.Cancellation);
                }
                else
                {
                    group.Add(job);
                }
            }
            if (group.Count > 0)
            {
                await CommitGroupAsync(group);
            }
        }
    }

    private async Task CommitGroupAsync(List<Job> group)
    {
        var done = new List<(Job Job, object? Result)>(group.Count);
        try
        {
            var connection = await OpenAsync();
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            foreach (var job in group)
            {
                transaction.Save("request");
                try
                {
                    await using var db = new SqliteDeviceOpsDb(_options!);
                    await db.Database.UseTransactionAsync(transaction);
                    var (result, commit) = await job.Work(db);
                    if (commit)
                    {
                        transaction.Release("request");
                        done.Add((job, result));
                    }
                    else
                    {
                        transaction.Rollback("request");
                        transaction.Release("request");
                        // Nothing of it is in the transaction: it may be answered now.
                        job.Completion.TrySetResult(result);
                    }
                }
                catch (Exception ex)
                {
                    transaction.Rollback("request");
                    transaction.Release("request");
                    job.Completion.TrySetException(ex);
                }
            }
            await transaction.CommitAsync();
        }
        catch (Exception ex)
        {
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
        foreach (var (job, result) in done)
        {
            job.Completion.TrySetResult(result);
        }
        if (done.Count > 0)
        {
            _signal.Pulse();
        }
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        if (_connection is not null)
        {
            return _connection;
        }
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync();
        await using (var pragma = connection.CreateCommand())
        {
            // The writer touches index pages all over a large store; SQLite's default 2 MiB page
            // cache makes a big batch re-read them from disk again and again.
            pragma.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;";
            await pragma.ExecuteNonQueryAsync();
        }
        _options = new DbContextOptionsBuilder<SqliteDeviceOpsDb>().UseSqlite(connection).Options;
        return _connection = connection;
    }

    private async Task ResetAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop;
        await ResetAsync();
    }

    private sealed record Job(Func<DeviceOpsDb, Task<(object? Result, bool Commit)>> Work, CancellationToken Cancellation)
    {
        public TaskCompletionSource<object?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

using System.Collections.Concurrent;
using System.Data.Common;
using DeviceOps.Events;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace DeviceOps.Data;

/// <summary>
/// Plain ADO.NET for the hot paths — authenticating a request, reading one operation, applying
/// one operation write — where EF Core's query translation, change tracking and per-request
/// context cost more CPU than the statements themselves (the benchmark's profiles: 0.5 ms per GET
/// and 1.5 ms per PUT, against tens of microseconds of SQL). Everything else keeps EF Core.
/// </summary>
/// <remarks>
/// SQL is written once for both stores with <c>$1, $2, …</c> placeholders: PostgreSQL's own
/// positional parameters, and valid parameter names in SQLite. On SQLite the connections are
/// kept open here with their statements prepared (Microsoft.Data.Sqlite prepares a command
/// again for every new command object); PostgreSQL connections come from Npgsql's pool, whose
/// auto-prepare keeps every statement prepared per physical connection.
/// </remarks>
public sealed class SqlStore : IAsyncDisposable
{
    /// <summary>Open SQLite read connections kept for reuse; more readers than this open and close their own.</summary>
    private const int MaxIdleReaders = 32;

    private readonly string? _sqliteConnectionString;
    private readonly NpgsqlDataSource? _postgres;
    private readonly EventSignal _signal;
    private readonly ConcurrentBag<SqlSession> _readers = [];

    public SqlStore(string? setting, EventSignal signal)
    {
        _signal = signal;
        if (StoreExtensions.IsPostgres(setting))
        {
            _postgres = NpgsqlDataSource.Create(StoreExtensions.ToNpgsqlConnectionString(setting!));
        }
        else
        {
            _sqliteConnectionString = StoreExtensions.ToSqliteConnectionString(setting);
        }
    }

    public bool IsPostgres => _postgres is not null;

    /// <summary>A connection for reads outside any transaction; dispose it to give it back.</summary>
    public async ValueTask<SqlSession> ReadAsync(CancellationToken cancellationToken)
    {
        if (_postgres is not null)
        {
            return new SqlSession(await _postgres.OpenConnectionAsync(cancellationToken), isPostgres: true, owner: null);
        }
        if (_readers.TryTake(out var session))
        {
            return session;
        }
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(cancellationToken);
        return new SqlSession(connection, isPostgres: false, owner: this);
    }

    /// <summary>
    /// PostgreSQL: runs <paramref name="work"/> in a transaction of its own and commits it when
    /// the work says so. (SQLite writes go through the one group-commit writer instead.)
    /// </summary>
    public async Task<T> WritePostgresAsync<T>(Func<SqlSession, CancellationToken, Task<(T Result, bool Commit)>> work,
        CancellationToken cancellationToken)
    {
        await using var connection = await _postgres!.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var session = new SqlSession(connection, isPostgres: true, owner: null) { Transaction = transaction };
        var (result, commit) = await work(session, cancellationToken);
        if (commit)
        {
            await transaction.CommitAsync(cancellationToken);
            session.Committed();
            _signal.Pulse();
        }
        return result;
    }

    internal bool Return(SqlSession session)
    {
        if (_readers.Count >= MaxIdleReaders)
        {
            return false;
        }
        _readers.Add(session);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        while (_readers.TryTake(out var session))
        {
            await session.CloseAsync();
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }
}

/// <summary>One connection of <see cref="SqlStore"/>, with the transaction it runs in, if any.</summary>
public sealed class SqlSession : IAsyncDisposable
{
    private readonly SqlStore? _owner;
    private readonly Dictionary<string, SqliteCommand>? _prepared;

    internal SqlSession(DbConnection connection, bool isPostgres, SqlStore? owner)
    {
        Connection = connection;
        IsPostgres = isPostgres;
        _owner = owner;
        _prepared = isPostgres ? null : new Dictionary<string, SqliteCommand>(StringComparer.Ordinal);
    }

    public DbConnection Connection { get; }
    public DbTransaction? Transaction { get; set; }
    public bool IsPostgres { get; }

    private List<Action>? _afterCommit;

    /// <summary>Runs <paramref name="action"/> once the transaction's commit is durable; never if it rolls back.</summary>
    public void AfterCommit(Action action) => (_afterCommit ??= []).Add(action);

    /// <summary>How many after-commit actions wait: a mark for <see cref="RolledBackTo"/>.</summary>
    internal int AfterCommitMark => _afterCommit?.Count ?? 0;

    /// <summary>A savepoint rolled back: the actions its work added are dropped.</summary>
    internal void RolledBackTo(int mark) => _afterCommit?.RemoveRange(mark, _afterCommit.Count - mark);

    /// <summary>The transaction committed: runs the waiting actions.</summary>
    internal void Committed()
    {
        if (_afterCommit is not { Count: > 0 } actions)
        {
            return;
        }
        try
        {
            foreach (var action in actions)
            {
                action();
            }
        }
        finally
        {
            // Even when one throws: the next transaction starts with none waiting, and none runs twice.
            actions.Clear();
        }
    }

    /// <summary>The transaction failed: drops the waiting actions.</summary>
    internal void Abandoned() => _afterCommit?.Clear();

    /// <summary>SQLite: the row id the connection's last <c>INSERT</c> gave its row (a call into SQLite, no statement).</summary>
    public long LastInsertId() => SQLitePCL.raw.sqlite3_last_insert_rowid(((SqliteConnection)Connection).Handle);

    /// <summary>
    /// A command for <paramref name="sql"/> with its <c>$1…$n</c> parameters set to
    /// <paramref name="values"/> (null is SQL NULL). On SQLite the command is this connection's
    /// prepared one, reused: run it before asking for the next command with the same text.
    /// </summary>
    public DbCommand Command(string sql, params ReadOnlySpan<object?> values)
    {
        if (_prepared is null)
        {
            var command = new NpgsqlCommand(sql, (NpgsqlConnection)Connection, (NpgsqlTransaction?)Transaction);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }
            return command;
        }
        if (!_prepared.TryGetValue(sql, out var prepared))
        {
            prepared = ((SqliteConnection)Connection).CreateCommand();
            prepared.CommandText = sql;
            for (var i = 0; i < values.Length; i++)
            {
                prepared.Parameters.Add(new SqliteParameter { ParameterName = "$" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
            _prepared[sql] = prepared;
        }
        prepared.Transaction = (SqliteTransaction?)Transaction;
        for (var i = 0; i < values.Length; i++)
        {
            prepared.Parameters[i].Value = SqliteValue(values[i]);
        }
        return prepared;
    }

    /// <summary>Most statements one PostgreSQL round trip carries: a large batch is sent in parts, not held whole.</summary>
    public const int MaxQueued = 1000;

    /// <summary>
    /// Runs a statement whose rows, if any, nobody reads. On PostgreSQL it waits in a batch sent
    /// with the next <see cref="QueryAsync"/> or <see cref="FlushAsync"/>, so a lock, the writes
    /// of a change and the read that follows them cost one round trip (past
    /// <see cref="MaxQueued"/> statements the waiting ones are sent first); SQLite runs it now.
    /// </summary>
    public async Task QueueAsync(string sql, object?[] values, CancellationToken cancellationToken)
    {
        if (!IsPostgres)
        {
            await Command(sql, values).ExecuteNonQueryAsync(cancellationToken);
            return;
        }
        if (_batch?.BatchCommands.Count >= MaxQueued)
        {
            await FlushAsync(cancellationToken);
        }
        _batch ??= new NpgsqlBatch((NpgsqlConnection)Connection, (NpgsqlTransaction?)Transaction);
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }
        _batch.BatchCommands.Add(command);
        if (sql.StartsWith("SELECT", StringComparison.Ordinal))
        {
            _skippedResults++;
        }
    }

    /// <summary>Sends what <see cref="QueueAsync"/> left waiting.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_batch is { } batch)
        {
            _batch = null;
            _skippedResults = 0;
            try
            {
                await batch.ExecuteNonQueryAsync(cancellationToken);
            }
            finally
            {
                await ReleaseAsync(batch);
            }
        }
    }

    /// <summary>
    /// Disposes a batch with its statements let go. Npgsql keeps one data reader per pooled
    /// connection, and that reader the list of statements it last ran, until the connection runs
    /// another; a batch's list holds up to <see cref="MaxQueued"/> statements with their
    /// parameters, so on PostgreSQL every 10,000-item batch left about 3 MB behind on some pooled
    /// connection (40,000 parameters in a heap dump after four), for as long as it stayed idle.
    /// </summary>
    internal static ValueTask ReleaseAsync(NpgsqlBatch batch)
    {
        batch.BatchCommands.Clear();
        return batch.DisposeAsync();
    }

    /// <summary>
    /// Reads rows, after whatever statements were queued; dispose them before the next statement.
    /// With <paramref name="readQueued"/> the rows of the queued SELECTs come first, each its own
    /// result (PostgreSQL only: several reads in one round trip).
    /// </summary>
    public async Task<SqlRows> QueryAsync(string sql, object?[] values, CancellationToken cancellationToken, bool readQueued = false)
    {
        if (!IsPostgres || _batch is null)
        {
            var command = Command(sql, values);
            return new SqlRows(await command.ExecuteReaderAsync(cancellationToken), IsPostgres ? command : null);
        }
        var skip = readQueued ? 0 : _skippedResults;
        await QueueAsync(sql, values, cancellationToken);
        var rows = await QueryQueuedAsync(cancellationToken);
        for (var i = 0; i < skip; i++)
        {
            await rows.Reader.NextResultAsync(cancellationToken);
        }
        return rows;
    }

    /// <summary>
    /// PostgreSQL: sends the queued statements and reads their rows, each queued SELECT's its own
    /// result in order, the first current. Dispose them before the next statement.
    /// </summary>
    public async Task<SqlRows> QueryQueuedAsync(CancellationToken cancellationToken)
    {
        var batch = _batch ?? throw new InvalidOperationException("Nothing is queued.");
        _batch = null;
        _skippedResults = 0;
        return new SqlRows(await batch.ExecuteReaderAsync(cancellationToken), batch);
    }

    private NpgsqlBatch? _batch;
    private int _skippedResults;

    /// <summary>
    /// A value as the EF Core SQLite provider stores it (a Guid as upper-case text), so rows
    /// written without EF Core read the same as its own; null is SQL NULL.
    /// </summary>
    internal static object SqliteValue(object? value) => value switch
    {
        null => DBNull.Value,
        Guid guid => guid.ToString().ToUpperInvariant(),
        _ => value,
    };


    internal async ValueTask CloseAsync()
    {
        if (_prepared is not null)
        {
            foreach (var command in _prepared.Values)
            {
                await command.DisposeAsync();
            }
            _prepared.Clear();
        }
        await Connection.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        // A SQLite reader goes back to the store; the group-commit writer closes its own.
        if (_owner is not null && _owner.Return(this))
        {
            return;
        }
        if (_owner is not null || IsPostgres)
        {
            await CloseAsync();
        }
    }
}

/// <summary>The rows of <see cref="SqlSession.QueryAsync"/>; disposing them disposes the PostgreSQL command with them.</summary>
public sealed class SqlRows(DbDataReader reader, IAsyncDisposable? command) : IAsyncDisposable
{
    public DbDataReader Reader { get; } = reader;

    public string? Text(int i) => Reader.IsDBNull(i) ? null : Reader.GetString(i);

    /// <summary>A nullable reference to another row.</summary>
    public int? Reference(int i) => Reader.IsDBNull(i) ? null : Reader.GetInt32(i);

    public DateTime? Time(int i) => Reader.IsDBNull(i) ? null : Utc(i);

    /// <summary>
    /// A UTC time. SQLite holds it as text, <c>yyyy-MM-dd HH:mm:ss.FFFFFFF</c> (how EF Core and
    /// Microsoft.Data.Sqlite write it), read here by position: the general parser behind
    /// <c>GetDateTime</c> cost more than the rest of reading a history entry.
    /// </summary>
    public DateTime Utc(int i)
    {
        if (Reader.GetFieldType(i) == typeof(string) && ParseStored(Reader.GetString(i)) is { } parsed)
        {
            return parsed;
        }
        var value = Reader.GetDateTime(i);
        return value.Kind == DateTimeKind.Utc ? value : DateTime.SpecifyKind(value, DateTimeKind.Utc);
    }

    internal static DateTime? ParseStored(ReadOnlySpan<char> s)
    {
        if (s.Length < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':'
            || !TryDigits(s[..4], out var year) || !TryDigits(s[5..7], out var month) || !TryDigits(s[8..10], out var day)
            || !TryDigits(s[11..13], out var hour) || !TryDigits(s[14..16], out var minute) || !TryDigits(s[17..19], out var second)
            || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(Math.Max(year, 1), month) || hour > 23 || minute > 59 || second > 59)
        {
            return null;
        }
        long fraction = 0;
        if (s.Length > 19)
        {
            var digits = s[20..];
            if (s[19] != '.' || digits.Length is 0 or > 7 || !TryDigits(digits, out var value))
            {
                return null;
            }
            fraction = value;
            for (var i = digits.Length; i < 7; i++)
            {
                fraction *= 10;
            }
        }
        return new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(fraction);
    }

    private static bool TryDigits(ReadOnlySpan<char> s, out int value)
    {
        value = 0;
        foreach (var c in s)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
            value = value * 10 + (c - '0');
        }
        return s.Length > 0;
    }

    public async ValueTask DisposeAsync()
    {
        await Reader.DisposeAsync();
        if (command is NpgsqlBatch batch)
        {
            await SqlSession.ReleaseAsync(batch);
        }
        else if (command is not null)
        {
            await command.DisposeAsync();
        }
    }
}

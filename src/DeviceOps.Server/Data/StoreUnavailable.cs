using Microsoft.Data.Sqlite;
using Npgsql;

namespace DeviceOps.Data;

/// <summary>
/// Failures that say the store cannot take work for now, not that the request or our code is
/// wrong: PostgreSQL out of connections, starting up or shutting down, the connection pool
/// exhausted, the network to the server down, a deadlock or serialization failure, its disk full
/// (53100); a SQLite file whose write lock another process held past the busy timeout, or whose
/// disk has no room for the pages a write needs. A retry a moment later may succeed (or once
/// room is made), so they are answered 503 with <c>Retry-After</c>, not 500.
/// </summary>
public static class StoreUnavailable
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteFull = 13;

    // Npgsql's own judgement: its connection and I/O failures, timeouts, and server errors of the
    // classes a retry can clear (53 insufficient resources, 57P03 cannot connect now, 08
    // connection exceptions, 40001, 40P01).
    public static bool Is(Exception exception) => StoreErrors.Chain(exception).Any(e => e switch
    {
        NpgsqlException npgsql => npgsql.IsTransient,
        SqliteException sqlite => sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked or SqliteFull,
        _ => false,
    });

    /// <summary>Whether the store refused for want of disk space (a cause the answer names: waiting will not make room).</summary>
    public static bool IsDiskFull(Exception exception) => StoreErrors.Chain(exception).Any(e => e switch
    {
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.DiskFull,
        SqliteException sqlite => sqlite.SqliteErrorCode == SqliteFull,
        _ => false,
    });
}

/// <summary>
/// A unique index refusing a row another request wrote first: the caller's conflict (409), not
/// the store failing. Only that: a full disk or a broken connection during the same save is the
/// store's (<see cref="StoreUnavailable"/>) or a bug, and must not read as a duplicate.
/// </summary>
public static class UniqueViolation
{
    /// <summary><c>SQLITE_CONSTRAINT_UNIQUE</c> and <c>SQLITE_CONSTRAINT_PRIMARYKEY</c>; not a foreign key, check or NOT NULL.</summary>
    private const int SqliteUnique = 2067;
    private const int SqlitePrimaryKey = 1555;

    /// <summary>The first error from the store among the exception and its causes decides.</summary>
    public static bool Is(Exception exception) => StoreErrors.Chain(exception).FirstOrDefault(e => e is PostgresException or SqliteException) switch
    {
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.UniqueViolation,
        SqliteException sqlite => sqlite.SqliteExtendedErrorCode is SqliteUnique or SqlitePrimaryKey,
        _ => false,
    };
}

internal static class StoreErrors
{
    /// <summary>An exception and its inner exceptions, outermost first (EF Core wraps the driver's).</summary>
    public static IEnumerable<Exception> Chain(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}

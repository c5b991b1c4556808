using Microsoft.Data.Sqlite;
using Npgsql;

namespace DeviceOps.Data;

/// <summary>
/// Failures that say the store cannot take work for now, not that the request or our code is
/// wrong: PostgreSQL out of connections, starting up or shutting down, the connection pool
/// exhausted, the network to the server down, a deadlock or serialization failure; a SQLite file
/// whose write lock another process held past the busy timeout. A retry a moment later may
/// succeed, so they are answered 503 with <c>Retry-After</c>, not 500.
/// </summary>
public static class StoreUnavailable
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;

    public static bool Is(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                // Npgsql's own judgement: its connection and I/O failures, timeouts, and server
                // errors of the classes a retry can clear (53 insufficient resources, 57P03 cannot
                // connect now, 08 connection exceptions, 40001, 40P01).
                case NpgsqlException npgsql when npgsql.IsTransient:
                    return true;
                case SqliteException sqlite when sqlite.SqliteErrorCode is SqliteBusy or SqliteLocked:
                    return true;
            }
        }
        return false;
    }
}

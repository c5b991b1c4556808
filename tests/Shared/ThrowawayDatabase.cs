using Npgsql;

namespace DeviceOps.Testing;

/// <summary>
/// A PostgreSQL database of a test's own, on the server that DEVICEOPS_TEST_POSTGRES names
/// (<c>scripts/test.sh</c> starts one): created empty, dropped with force when disposed. Every
/// test project compiles this one file (a linked source), so each starts its servers on a store
/// nobody else writes to.
/// </summary>
internal sealed class ThrowawayDatabase : IAsyncDisposable
{
    public const string ServerSetting = "DEVICEOPS_TEST_POSTGRES";

    private readonly string _server;

    private ThrowawayDatabase(string server, string name)
    {
        _server = server;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }

    public string Name { get; }

    /// <summary>The connection string of this database, for DEVICEOPS_DATABASE.</summary>
    public string ConnectionString { get; }

    /// <summary>A new database named <paramref name="prefix"/>_GUID, or null when the tests run on SQLite.</summary>
    public static async Task<ThrowawayDatabase?> CreateAsync(string prefix)
    {
        if (Environment.GetEnvironmentVariable(ServerSetting) is not { Length: > 0 } server)
        {
            return null;
        }
        var name = $"{prefix}_{Guid.NewGuid():N}";
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return new ThrowawayDatabase(server, name);
    }

    public async ValueTask DisposeAsync()
    {
        // Pooled connections to it would keep it in use; FORCE ends what another process still holds.
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_server);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}

using Microsoft.Data.Sqlite;

namespace DeviceOps.Testing;

/// <summary>
/// The store of one test server: a <see cref="ThrowawayDatabase"/> when the tests run on
/// PostgreSQL, otherwise a SQLite file in a temporary folder of its own. Disposing it removes
/// both, after the server that used it has stopped.
/// </summary>
internal sealed class ThrowawayStore : IAsyncDisposable
{
    private readonly string _folder;
    private readonly ThrowawayDatabase? _postgres;

    private ThrowawayStore(string folder, ThrowawayDatabase? postgres)
    {
        _folder = folder;
        _postgres = postgres;
        ConnectionString = postgres?.ConnectionString ?? $"Data Source={Path.Combine(folder, "deviceops.db")}";
    }

    /// <summary>For DEVICEOPS_DATABASE.</summary>
    public string ConnectionString { get; }

    public static async Task<ThrowawayStore> CreateAsync(string prefix) =>
        new(Directory.CreateTempSubdirectory($"{prefix}-").FullName, await ThrowawayDatabase.CreateAsync(prefix.Replace('-', '_')));

    public async ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finalising connection; the temp folder is cleaned by the OS.
        }
    }
}

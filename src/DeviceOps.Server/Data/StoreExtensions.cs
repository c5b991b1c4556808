using System.Data.Common;
using DeviceOps.Events;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;

namespace DeviceOps.Data;

public static class StoreExtensions
{
    public const string DatabaseSetting = "DEVICEOPS_DATABASE";
    public const string DefaultSqlitePath = "data/deviceops.db";

    /// <summary>Contexts kept for reuse: more than the requests a small instance serves at once, far fewer than EF Core's default 1,024.</summary>
    private const int ContextPoolSize = 128;

    /// <summary>Bytes SQLite may hold in this process before it recycles cached pages instead of allocating.</summary>
    internal const long SqliteHeapLimit = 16L * 1024 * 1024;

    /// <summary>
    /// Chooses the store from <c>DEVICEOPS_DATABASE</c>: nothing means the embedded SQLite file
    /// <c>./data/deviceops.db</c>; a PostgreSQL connection string or <c>postgres://</c> URL means
    /// PostgreSQL; <c>Data Source=…</c> or a <c>.db</c> path means another SQLite file.
    /// </summary>
    public static IHostApplicationBuilder AddDeviceOpsStore(this IHostApplicationBuilder builder)
    {
        // The setting is read when the first context is made, not here, so a host that adds
        // configuration after this call (tests, other hosts) is still obeyed.
        var services = builder.Services;
        services.AddSingleton<EventSignal>();
        // Pooled contexts: the options are built once, and a context keeps its internal services
        // between requests. Made per request, a context and its options cost more CPU than a
        // GET's own queries (a profile of GET one operation: about 15 % of the server's CPU).
        services.AddDbContextPool<SqliteDeviceOpsDb>((provider, options) => Quiet(options)
            .UseSqlite(ToSqliteConnectionString(Setting(provider)))
            .AddInterceptors(new SqliteDurability(), new EventSignal.CommitInterceptor(provider.GetRequiredService<EventSignal>())),
            ContextPoolSize);
        services.AddDbContextPool<PostgresDeviceOpsDb>((provider, options) => Quiet(options)
            .UseNpgsql(ToNpgsqlConnectionString(Setting(provider)!))
            .AddInterceptors(new EventSignal.CommitInterceptor(provider.GetRequiredService<EventSignal>())),
            ContextPoolSize);
        services.AddScoped<DeviceOpsDb>(provider => IsPostgres(Setting(provider))
            ? provider.GetRequiredService<PostgresDeviceOpsDb>()
            : provider.GetRequiredService<SqliteDeviceOpsDb>());
        services.AddSingleton(provider => new SqliteGroupCommit(ToSqliteConnectionString(Setting(provider)),
            provider.GetRequiredService<EventSignal>(), provider.GetRequiredService<ILogger<SqliteGroupCommit>>()));
        services.AddSingleton(provider => new SqlStore(Setting(provider), provider.GetRequiredService<EventSignal>()));
        services.AddSingleton<History.LatestHistory>();
        services.AddSingleton<Operations.UpdateGroups>();
        services.AddSingleton<Operations.ReadGroups>();
        services.AddHostedService<PlannerStatistics>();
        services.AddScoped<StoreWriter>(provider => IsPostgres(Setting(provider))
            ? new TransactionWriter(provider.GetRequiredService<DeviceOpsDb>(), provider.GetRequiredService<SqlStore>())
            : new GroupCommitWriter(provider.GetRequiredService<SqliteGroupCommit>()));
        return builder;
    }

    /// <summary>
    /// A failed statement or save is not logged as an error by EF Core itself: the caller decides.
    /// Most are expected and answered — two requests racing for one unique name or one
    /// idempotency key, one of them a 409 or a replay — and EF Core logged each as an error with
    /// its SQL (58 in one ten-client run on PostgreSQL). One nobody handles still reaches the
    /// exception handler, which logs it with its exception, and background services log their own.
    /// </summary>
    private static DbContextOptionsBuilder Quiet(DbContextOptionsBuilder options) => options.ConfigureWarnings(warnings => warnings.Log(
        (RelationalEventId.CommandError, LogLevel.Debug),
        (CoreEventId.SaveChangesFailed, LogLevel.Debug),
        (CoreEventId.OptimisticConcurrencyException, LogLevel.Debug)));

    private static string? Setting(IServiceProvider provider) => provider.GetRequiredService<IConfiguration>()[DatabaseSetting];

    /// <summary>Creates or migrates the schema; several instances may race here safely (EF Core takes a migration lock).</summary>
    public static async Task MigrateDeviceOpsStoreAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        if (!db.IsPostgres && db.Database.GetDbConnection() is SqliteConnection sqlite
            && Path.GetDirectoryName(Path.GetFullPath(new SqliteConnectionStringBuilder(sqlite.ConnectionString).DataSource)) is { } folder)
        {
            Directory.CreateDirectory(folder);
        }
        await db.Database.MigrateAsync(cancellationToken);
        if (!db.IsPostgres)
        {
            // WAL lets readers go on while one writer commits; the mode is stored in the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
            // One budget for SQLite's memory in the whole process (the setting is global, not the
            // connection's): every pooled reader keeps a page cache of up to 2 MiB and the writer
            // up to 64 MiB; in bench/rss.sh the C allocator then held about 60 MB on SQLite
            // against 20 MB on PostgreSQL. Near the limit SQLite reuses its cached pages instead
            // of allocating more (the OS still caches the file), so this also caps the writer's
            // cache: the benchmark's 10,000-item batch took 1.2-1.5 s with it on a busy machine
            // (1.0-1.4 s without); the large store was not re-measured.
            await db.Database.ExecuteSqlRawAsync($"PRAGMA soft_heap_limit={SqliteHeapLimit};", cancellationToken);
        }
    }

    internal static bool IsPostgres(string? setting) =>
        !string.IsNullOrWhiteSpace(setting) &&
        (setting.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
         || setting.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
         || setting.Contains("Host=", StringComparison.OrdinalIgnoreCase));

    internal static string ToSqliteConnectionString(string? setting)
    {
        var builder = string.IsNullOrWhiteSpace(setting)
            ? new SqliteConnectionStringBuilder { DataSource = DefaultSqlitePath }
            : setting.Contains('=', StringComparison.Ordinal)
                ? new SqliteConnectionStringBuilder(setting)
                : new SqliteConnectionStringBuilder { DataSource = setting.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase) ? setting[7..] : setting };
        builder.ForeignKeys = true;
        builder.Pooling = true;
        if (setting is null || !(Has(setting, "Default Timeout") || Has(setting, "DefaultTimeout") || Has(setting, "Command Timeout")))
        {
            // How long a write waits for another process's write lock before it gives up (503).
            builder.DefaultTimeout = 30;
        }
        return builder.ToString();
    }

    /// <summary>Turns <c>postgres://user:pass@host:port/db?opt=v</c> into an Npgsql connection string.</summary>
    internal static string ToNpgsqlConnectionString(string setting) => Tuned(ParseNpgsql(setting));

    /// <summary>
    /// Two pool settings for a service that runs the same few statements all day; a setting in the
    /// connection string wins. Statements a connection runs again and again are prepared on the
    /// server after a few uses, so PostgreSQL parses and plans them once per connection. And a
    /// connection is not reset when it goes back to the pool: we never change session state
    /// (no SET, no temporary tables, no LISTEN on pooled connections), and the reset Npgsql
    /// otherwise sends with the next use of the connection (five statements that keep its prepared
    /// ones) cost PostgreSQL more CPU than a GET's own queries — measured, 280 µs per GET.
    /// </summary>
    private static string Tuned(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Has(connectionString, "Auto Prepare") && !Has(connectionString, "AutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
        }
        if (!Has(connectionString, "Reset On Close") && !Has(connectionString, "ResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }
        return builder.ConnectionString;
    }

    private static bool Has(string connectionString, string setting) => connectionString.Contains(setting, StringComparison.OrdinalIgnoreCase);

    private static string ParseNpgsql(string setting)
    {
        if (!setting.Contains("://", StringComparison.Ordinal))
        {
            return setting;
        }
        var uri = new Uri(setting);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        var userInfo = uri.UserInfo.Split(':', 2);
        if (userInfo[0].Length > 0)
        {
            builder.Username = Uri.UnescapeDataString(userInfo[0]);
        }
        if (userInfo.Length > 1)
        {
            builder.Password = Uri.UnescapeDataString(userInfo[1]);
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            builder[Uri.UnescapeDataString(parts[0])] = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "";
        }
        return builder.ConnectionString;
    }

    /// <summary>
    /// In WAL mode SQLite's default (synchronous=NORMAL) may lose the last commits on power
    /// loss; FULL syncs the log at every commit, so a 2xx means the change is on disk.
    /// </summary>
    private sealed class SqliteDurability : DbConnectionInterceptor
    {
        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

        public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Apply(connection);
            return Task.CompletedTask;
        }

        private static void Apply(DbConnection connection)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA synchronous=FULL;";
            command.ExecuteNonQuery();
        }
    }
}

using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Data;
using DeviceOps.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DeviceOps.Tests;

/// <summary>
/// When the store cannot take work — PostgreSQL refusing connections, a SQLite file whose write
/// lock another process holds — a request gets 503 with <c>Retry-After</c> and a problem body,
/// not a 500, nothing of it is stored, and the server serves again once the store does.
/// </summary>
public sealed class StoreUnavailableTests(StoreUnavailableTests.Server factory) : IClassFixture<StoreUnavailableTests.Server>
{
    /// <summary>
    /// On PostgreSQL: a role of its own that owns the database, without pooled connections, so a
    /// connection limit on the role refuses every request's connection (53300). On SQLite: a
    /// one-second wait for the write lock instead of thirty.
    /// </summary>
    public sealed class Server : DeviceOpsFactory
    {
        public string? Role { get; private set; }

        protected override async Task<string> UseStoreAsync(string connectionString)
        {
            if (!OnPostgres)
            {
                return connectionString + ";Default Timeout=1";
            }
            var database = new NpgsqlConnectionStringBuilder(connectionString);
            Role = $"deviceops_limited_{Guid.NewGuid():N}";
            await AsPostgresAsync($"CREATE ROLE {Role} LOGIN", $"ALTER DATABASE {database.Database} OWNER TO {Role}");
            database.Username = Role;
            database.Pooling = false;
            return database.ConnectionString;
        }

        /// <summary>The role is the cluster's, not the database's: it goes once the database has.</summary>
        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            if (Role is not null)
            {
                await AsPostgresAsync($"DROP ROLE IF EXISTS {Role}");
            }
        }

        public static async Task AsPostgresAsync(params string[] statements)
        {
            await using var connection = new NpgsqlConnection(Environment.GetEnvironmentVariable(PostgresSetting));
            await connection.OpenAsync();
            foreach (var statement in statements)
            {
                await using var command = new NpgsqlCommand(statement, connection);
                await command.ExecuteNonQueryAsync();
            }
        }
    }

    /// <summary>Makes the store refuse this server's writes until the returned value is disposed.</summary>
    private async Task<IAsyncDisposable> StoreRefusingWritesAsync()
    {
        if (DeviceOpsFactory.OnPostgres)
        {
            await Server.AsPostgresAsync($"ALTER ROLE {factory.Role} CONNECTION LIMIT 0");
            return new Undo(() => Server.AsPostgresAsync($"ALTER ROLE {factory.Role} CONNECTION LIMIT -1"));
        }
        // Another process's write transaction: it holds the file's write lock until it ends.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(factory.ConnectionString) { Pooling = false }.ToString());
        await connection.OpenAsync();
        await using (var begin = connection.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE";
            await begin.ExecuteNonQueryAsync();
        }
        return new Undo(async () =>
        {
            await using (var rollback = connection.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK";
                await rollback.ExecuteNonQueryAsync();
            }
            await connection.DisposeAsync();
        });
    }

    private sealed class Undo(Func<Task> undo) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await undo();
    }

    [Fact]
    public async Task AWriteTheStoreCannotTakeIsA503WithRetryAfterLeavesNothingAndTheServerRecovers()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]!.GetValue<int>()}/";
        var before = await admin.GetJsonAsync(url);
        var historyBefore = (await Seeder.HistoryAsync(admin, code)).Count;
        var change = new JsonObject { ["status"] = "completed", ["location"] = "Rack 9 - Unit 4" };

        await using (await StoreRefusingWritesAsync())
        {
            var refused = await admin.PatchJsonAsync(url, change);
            var problem = await refused.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "unavailable");
            Assert.Equal("https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4", problem["type"]!.GetValue<string>());
            Assert.Contains("retry", problem["detail"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }

        // Nothing of the refused write is stored: the operation, its device and its history are as they were.
        var after = await admin.GetJsonAsync(url);
        Assert.Equal(before.ToJsonString(), after.ToJsonString());
        Assert.Equal(historyBefore, (await Seeder.HistoryAsync(admin, code)).Count);

        // And the same write goes through now that the store takes work again.
        var accepted = await admin.PatchJsonAsync(url, change);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        var body = await accepted.BodyAsync();
        Assert.Equal("completed", body["status"]!.GetValue<string>());
        Assert.Equal("Rack 9 - Unit 4", body["location"]!.GetValue<string>());
        Assert.True((await Seeder.HistoryAsync(admin, code)).Count > historyBefore);
    }

    [Fact]
    public async Task ReadsWithoutAPostgreSqlConnectionAre503WhileSqliteReadsGoOn()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var url = $"{Api.Operations}{operation["id"]!.GetValue<int>()}/";

        await using (await StoreRefusingWritesAsync())
        {
            var response = await admin.GetAsync(url);
            if (DeviceOpsFactory.OnPostgres)
            {
                // The token check itself needs a connection.
                await response.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "unavailable");
                Assert.NotNull(response.Headers.RetryAfter);
                using var anonymous = factory.Anonymous();
                var ready = await (await anonymous.GetAsync("/readyz")).AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "unavailable");
                Assert.Equal("The database cannot be reached.", ready["detail"]!.GetValue<string>());
            }
            else
            {
                // SQLite's readers do not wait for the write lock: a read goes on as usual.
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(url)).StatusCode);
    }

    [Fact]
    public async Task AFullDiskIsA503WithRetryAfterNotADuplicateLeavesNothingAndTheDeviceRegistersOnceThereIsRoom()
    {
        if (DeviceOpsFactory.OnPostgres)
        {
            // PostgreSQL's disk_full (53100) is of the class Npgsql deems transient, as the
            // connection limit above: the same 503.
            return;
        }
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var code = Seeder.Unique("FULL");
        var configuration = new JsonObject();
        for (var i = 0; i < 12; i++)
        {
            configuration[$"note_{i}"] = new string('x', 1000);
        }
        var device = Seeder.DeviceBody(organization, code: code, extra: new JsonObject { ["configuration"] = configuration });
        var writer = factory.Services.GetRequiredService<SqliteGroupCommit>();
        var before = await admin.GetJsonAsync($"{Api.Devices}?limit=1");

        // The file may grow no further: its free pages taken by a ballast row, then its size made
        // the writer's limit. The device, with 12 KB of configuration, needs new pages.
        await writer.WriteSqlAsync<bool>(async (session, token) =>
        {
            var free = (long)(await session.Command("PRAGMA freelist_count").ExecuteScalarAsync(token))!;
            var pageSize = (long)(await session.Command("PRAGMA page_size").ExecuteScalarAsync(token))!;
            await session.Command("CREATE TABLE IF NOT EXISTS test_ballast (b BLOB)").ExecuteNonQueryAsync(token);
            await session.Command("INSERT INTO test_ballast VALUES (zeroblob($1))", free * pageSize).ExecuteNonQueryAsync(token);
            return (true, true);
        }, CancellationToken.None);
        await MaxPagesAsync(writer, 1);
        try
        {
            var refused = await admin.PostJsonAsync(Api.Devices, device);
            var problem = await refused.AssertProblemAsync(HttpStatusCode.ServiceUnavailable, "unavailable");
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            Assert.Equal("The database's disk is full; nothing was stored. Retry once room is made.", problem["detail"]!.GetValue<string>());
        }
        finally
        {
            await MaxPagesAsync(writer, int.MaxValue - 1);
        }

        // Nothing of it is stored: no device with its code, the count as it was.
        Assert.Equal(0, (await admin.GetJsonAsync($"{Api.Devices}?device_id={code}"))["count"]!.GetValue<int>());
        var after = await admin.GetJsonAsync($"{Api.Devices}?limit=1");
        Assert.Equal(before["count"]!.GetValue<int>(), after["count"]!.GetValue<int>());

        // With room again, the same request registers the device.
        var accepted = await admin.PostJsonAsync(Api.Devices, device);
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
        Assert.Equal(code, (await accepted.BodyAsync())["device_id"]!.GetValue<string>());
        Assert.Equal(1, (await admin.GetJsonAsync($"{Api.Devices}?device_id={code}"))["count"]!.GetValue<int>());
    }

    /// <summary>Sets the writer's page limit; SQLite takes the file's size for any less.</summary>
    private static Task<bool> MaxPagesAsync(SqliteGroupCommit writer, long pages) => writer.WriteSqlAsync<bool>(async (session, token) =>
    {
        await session.Command($"PRAGMA max_page_count = {pages}").ExecuteScalarAsync(token);
        return (true, true);
    }, CancellationToken.None);
}

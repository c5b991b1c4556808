using System.Globalization;
using System.Text.Json.Nodes;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Http;
using DeviceOps.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeviceOps.Tests;

/// <summary>What the plain-SQL hot paths rely on: the stored formats, read and written exactly, and the log checkpoints.</summary>
public sealed class StoreTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    public static TheoryData<string> Times() =>
    [
        "2026-03-01 12:00:00",
        "2026-03-01 12:00:00.5",
        "2024-02-29 23:59:59.9999999",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.1234567",
        "2026-11-26 09:05:07.000123",
    ];

    [Theory]
    [MemberData(nameof(Times))]
    public void StoredTimesReadBackAsTheGeneralParserReadsThem(string stored)
    {
        var expected = DateTime.SpecifyKind(DateTime.Parse(stored, CultureInfo.InvariantCulture), DateTimeKind.Utc);

        var parsed = SqlRows.ParseStored(stored);

        Assert.Equal(expected, parsed);
        Assert.Equal(DateTimeKind.Utc, parsed!.Value.Kind);
    }

    [Theory]
    [InlineData("2026-03-01T12:00:00")]
    [InlineData("2026-03-01 12:00:00Z")]
    [InlineData("2026-13-01 12:00:00")]
    [InlineData("2026-02-30 12:00:00")]
    [InlineData("2026-03-01 12:00:00.")]
    [InlineData("2026-03-01 12:00:00.12345678")]
    [InlineData("2026-03-01 24:00:00")]
    public void TextInAnotherShapeIsLeftToTheGeneralParser(string stored) => Assert.Null(SqlRows.ParseStored(stored));

    [Theory]
    [MemberData(nameof(Times))]
    public void ResponseTimestampsAreWrittenAsTheFormatSaysWithMicroseconds(string stored)
    {
        var value = Rfc3339.Truncate(DateTime.SpecifyKind(DateTime.Parse(stored, CultureInfo.InvariantCulture), DateTimeKind.Utc));
        var expected = value.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFF'Z'", CultureInfo.InvariantCulture);
        Span<byte> buffer = stackalloc byte[32];

        var written = System.Text.Encoding.UTF8.GetString(buffer[..Rfc3339.Write(value, buffer)]);

        Assert.Equal(expected, written);
        Assert.Equal(expected, Rfc3339.ToText(value));
    }

    [Fact]
    public async Task TheDatabaseFileCatchesUpWithItsLogWithinSecondsOfAWrite()
    {
        if (DeviceOpsFactory.OnPostgres)
        {
            return;   // SQLite's write-ahead log only
        }
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var location = $"Checkpointed {Guid.NewGuid():N}";
        var response = await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = location });
        response.EnsureSuccessStatusCode();

        // The writer leaves checkpoints to a connection beside it; the database file alone (a
        // copy without the log) must show the write once that has run.
        var file = new SqliteConnectionStringBuilder(factory.ConnectionString).DataSource;
        var copy = Path.Combine(Path.GetTempPath(), $"deviceops-checkpoint-{Guid.NewGuid():N}.db");
        try
        {
            string? seen = null;
            for (var attempt = 0; attempt < 50 && seen != location; attempt++)
            {
                await Task.Delay(100);
                File.Copy(file, copy, overwrite: true);
                try
                {
                    await using var connection = new SqliteConnection($"Data Source={copy};Pooling=False");
                    await connection.OpenAsync();
                    await using var command = connection.CreateCommand();
                    command.CommandText = "SELECT location FROM devices WHERE device_code = $code";
                    command.Parameters.AddWithValue("$code", device["device_id"]!.GetValue<string>());
                    seen = await command.ExecuteScalarAsync() as string;
                }
                catch (SqliteException)
                {
                    // Copied in the middle of a checkpoint: look again.
                }
            }
            Assert.Equal(location, seen);
        }
        finally
        {
            File.Delete(copy);
        }
    }

    [Fact]
    public async Task UnderASteadyWriteLoadTheLogStartsOverInsteadOfGrowing()
    {
        const long limit = 256 * 1024;
        await using var store = await ScratchStore.CreateAsync("log",
            "CREATE TABLE samples (id INTEGER PRIMARY KEY, body BLOB NOT NULL);");
        var written = 0L;
        var log = 0L;
        var startedOver = 0;
        await using (var writer = store.Writer(limit))
        {
            // Writes always waiting, as under the benchmark's 32 connections: the writer never
            // idles between commits, so a checkpoint beside it never finds the whole log copied.
            // For at least three seconds and at least 12 MB, so that a slow disk writes for longer,
            // not less (three seconds wrote 8.5 MB on a slow CI host).
            var body = new byte[1024];
            var inFlight = new List<Task<bool>>();
            var target = 48 * limit;
            var started = DateTime.UtcNow;
            bool Loading() => (written < target || DateTime.UtcNow < started.AddSeconds(3)) && DateTime.UtcNow < started.AddMinutes(2);
            while (Loading() || inFlight.Count > 0)
            {
                while (Loading() && inFlight.Count < 400)
                {
                    inFlight.Add(writer.WriteSqlAsync<bool>(async (session, token) =>
                    {
                        await session.Command("INSERT INTO samples (body) VALUES ($1)", body).ExecuteNonQueryAsync(token);
                        return (true, true);
                    }, CancellationToken.None));
                    written += body.Length;
                }
                var done = await Task.WhenAny(inFlight);
                Assert.True(await done);
                inFlight.Remove(done);
                // Starting over, the log's file is cut back to the limit (journal_size_limit).
                var size = new FileInfo(store.File + "-wal").Length;
                startedOver += size < log ? 1 : 0;
                log = size;
            }
        }
        Assert.True(written > 40 * limit, $"Only {written} bytes were written in two minutes; the test did not load the writer.");
        // It started over 9–11 times here, 4–6 with three busy loops beside it, and once with the
        // writer's catch-up turned off. How far it grows between two starts depends on how fast the
        // machine writes and how soon the checkpoint gets a core: a third of the writes when busy.
        Assert.True(startedOver >= 3, $"The log started over {startedOver} times in {written} bytes of writes (limit {limit}).");
        Assert.True(log < written / 2, $"The log is {log} bytes after {written} bytes of writes (limit {limit}).");
    }

    [Fact]
    public async Task WhatAWriteLeavesForAfterItsCommitRunsOnlyIfItsChangeIsCommitted()
    {
        await using var store = await ScratchStore.CreateAsync("after", ScratchStore.NamedSamples);
        var ran = new System.Collections.Concurrent.ConcurrentBag<string>();
        await using (var writer = store.Writer())
        {
            Task<bool> Write(string name, bool commit, bool fail) => writer.WriteSqlAsync<bool>(async (session, token) =>
            {
                await session.Command("INSERT INTO samples (name) VALUES ($1)", name).ExecuteNonQueryAsync(token);
                session.AfterCommit(() => ran.Add(name));
                return fail ? throw new InvalidOperationException("refused after writing") : (true, commit);
            }, CancellationToken.None);

            // Queued together, so they share one transaction and one commit.
            var kept = Write("kept", commit: true, fail: false);
            var declined = Write("declined", commit: false, fail: false);
            var failed = Write("failed", commit: true, fail: true);
            var alsoKept = Write("also kept", commit: true, fail: false);

            Assert.True(await kept);
            Assert.True(await declined);
            await Assert.ThrowsAsync<InvalidOperationException>(() => failed);
            Assert.True(await alsoKept);
        }
        Assert.Equal(["also kept", "kept"], ran.Order());
        Assert.Equal("also kept,kept", await store.NamesAsync());
    }

    [Fact]
    public async Task AnAfterCommitActionThatThrowsRunsOnceAndLeavesLaterCommitsTheirOwn()
    {
        await using var store = await ScratchStore.CreateAsync("after-throws", ScratchStore.NamedSamples);
        var ran = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using (var writer = store.Writer())
        {
            Task<bool> Write(string name, bool actionThrows) => writer.WriteSqlAsync<bool>(async (session, token) =>
            {
                await session.Command("INSERT INTO samples (name) VALUES ($1)", name).ExecuteNonQueryAsync(token);
                session.AfterCommit(() =>
                {
                    ran.Enqueue(name);
                    if (actionThrows)
                    {
                        throw new InvalidOperationException("an after-commit action failed");
                    }
                });
                return (true, true);
            }, CancellationToken.None);

            // The commit stands and is acknowledged although its action failed.
            Assert.True(await Write("throws", actionThrows: true));
            // Later commits run their own actions, and not the failed one again.
            Assert.True(await Write("second", actionThrows: false));
            Assert.True(await Write("third", actionThrows: false));
        }
        Assert.Equal(["throws", "second", "third"], ran);
    }

    [Fact]
    public async Task ARequestThatChangesManyPagesAndFailsIsRolledBackAloneFromMemory()
    {
        // 400 rows of 1 KiB: about 100 pages, far past the 64 KiB after which SQLite
        // moves a savepoint's journal of changed pages to a temporary file.
        await using var store = await ScratchStore.CreateAsync("savepoint",
            "CREATE TABLE samples (id INTEGER PRIMARY KEY, body BLOB NOT NULL); "
            + "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
            + "INSERT INTO samples (body) SELECT zeroblob(1024) FROM n;");
        await using (var writer = store.Writer())
        {
            // Queued together, so they share one transaction: the first changes every page, then fails.
            var failed = writer.WriteSqlAsync<bool>(async (session, token) =>
            {
                await session.Command("UPDATE samples SET body = randomblob(1024)").ExecuteNonQueryAsync(token);
                throw new InvalidOperationException("refused after writing");
            }, CancellationToken.None);
            var kept = writer.WriteSqlAsync<long>(async (session, token) =>
            {
                await session.Command("INSERT INTO samples (body) VALUES (zeroblob(1024))").ExecuteNonQueryAsync(token);
                return ((long)(await session.Command("PRAGMA temp_store").ExecuteScalarAsync(token))!, true);
            }, CancellationToken.None);

            await Assert.ThrowsAsync<InvalidOperationException>(() => failed);
            // 2: MEMORY. The journal is only read back to roll a request back; written to a
            // file it cost the benchmark's PUT 30 of the writer's 37 writes a request.
            Assert.Equal(2, await kept);

            // A large batch's group journals on file (0: SQLite's default), and the next group in memory again.
            Task<long> TempStore(int items) => writer.WriteSqlAsync<long>(async (session, token) =>
                ((long)(await session.Command("PRAGMA temp_store").ExecuteScalarAsync(token))!, true), CancellationToken.None, items);
            Assert.Equal(0, await TempStore(SqliteGroupCommit.MaxItemsJournaledInMemory + 1));
            Assert.Equal(2, await TempStore(SqliteGroupCommit.MaxItemsJournaledInMemory));
        }
        await using var check = new SqliteConnection(store.ConnectionString);
        await check.OpenAsync();
        await using var read = check.CreateCommand();
        read.CommandText = "SELECT count(*), sum(body = zeroblob(1024)) FROM samples";
        await using var rows = await read.ExecuteReaderAsync();
        Assert.True(await rows.ReadAsync());
        Assert.Equal(401, rows.GetInt64(0));
        Assert.Equal(401, rows.GetInt64(1));
    }

    [Fact]
    public async Task AFullDiskThatEndsTheGroupsTransactionFailsTheRequestsItUndidAndTheRestOfTheGroupCommits()
    {
        await using var store = await ScratchStore.CreateAsync("full",
            "CREATE TABLE samples (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body BLOB);");
        var ran = new System.Collections.Concurrent.ConcurrentBag<string>();
        await using (var writer = store.Writer())
        {
            // The writer's connection may grow the file by a few pages only: a disk that is nearly full.
            await writer.WriteSqlAsync<bool>(async (session, token) =>
            {
                var pages = (long)(await session.Command("PRAGMA page_count").ExecuteScalarAsync(token))!;
                await session.Command($"PRAGMA max_page_count = {pages + 4}").ExecuteNonQueryAsync(token);
                return (true, true);
            }, CancellationToken.None);

            Task<bool> Write(string name, int bytes) => writer.WriteSqlAsync<bool>(async (session, token) =>
            {
                // One row into a table without constraints: SQLite keeps no statement journal for
                // it, so SQLITE_FULL rolls back the whole transaction, not the statement alone.
                await session.Command("INSERT INTO samples (name, body) VALUES ($1, zeroblob($2))", name, bytes).ExecuteNonQueryAsync(token);
                session.AfterCommit(() => ran.Add(name));
                return (true, true);
            }, CancellationToken.None);

            // Queued together, so they share one transaction.
            var undone = Write("undone", 16);
            var tooLarge = Write("too large", 1024 * 1024);
            var after = Write("after", 16);

            // The row that did not fit is refused as the disk being full (503), and so is the one
            // before it, whose write went with the transaction: nothing of it was acknowledged.
            // Neither may read as another error (before, every request of the group failed with
            // "This SqliteTransaction has completed", a 500).
            foreach (var failed in new[] { undone, tooLarge })
            {
                var error = await Assert.ThrowsAsync<SqliteException>(() => failed);
                Assert.True(StoreUnavailable.IsDiskFull(error), error.Message);
            }
            // The request after it runs in a transaction of its own and commits.
            Assert.True(await after);
            Assert.True(await Write("later", 16));
        }
        Assert.Equal(["after", "later"], ran.Order());
        Assert.Equal("after,later", await store.NamesAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task APostgreSqlBatchLeavesNothingOfItsStatementsOnThePooledConnection(bool endsWithAQuery)
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's batches of statements
        }
        var store = factory.Services.GetRequiredService<SqlStore>();

        var values = await RunBatchAsync(store, endsWithAQuery);

        // The connection is back in the pool, idle: nothing there may still hold the batch's values.
        // Finished async calls can stay on the stack for a moment (their continuations ran inline)
        // and hold what they were given; what a pooled connection keeps, it keeps for good.
        var alive = values.Count;
        for (var attempt = 0; attempt < 50 && alive > 0; attempt++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(attempt * 10));
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            alive = values.Count(v => v.IsAlive);
        }
        Assert.Equal(0, alive);
    }

    /// <summary>Runs 500 statements as one batch, each with a value of its own, and answers weak references to the values.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static Task<List<WeakReference>> RunBatchAsync(SqlStore store, bool endsWithAQuery) =>
        store.WritePostgresAsync<List<WeakReference>>(async (session, token) =>
        {
            var values = new List<WeakReference>();
            for (var i = 0; i < 500; i++)
            {
                var value = new string('v', 64) + i.ToString(CultureInfo.InvariantCulture);
                values.Add(new WeakReference(value));
                await session.QueueAsync("UPDATE organizations SET name = name WHERE name = $1", [value], token);
            }
            if (endsWithAQuery)
            {
                await using var rows = await session.QueryAsync("SELECT count(*) FROM organizations", [], token);
                Assert.True(await rows.Reader.ReadAsync(token));
            }
            else
            {
                await session.FlushAsync(token);
            }
            return (values, false);
        }, CancellationToken.None);

    [Fact]
    public async Task APostgreSqlTableFilledInBulkHasFreshPlannerStatisticsWithinSeconds()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's planner statistics
        }
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var device = await Seeder.DeviceAsync(admin, organization);
        await using var connection = new Npgsql.NpgsqlConnection(factory.ConnectionString);
        await connection.OpenAsync();
        // Autovacuum analyzes the table too, at a time of its own: had it done so first, the
        // planner's belief would be right and the server rightly leave it, and the test would
        // fail (it did, once in a full run). Here only the server may analyze it.
        await using (var off = connection.CreateCommand())
        {
            off.CommandText = "ALTER TABLE operations SET (autovacuum_enabled = false)";
            await off.ExecuteNonQueryAsync();
        }
        var items = new JsonArray([.. Enumerable.Range(0, 2_000).Select(_ => (JsonNode)new JsonObject
        {
            ["device_id"] = device["device_id"]!.DeepClone(),
            ["operation_type"] = "maintenance",
            ["status"] = "scheduled",
        })]);
        var response = await admin.PostAsync(Api.Operations, Api.Json(items));
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);

        // The server's own analysis (last_analyze, not last_autoanalyze) must come within seconds.
        object? analyzed = null;
        for (var attempt = 0; attempt < 60 && analyzed is null or DBNull; attempt++)
        {
            // The server's timer runs on the test clock; the statistics it reads settle in real time.
            factory.Clock.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(500);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'operations' AND schemaname = current_schema()";
            analyzed = await command.ExecuteScalarAsync();
        }
        await using (var on = connection.CreateCommand())
        {
            on.CommandText = "ALTER TABLE operations RESET (autovacuum_enabled)";
            await on.ExecuteNonQueryAsync();
        }
        Assert.IsType<DateTime>(analyzed);
    }

    [Fact]
    public async Task OnPostgreSqlTheLogTablesCheckNoParentsWhileOperationsStillDo()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // SQLite keeps every constraint: its checks cost nothing measurable
        }
        var keys = await PostgresTextsAsync("""
            SELECT c.conrelid::regclass::text || ' -> ' || c.confrelid::regclass::text
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE c.contype = 'f' AND n.nspname = current_schema()
            ORDER BY 1
            """);

        // Every change inserts into history and events; a constraint there is a lookup per insert.
        Assert.DoesNotContain(keys, k => k.StartsWith("history ", StringComparison.Ordinal) || k.StartsWith("events ", StringComparison.Ordinal));
        Assert.Contains("operations -> devices", keys);
        Assert.Contains("webhook_deliveries -> webhooks", keys);
    }

    [Fact]
    public async Task OnPostgreSqlARelocationWritesNoIndexEntryOfTheDevice()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // SQLite writes only the indexes that hold a changed column, and keeps location's
        }
        // The columns the devices' indexes hold.
        var indexed = await PostgresTextsAsync("""
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = 'devices'::regclass
            """);

        // An indexed column changed makes PostgreSQL write an entry into each of the device's
        // indexes; with none changed the update stays on its page and writes none.
        Assert.DoesNotContain("location", indexed);
        Assert.DoesNotContain("last_updated", indexed);
        Assert.DoesNotContain("version", indexed);
        Assert.Contains("device_code", indexed);
    }

    /// <summary>The first column of every row a query on the PostgreSQL test store answers.</summary>
    private async Task<List<string>> PostgresTextsAsync(string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(factory.ConnectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var texts = new List<string>();
        while (await reader.ReadAsync())
        {
            texts.Add(reader.GetString(0));
        }
        return texts;
    }

    /// <summary>A SQLite file of a test's own, with its schema; removed with its log when disposed.</summary>
    private sealed class ScratchStore : IAsyncDisposable
    {
        private ScratchStore(string file) => File = file;

        public string File { get; }

        public string ConnectionString => $"Data Source={File};Pooling=False";

        /// <summary>A table of named rows, for the tests that read back which writes committed (<see cref="NamesAsync"/>).</summary>
        public const string NamedSamples = "CREATE TABLE samples (id INTEGER PRIMARY KEY, name TEXT NOT NULL);";

        /// <summary>The names in <c>samples</c>, in order, comma-separated: what the writer committed.</summary>
        public async Task<object?> NamesAsync()
        {
            await using var check = new SqliteConnection(ConnectionString);
            await check.OpenAsync();
            await using var read = check.CreateCommand();
            read.CommandText = "SELECT group_concat(name, ',') FROM (SELECT name FROM samples ORDER BY name)";
            return await read.ExecuteScalarAsync();
        }

        /// <summary>The group-commit writer on this file (a log limit of its own, if given).</summary>
        public SqliteGroupCommit Writer(long logLimit = SqliteGroupCommit.DefaultLogLimit) =>
            new(ConnectionString, new EventSignal(), NullLogger<SqliteGroupCommit>.Instance, logLimit);

        public static async Task<ScratchStore> CreateAsync(string name, string schema)
        {
            var store = new ScratchStore(Path.Combine(Path.GetTempPath(), $"deviceops-{name}-{Guid.NewGuid():N}.db"));
            await using var setup = new SqliteConnection(store.ConnectionString);
            await setup.OpenAsync();
            await using var command = setup.CreateCommand();
            command.CommandText = "PRAGMA journal_mode=WAL; " + schema;
            await command.ExecuteNonQueryAsync();
            return store;
        }

        public ValueTask DisposeAsync()
        {
            SqliteConnection.ClearAllPools();
            foreach (var path in new[] { File, File + "-wal", File + "-shm" })
            {
                System.IO.File.Delete(path);
            }
            return ValueTask.CompletedTask;
        }
    }
}

using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Data;
using DeviceOps.Events;
using DeviceOps.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace DeviceOps.Tests;

public sealed class EventsTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private const string Events = "/api/v1/events/";

    /// <summary>
    /// Reads until the feed shows what the test committed. On PostgreSQL the feed holds back
    /// events while an older transaction anywhere on the server (another test's) is still
    /// running — that is what keeps it gap-free — so a just-committed event may appear a moment
    /// later.
    /// </summary>
    private static async Task<List<JsonObject>> ReadUntilAsync(HttpClient client, string query, Func<List<JsonObject>, bool> done, int limit = 1000)
    {
        for (var attempt = 0; ; attempt++)
        {
            var events = await ReadAllAsync(client, query, limit);
            if (done(events) || attempt == 100)
            {
                return events;
            }
            await Task.Delay(50);
        }
    }

    /// <summary>Every event of a device after a cursor, reading the feed page by page.</summary>
    private static async Task<List<JsonObject>> ReadAllAsync(HttpClient client, string query, int limit = 1000)
    {
        var events = new List<JsonObject>();
        var url = $"{Events}?{query}&limit={limit}";
        while (true)
        {
            var page = await client.GetJsonAsync(url);
            events.AddRange(page["results"]!.AsArray().Select(e => e!.AsObject()));
            if (!page["has_more"]!.GetValue<bool>())
            {
                return events;
            }
            url = page["next"]!.GetValue<string>();
        }
    }

    [Fact]
    public async Task EveryCommittedChangeIsAnEventWithItsFromAndTo()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var seeded = await ReadUntilAsync(admin, $"device_id={code}", e => e.Any(x => x["type"]!.GetValue<string>() == "operation.created"));
        var start = seeded[^1]["cursor"]!.GetValue<string>();

        var response = await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/",
            new JsonObject { ["operational_status"] = "maintenance", ["location"] = "Rack 4", ["status"] = "completed" });

        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var events = await ReadUntilAsync(admin, $"device_id={code}&after={start}", e => e.Count >= 3);
        Assert.Equal(["operation.status_changed", "device.relocated", "device.status_changed"], events.Select(e => e["type"]!.GetValue<string>()));
        var status = events[2];
        Assert.Equal("active", status["from"]!.GetValue<string>());
        Assert.Equal("maintenance", status["to"]!.GetValue<string>());
        Assert.Equal(code, status["device_id"]!.GetValue<string>());
        Assert.Equal(operation["id"]!.GetValue<int>(), status["operation_id"]!.GetValue<int>());
        Assert.Equal("admin@localhost", status["performed_by"]!.GetValue<string>());
        Assert.All(events, e => Assert.Equal(requestId, e["request_id"]!.GetValue<string>()));
        Assert.Equal(3, events.Select(e => e["id"]!.GetValue<string>()).Distinct().Count());
    }

    [Fact]
    public async Task TheFeedResumesFromACursorWithoutGapsOrRepeats()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        for (var i = 0; i < 7; i++)
        {
            await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = $"Rack {i}" });
        }

        static bool Complete(List<JsonObject> events) => events.Any(e => e["to"]?.ToString() == "Rack 6");
        var all = await ReadUntilAsync(admin, $"device_id={code}", Complete, limit: 1000);
        var paged = await ReadUntilAsync(admin, $"device_id={code}", Complete, limit: 2);

        Assert.Equal(all.Select(e => e["id"]!.GetValue<string>()), paged.Select(e => e["id"]!.GetValue<string>()));
        var relocations = all.Where(e => e["type"]!.GetValue<string>() == "device.relocated").Select(e => e["to"]!.GetValue<string>()).ToList();
        Assert.Equal(["Warehouse A - Section 3", .. Enumerable.Range(0, 7).Select(i => $"Rack {i}")], relocations);
        var cursor = all[3]["cursor"]!.GetValue<string>();
        var rest = await ReadUntilAsync(admin, $"device_id={code}&after={cursor}", Complete);
        Assert.Equal(all.Skip(4).Select(e => e["id"]!.GetValue<string>()), rest.Select(e => e["id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task ABatchProducesOneEventPerObjectSharingItsRequestId()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var devices = new[] { await Seeder.DeviceAsync(admin, organization), await Seeder.DeviceAsync(admin, organization) };
        var start = (await admin.GetJsonAsync($"{Events}?limit=1&type=device.relocated&after=0-0")).ToJsonString();
        var items = new JsonArray([.. devices.Select(d => (JsonNode)new JsonObject { ["id"] = d["id"]!.DeepClone(), ["location"] = "Site C" })]);

        var response = await admin.PatchAsync(Api.Devices, Api.Json(items));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var events = new List<JsonObject>();
        foreach (var device in devices)
        {
            events.AddRange((await ReadUntilAsync(admin, $"device_id={device["device_id"]}&type=device.relocated",
                    e => e.Any(x => x["request_id"]!.GetValue<string>() == requestId)))
                .Where(e => e["request_id"]!.GetValue<string>() == requestId));
        }
        Assert.Equal(2, events.Count);
        Assert.NotNull(start);
    }

    [Fact]
    public async Task ARefusedRequestLeavesNoEvent()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "completed");
        var code = device["device_id"]!.GetValue<string>();
        var before = await ReadUntilAsync(admin, $"device_id={code}", e => e.Any(x => x["type"]!.GetValue<string>() == "operation.created"));

        var refused = await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/",
            new JsonObject { ["status"] = "in_progress", ["location"] = "Nowhere" });

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Equal(before.Count, (await ReadUntilAsync(admin, $"device_id={code}", e => e.Count >= before.Count)).Count);
    }

    [Fact]
    public async Task ATokenOfOneOrganizationNeverSeesAnothersEvents()
    {
        using var admin = factory.Admin();
        var mine = await Seeder.OrganizationAsync(admin);
        var theirs = await Seeder.OrganizationAsync(admin);
        var myDevice = await Seeder.DeviceAsync(admin, mine);
        var theirDevice = await Seeder.DeviceAsync(admin, theirs);
        using var client = await factory.ClientAsync("scoped@example.com", ["devices:read"], [mine]);

        var visible = await ReadUntilAsync(client, "type=device.created",
            e => e.Any(x => x["device_id"]!.GetValue<string>() == myDevice["device_id"]!.GetValue<string>()));
        var asked = await ReadAllAsync(client, $"device_id={theirDevice["device_id"]}");

        Assert.Contains(visible, e => e["device_id"]!.GetValue<string>() == myDevice["device_id"]!.GetValue<string>());
        Assert.DoesNotContain(visible, e => e["device_id"]!.GetValue<string>() == theirDevice["device_id"]!.GetValue<string>());
        Assert.Empty(asked);
    }

    [Fact]
    public async Task ABadCursorOrTypeIsA400()
    {
        using var admin = factory.Admin();

        var response = await admin.GetAsync($"{Events}?after=yesterday&type=device.exploded");

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["after", "type"], problem["errors"]!.AsObject().Select(p => p.Key).Order());
    }

    [Fact]
    public async Task TheStreamSendsNewEventsLiveAndResumesFromLastEventId()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var cursor = (await ReadUntilAsync(admin, $"device_id={code}", e => e.Any(x => x["type"]!.GetValue<string>() == "operation.created")))[^1]["cursor"]!.GetValue<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Events}stream?device_id={code}");
        request.Headers.Add("Last-Event-ID", cursor);
        using var stream = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(timeout.Token));
        await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = "Live 1" });

        var first = await NextEventAsync(reader, timeout.Token);

        Assert.Equal("device.relocated", first.Type);
        Assert.Equal("Live 1", JsonNode.Parse(first.Data)!["to"]!.GetValue<string>());
        Assert.Equal(JsonNode.Parse(first.Data)!["cursor"]!.GetValue<string>(), first.Id);

        // Reconnecting with the last id seen gets what came after it, and nothing before.
        await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = "Live 2" });
        using var again = new HttpRequestMessage(HttpMethod.Get, $"{Events}stream?device_id={code}");
        again.Headers.Add("Last-Event-ID", first.Id);
        using var resumed = await admin.SendAsync(again, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var resumedReader = new StreamReader(await resumed.Content.ReadAsStreamAsync(timeout.Token));
        var second = await NextEventAsync(resumedReader, timeout.Token);
        Assert.Equal("Live 2", JsonNode.Parse(second.Data)!["to"]!.GetValue<string>());
    }

    [Fact]
    public async Task AfterNowLeavesOutChangesCommittedBeforeEvenWhileAnOlderTransactionHoldsTheFeedBack()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]}/";
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // On PostgreSQL a transaction that started earlier and is still running keeps later
        // commits out of the feed for now; they are committed all the same, so not "new".
        await using var older = await OlderTransactionAsync();
        await admin.PatchJsonAsync(url, new JsonObject { ["location"] = "Before" });

        var end = await admin.GetJsonAsync($"{Events}?after=now&device_id={code}");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Events}stream?after=now&device_id={code}");
        using var stream = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(timeout.Token));
        var heartbeat = await NextMessageAsync(reader, timeout.Token);
        if (older is not null)
        {
            await older.DisposeAsync();
        }
        await admin.PatchJsonAsync(url, new JsonObject { ["location"] = "After" });

        Assert.Empty(end["results"]!.AsArray());
        Assert.False(end["has_more"]!.GetValue<bool>());
        Assert.Equal("heartbeat", heartbeat.Type);
        var fromFeed = await ReadUntilAsync(admin, $"device_id={code}&after={end["cursor"]}", e => e.Count >= 1);
        Assert.Equal(["After"], fromFeed.Select(e => e["to"]!.GetValue<string>()));
        var live = await NextEventAsync(reader, timeout.Token);
        Assert.Equal("After", JsonNode.Parse(live.Data)!["to"]!.GetValue<string>());
        // The heartbeat's id is a cursor to resume from, with the same meaning.
        var resumed = await ReadUntilAsync(admin, $"device_id={code}&after={heartbeat.Id}", e => e.Count >= 1);
        Assert.Equal(["After"], resumed.Select(e => e["to"]!.GetValue<string>()));
    }

    /// <summary>
    /// Revocation holds at once for a stream already open: the change made after it never reaches
    /// the revoked token's stream, which ends.
    /// </summary>
    [Fact]
    public async Task AnOpenStreamEndsWhenItsTokenIsRevokedAndSendsNothingAfter()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var created = await (await admin.PostJsonAsync(Api.Tokens, new JsonObject
        {
            ["user"] = "watcher@example.com",
            ["scopes"] = new JsonArray("devices:read"),
        })).BodyAsync();
        using var watcher = factory.WithToken(created["token"]!.GetValue<string>());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Events}stream?after=now&device_id={code}");
        using var stream = await watcher.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(timeout.Token));
        Assert.Equal("heartbeat", (await NextMessageAsync(reader, timeout.Token)).Type);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{Api.Tokens}{created["id"]}/")).StatusCode);
        await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = "After the revocation" });

        var ended = await Assert.ThrowsAsync<InvalidOperationException>(() => NextEventAsync(reader, timeout.Token));
        Assert.Equal("The stream ended.", ended.Message);
    }

    /// <summary>PostgreSQL: a connection in a transaction with an id, open until disposed (on SQLite, none).</summary>
    private async Task<NpgsqlConnection?> OlderTransactionAsync()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return null;
        }
        var connection = new NpgsqlConnection(factory.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("BEGIN; SELECT pg_current_xact_id();", connection);
        await command.ExecuteScalarAsync();
        return connection;
    }

    private sealed record SseMessage(string? Id, string? Type, string Data);

    private static async Task<SseMessage> NextEventAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await NextMessageAsync(reader, cancellationToken);
            if (message.Type != "heartbeat")
            {
                return message;
            }
        }
    }

    private static async Task<SseMessage> NextMessageAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        string? id = null, type = null, data = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    return new(id, type, data);
                }
                id = type = data = null;
                continue;
            }
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                type = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }
        throw new InvalidOperationException("The stream ended.");
    }

    [Fact]
    public async Task ReadingTheOutboxAfterACursorStartsAtTheCursorInAnIndex()
    {
        // The dispatcher and the stream read after a cursor many times a second; a plan that walks
        // the outbox from its start costs more with every event ever written (as it did: an index
        // scan ordered by (tx, id) on SQLite, a range bounded above only on PostgreSQL), and one
        // device's feed must not read all that device's events to find those after the cursor.
        await using var scope = factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<DeviceOpsDb>();
        var cursor = new EventCursor(db.IsPostgres ? 700 : 0, 5_000);
        long? horizon = db.IsPostgres ? 900 : null;

        var all = await PlanAsync(db, EventReader.After(db.Events.AsNoTracking(), cursor, horizon).Take(101));
        var device = await PlanAsync(db, EventReader.After(db.Events.AsNoTracking().Where(e => e.DeviceCode == "DEV-1"), cursor, horizon).Take(101));

        if (db.IsPostgres)
        {
            // Both ends of the range in the index condition, not the lower one in a filter.
            foreach (var plan in new[] { all, device })
            {
                var condition = Assert.Single(plan, line => line.Contains("Index Cond", StringComparison.Ordinal));
                Assert.Matches(@"tx < .*tx >= |tx >= .*tx < ", condition);
            }
            Assert.Contains(device, line => line.Contains("device_code", StringComparison.Ordinal) && line.Contains("Index Cond", StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(["SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"], all);
            Assert.Equal(["SEARCH e USING INDEX IX_events_device_code_id (device_code=? AND id>?)"], device);
        }
    }

    /// <summary>The database's plan for a query, a line per step (PostgreSQL with sequential scans off: a small table would get one).</summary>
    private static async Task<List<string>> PlanAsync(DeviceOpsDb db, IQueryable<OutboxEvent> query)
    {
        await using var command = query.CreateDbCommand();
        await command.Connection!.OpenAsync();
        try
        {
            if (db.IsPostgres)
            {
                await using var setting = command.Connection.CreateCommand();
                setting.CommandText = "SET enable_seqscan = off";
                await setting.ExecuteNonQueryAsync();
            }
            command.CommandText = (db.IsPostgres ? "EXPLAIN " : "EXPLAIN QUERY PLAN ") + command.CommandText;
            var plan = new List<string>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(reader.FieldCount - 1));
            }
            return plan;
        }
        finally
        {
            await command.Connection.CloseAsync();
        }
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Npgsql;

namespace DeviceOps.Tests;

/// <summary>
/// Changes of one operation written together: the SQLite writer's groups and, on PostgreSQL,
/// the groups of PUT and PATCH (one transaction for the requests waiting). Each request is
/// answered with its own change, and one request's refusal or failure is its own.
/// </summary>
public sealed class WriteGroupTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    [Fact]
    public async Task ConcurrentChangesOfManyDevicesEachAnswerWithTheirOwnChangeAndLog()
    {
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 24);

        var answers = await Task.WhenAll(targets.Select(async (t, i) =>
        {
            using var client = factory.Admin();
            var response = await client.PatchJsonAsync(Api.OperationUrl(t.Operation), new JsonObject { ["location"] = $"Aisle {i}" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (Tag: response.Headers.ETag, Body: await response.BodyAsync());
        }));

        for (var i = 0; i < targets.Length; i++)
        {
            var (tag, body) = answers[i];
            Assert.Equal($"Aisle {i}", body["location"]!.GetValue<string>());
            Assert.Equal(targets[i].Code, body["device_id"]!.GetValue<string>());
            var shown = body["operational_history"]!.AsArray();
            Assert.Equal("relocation", shown[0]!["action"]!.GetValue<string>());
            Assert.Equal($"Aisle {i}", shown[0]!["changes"]!["location"]!["to"]!.GetValue<string>());
            // Each answer shows its own device's log, exactly as it now stands.
            var log = await Seeder.HistoryAsync(admin, targets[i].Code);
            Assert.Equal(log.Take(20).Select(e => e!.ToJsonString()), shown.Select(e => e!.ToJsonString()));
            Assert.Single(log, e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"] is not null);
            // And its ETag is the one the operation now has.
            var current = await admin.GetAsync(Api.OperationUrl(targets[i].Operation));
            Assert.Equal(current.Headers.ETag, tag);
        }
    }

    [Fact]
    public async Task RefusedRequestsAmongConcurrentChangesChangeNothingAndFailNoOther()
    {
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 12);
        var (staleDevice, staleOperation) = await Seeder.DeviceWithOperationAsync(admin);
        var (closedDevice, closedOperation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "completed");
        var staleLog = await Seeder.HistoryAsync(admin, Code(staleDevice));
        var closedLog = await Seeder.HistoryAsync(admin, Code(closedDevice));

        var stale = SendAsync(HttpMethod.Patch, Api.OperationUrl(staleOperation), new JsonObject { ["location"] = "Never" }, ifMatch: "\"999\"");
        var refused = SendAsync(HttpMethod.Patch, Api.OperationUrl(closedOperation), new JsonObject { ["status"] = "in_progress", ["location"] = "Never" });
        var missing = SendAsync(HttpMethod.Patch, $"{Api.Operations}2000000000/", new JsonObject { ["location"] = "Never" });
        var applied = targets.Select((t, i) => SendAsync(HttpMethod.Patch, Api.OperationUrl(t.Operation), new JsonObject { ["location"] = $"Bay {i}" })).ToList();
        await Task.WhenAll([stale, refused, missing, .. applied]);

        await (await stale).AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        await (await refused).AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        await (await missing).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        for (var i = 0; i < targets.Length; i++)
        {
            var response = await applied[i];
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal($"Bay {i}", (await admin.GetJsonAsync(Api.DeviceUrl(targets[i].Device)))["location"]!.GetValue<string>());
        }
        Assert.Equal(staleDevice["location"]!.GetValue<string>(), (await admin.GetJsonAsync(Api.DeviceUrl(staleDevice)))["location"]!.GetValue<string>());
        Assert.Equal(closedDevice["location"]!.GetValue<string>(), (await admin.GetJsonAsync(Api.DeviceUrl(closedDevice)))["location"]!.GetValue<string>());
        Assert.Equal(staleLog.ToJsonString(), (await Seeder.HistoryAsync(admin, Code(staleDevice))).ToJsonString());
        Assert.Equal(closedLog.ToJsonString(), (await Seeder.HistoryAsync(admin, Code(closedDevice))).ToJsonString());
    }

    /// <summary>
    /// PostgreSQL: a request whose statement the database refuses takes its group's transaction
    /// down with it; every other request of that group is then written alone and succeeds. The
    /// group is made sure of: a device lock held here stalls the writer while the requests queue.
    /// </summary>
    [Fact]
    public async Task AChangeTheDatabaseRefusesFailsAloneAndNotTheRequestsWrittenWithIt()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of operation writes
        }
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 12);
        var (heldDevice, heldOperation) = await Seeder.DeviceWithOperationAsync(admin);
        var poison = Seeder.Unique("Poison");
        await using var connection = new NpgsqlConnection(factory.ConnectionString);
        await connection.OpenAsync();
        var trigger = Seeder.Unique("refuse").Replace('-', '_');
        await ExecuteAsync(connection, $"""
            CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.location = '{poison}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER {trigger} BEFORE UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION {trigger}();
            """);
        try
        {
            var poisoned = targets[5];
            var poisonedLog = await Seeder.HistoryAsync(admin, poisoned.Code);
            var (first, rest) = await WrittenTogetherAsync(heldDevice, heldOperation, () => targets.Select((t, i) =>
                SendAsync(HttpMethod.Patch, Api.OperationUrl(t.Operation), new JsonObject { ["location"] = t == poisoned ? poison : $"Shelf {i}" })).ToList());

            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            for (var i = 0; i < targets.Length; i++)
            {
                if (targets[i] == poisoned)
                {
                    Assert.Equal(HttpStatusCode.InternalServerError, rest[i].StatusCode);
                    Assert.Equal("application/problem+json", rest[i].Content.Headers.ContentType?.MediaType);
                    continue;
                }
                Assert.Equal(HttpStatusCode.OK, rest[i].StatusCode);
                Assert.Equal($"Shelf {i}", (await rest[i].BodyAsync())["location"]!.GetValue<string>());
                Assert.Equal($"Shelf {i}", (await admin.GetJsonAsync(Api.DeviceUrl(targets[i].Device)))["location"]!.GetValue<string>());
            }
            Assert.Equal(poisonedLog.ToJsonString(), (await Seeder.HistoryAsync(admin, poisoned.Code)).ToJsonString());
        }
        finally
        {
            await ExecuteAsync(connection, $"DROP TRIGGER {trigger} ON devices; DROP FUNCTION {trigger}();");
        }
    }

    /// <summary>PostgreSQL: requests with an <c>Idempotency-Key</c> written together each store, and replay, their own answer.</summary>
    [Fact]
    public async Task IdempotentChangesWrittenTogetherEachReplayTheirOwnAnswer()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of operation writes
        }
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 8);
        var (heldDevice, heldOperation) = await Seeder.DeviceWithOperationAsync(admin);
        var keys = targets.Select(_ => Guid.NewGuid().ToString()).ToArray();
        Func<int, Task<HttpResponseMessage>> send = i => SendAsync(HttpMethod.Put, Api.OperationUrl(targets[i].Operation), new JsonObject
        {
            ["device_id"] = targets[i].Code,
            ["operation_type"] = "maintenance",
            ["status"] = "in_progress",
            ["location"] = $"Cage {i}",
        }, idempotencyKey: keys[i]);

        var (_, first) = await WrittenTogetherAsync(heldDevice, heldOperation, () => targets.Select((_, i) => send(i)).ToList());

        for (var i = 0; i < targets.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, first[i].StatusCode);
            var again = await send(i);
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
            Assert.Equal(first[i].Headers.ETag, again.Headers.ETag);
            Assert.Equal(await first[i].Content.ReadAsStringAsync(), await again.Content.ReadAsStringAsync());
        }
        // Each change was applied once.
        foreach (var target in targets)
        {
            Assert.Single(await Seeder.HistoryAsync(admin, target.Code), e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"] is not null);
        }
    }

    /// <summary>
    /// PostgreSQL: a group checks its requests' tokens in the round trip that reads the operations
    /// (no round trip of its own per request): the changes of a token revoked since it was cached
    /// are answered 401 and leave nothing; the rest of the group is written.
    /// </summary>
    [Fact]
    public async Task ARevokedTokensChangesInAGroupAreRefusedAndTheRestWritten()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of operation writes
        }
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 8);
        var (heldDevice, heldOperation) = await Seeder.DeviceWithOperationAsync(admin);
        var user = $"{Seeder.Unique("grouped")}@example.com";
        var secret = await factory.TokenAsync(user, ["operations:read", "operations:write"]);
        using (var cached = factory.WithToken(secret))
        {
            Assert.Equal(HttpStatusCode.OK, (await cached.GetAsync(Api.OperationUrl(targets[0].Operation))).StatusCode);
        }
        var id = (await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}"))["results"]![0]!["id"]!.GetValue<int>();
        // Revoked in the store, as another instance or `token revoke` would: this instance's cache still holds it.
        await using (var connection = new NpgsqlConnection(factory.ConnectionString))
        {
            await connection.OpenAsync();
            await ExecuteAsync(connection, $"UPDATE tokens SET revoked_at = now() WHERE id = {id}");
        }
        var revoked = new[] { 2, 5 };
        var logs = new Dictionary<int, string>();
        foreach (var i in revoked)
        {
            logs[i] = (await Seeder.HistoryAsync(admin, targets[i].Code)).ToJsonString();
        }

        var (first, rest) = await WrittenTogetherAsync(heldDevice, heldOperation, () => targets.Select((t, i) =>
            SendAsync(HttpMethod.Patch, Api.OperationUrl(t.Operation), new JsonObject { ["location"] = $"Row {i}" },
                token: revoked.Contains(i) ? secret : null)).ToList());

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        for (var i = 0; i < targets.Length; i++)
        {
            var location = (await admin.GetJsonAsync(Api.DeviceUrl(targets[i].Device)))["location"]!.GetValue<string>();
            if (revoked.Contains(i))
            {
                await rest[i].AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
                Assert.NotEqual($"Row {i}", location);
                Assert.Equal(logs[i], (await Seeder.HistoryAsync(admin, targets[i].Code)).ToJsonString());
                continue;
            }
            Assert.Equal(HttpStatusCode.OK, rest[i].StatusCode);
            Assert.Equal($"Row {i}", location);
        }
    }

    /// <summary>
    /// Sends a change of a device this test holds locked, so the writer waits for it; sends the
    /// others meanwhile, which queue behind it; then lets go. The others are then written as one
    /// group. Answers the first change's response and the others'.
    /// </summary>
    private async Task<(HttpResponseMessage First, HttpResponseMessage[] Others)> WrittenTogetherAsync(JsonObject heldDevice, JsonObject heldOperation,
        Func<List<Task<HttpResponseMessage>>> others)
    {
        await using var holder = new NpgsqlConnection(factory.ConnectionString);
        await holder.OpenAsync();
        var transaction = await holder.BeginTransactionAsync();
        await ExecuteAsync(holder, $"SELECT 1 FROM devices WHERE id = {heldDevice["id"]} FOR UPDATE");
        var first = SendAsync(HttpMethod.Patch, Api.OperationUrl(heldOperation), new JsonObject { ["location"] = "Held" });
        await Task.Delay(300);
        var rest = others();
        await Task.Delay(700);
        Assert.False(first.IsCompleted);
        await transaction.RollbackAsync();
        return (await first, await Task.WhenAll(rest));
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, JsonNode body, string? ifMatch = null, string? idempotencyKey = null,
        string? token = null)
    {
        using var client = token is null ? factory.Admin() : factory.WithToken(token);
        using var request = new HttpRequestMessage(method, url) { Content = Api.Json(body) };
        if (ifMatch is not null)
        {
            request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
        }
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        var response = await client.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Code(JsonObject device) => device["device_id"]!.GetValue<string>();
}

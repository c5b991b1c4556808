using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Npgsql;

namespace DeviceOps.Tests;

/// <summary>
/// GETs of one operation read together: on PostgreSQL the requests waiting when a read starts
/// share its statement. Each is answered as if it had been read alone — its own operation, as
/// its caller may see it, with its token checked — and sees every change made before it was sent.
/// </summary>
public sealed class ReadGroupTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    [Fact]
    public async Task ReadsWaitingTogetherEachAnswerAsReadAlone()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of reads
        }
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 10);
        for (var i = 0; i < targets.Length; i += 2)
        {
            var moved = await admin.PatchJsonAsync(Api.OperationUrl(targets[i].Operation), new JsonObject { ["location"] = $"Shelf {i}" });
            Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
        }
        var gone = await DeletedDeviceOperationAsync(admin);
        var urls = targets.Select(t => Api.OperationUrl(t.Operation)).ToList();

        var (_, together) = await ReadTogetherAsync(targets[0].Operation, () =>
            [.. urls.Concat(urls).Append($"{Api.Operations}2000000000/").Append(Api.OperationUrl(gone)).Select(url => GetAsync(url))]);

        for (var i = 0; i < 2 * urls.Count; i++)
        {
            var alone = await admin.GetAsync(urls[i % urls.Count]);
            Assert.Equal(HttpStatusCode.OK, together[i].StatusCode);
            Assert.Equal(alone.Headers.ETag, together[i].Headers.ETag);
            var body = await together[i].BodyAsync();
            Assert.Equal((await alone.BodyAsync()).ToJsonString(), body.ToJsonString());
            Assert.Equal(targets[i % urls.Count].Code, body["device_id"]!.GetValue<string>());
            if (i % 2 == 0)
            {
                Assert.Equal($"Shelf {i % urls.Count}", body["location"]!.GetValue<string>());
            }
        }
        await together[^2].AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await together[^1].AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task ReadsOfAnotherOrganizationsOperationsInAGroupAreNotFound()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of reads
        }
        using var admin = factory.Admin();
        var ours = await Seeder.OrganizationAsync(admin);
        var (_, visible) = await Seeder.DeviceWithOperationAsync(admin, ours);
        var (_, hidden) = await Seeder.DeviceWithOperationAsync(admin);
        var secret = await factory.TokenAsync($"{Seeder.Unique("reader")}@example.com", ["operations:read"], [ours]);

        var (_, together) = await ReadTogetherAsync(visible, () =>
        [
            GetAsync(Api.OperationUrl(visible), secret),
            GetAsync(Api.OperationUrl(hidden), secret),
            GetAsync(Api.OperationUrl(hidden)),
        ]);

        Assert.Equal(HttpStatusCode.OK, together[0].StatusCode);
        Assert.Equal(visible["id"]!.GetValue<int>(), (await together[0].BodyAsync())["id"]!.GetValue<int>());
        var problem = await together[1].AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        Assert.DoesNotContain(hidden["device_id"]!.GetValue<string>(), problem.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, together[2].StatusCode);
    }

    /// <summary>
    /// A token revoked in the store while this instance's cache still holds it (as another
    /// instance or <c>token revoke</c> would): its reads in a group are answered 401 with nothing
    /// of the operation, the others' are answered.
    /// </summary>
    [Fact]
    public async Task ARevokedTokensReadsInAGroupAreRefusedAndTheRestAnswered()
    {
        if (!DeviceOpsFactory.OnPostgres)
        {
            return;   // PostgreSQL's groups of reads
        }
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var user = $"{Seeder.Unique("grouped")}@example.com";
        var secret = await factory.TokenAsync(user, ["operations:read"]);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(Api.OperationUrl(operation), secret)).StatusCode);
        var id = (await admin.GetJsonAsync($"{Api.Tokens}?user={Uri.EscapeDataString(user)}"))["results"]![0]!["id"]!.GetValue<int>();
        await ExecuteAsync($"UPDATE tokens SET revoked_at = now() WHERE id = {id}");

        var (_, together) = await ReadTogetherAsync(operation, () =>
            [GetAsync(Api.OperationUrl(operation)), GetAsync(Api.OperationUrl(operation), secret), GetAsync(Api.OperationUrl(operation))]);

        Assert.Equal(HttpStatusCode.OK, together[0].StatusCode);
        var refused = await together[1].AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
        Assert.DoesNotContain(operation["device_id"]!.GetValue<string>(), refused.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, together[2].StatusCode);
        // And from now on without the store: the cache has let it go.
        await (await GetAsync(Api.OperationUrl(operation), secret)).AssertProblemAsync(HttpStatusCode.Unauthorized, "invalid_token");
    }

    /// <summary>Every store: a GET sent after a change was answered shows the change, under concurrent reads and writes of other operations.</summary>
    [Fact]
    public async Task EachReadAfterAChangeShowsIt()
    {
        using var admin = factory.Admin();
        var targets = await Seeder.DevicesWithOperationsAsync(admin, 8);

        await Task.WhenAll(targets.Select(async (t, i) =>
        {
            using var client = factory.Admin();
            for (var round = 0; round < 6; round++)
            {
                var location = $"Rack {i}-{round}";
                var changed = await client.PatchJsonAsync(Api.OperationUrl(t.Operation), new JsonObject { ["location"] = location });
                Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
                var read = await client.GetAsync(Api.OperationUrl(t.Operation));
                Assert.Equal(changed.Headers.ETag, read.Headers.ETag);
                var body = await read.BodyAsync();
                Assert.Equal(location, body["location"]!.GetValue<string>());
                Assert.Equal(location, body["operational_history"]![0]!["changes"]!["location"]!["to"]!.GetValue<string>());
            }
        }));
    }

    /// <summary>
    /// Holds the operations table locked, sends a GET, which the database keeps waiting with its
    /// group; sends the others meanwhile, which gather behind it; then lets go. The others are
    /// then read as one group. Answers the first GET's response and the others'.
    /// </summary>
    private async Task<(HttpResponseMessage First, HttpResponseMessage[] Others)> ReadTogetherAsync(JsonObject firstOperation,
        Func<List<Task<HttpResponseMessage>>> others)
    {
        await using var holder = new NpgsqlConnection(factory.ConnectionString);
        await holder.OpenAsync();
        var transaction = await holder.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand("LOCK TABLE operations IN ACCESS EXCLUSIVE MODE", holder))
        {
            await command.ExecuteNonQueryAsync();
        }
        var first = GetAsync(Api.OperationUrl(firstOperation));
        await Task.Delay(300);
        var rest = others();
        await Task.Delay(700);
        Assert.False(first.IsCompleted);
        Assert.All(rest, r => Assert.False(r.IsCompleted));
        await transaction.RollbackAsync();
        return (await first, await Task.WhenAll(rest));
    }

    /// <summary>A completed operation whose device was then decommissioned and deleted.</summary>
    private static async Task<JsonObject> DeletedDeviceOperationAsync(HttpClient admin)
    {
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, operationStatus: "completed");
        var retired = await admin.PatchJsonAsync(Api.DeviceUrl(device), new JsonObject { ["operational_status"] = "decommissioned" });
        Assert.Equal(HttpStatusCode.OK, retired.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(Api.DeviceUrl(device))).StatusCode);
        return operation;
    }

    private async Task<HttpResponseMessage> GetAsync(string url, string? token = null)
    {
        using var client = token is null ? factory.Admin() : factory.WithToken(token);
        var response = await client.GetAsync(url);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(factory.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

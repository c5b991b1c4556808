using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class BatchTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    /// <summary>Opens <paramref name="count"/> operations spread over <paramref name="devices"/> new devices, in one batch POST.</summary>
    private static async Task<(List<JsonObject> Devices, List<JsonObject> Operations)> SeedAsync(HttpClient admin, int devices, int count)
    {
        var organization = await Seeder.OrganizationAsync(admin);
        var made = new List<JsonObject>();
        for (var i = 0; i < devices; i++)
        {
            made.Add(await Seeder.DeviceAsync(admin, organization));
        }
        var items = new JsonArray([.. Enumerable.Range(0, count).Select(i => (JsonNode)new JsonObject
        {
            ["device_id"] = made[i % devices]["device_id"]!.DeepClone(),
            ["operation_type"] = "firmware_update",
            ["status"] = "scheduled",
        })]);
        var response = await admin.PostAsync(Api.Operations, Api.Json(items));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var body = await response.BodyAsync();
        Assert.Equal(count, body["count"]!.GetValue<int>());
        return (made, [.. body["results"]!.AsArray().Select(r => r!.AsObject())]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1_000)]
    [InlineData(10_000)]
    public async Task BatchPatchAppliesEveryItemWithOneSharedRequestId(int count)
    {
        using var admin = factory.Admin();
        var (devices, operations) = await SeedAsync(admin, Math.Min(count, 50), count);
        var items = new JsonArray([.. operations.Select(o => (JsonNode)new JsonObject
        {
            ["id"] = o["id"]!.DeepClone(),
            ["status"] = "in_progress",
            ["configuration"] = new JsonObject { ["firmware_version"] = "3.0.0" },
        })]);

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var body = await response.BodyAsync();
        Assert.Equal(count, body["count"]!.GetValue<int>());
        Assert.All(body["results"]!.AsArray(), r => Assert.Equal("in_progress", r!["status"]!.GetValue<string>()));
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var entries = await admin.GetJsonAsync($"{Api.Log}?request_id={requestId}&action=operation_status_change&limit=1");
        Assert.Equal(count, entries["count"]!.GetValue<int>());
        // One configuration change per device: later items on the same device find 3.0.0 already set.
        var configuration = await admin.GetJsonAsync($"{Api.Log}?request_id={requestId}&action=configuration_change&limit=1");
        Assert.Equal(devices.Count, configuration["count"]!.GetValue<int>());
        var device = await admin.GetJsonAsync($"{Api.Devices}{devices[0]["id"]}/");
        Assert.Equal("3.0.0", device["configuration"]!["firmware_version"]!.GetValue<string>());
    }

    [Fact]
    public async Task OneBadItemInTheMiddleChangesNothingAndIsNamedByIndex()
    {
        using var admin = factory.Admin();
        var (devices, operations) = await SeedAsync(admin, 3, 9);
        var before = await admin.GetJsonAsync($"{Api.Operations}?device_id={devices[0]["device_id"]}");
        var history = await Seeder.HistoryAsync(admin, devices[0]["device_id"]!.GetValue<string>());
        var items = new JsonArray([.. operations.Select((o, i) => (JsonNode)new JsonObject
        {
            ["id"] = o["id"]!.DeepClone(),
            ["status"] = i == 4 ? "finished" : "in_progress",
            ["location"] = i == 6 ? 42 : "Site B",
        })]);

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["[4].status", "[6].location"], problem["errors"]!.AsObject().Select(p => p.Key).Order());
        Assert.Equal([4, 6], problem["failed_items"]!.AsArray().Select(f => f!["index"]!.GetValue<int>()));
        Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync($"{Api.Operations}?device_id={devices[0]["device_id"]}")));
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, devices[0]["device_id"]!.GetValue<string>())).Count);
    }

    [Fact]
    public async Task AMissingIdAndAForbiddenTransitionAreBothListedAndNothingIsApplied()
    {
        using var admin = factory.Admin();
        var (devices, operations) = await SeedAsync(admin, 1, 3);
        var code = devices[0]["device_id"]!.GetValue<string>();
        var history = await Seeder.HistoryAsync(admin, code);
        var items = new JsonArray(
            new JsonObject { ["id"] = operations[0]["id"]!.DeepClone(), ["status"] = "completed" },
            new JsonObject { ["id"] = int.MaxValue, ["status"] = "completed" },
            new JsonObject { ["id"] = operations[2]["id"]!.DeepClone(), ["status"] = "pending" });

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var failed = problem["failed_items"]!.AsArray();
        Assert.Equal([1, 2], failed.Select(f => f!["index"]!.GetValue<int>()));
        Assert.Equal("not_found", failed[0]!["code"]!.GetValue<string>());
        Assert.Equal("invalid_transition", failed[1]!["code"]!.GetValue<string>());
        Assert.Equal(["in_progress", "completed", "failed", "cancelled"], failed[1]!["allowed_next_states"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal("scheduled", (await admin.GetJsonAsync($"{Api.Operations}{operations[0]["id"]}/"))["status"]!.GetValue<string>());
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, code)).Count);
    }

    [Fact]
    public async Task OnlyForbiddenTransitionsAnswer409()
    {
        using var admin = factory.Admin();
        var (_, operations) = await SeedAsync(admin, 1, 2);
        var items = new JsonArray([.. operations.Select(o => (JsonNode)new JsonObject { ["id"] = o["id"]!.DeepClone(), ["status"] = "pending" })]);

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.Conflict, "invalid_transition");
        Assert.Equal(2, problem["failed_items"]!.AsArray().Count);
    }

    [Fact]
    public async Task AStaleVersionFailsTheBatchWith412()
    {
        using var admin = factory.Admin();
        var (_, operations) = await SeedAsync(admin, 2, 2);
        var current = (await admin.GetAsync($"{Api.Operations}{operations[0]["id"]}/")).Headers.ETag!.Tag;
        var stale = (await admin.GetAsync($"{Api.Operations}{operations[1]["id"]}/")).Headers.ETag!.Tag;
        await admin.PatchJsonAsync($"{Api.Operations}{operations[1]["id"]}/", new JsonObject { ["notes"] = "changed meanwhile" });
        var items = new JsonArray(
            new JsonObject { ["id"] = operations[0]["id"]!.DeepClone(), ["version"] = current, ["notes"] = "mine" },
            new JsonObject { ["id"] = operations[1]["id"]!.DeepClone(), ["version"] = stale, ["notes"] = "mine" });

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        Assert.Equal(1, problem["failed_items"]![0]!["index"]!.GetValue<int>());
        Assert.NotEqual("mine", (await admin.GetJsonAsync($"{Api.Operations}{operations[0]["id"]}/"))["notes"]?.GetValue<string>());
    }

    [Fact]
    public async Task BatchPutRequiresEveryItemsRequiredFields()
    {
        using var admin = factory.Admin();
        var (_, operations) = await SeedAsync(admin, 1, 1);

        var response = await admin.PutAsync(Api.Operations, Api.Json(new JsonArray(new JsonObject { ["id"] = operations[0]["id"]!.DeepClone() })));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["[0].device_id", "[0].operation_type", "[0].status"], problem["errors"]!.AsObject().Select(p => p.Key).Order());
    }

    [Fact]
    public async Task MoreItemsThanTheBatchLimitAnswers413()
    {
        using var admin = factory.Admin();
        var items = new JsonArray([.. Enumerable.Range(1, 10_001).Select(i => (JsonNode)new JsonObject { ["id"] = i })]);

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        await response.AssertProblemAsync(HttpStatusCode.RequestEntityTooLarge, "batch_too_large");
    }

    [Fact]
    public async Task ABatchPostWithAnUnknownDeviceCreatesNothing()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var items = new JsonArray(
            new JsonObject { ["device_id"] = code, ["operation_type"] = "inspection" },
            new JsonObject { ["device_id"] = "NOWHERE-1", ["operation_type"] = "inspection" });

        var response = await admin.PostAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["[1].device_id"], problem["errors"]!.AsObject().Select(p => p.Key));
        Assert.Equal(0, (await admin.GetJsonAsync($"{Api.Operations}?device_id={code}"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task ABatchNamingOneOperationTwiceAnswersItsFinalStateAsAGetShowsIt()
    {
        using var admin = factory.Admin();
        var (device, first) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var second = await Seeder.OperationAsync(admin, code);
        var before = Versions((await admin.GetAsync($"{Api.Operations}{first["id"]}/")).Headers.ETag!.Tag);
        var items = new JsonArray(
            new JsonObject { ["id"] = first["id"]!.DeepClone(), ["notes"] = "first pass" },
            new JsonObject { ["id"] = first["id"]!.DeepClone(), ["notes"] = "second pass", ["location"] = "Dock 1" },
            new JsonObject { ["id"] = second["id"]!.DeepClone(), ["location"] = "Dock 1", ["status"] = "completed" });

        var response = await admin.PatchAsync(Api.Operations, Api.Json(items));

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var results = (await response.BodyAsync())["results"]!.AsArray();
        Assert.Equal(3, results.Count);
        var got = await admin.GetAsync($"{Api.Operations}{first["id"]}/");
        var current = await got.BodyAsync();
        foreach (var item in results.Take(2))
        {
            Assert.Equal("second pass", item!["notes"]!.GetValue<string>());
            Assert.Equal("Dock 1", item["location"]!.GetValue<string>());
            Assert.Equal(current["last_updated"]!.GetValue<string>(), item["last_updated"]!.GetValue<string>());
        }
        Assert.Equal("second pass", current["notes"]!.GetValue<string>());
        Assert.Equal("Dock 1", current["location"]!.GetValue<string>());
        Assert.Equal("completed", (await admin.GetJsonAsync($"{Api.Operations}{second["id"]}/"))["status"]!.GetValue<string>());
        // Two items changed the operation, one its device (the third found Dock 1 already set); both
        // operations show the device as it is now.
        var after = Versions(got.Headers.ETag!.Tag);
        Assert.Equal((before.Operation + 2, before.Device + 1), after);
        Assert.Equal(after.Device, Versions((await admin.GetAsync($"{Api.Operations}{second["id"]}/")).Headers.ETag!.Tag).Device);
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        var history = (await Seeder.HistoryAsync(admin, code)).Where(e => e!["request_id"]!.GetValue<string>() == requestId).ToList();
        Assert.Single(history, e => e!["action"]!.GetValue<string>() == "relocation");
        Assert.Single(history, e => e!["action"]!.GetValue<string>() == "operation_status_change");
    }

    [Fact]
    public async Task ABatchRetriedWithItsIdempotencyKeyAnswersTheSameBodyAndAppliesOnce()
    {
        using var admin = factory.Admin();
        var (devices, operations) = await SeedAsync(admin, 2, 6);
        var items = new JsonArray([.. operations.Select(o => (JsonNode)new JsonObject { ["id"] = o["id"]!.DeepClone(), ["notes"] = "retried", ["location"] = "Dock 3" })]);
        var key = Seeder.Unique("key");
        async Task<HttpResponseMessage> SendAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Patch, Api.Operations) { Content = Api.Json(items) };
            request.Headers.Add("Idempotency-Key", key);
            return await admin.SendAsync(request);
        }

        var first = await SendAsync();
        var again = await SendAsync();

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
        var body = await first.BodyAsync();
        Assert.True(JsonNode.DeepEquals(body, await again.BodyAsync()));
        Assert.Equal(6, body["results"]!.AsArray().Count);
        Assert.All(body["results"]!.AsArray(), r => Assert.Equal("retried", r!["notes"]!.GetValue<string>()));
        var requestId = first.Headers.GetValues("X-Request-Id").Single();
        foreach (var device in devices)
        {
            var history = await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>());
            Assert.Single(history, e => e!["request_id"]!.GetValue<string>() == requestId && e["action"]!.GetValue<string>() == "relocation");
        }
    }

    /// <summary>An operation's ETag, <c>"operation version-device version"</c>.</summary>
    private static (int Operation, int Device) Versions(string etag)
    {
        var parts = etag.Trim('"').Split('-');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task ABatchNamingAnOperationOfAnotherOrganizationFindsNothingAndAppliesNothing()
    {
        using var admin = factory.Admin();
        var mine = await Seeder.OrganizationAsync(admin);
        var (_, own) = await Seeder.DeviceWithOperationAsync(admin, mine);
        var (theirDevice, theirs) = await Seeder.DeviceWithOperationAsync(admin);
        using var client = await factory.ClientAsync("ops@example.com", ["operations:read", "operations:write"], [mine]);
        var items = new JsonArray(
            new JsonObject { ["id"] = own["id"]!.DeepClone(), ["location"] = "Dock 2" },
            new JsonObject { ["id"] = theirs["id"]!.DeepClone(), ["location"] = "Dock 2" });

        var response = await client.PatchAsync(Api.Operations, Api.Json(items));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var failed = problem["failed_items"]!.AsArray();
        Assert.Equal(1, Assert.Single(failed)!["index"]!.GetValue<int>());
        Assert.Equal("not_found", failed[0]!["code"]!.GetValue<string>());
        Assert.Equal([$"Operation {theirs["id"]} does not exist."], problem.Messages("[1].id"));
        Assert.Equal("Warehouse A - Section 3", (await admin.GetJsonAsync($"{Api.Operations}{own["id"]}/"))["location"]!.GetValue<string>());
        Assert.Equal("Warehouse A - Section 3", (await admin.GetJsonAsync($"{Api.Devices}{theirDevice["id"]}/"))["location"]!.GetValue<string>());
    }

    [Fact]
    public async Task ConcurrentBatchesAndSingleWritesOnTheSameDevicesLoseNothing()
    {
        using var admin = factory.Admin();
        var (devices, operations) = await SeedAsync(admin, 5, 50);
        var codes = devices.Select(d => d["device_id"]!.GetValue<string>()).ToList();

        var batches = Enumerable.Range(0, 4).Select(async b =>
        {
            using var client = factory.Admin();
            var items = new JsonArray([.. operations.Select(o => (JsonNode)new JsonObject
            {
                ["id"] = o["id"]!.DeepClone(),
                ["configuration"] = new JsonObject { [$"batch_{b}"] = true },
            })]);
            return await client.PatchAsync(Api.Operations, Api.Json(items));
        });
        var singles = operations.Take(10).Select(async (o, i) =>
        {
            using var client = factory.Admin();
            return await client.PatchJsonAsync($"{Api.Operations}{o["id"]}/", new JsonObject { ["location"] = $"Single {i}" });
        });
        var responses = await Task.WhenAll(batches.Concat(singles));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var device in devices)
        {
            var state = await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/");
            var configuration = state["configuration"]!.AsObject();
            Assert.All(Enumerable.Range(0, 4), b => Assert.True(configuration[$"batch_{b}"]!.GetValue<bool>()));
            var history = await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>());
            Assert.Equal(4, history.Count(e => e!["action"]!.GetValue<string>() == "configuration_change" && e["operation_id"] is not null));
        }
        var relocations = 0;
        foreach (var code in codes)
        {
            relocations += (await Seeder.HistoryAsync(admin, code)).Count(e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"] is not null);
        }
        Assert.Equal(10, relocations);
    }

    [Fact]
    public async Task DeviceBatchPatchChangesManyDevicesAndChecksSerialsAcrossItems()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var first = await Seeder.DeviceAsync(admin, organization);
        var second = await Seeder.DeviceAsync(admin, organization);

        var duplicate = await admin.PatchAsync(Api.Devices, Api.Json(new JsonArray(
            new JsonObject { ["id"] = first["id"]!.DeepClone(), ["serial_number"] = "SAME-SERIAL" },
            new JsonObject { ["id"] = second["id"]!.DeepClone(), ["serial_number"] = "SAME-SERIAL" })));
        var moved = await admin.PatchAsync(Api.Devices, Api.Json(new JsonArray(
            new JsonObject { ["id"] = first["id"]!.DeepClone(), ["location"] = "Site B", ["operational_status"] = "maintenance" },
            new JsonObject { ["id"] = second["id"]!.DeepClone(), ["location"] = "Site B" })));

        var problem = await duplicate.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.Equal(["[1].serial_number"], problem["errors"]!.AsObject().Select(p => p.Key));
        Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
        var results = (await moved.BodyAsync())["results"]!.AsArray();
        Assert.All(results, r => Assert.Equal("Site B", r!["location"]!.GetValue<string>()));
        Assert.Equal("maintenance", results[0]!["operational_status"]!.GetValue<string>());
        Assert.Equal(first["serial_number"]!.GetValue<string>(), (await admin.GetJsonAsync($"{Api.Devices}{first["id"]}/"))["serial_number"]!.GetValue<string>());
    }
}

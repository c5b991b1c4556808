using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class HistoryTests : OwnServerTests
{
    private static string[] Actions(JsonArray entries) => [.. entries.Select(e => e!["action"]!.GetValue<string>())];

    [Fact]
    public async Task LogFiltersByDeviceOperationActionAndPerformer()
    {
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var other = await Seeder.DeviceAsync(admin);
        using var engineer = await Factory.ClientAsync("engineer@example.com", ["operations:read", "operations:write"]);
        await engineer.PatchJsonAsync($"{Api.Operations}{operation["id"]}/",
            new JsonObject { ["location"] = "Building A - Floor 2", ["assigned_user"] = "john.doe@company.com" });

        var byDevice = (await admin.GetJsonAsync($"{Api.Log}?device_id={code}"))["results"]!.AsArray();
        var byOperation = (await admin.GetJsonAsync($"{Api.Log}?operation_id={operation["id"]}"))["results"]!.AsArray();
        var byAction = (await admin.GetJsonAsync($"{Api.Log}?device_id={code}&action=relocation"))["results"]!.AsArray();
        var byPerformer = (await admin.GetJsonAsync($"{Api.Log}?performed_by=engineer@example.com"))["results"]!.AsArray();

        Assert.All(byDevice, e => Assert.Equal(code, e!["device_id"]!.GetValue<string>()));
        Assert.DoesNotContain(byDevice, e => e!["device_id"]!.GetValue<string>() == other["device_id"]!.GetValue<string>());
        Assert.Equal(["assignment_change", "relocation", "operation_created"], Actions(byOperation));
        var relocation = Assert.Single(byAction, e => e!["performed_by"]!.GetValue<string>() == "engineer@example.com");
        Assert.Equal("Building A - Floor 2", relocation!["changes"]!["location"]!["to"]!.GetValue<string>());
        Assert.Equal(["assignment_change", "relocation"], Actions(byPerformer));
    }

    [Fact]
    public async Task LogFiltersByTimeWindowAndRequestId()
    {
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        Factory.Clock.Advance(TimeSpan.FromHours(1));
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{operation["id"]}/")
        {
            Content = Api.Json(new JsonObject { ["operational_status"] = "maintenance" }),
        };
        request.Headers.Add("X-Request-Id", "change-ticket-4711");
        Assert.Equal(HttpStatusCode.OK, (await admin.SendAsync(request)).StatusCode);

        var since = (await admin.GetJsonAsync($"{Api.Log}?device_id={code}&since=2026-03-01T12:30:00Z"))["results"]!.AsArray();
        var until = (await admin.GetJsonAsync($"{Api.Log}?device_id={code}&until=2026-03-01T12:30:00%2B00:00"))["results"]!.AsArray();
        var byRequest = (await admin.GetJsonAsync($"{Api.Log}?request_id=change-ticket-4711"))["results"]!.AsArray();

        Assert.Equal(["status_change"], Actions(since));
        Assert.Equal("2026-03-01T13:00:00Z", since[0]!["timestamp"]!.GetValue<string>());
        Assert.DoesNotContain("status_change", Actions(until));
        Assert.NotEmpty(until);
        Assert.Equal(["status_change"], Actions(byRequest));
    }

    [Fact]
    public async Task LogEntriesCannotBeWrittenChangedOrDeleted()
    {
        using var admin = Factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var entry = (await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>()))[0]!;
        var url = $"{Api.Log}{entry["id"]}/";

        var put = await admin.PutJsonAsync(url, new JsonObject { ["action"] = "nothing_happened" });
        var delete = await admin.DeleteAsync(url);
        var post = await admin.PostJsonAsync(Api.Log, new JsonObject { ["action"] = "forged" });

        await put.AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        await delete.AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        await post.AssertProblemAsync(HttpStatusCode.MethodNotAllowed, "method_not_allowed");
        Assert.True(JsonNode.DeepEquals(entry, await admin.GetJsonAsync(url)));
    }

    [Fact]
    public async Task DeviceResponseCarriesItsLatestTwentyEntriesNewestFirst()
    {
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        for (var i = 0; i < 25; i++)
        {
            await admin.PatchJsonAsync($"{Api.Operations}{operation["id"]}/", new JsonObject { ["location"] = $"Rack {i}" });
        }

        var body = await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/");

        var history = body["operational_history"]!.AsArray();
        Assert.Equal(20, history.Count);
        Assert.Equal("Rack 24", history[0]!["changes"]!["location"]!["to"]!.GetValue<string>());
        var ids = history.Select(e => e!["id"]!.GetValue<long>()).ToList();
        Assert.Equal(ids.OrderDescending(), ids);
    }

    [Fact]
    public async Task OperationAnswersEmbedTheDevicesLatestEntriesWhicheverCallWroteThem()
    {
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operationUrl = $"{Api.Operations}{operation["id"]}/";
        async Task<JsonArray> LatestInLog() => [.. (await Seeder.HistoryAsync(admin, code)).Take(20).Select(e => e!.DeepClone())];
        async Task AssertEmbeds(JsonNode? history, string what)
        {
            var log = await LatestInLog();
            Assert.True(JsonNode.DeepEquals(log, history), $"{what}:\n{history?.ToJsonString()}\nlog:\n{log.ToJsonString()}");
        }

        await AssertEmbeds((await admin.GetJsonAsync(operationUrl))["operational_history"], "first GET");
        // Past twenty entries, changes through the operation interleaved with changes through the
        // device (another write path): each answer, and each GET after it, shows the log's latest.
        for (var i = 0; i < 24; i++)
        {
            using var changed = i % 5 == 3
                ? await admin.PatchJsonAsync($"{Api.Devices}{device["id"]}/", new JsonObject { ["maintenance_notes"] = $"Checked {i}" })
                : await admin.PatchJsonAsync(operationUrl, new JsonObject { ["location"] = $"Rack {i}", ["notes"] = $"Moved {i}" });
            Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
            await AssertEmbeds(JsonNode.Parse(await changed.Content.ReadAsStringAsync())!["operational_history"], $"answer {i}");
            await AssertEmbeds((await admin.GetJsonAsync(operationUrl))["operational_history"], $"GET after {i}");
        }
        Assert.Equal(20, (await admin.GetJsonAsync(operationUrl))["operational_history"]!.AsArray().Count);
    }

    [Fact]
    public async Task EmbeddedEntriesAreWrittenExactlyAsTheLogWritesThem()
    {
        // Answers write the embedded entries from a form kept per entry; text that the writer
        // escapes (non-ASCII, markup, quotes) must come out as the log writes it, character for
        // character, on the change's answer, on the GETs that reuse the kept form, and on the device.
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operationUrl = $"{Api.Operations}{operation["id"]}/";
        var answers = new List<string>();
        foreach (var place in new[] { "Gebäude <A> & \"Süd\" – Ebene 2", "Rack 7 🛰 \\ back", "Plain" })
        {
            using var changed = await admin.PatchJsonAsync(operationUrl, new JsonObject { ["location"] = place, ["notes"] = $"moved to {place}" });
            Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
            answers.Add(await changed.Content.ReadAsStringAsync());
        }
        answers.Add(await admin.GetStringAsync(operationUrl));
        answers.Add(await admin.GetStringAsync(operationUrl));
        answers.Add(await admin.GetStringAsync($"{Api.Devices}{device["id"]}/"));

        using var log = JsonDocument.Parse(await admin.GetStringAsync($"{Api.Log}?device_id={code}&limit=1000"));
        var logged = log.RootElement.GetProperty("results").EnumerateArray().ToDictionary(e => e.GetProperty("id").GetInt64(), e => e.GetRawText());
        Assert.Contains(logged.Values, text => text.Contains("\\u003CA\\u003E", StringComparison.Ordinal));
        foreach (var answer in answers)
        {
            using var body = JsonDocument.Parse(answer);
            var embedded = body.RootElement.GetProperty("operational_history").EnumerateArray().ToList();
            Assert.NotEmpty(embedded);
            Assert.All(embedded, e => Assert.Equal(logged[e.GetProperty("id").GetInt64()], e.GetRawText()));
        }
    }

    [Fact]
    public async Task ADeviceWithOpenOperationsIsNotDeletedUntilTheyAreFinished()
    {
        using var admin = Factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Devices}{device["id"]}/";
        var operationUrl = $"{Api.Operations}{operation["id"]}/";
        // The operation that decommissions it is still open when the device is decommissioned.
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchJsonAsync(operationUrl, new JsonObject { ["operational_status"] = "decommissioned" })).StatusCode);
        var history = await Seeder.HistoryAsync(admin, code);

        var refused = await admin.DeleteAsync(url);

        var problem = await refused.AssertProblemAsync(HttpStatusCode.Conflict, "device_has_open_operations");
        Assert.Contains(operation["id"]!.ToString(), problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(url)).StatusCode);
        Assert.Equal("in_progress", (await admin.GetJsonAsync(operationUrl))["status"]!.GetValue<string>());
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, code)).Count);

        Assert.Equal(HttpStatusCode.OK, (await admin.PatchJsonAsync(operationUrl, new JsonObject { ["status"] = "completed" })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(url)).StatusCode);
        await (await admin.GetAsync(url)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Fact]
    public async Task AuditTrailOfADeletedDeviceIsKept()
    {
        using var admin = Factory.Admin();
        var device = await Seeder.DeviceAsync(admin, status: "active");
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Devices}{device["id"]}/";

        var refused = await admin.DeleteAsync(url);
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, "device_not_decommissioned");
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchJsonAsync(url, new JsonObject { ["operational_status"] = "decommissioned" })).StatusCode);
        var deleted = await admin.DeleteAsync(url);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await (await admin.GetAsync(url)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        var history = await Seeder.HistoryAsync(admin, code);
        Assert.Equal(["deleted", "status_change"], Actions(history)[..2]);
        Assert.Equal("created", Actions(history)[^1]);
    }
}

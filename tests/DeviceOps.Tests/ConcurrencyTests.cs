using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace DeviceOps.Tests;

public sealed class ConcurrencyTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    [Fact]
    public async Task RacingCreationsOfOneDeviceCodeGiveOneDeviceAndConflictsWithoutLoggingErrors()
    {
        using var admin = factory.Admin();
        var organization = await Seeder.OrganizationAsync(admin);
        var code = Seeder.Unique("RACE");
        var logged = factory.Logs.Entries.Count;

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            using var client = factory.Admin();
            return await client.PostJsonAsync(Api.Devices, new JsonObject
            {
                ["device_id"] = code,
                ["device_name"] = $"Racer {i}",
                ["serial_number"] = Seeder.Unique("SN"),
                ["device_type"] = "network_switch",
                ["organization"] = organization,
                ["operational_status"] = "active",
                ["location"] = "Dock 1",
            });
        }));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Created);
        foreach (var refused in answers.Where(a => a.StatusCode != HttpStatusCode.Created))
        {
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, "duplicate");
        }
        // Each race lost is answered; none is an error for whoever reads the server's log.
        Assert.DoesNotContain(factory.Logs.Entries.Skip(logged), e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task FiftyConcurrentRelocationsOfOneDeviceLoseNoUpdateAndNoHistoryEntry()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]}/";
        const int writers = 50;

        var responses = await Task.WhenAll(Enumerable.Range(0, writers).Select(async i =>
        {
            using var client = factory.Admin();
            return await client.PatchJsonAsync(url, new JsonObject { ["location"] = $"Rack {i}" });
        }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var relocations = (await Seeder.HistoryAsync(admin, code))
            .Where(e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"] is not null).ToList();
        Assert.Equal(writers, relocations.Count);
        // Each entry's "from" is the previous entry's "to": the writes applied one after another.
        var chain = relocations.AsEnumerable().Reverse().Select(e => e!["changes"]!["location"]!).ToList();
        for (var i = 1; i < chain.Count; i++)
        {
            Assert.Equal(chain[i - 1]["to"]!.GetValue<string>(), chain[i]["from"]!.GetValue<string>());
        }
        var final = await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/");
        Assert.Equal(chain[^1]["to"]!.GetValue<string>(), final["location"]!.GetValue<string>());
    }

    /// <summary>
    /// Every answer shows the device's log as its own change left it: the 20 newest entries up to
    /// and including the change's own, none missing and none of a later change — the history is
    /// read in the change's own transaction.
    /// </summary>
    [Fact]
    public async Task EachAnswerToConcurrentChangesOfOneDeviceShowsItsLogAsItsChangeLeftIt()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var operations = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            operations.Add((await Seeder.OperationAsync(admin, code))["id"]!.GetValue<int>());
        }

        var answers = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            using var client = factory.Admin();
            var response = await client.PatchJsonAsync($"{Api.Operations}{operations[i % 4]}/", new JsonObject { ["location"] = $"Rack {i}" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await response.BodyAsync();
        }));

        var log = (await Seeder.HistoryAsync(admin, code)).Select(e => e!).ToList();
        foreach (var answer in answers)
        {
            var shown = answer["operational_history"]!.AsArray().Select(e => e!.ToJsonString()).ToList();
            var own = answer["operational_history"]![0]!;
            Assert.Equal("relocation", own["action"]!.GetValue<string>());
            Assert.Equal(answer["location"]!.GetValue<string>(), own["changes"]!["location"]!["to"]!.GetValue<string>());
            var expected = log.Where(e => e["id"]!.GetValue<long>() <= own["id"]!.GetValue<long>()).Take(20).Select(e => e.ToJsonString()).ToList();
            Assert.Equal(expected, shown);
        }
    }

    [Fact]
    public async Task TwoOperationsOnOneDeviceWrittenAtOnceBothLeaveTheirEntries()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var first = await Seeder.OperationAsync(admin, code, "in_progress");
        var second = await Seeder.OperationAsync(admin, code, "in_progress");

        var responses = await Task.WhenAll(
            admin.PutJsonAsync($"{Api.Operations}{first["id"]}/", new JsonObject
            {
                ["device_id"] = code, ["operation_type"] = "maintenance", ["status"] = "completed", ["operational_status"] = "maintenance",
            }),
            admin.PutJsonAsync($"{Api.Operations}{second["id"]}/", new JsonObject
            {
                ["device_id"] = code, ["operation_type"] = "relocation", ["status"] = "completed", ["location"] = "Building B",
            }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var history = await Seeder.HistoryAsync(admin, code);
        Assert.Contains(history, e => e!["action"]!.GetValue<string>() == "status_change" && e["operation_id"]!.GetValue<int>() == first["id"]!.GetValue<int>());
        Assert.Contains(history, e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"]!.GetValue<int>() == second["id"]!.GetValue<int>());
        Assert.Equal(2, history.Count(e => e!["action"]!.GetValue<string>() == "operation_status_change"));
        var final = await admin.GetJsonAsync($"{Api.Devices}{device["id"]}/");
        Assert.Equal("maintenance", final["operational_status"]!.GetValue<string>());
        Assert.Equal("Building B", final["location"]!.GetValue<string>());
    }

    [Fact]
    public async Task PutWithStaleIfMatchReturns412AndChangesNothing()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var url = $"{Api.Operations}{operation["id"]}/";
        var first = await admin.GetAsync(url);
        var staleTag = first.Headers.ETag!;
        Assert.Equal(HttpStatusCode.OK, (await admin.PatchJsonAsync(url, new JsonObject { ["notes"] = "someone else" })).StatusCode);
        var before = await admin.GetJsonAsync(url);
        var history = await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>());

        using var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Api.Json(new JsonObject { ["location"] = "Lost update" }) };
        request.Headers.IfMatch.Add(staleTag);
        var response = await admin.SendAsync(request);

        await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync(url)));
        Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, device["device_id"]!.GetValue<string>())).Count);
    }

    [Theory]
    [InlineData("*", true)]
    [InlineData("current", true)]
    [InlineData("weak current", true)]
    [InlineData("\"999-999\"", false)]
    public async Task IfNoneMatchNamingTheResourceRefusesTheChange(string tag, bool refused)
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]}/";
        var current = (await admin.GetAsync(url)).Headers.ETag!.Tag;
        var before = await admin.GetJsonAsync(url);
        var history = await Seeder.HistoryAsync(admin, code);

        using var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Api.Json(new JsonObject { ["location"] = "Only if new" }) };
        request.Headers.TryAddWithoutValidation("If-None-Match", tag switch { "current" => current, "weak current" => $"W/{current}", _ => tag });
        var response = await admin.SendAsync(request);

        if (refused)
        {
            // "Only if it does not exist yet": it does, so nothing may change.
            await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
            Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync(url)));
            Assert.Equal(history.Count, (await Seeder.HistoryAsync(admin, code)).Count);
        }
        else
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("Only if new", (await admin.GetJsonAsync(url))["location"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task DevicePatchWithIfNoneMatchStarIsRefused()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var url = $"{Api.Devices}{device["id"]}/";

        using var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Api.Json(new JsonObject { ["location"] = "Only if new" }) };
        request.Headers.TryAddWithoutValidation("If-None-Match", "*");
        var response = await admin.SendAsync(request);

        await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        Assert.Equal(device["location"]!.GetValue<string>(), (await admin.GetJsonAsync(url))["location"]!.GetValue<string>());
    }

    [Fact]
    public async Task PutWithCurrentIfMatchIsAppliedAndTheETagChanges()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var url = $"{Api.Operations}{operation["id"]}/";
        var current = (await admin.GetAsync(url)).Headers.ETag!;

        using var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Api.Json(new JsonObject { ["location"] = "Rack 9" }) };
        request.Headers.IfMatch.Add(current);
        var response = await admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEqual(current, response.Headers.ETag);
        Assert.Equal(response.Headers.ETag, (await admin.GetAsync(url)).Headers.ETag);
    }

    [Fact]
    public async Task ADeviceChangeThroughAnotherOperationMakesTheOperationsETagStale()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var mine = await Seeder.OperationAsync(admin, code);
        var theirs = await Seeder.OperationAsync(admin, code);
        var tag = (await admin.GetAsync($"{Api.Operations}{mine["id"]}/")).Headers.ETag!;
        await admin.PatchJsonAsync($"{Api.Operations}{theirs["id"]}/", new JsonObject { ["location"] = "Moved meanwhile" });

        using var request = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{mine["id"]}/")
        {
            Content = Api.Json(new JsonObject { ["location"] = "Where I think it is" }),
        };
        request.Headers.IfMatch.Add(tag);
        var response = await admin.SendAsync(request);

        await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
    }

    [Fact]
    public async Task DeviceDeleteHonoursIfMatch()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin, status: "decommissioned");
        var url = $"{Api.Devices}{device["id"]}/";
        var current = (await admin.GetAsync(url)).Headers.ETag!;

        using var stale = new HttpRequestMessage(HttpMethod.Delete, url);
        stale.Headers.IfMatch.Add(new EntityTagHeaderValue("\"999\""));
        await (await admin.SendAsync(stale)).AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(url)).StatusCode);

        using var matching = new HttpRequestMessage(HttpMethod.Delete, url);
        matching.Headers.IfMatch.Add(current);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(matching)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync(url)).StatusCode);
    }

    [Fact]
    public async Task DevicePatchWithStaleIfMatchReturns412()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var url = $"{Api.Devices}{device["id"]}/";

        using var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = Api.Json(new JsonObject { ["location"] = "X" }) };
        request.Headers.IfMatch.Add(new EntityTagHeaderValue("\"999\""));
        var response = await admin.SendAsync(request);

        await response.AssertProblemAsync(HttpStatusCode.PreconditionFailed, "precondition_failed");
        Assert.Equal("Warehouse A - Section 3", (await admin.GetJsonAsync(url))["location"]!.GetValue<string>());
    }
}

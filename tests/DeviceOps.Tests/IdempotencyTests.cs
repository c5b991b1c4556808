using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;

namespace DeviceOps.Tests;

public sealed class IdempotencyTests(DeviceOpsFactory factory) : IClassFixture<DeviceOpsFactory>
{
    private static HttpRequestMessage Request(HttpMethod method, string url, JsonNode body, string key)
    {
        var request = new HttpRequestMessage(method, url) { Content = Api.Json(body) };
        request.Headers.Add("Idempotency-Key", key);
        return request;
    }

    [Fact]
    public async Task RetryAfterALostResponseReplaysTheFirstAnswerWithoutApplyingAgain()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var url = $"{Api.Operations}{operation["id"]}/";
        var body = new JsonObject { ["location"] = "Rack 1", ["status"] = "completed" };
        var key = Guid.NewGuid().ToString();

        // The first answer is "lost": the client never reads it and retries.
        (await admin.SendAsync(Request(HttpMethod.Patch, url, body, key))).Dispose();
        var historyAfterFirst = await Seeder.HistoryAsync(admin, code);
        var first = await admin.GetJsonAsync(url);
        // Someone else moves the device meanwhile; a second application would move it back.
        await admin.PatchJsonAsync(url, new JsonObject { ["location"] = "Rack 2" });
        var retry = await admin.SendAsync(Request(HttpMethod.Patch, url, body, key));

        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal("true", retry.Headers.GetValues("Idempotent-Replayed").Single());
        var replayed = await retry.BodyAsync();
        Assert.Equal("Rack 1", replayed["location"]!.GetValue<string>());
        Assert.Equal(first["updated_at"]!.GetValue<string>(), replayed["updated_at"]!.GetValue<string>());
        Assert.Equal("Rack 2", (await admin.GetJsonAsync(url))["location"]!.GetValue<string>());
        Assert.Equal(historyAfterFirst.Count + 1, (await Seeder.HistoryAsync(admin, code)).Count);
    }

    [Fact]
    public async Task RetriedCreateReturnsTheSameOperationAndCreatesOne()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var body = new JsonObject { ["device_id"] = code, ["operation_type"] = "inspection" };
        var key = Guid.NewGuid().ToString();

        var first = await admin.SendAsync(Request(HttpMethod.Post, Api.Operations, body, key));
        var second = await admin.SendAsync(Request(HttpMethod.Post, Api.Operations, body, key));

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        Assert.Equal(first.Headers.Location, second.Headers.Location);
        Assert.Equal((await first.BodyAsync())["id"]!.GetValue<int>(), (await second.BodyAsync())["id"]!.GetValue<int>());
        Assert.Equal(1, (await admin.GetJsonAsync($"{Api.Operations}?device_id={code}"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task SameKeyWithAnotherBodyReturns422AndChangesNothing()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var url = $"{Api.Operations}{operation["id"]}/";
        var key = Guid.NewGuid().ToString();
        await admin.SendAsync(Request(HttpMethod.Patch, url, new JsonObject { ["location"] = "Rack 1" }, key));
        var before = await admin.GetJsonAsync(url);

        var response = await admin.SendAsync(Request(HttpMethod.Patch, url, new JsonObject { ["location"] = "Rack 7" }, key));

        await response.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "idempotency_key_reused");
        Assert.True(JsonNode.DeepEquals(before, await admin.GetJsonAsync(url)));
    }

    [Fact]
    public async Task KeysBelongToTheirTokenSoTwoClientsMayPickTheSameKey()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        using var one = await factory.ClientAsync("one@example.com", ["operations:write", "operations:read"]);
        using var two = await factory.ClientAsync("two@example.com", ["operations:write", "operations:read"]);
        var body = new JsonObject { ["device_id"] = code, ["operation_type"] = "inspection" };

        var first = await one.SendAsync(Request(HttpMethod.Post, Api.Operations, body, "shared-key"));
        var second = await two.SendAsync(Request(HttpMethod.Post, Api.Operations, body, "shared-key"));

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        Assert.False(second.Headers.Contains("Idempotent-Replayed"));
        Assert.NotEqual(first.Headers.Location, second.Headers.Location);
    }

    [Fact]
    public async Task ConcurrentRetriesWithOneKeyApplyOnce()
    {
        using var admin = factory.Admin();
        var device = await Seeder.DeviceAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var body = new JsonObject { ["device_id"] = code, ["operation_type"] = "inspection" };
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            using var client = factory.Admin();
            return await client.SendAsync(Request(HttpMethod.Post, Api.Operations, body, key));
        }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        Assert.Single(responses.Select(r => r.Headers.Location).Distinct());
        Assert.Equal(1, (await admin.GetJsonAsync($"{Api.Operations}?device_id={code}"))["count"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("device")]
    [InlineData("organization")]
    public async Task ConcurrentRetriesOfACreationWhoseNameMustBeUniqueAllGetTheFirstAnswer(string resource)
    {
        using var admin = factory.Admin();
        // A unique name: without the key, every retry after the first is a 409 duplicate.
        var (url, body) = resource == "device"
            ? (Api.Devices, new JsonObject
            {
                ["device_id"] = Seeder.Unique("IDEM"),
                ["device_name"] = "Edge router",
                ["serial_number"] = Seeder.Unique("SN"),
                ["device_type"] = "router",
                ["organization"] = await Seeder.OrganizationAsync(admin),
                ["operational_status"] = "active",
                ["location"] = "Dock 2",
            })
            : ("/api/v1/organization/", new JsonObject { ["name"] = Seeder.Unique("Org") });
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var client = factory.Admin();
            return await client.SendAsync(Request(HttpMethod.Post, url, body, key));
        }));

        var bodies = await Task.WhenAll(responses.Select(r => r.Content.ReadAsStringAsync()));
        Assert.All(responses, r => Assert.True(r.StatusCode == HttpStatusCode.Created, $"{(int)r.StatusCode}"));
        Assert.Single(bodies.Distinct());
        Assert.Single(responses.Select(r => r.Headers.Location).Distinct());
        Assert.Equal(9, responses.Count(r => r.Headers.Contains("Idempotent-Replayed")));
    }

    [Fact]
    public async Task ConcurrentRetriesOfAnUpdateWithOneKeyApplyOnceAndAnswerAlike()
    {
        using var admin = factory.Admin();
        var (device, operation) = await Seeder.DeviceWithOperationAsync(admin);
        var code = device["device_id"]!.GetValue<string>();
        var location = $"Rack {Guid.NewGuid():N}";
        var body = new JsonObject { ["location"] = location };
        var key = Guid.NewGuid().ToString();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            using var client = factory.Admin();
            return await client.SendAsync(Request(HttpMethod.Patch, $"{Api.Operations}{operation["id"]}/", body, key));
        }));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var bodies = await Task.WhenAll(responses.Select(r => r.Content.ReadAsStringAsync()));
        Assert.Single(bodies.Distinct());
        Assert.Single(responses.Select(r => r.Headers.ETag?.Tag).Distinct());
        Assert.Equal(7, responses.Count(r => r.Headers.Contains("Idempotent-Replayed")));
        var relocations = (await Seeder.HistoryAsync(admin, code)).Where(e => e!["action"]!.GetValue<string>() == "relocation"
            && e["changes"]!["location"]!["to"]!.GetValue<string>() == location);
        Assert.Single(relocations);
    }

    [Fact]
    public async Task AKeyThatIsNotVisibleAsciiIsRefused()
    {
        using var admin = factory.Admin();
        var (_, operation) = await Seeder.DeviceWithOperationAsync(admin);

        var response = await admin.SendAsync(Request(HttpMethod.Patch, $"{Api.Operations}{operation["id"]}/",
            new JsonObject { ["location"] = "Rack 1" }, new string('k', 300)));

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.NotEmpty(problem.Messages("Idempotency-Key"));
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using DeviceOps.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeviceOps.Tests;

/// <summary>
/// What an auditor must be able to trust, checked on the published server: a change that got a
/// 2xx survives a kill -9 with its history entry, and several server processes on one store
/// share all state without losing a write.
/// </summary>
public sealed class DurabilityTests(PublishedServerFixture server, ITestOutputHelper output)
    : IClassFixture<PublishedServerFixture>, IAsyncLifetime
{
    private const string Secret = "durability-bootstrap-secret-0123456789";
    private static readonly Dictionary<string, string> Bootstrap = new() { ["DEVICEOPS_BOOTSTRAP_TOKEN"] = Secret };

    private ServerHome _home = null!;

    public async Task InitializeAsync() => _home = await ServerHome.CreateAsync(server);

    public async Task DisposeAsync()
    {
        await _home.DisposeAsync();
        output.WriteLine(_home.Transcript());
    }

    private static async Task<List<(JsonObject Device, int OperationId)>> SeedAsync(HttpClient admin, int devices)
    {
        var organization = await Seeder.OrganizationAsync(admin);
        var seeded = new List<(JsonObject, int)>();
        for (var i = 0; i < devices; i++)
        {
            var (device, operation) = await Seeder.DeviceWithOperationAsync(admin, organization);
            seeded.Add((device, operation["id"]!.GetValue<int>()));
        }
        return seeded;
    }

    [Fact]
    public async Task EveryAcknowledgedChangeSurvivesAKillDashNineWithItsHistoryEntry()
    {
        var process = await _home.StartAsync(environment: Bootstrap);
        List<(JsonObject Device, int OperationId)> seeded;
        using (var admin = process.Client(Secret))
        {
            seeded = await SeedAsync(admin, 6);
        }
        var acknowledged = new ConcurrentBag<(int Device, string RequestId, string Location)>();
        using var stop = new CancellationTokenSource();

        var writers = seeded.Select((target, index) => Task.Run(async () =>
        {
            using var client = process.Client(Secret);
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var requestId = $"crash-{index}-{n}";
                var location = $"Rack {index}.{n}";
                using var request = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{target.OperationId}/")
                {
                    Content = Api.Json(new JsonObject { ["location"] = location }),
                };
                request.Headers.Add("X-Request-Id", requestId);
                try
                {
                    using var response = await client.SendAsync(request);
                    if (response.IsSuccessStatusCode)
                    {
                        acknowledged.Add((index, requestId, location));
                    }
                }
                catch (HttpRequestException)
                {
                    return;
                }
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(2));
        await process.KillAsync();
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        Assert.True(acknowledged.Count > 20, $"only {acknowledged.Count} writes were acknowledged before the kill");

        await using var restarted = await _home.StartAsync(environment: Bootstrap);
        using var reader = restarted.Client(Secret);
        foreach (var (device, _) in seeded)
        {
            var code = device["device_id"]!.GetValue<string>();
            var history = await Seeder.HistoryAsync(reader, code);
            var entries = history.Where(e => e!["action"]!.GetValue<string>() == "relocation")
                .ToDictionary(e => e!["request_id"]!.GetValue<string>(), e => e!["changes"]!["location"]!["to"]!.GetValue<string>());
            var index = seeded.FindIndex(s => s.Device == device);
            foreach (var (_, requestId, location) in acknowledged.Where(a => a.Device == index))
            {
                Assert.True(entries.TryGetValue(requestId, out var recorded), $"acknowledged {requestId} has no history entry after the crash");
                Assert.Equal(location, recorded);
            }
            // The device shows the newest entry's value: state and audit trail agree.
            var state = await reader.GetJsonAsync($"{Api.Devices}{device["id"]}/");
            var newest = history.First(e => e!["action"]!.GetValue<string>() == "relocation")!;
            Assert.Equal(newest["changes"]!["location"]!["to"]!.GetValue<string>(), state["location"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task TwoServerProcessesOnOneStoreShareStateAndLoseNoConcurrentWrite()
    {
        await using var first = await _home.StartAsync(environment: Bootstrap);
        await using var second = await _home.StartAsync(environment: Bootstrap);
        using var one = first.Client(Secret);
        using var two = second.Client(Secret);
        var seeded = await SeedAsync(one, 1);
        var (device, operationId) = seeded[0];
        var code = device["device_id"]!.GetValue<string>();

        // Written through one, read through the other.
        Assert.Equal(HttpStatusCode.OK, (await one.PatchJsonAsync($"{Api.Operations}{operationId}/", new JsonObject { ["location"] = "Via one" })).StatusCode);
        Assert.Equal("Via one", (await two.GetJsonAsync($"{Api.Devices}{device["id"]}/"))["location"]!.GetValue<string>());

        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            var client = i % 2 == 0 ? one : two;
            using var response = await client.PatchJsonAsync($"{Api.Operations}{operationId}/", new JsonObject { ["location"] = $"Writer {i}" });
            return response.StatusCode;
        }));

        Assert.All(responses, status => Assert.Equal(HttpStatusCode.OK, status));
        var history = await Seeder.HistoryAsync(two, code);
        var relocations = history.Where(e => e!["action"]!.GetValue<string>() == "relocation" && e["operation_id"] is not null).ToList();
        Assert.Equal(41, relocations.Count);
        var chain = relocations.AsEnumerable().Reverse().Select(e => e!["changes"]!["location"]!).ToList();
        for (var i = 1; i < chain.Count; i++)
        {
            Assert.Equal(chain[i - 1]["to"]!.GetValue<string>(), chain[i]["from"]!.GetValue<string>());
        }
        Assert.Equal(chain[^1]["to"]!.GetValue<string>(), (await one.GetJsonAsync($"{Api.Devices}{device["id"]}/"))["location"]!.GetValue<string>());

        // An idempotency key sent to one instance is honoured by the other.
        using var viaOne = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{operationId}/") { Content = Api.Json(new JsonObject { ["location"] = "Keyed" }) };
        viaOne.Headers.Add("Idempotency-Key", "shared-across-instances");
        using var viaTwo = new HttpRequestMessage(HttpMethod.Patch, $"{Api.Operations}{operationId}/") { Content = Api.Json(new JsonObject { ["location"] = "Keyed" }) };
        viaTwo.Headers.Add("Idempotency-Key", "shared-across-instances");
        Assert.Equal(HttpStatusCode.OK, (await one.SendAsync(viaOne)).StatusCode);
        var replay = await two.SendAsync(viaTwo);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
    }
}
